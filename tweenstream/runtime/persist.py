"""Saving and loading learners: a zip of a JSON manifest and raw ``.npy`` arrays, never pickle.

Layout of a model file (format version 4)::

    manifest.json   format, version, network, config, seed, features, RNG state, and for every
                    array its dtype, shape and SHA-256
    pbuf.npy, diag.npy, fst.npy, ist.npy

Version 1 files (before the adam and adagrad optimisers) have a 4-row ``pbuf`` (no ``P_SQ``)
and no ``ist[N_OPT_STEP]``; ``load`` reads them with both zero, which is the state of a learner
that has never taken an Adam or AdaGrad step. Version 2 adds nothing else. Version 2 files
have no ``ist[N_DIAG_AT]`` and no ``diagnostics_every`` setting: they computed their
diagnostics on every sample, and load with ``diagnostics_every=1`` and the counter at their last
sample. Version 3 files have no storm counters (after the event ring of ``ist``), no rate
ceiling held down (``ist[N_HOLD]``) and no loss at the shadow copy (``fst[S_SHADOW_LOSS]``);
they load with the counters at zero and that loss unknown (inf).

Writes are atomic (temporary file, fsync, rename), so a crash never leaves half a file under the
final name. A file that is truncated, corrupt or from a newer format raises ``ModelFileError``
and never yields half a model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from tweenstream.files import write_atomic

if TYPE_CHECKING:
    from tweenstream.runtime.learner import Learner

FORMAT = "tweenstream.learner"
FORMAT_VERSION = 4
MAX_MANIFEST_BYTES = 1 << 20


class ModelFileError(ValueError):
    """A model file that cannot be loaded: unreadable, truncated, corrupt or unsupported."""


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def save(learner: Learner, path: str | os.PathLike[str], extra: dict[str, Any] | None = None,
         extra_arrays: dict[str, np.ndarray] | None = None) -> None:
    """Save ``learner`` to ``path`` (see the module docstring for the format).

    ``extra`` is any JSON-able dict stored with it in the manifest, and ``extra_arrays`` any
    arrays (numbers or fixed-width strings) stored beside its own, checksummed alike (a daemon
    keeps its counters in the first and its stream table in the second); ``load_parts``
    returns both.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from tweenstream import Dense, Learner, Network, load
    >>> model = Learner(Network(3, [Dense(2)]), seed=4)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.tsm"
    >>> save(model, path)
    >>> bool((load(path).arena.params == model.arena.params).all())
    True
    """
    write_atomic(path, to_bytes(learner, extra, extra_arrays))


def to_bytes(learner: Learner, extra: dict[str, Any] | None = None,
             extra_arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """The bytes ``save`` writes: a model file in memory (``from_bytes`` reads it back).

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> model = Learner(Network(3, [Dense(2)]), seed=4)
    >>> bool((from_bytes(to_bytes(model)).arena.params == model.arena.params).all())
    True
    """
    from tweenstream import __version__

    arrays = learner._saved_arrays()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tweenstream": __version__,
        "network": learner.network.to_dict(),
        "config": asdict(learner.config),
        "seed": learner.seed,
        **learner._meta(),
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": _digest(a)}
                   for name, a in arrays.items()},
        "extra": extra or {},
        "extra_arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape),
                                "sha256": _digest(a)}
                         for name, a in (extra_arrays or {}).items()},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, arr in [*arrays.items(),
                          *((f"extra/{k}", a) for k, a in (extra_arrays or {}).items())]:
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(f"{name}.npy", npy.getvalue())
    return buf.getvalue()


def from_bytes(data: bytes) -> Learner:
    """A learner from the bytes of a model file (``to_bytes``); ``ModelFileError`` on any
    defect. This is what ``pickle`` calls to rebuild a ``Learner``: it reads the JSON manifest
    and the ``.npy`` arrays (never pickled objects), with every check ``load`` makes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ModelFileError(f"a model file's bytes were expected, found {type(data).__name__}")
    return load_parts(_InMemory(bytes(data)))[0]


class _InMemory(io.BytesIO):
    """The bytes of a model file where ``load_parts`` expects a path (errors name it so)."""

    def __str__(self) -> str:
        return "<model bytes>"

    __repr__ = __str__


def load(path: str | os.PathLike[str]) -> Learner:
    """Load a learner saved by ``save``; raises ``ModelFileError`` on any defect."""
    return load_with_extra(path)[0]


