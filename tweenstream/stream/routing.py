"""Which model a stream goes to: exact stream names first, then patterns in declared order.

A route is a stream name (``"sensor-7"``) or a shell-style pattern (``"sensor-*"``,
``"tenant-[ab]"``, ``"*"``). A stream whose name is a model's exact route goes to that model;
otherwise the first pattern, in the order models and their routes were declared, that matches
the name wins. A name no route matches goes nowhere (the message is refused as ``no_model``).
Lookups are cached per stream name, and the cache is cleared whenever the routes change.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CACHE = 65_536  # stream names remembered before the cache starts over
_MAGIC = set("*?[")


def check_model_name(name: object) -> str:
    """A model name: 1..64 letters, digits, ``_``, ``.`` or ``-``, not starting with a dot or
    dash (it names a folder). Raises ``ValueError`` otherwise.

    Examples
    --------
    >>> check_model_name("sensors-eu.v2")
    'sensors-eu.v2'
    >>> check_model_name("../x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: model name must be 1..64 letters, digits, _ . or - (not starting with . or ...
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError("model name must be 1..64 letters, digits, _ . or - (not starting "
                         f"with . or -), found {name!r}")
    return name


class Routes:
    """The routing table of a daemon.

    Examples
    --------
    >>> r = Routes()
    >>> r.add("sensors", ["sensor-*"]); r.add("vip", ["sensor-7", "vip-*"]); r.add("rest", ["*"])
    >>> r.model_for("sensor-7"), r.model_for("sensor-8"), r.model_for("other")
    ('vip', 'sensors', 'rest')
    >>> r.remove("rest"); r.model_for("other") is None
    True
    >>> r.add("x", ["sensor-7"])
    Traceback (most recent call last):
    ...
    ValueError: stream 'sensor-7' is already routed to model 'vip'
    """

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}  # stream name -> model
        self.patterns: list[tuple[str, str]] = []  # (pattern, model), in declared order
        self._cache: dict[str, str | None] = {}

    def add(self, model: str, routes: list[str] | tuple[str, ...]) -> None:
        """Route ``routes`` (names or patterns) to ``model``; all or nothing."""
        routes = check_routes(routes)
        for route in routes:
            if not _MAGIC & set(route) and route in self.exact:
                raise ValueError(f"stream {route!r} is already routed to model "
                                 f"{self.exact[route]!r}")
        for route in routes:
            if _MAGIC & set(route):
                self.patterns.append((route, model))
            else:
                self.exact[route] = model
        self._cache.clear()

    def remove(self, model: str) -> None:
        """Forget every route of ``model``."""
        self.exact = {k: v for k, v in self.exact.items() if v != model}
        self.patterns = [(p, m) for p, m in self.patterns if m != model]
        self._cache.clear()

    def of(self, model: str) -> list[str]:
        """The routes of ``model``: its exact names, then its patterns."""
        return [k for k, v in self.exact.items() if v == model] \
            + [p for p, m in self.patterns if m == model]

    def model_for(self, stream: str) -> str | None:
        """The model ``stream`` goes to, or None."""
        try:
            return self._cache[stream]
        except KeyError:
            pass
        found = self.exact.get(stream)
        if found is None:
            found = next((m for p, m in self.patterns if fnmatchcase(stream, p)), None)
        if len(self._cache) >= _CACHE:
            self._cache.clear()
        self._cache[stream] = found
        return found


def check_routes(routes: object) -> list[str]:
    """A non-empty list of distinct non-empty strings (stream names or patterns).

    Examples
    --------
    >>> check_routes(["a", "b-*"])
    ['a', 'b-*']
    >>> check_routes("a-*")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: routes must be a non-empty list of stream names or patterns like ...
    """
    if not isinstance(routes, (list, tuple)) or not routes \
            or not all(isinstance(r, str) and 0 < len(r) <= 256 for r in routes):
        raise ValueError("routes must be a non-empty list of stream names or patterns like "
                         f"[\"sensor-*\"], found {routes!r}")
    if len(set(routes)) != len(routes):
        raise ValueError(f"routes repeat a name: {list(routes)!r}")
    return list(routes)
