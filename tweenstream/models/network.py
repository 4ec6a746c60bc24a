"""Network: an immutable stack of layer specs with an input shape and a task.

A network says *what* is learned; how it learns lives in ``tweenstream.runtime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from tweenstream.models import attention as _attention  # noqa: F401  (these imports register
from tweenstream.models import conv as _conv  # noqa: F401
from tweenstream.models import dense as _dense  # noqa: F401
from tweenstream.models import embedding as _embedding  # noqa: F401
from tweenstream.models import flatten as _flatten  # noqa: F401  the layer kinds)
from tweenstream.models import lstm as _lstm  # noqa: F401
from tweenstream.models import norm as _norm  # noqa: F401
from tweenstream.models import residual as _residual  # noqa: F401
from tweenstream.models import rnn as _rnn  # noqa: F401
from tweenstream.models import sequence as _sequence  # noqa: F401
from tweenstream.models import swiglu as _swiglu  # noqa: F401
from tweenstream.models.registry import Shape, kind_named, kind_of
from tweenstream.models.residual import Residual, ResidualBegin, ResidualEnd

TASKS = ("classification", "regression")


class Network:
    """A feed-forward stack of layers for one task.

    Parameters
    ----------
    input_dim : int or tuple of int
        Shape of one sample (no batch axis). An int means a flat vector.
    layers : sequence of layer specs
        For example ``[Dense(32, "tanh"), Dense(4)]``.
    task : {"classification", "regression"}
        Classification puts a softmax on the last layer and uses cross-entropy; the last layer
        must be linear (or say ``"softmax"``) with one unit per class (at least 2).
        Regression uses a mean squared error on the last layer's output.

    Examples
    --------
    >>> from tweenstream.models.dense import Dense
    >>> net = Network(8, [Dense(32, "tanh"), Dense(4)])
    >>> net.n_outputs, net.param_count
    (4, 420)
    """

    __slots__ = ("input_shape", "layers", "n_inputs", "n_outputs", "rows", "shapes", "task")

    input_shape: Shape
    layers: tuple[Any, ...]
    task: str
    shapes: tuple[Shape, ...]
    n_inputs: int  # values per sample
    n_outputs: int  # outputs per sample (classes of a classifier)
    rows: tuple[tuple[Any, Shape, Shape], ...]  # (spec, in_shape, out_shape) per plan row

    def __init__(self, input_dim: int | Sequence[int], layers: Sequence[Any],
                 task: str = "classification") -> None:
        shape = _input_shape(input_dim)
        if task not in TASKS:
            raise ValueError(f"task must be 'classification' or 'regression', found {task!r}")
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
            raise TypeError("layers must be a list of layer specs such as [Dense(32), Dense(4)], "
                            f"found {type(layers).__name__}")
        if len(layers) == 0:
            raise ValueError("a network needs at least one layer, e.g. [Dense(n_outputs)]")
        shapes = []
        rows: list[tuple[Any, Shape, Shape]] = []
        current = shape
        for i, spec in enumerate(layers):
            current = _add_layer(spec, current, str(i), rows, i == 0,
                                 i == len(layers) - 1)
            shapes.append(current)
        last = len(layers) - 1
        last_act = getattr(layers[-1], "activation", "linear")
        if task == "classification":
            if last_act not in ("linear", "softmax"):
                raise ValueError(f"layer {last}: a classifier's output layer must be linear "
                                 "(softmax is applied by the loss), found activation "
                                 f"{last_act!r}; use activation='linear' or 'softmax'")
            if len(shapes[-1]) != 1 or shapes[-1][0] < 2:
                raise ValueError(f"layer {last}: a classifier needs one output per class (>= 2), "
                                 f"found output shape {shapes[-1]}; set units to the class count")
        elif last_act == "softmax":
            raise ValueError(f"layer {last}: softmax output is for classification; a regression "
                             "output should be linear")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "shapes", tuple(shapes))
        object.__setattr__(self, "rows", tuple(rows))
        object.__setattr__(self, "n_inputs", int(np.prod(shape)))
        object.__setattr__(self, "n_outputs", int(np.prod(shapes[-1])))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Network is immutable; build a new one")

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickled (and copied) as its ``to_dict`` description, rebuilt by ``from_dict``."""
        return Network.from_dict, (self.to_dict(),)

    def __deepcopy__(self, memo: dict[int, Any]) -> Network:
        """Immutable: a copy is the network itself."""
        return self

    def __copy__(self) -> Network:
        return self

    @property
    def in_shapes(self) -> tuple[Shape, ...]:
        """Input shape of every layer."""
        return (self.input_shape, *self.shapes[:-1])

    @property
    def param_count(self) -> int:
        """Total number of learned parameters."""
        total = 0
        for spec, in_shape, _ in self.rows:
            for _, shape in kind_of(spec).param_shapes(spec, in_shape):
                total += int(np.prod(shape))
        return total

    def arena_bytes(self) -> int:
        """Bytes of every buffer a learner of this network allocates (once, at creation).

        Parameters, momentum (or first moment), batch accumulator, shadow copy and second
        moment (5 float32 copies), six work rows over every activation slot and scratch, and
        O(layers) diagnostics and counters.
        """
        slots = self.n_inputs + self.n_outputs
        for spec, in_shape, out_shape in self.rows:
            slots += int(np.prod(out_shape)) + sum(kind_of(spec).scratch_sizes(spec, in_shape))
        return 4 * (5 * self.param_count + 6 * slots) + 32 * len(self.rows) + 8 * (13 + 86)

    def summary(self, show: bool = True) -> str:
        """A table of the plan rows: kind, output shape, parameters; then the totals.

        Examples
        --------
        >>> from tweenstream.models.dense import Dense
        >>> print(Network(8, [Dense(32, "tanh"), Dense(4)]).summary(show=False))
        row  layer                       output shape    params
          0  dense (tanh)                (32,)              288
          1  dense (linear)              (4,)               132
        total parameters 420, arena 10,408 bytes, task classification
        """
        lines = [f"{'row':>3}  {'layer':<26}  {'output shape':<14} {'params':>7}"]
        for i, (spec, in_shape, out_shape) in enumerate(self.rows):
            kind = kind_of(spec)
            act = getattr(spec, "activation", None)
            label = f"{kind.name} ({act})" if act else kind.name
            params = sum(int(np.prod(s)) for _, s in kind.param_shapes(spec, in_shape))
            lines.append(f"{i:>3}  {label:<26}  {out_shape!s:<14} {params:>7,}")
        lines.append(f"total parameters {self.param_count:,}, arena {self.arena_bytes():,} "
                     f"bytes, task {self.task}")
        text = "\n".join(lines)
        if show:
            print(text)
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description; ``Network.from_dict`` inverts it.

        Examples
        --------
        >>> from tweenstream.models.dense import Dense
        >>> Network.from_dict(Network(3, [Dense(2)]).to_dict()) == Network(3, [Dense(2)])
        True
        """
        return {
            "input_shape": list(self.input_shape),
            "task": self.task,
            "layers": [_spec_dict(s) for s in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        """Rebuild a network from ``to_dict`` output, with precise errors for bad input."""
        if not isinstance(data, dict) or not {"input_shape", "task", "layers"} <= set(data):
            raise ValueError("network description must be a dict with input_shape, task, layers")
        specs = [_spec_from_dict(entry, str(i)) for i, entry in enumerate(data["layers"])]
        return cls(tuple(data["input_shape"]), specs, task=data["task"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (self.input_shape, self.layers, self.task) == (
            other.input_shape, other.layers, other.task)

    def __hash__(self) -> int:
        return hash((self.input_shape, self.layers, self.task))

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.layers)
        dim = self.input_shape[0] if len(self.input_shape) == 1 else self.input_shape
        return f"Network({dim}, [{inner}], task={self.task!r})"


def _input_shape(input_dim: int | Sequence[int]) -> Shape:
    if isinstance(input_dim, (bool, np.bool_)):
        raise TypeError("input_dim must be an int or a tuple of ints, found bool")
    if isinstance(input_dim, (int, np.integer)):
        dims: tuple[Any, ...] = (input_dim,)
    elif isinstance(input_dim, Sequence) and not isinstance(input_dim, (str, bytes)):
        dims = tuple(input_dim)
    else:
        raise TypeError("input_dim must be an int or a tuple of ints, "
                        f"found {type(input_dim).__name__}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"input_dim must be positive ints, found {input_dim!r}")
    if not dims:
        raise ValueError("input_dim must have at least one dimension")
    return tuple(int(d) for d in dims)


def _add_layer(spec: Any, shape: Shape, where: str, rows: list[tuple[Any, Shape, Shape]],
               first: bool, last: bool) -> Shape:
    """Validate one layer (a Residual recursively) and append its plan rows; returns its output
    shape."""
    try:
        kind = kind_of(spec)
    except TypeError as err:
        raise TypeError(f"layer {where}: {err}") from None
    if isinstance(spec, Residual):
        rows.append((ResidualBegin(), shape, shape))
        inner = shape
        for j, sub in enumerate(spec.layers):
            inner = _add_layer(sub, inner, f"{where}.{j}", rows, False, False)
        if inner != shape:
            raise ValueError(f"layer {where} (residual): the inner layers turn {shape} into "
                             f"{inner}; they must keep the shape so that x + f(x) is defined")
        rows.append((ResidualEnd(), shape, shape))
        return shape
    if kind.name in ("residual_begin", "residual_end"):
        raise TypeError(f"layer {where}: {kind.spec_type.__name__} is internal; use Residual")
    try:
        out = kind.output_shape(spec, shape)
    except ValueError as err:
        raise ValueError(f"layer {where} ({kind.name}): {err}") from None
    if kind.name == "embedding" and not first:
        raise ValueError(f"layer {where}: an Embedding reads token ids, so it must be the "
                         "first layer")
    if getattr(spec, "activation", None) == "softmax" and not last:
        raise ValueError(f"layer {where}: softmax is allowed only on the output layer of a "
                         "classifier; use another activation for hidden layers")
    rows.append((spec, shape, out))
    return out


def _spec_dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, Residual):
        return {"kind": "residual", "layers": [_spec_dict(s) for s in spec.layers]}
    return {"kind": kind_of(spec).name, **asdict(spec)}


def _spec_from_dict(entry: Any, where: str) -> Any:
    if not isinstance(entry, dict) or "kind" not in entry:
        raise ValueError(f"layer {where}: description must be a dict with a 'kind'")
    kind = kind_named(entry["kind"])
    args = {k: v for k, v in entry.items() if k != "kind"}
    if kind.spec_type is Residual:
        inner = args.get("layers")
        if not isinstance(inner, list):
            raise ValueError(f"layer {where} (residual): needs a list of 'layers'")
        return Residual([_spec_from_dict(e, f"{where}.{j}") for j, e in enumerate(inner)])
    names = {f.name for f in fields(kind.spec_type)}
    unknown = set(args) - names
    if unknown:
        raise ValueError(f"layer {where} ({kind.name}): unknown fields {sorted(unknown)}")
    return kind.spec_type(**args)