def load_with_extra(path: str | os.PathLike[str]) -> tuple[Learner, dict[str, Any]]:
    """Load a learner and the ``extra`` dict saved with it."""
    learner, extra, _ = load_parts(path)
    return learner, extra


def load_parts(path: str | os.PathLike[str] | io.BytesIO
               ) -> tuple[Learner, dict[str, Any], dict[str, np.ndarray]]:
    """Load a learner, the ``extra`` dict and the ``extra_arrays`` saved with it (``path`` may
    also be an in-memory file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from tweenstream import Dense, Learner, Network
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.tsm"
    >>> save(Learner(Network(3, [Dense(2)])), path, {"n": 1}, {"ids": np.arange(3)})
    >>> _, extra, arrays = load_parts(path)
    >>> extra, arrays["ids"].tolist()
    ({'n': 1}, [0, 1, 2])
    """
    from tweenstream.models.network import Network
    from tweenstream.runtime.config import TweenConfig
    from tweenstream.runtime.learner import Learner

    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _read_manifest(zf, path)
            arrays = {name: _read_array(zf, name, meta, path)
                      for name, meta in manifest["arrays"].items()}
            extra_meta = manifest.get("extra_arrays", {})
            if not isinstance(extra_meta, dict):
                raise ModelFileError(f"{path}: 'extra_arrays' must be a JSON object")
            extra_arrays = {name: _read_array(zf, f"extra/{name}", meta, path)
                            for name, meta in extra_meta.items()}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ModelFileError(f"{path}: not a readable model file (truncated or corrupt: {err})"
                             ) from None
    arrays = _upgrade(arrays, manifest["format_version"])
    try:
        network = Network.from_dict(manifest["network"])
        settings = dict(manifest["config"])
        settings.setdefault("scaling", "off")  # files from before the input stage: unscaled
        settings.setdefault("target_scaling", "off")
        settings.setdefault("optimizer", "sgd")  # files from before Adam became the default
        settings.setdefault("diagnostics_every", 1)  # before version 3: every sample
        settings.setdefault("hybrid_switch", "plateau")  # files from before the race
        config = TweenConfig(**settings)
        learner = Learner(network, config, seed=manifest["seed"])
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: invalid model description: {err}") from None
    for name, target in learner._arrays().items():
        got = arrays.get(name)
        if got is None and name == "seen_units":  # files from before label maps
            continue
        if got is None or got.shape != target.shape or got.dtype != target.dtype:
            raise ModelFileError(f"{path}: array {name!r} does not match the network "
                                 f"(expected {target.dtype}{target.shape})")
    problem = _state_problem(learner, arrays)
    if problem:
        raise ModelFileError(f"{path}: invalid learner state: {problem}")
    try:
        learner._restore(arrays, manifest)
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: invalid learner state: {err}") from None
    extra = manifest.get("extra", {})
    if not isinstance(extra, dict):
        raise ModelFileError(f"{path}: 'extra' must be a JSON object")
    return learner, extra, extra_arrays


def _upgrade(arrays: dict[str, np.ndarray], version: int) -> dict[str, np.ndarray]:
    """An older file's arrays in today's layout. Version 1: the pbuf row ``P_SQ`` and the
    counter ``ist[N_OPT_STEP]`` are inserted as zeros. Versions 1 and 2: ``ist[N_DIAG_AT]`` is
    inserted as the last sample seen (they computed diagnostics on every sample). Arrays of any
    other shape are left alone (the shape check that follows names them)."""
    from tweenstream.runtime import layout as lay

    out = dict(arrays)
    pbuf, ist, fst = arrays.get("pbuf"), arrays.get("ist"), arrays.get("fst")
    missing = 2 if version < 2 else 1 if version < 3 else 0
    storms = 4 if version < 4 else 0  # the storm counters after the event ring
    if version < 2 and pbuf is not None and pbuf.ndim == 2 and pbuf.shape[0] == lay.NPROW - 1:
        out["pbuf"] = np.insert(pbuf, lay.P_SQ, np.zeros(pbuf.shape[1], pbuf.dtype), axis=0)
    if (missing or storms) and ist is not None and ist.ndim == 1 \
            and ist.shape[0] == lay.NIST - missing - storms:
        if version < 2:
            ist = np.insert(ist, lay.N_OPT_STEP, np.zeros(1, ist.dtype))
        if version < 3:
            ist = np.insert(ist, lay.N_DIAG_AT, ist[lay.N_SEEN])
        out["ist"] = np.concatenate([ist, np.zeros(storms, ist.dtype)])
    if storms and fst is not None and fst.ndim == 1 and fst.shape[0] == lay.NFST - 1:
        # the loss at the shadow copy unknown (it only counts while the rate's ceiling is
        # held, which an older file's never is)
        out["fst"] = np.append(fst, np.inf).astype(fst.dtype)
    return out


def _state_problem(learner: Learner, arrays: dict[str, np.ndarray]) -> str:
    """Why the saved counters and buffers cannot belong to a working learner, or ''.

    The checksum catches accidental damage; this catches edited or inconsistent files, whose
    values the compiled kernels would otherwise trust (an event index out of range writes
    outside its array).
    """
    from tweenstream.runtime import layout as lay

    ist, fst, pbuf = arrays["ist"], arrays["fst"], arrays["pbuf"]
    if not np.isfinite(pbuf).all():
        return "parameters or momentum are not finite"
    if (pbuf[lay.P_SQ] < 0).any():
        return "second moments (adam, adagrad) are negative"
    finite = np.isfinite(fst)
    finite[lay.S_WIN_BEST] = True  # -inf until the first plateau window closes
    finite[lay.S_SHADOW_LOSS] = not np.isnan(fst[lay.S_SHADOW_LOSS])  # inf: none measured
    if not finite.all():
        return "running statistics are not finite"
    if not learner.config.rate_floor <= fst[lay.S_RATE] <= 1.0:
        return f"adaptive rate {fst[lay.S_RATE]} outside [rate_floor, 1]"
    counters = np.concatenate([np.delete(ist[:lay.N_EVENTS], lay.N_SWITCHED_AT),
                               ist[lay.N_SNAP_ROLLBACKS:]])
    if (counters < 0).any() or ist[lay.N_SWITCHED_AT] < -1:
        return "negative counters"
    checks = {
        "phase": 0 <= ist[lay.N_PHASE] <= lay.M_HEURISTIC,
        "event ring position": 0 <= ist[lay.N_EVENT_HEAD] < lay.EVENT_RING,
        "batch fill": ist[lay.N_BATCH_FILL] < learner.config.batch_size,
        "rejected count": ist[lay.N_REJECTED] <= ist[lay.N_SEEN],
        "EMA flag": ist[lay.N_EMA_STARTED] in (0, 1),
        "event reasons": set(ist[lay.N_EVENTS + 1:lay.N_SNAP_ROLLBACKS:2].tolist())
        <= {0, *lay.REASONS},
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        return f"out of range: {', '.join(bad)}"
    for name in ("scale_stats", "target_stats"):
        stats = arrays.get(name)
        if stats is not None and (not np.isfinite(stats).all() or (stats[0] < 0).any()
                                  or (stats[2] < 0).any()):
            return "input or target statistics are not finite and non-negative"
    return ""


def _read_manifest(zf: zipfile.ZipFile, path: Any) -> dict[str, Any]:
    try:
        info = zf.getinfo("manifest.json")
    except KeyError:
        raise ModelFileError(f"{path}: no manifest.json; not a tweenstream model file") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{path}: manifest is {info.file_size} bytes, over the limit")
    try:
        manifest = json.loads(zf.read(info))
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: manifest is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a tweenstream model file")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version!r} is not supported by this "
                             f"tweenstream (reads up to {FORMAT_VERSION}); upgrade tweenstream")
    needed = {"network", "config", "seed", "features", "rng_state", "arrays"}
    if not needed <= set(manifest) or not isinstance(manifest["arrays"], dict):
        raise ModelFileError(f"{path}: manifest lacks {sorted(needed - set(manifest))}")
    return manifest


def _read_array(zf: zipfile.ZipFile, name: str, meta: Any, path: Any) -> np.ndarray:
    try:
        raw = zf.read(f"{name}.npy")
    except KeyError:
        raise ModelFileError(f"{path}: array {name!r} is missing") from None
    try:
        arr = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except ValueError as err:
        raise ModelFileError(f"{path}: array {name!r} is unreadable ({err})") from None
    if not isinstance(meta, dict) or _digest(arr) != meta.get("sha256"):
        raise ModelFileError(f"{path}: array {name!r} fails its checksum; the file is corrupt")
    return arr
