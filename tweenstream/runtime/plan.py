"""The plan compiler: a Network becomes an int64 table the interpreter walks.

One row per layer (``layout.C_*`` columns): op code, activation code, offsets of the layer's
input and output in the activation rows, sizes, parameter offset and count, and up to
``MAX_DIMS`` kind-specific integers (named by the kind's ``dims``). Offsets are laid out once:
the input slot first, then each layer's output, then a head slot for the probabilities (or
outputs) of the last layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tweenstream.models.activations import ACTIVATION_CODES, TARGET_RANGE
from tweenstream.models.network import Network
from tweenstream.models.registry import Shape, kind_of
from tweenstream.models.residual import RESIDUAL_BEGIN, RESIDUAL_END
from tweenstream.runtime.layout import (
    C_ACT,
    C_DIM,
    C_HEUR,
    C_IN,
    C_NIN,
    C_NOUT,
    C_NP,
    C_NS,
    C_OP,
    C_OUT,
    C_P,
    C_S,
    HEURISTIC_RULES,
    LT_DEPTH,
    LT_HI,
    LT_LO,
    LT_TYPE_RATE,
    NCOL,
    NLCOL,
    dim,
)


@dataclass(frozen=True)
class ParamView:
    """Where one parameter tensor of one layer lives in the flat parameter vector."""

    layer: int
    name: str
    offset: int
    shape: Shape

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Plan:
    """A compiled network: the interpreter's table plus the sizes of every buffer.

    Examples
    --------
    >>> from tweenstream.models import Dense, Network
    >>> plan = compile_plan(Network(8, [Dense(32, "tanh"), Dense(4)]))
    >>> plan.table.shape, plan.n_params, plan.n_slots
    ((2, 35), 420, 48)
    """

    network: Network
    table: np.ndarray
    n_params: int
    n_slots: int
    views: tuple[ParamView, ...]

    @property
    def n_layers(self) -> int:
        return int(self.table.shape[0])


def compile_plan(network: Network) -> Plan:
    """Lay out every buffer of ``network`` and return its Plan."""
    n_layers = len(network.rows)
    table = np.zeros((n_layers, NCOL), dtype=np.int64)
    views: list[ParamView] = []
    slot = network.n_inputs
    in_off, p_off = 0, 0
    opened: list[int] = []
    for i, (spec, in_shape, out_shape) in enumerate(
            network.rows):
        kind = kind_of(spec)
        n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
        row = table[i]
        start = p_off
        for name, shape in kind.param_list(spec, in_shape):
            views.append(ParamView(i, name, p_off, shape))
            row[dim(kind, name)] = p_off
            p_off += int(np.prod(shape))
        dims = kind.row_dims(spec, in_shape)
        row[C_OP] = kind.op_code
        row[C_ACT] = ACTIVATION_CODES[getattr(spec, "activation", "linear")]
        row[C_IN], row[C_NIN] = in_off, n_in
        row[C_OUT], row[C_NOUT] = slot, n_out
        row[C_P], row[C_NP] = start, p_off - start
        row[C_DIM:C_DIM + len(dims)] = dims
        row[C_HEUR] = HEURISTIC_RULES.index(kind.heuristic)
        in_off = slot
        slot += n_out
        row[C_S] = slot
        for name, size in zip(kind.segments, kind.scratch_sizes(spec, in_shape), strict=True):
            row[dim(kind, name)] = slot
            slot += size
        row[C_NS] = slot - row[C_S]
        if kind is RESIDUAL_BEGIN:
            opened.append(i)
        elif kind is RESIDUAL_END:  # each end knows its begin's output, and vice versa
            begin = opened.pop()
            row[dim(RESIDUAL_END, "other")] = table[begin, C_OUT]
            table[begin, dim(RESIDUAL_BEGIN, "other")] = row[C_OUT]
    slot += network.n_outputs  # head slot
    return Plan(network, table, p_off, slot, tuple(views))


def depth_scale(d: int, factor: float, cap: float) -> float:
    """Depth scale D for a layer d steps below the output (TWEENING.md, "Updates").

    Examples
    --------
    >>> depth_scale(0, 1.2, 100.0), round(depth_scale(2, 1.2, 100.0), 2)
    (1.0, 1.44)
    >>> round(depth_scale(40, 1.2, 100.0), 2)  # 10 + ln(31) steps: growth slows past 10
    11.58
    """
    if d <= 0:
        return 1.0
    dd = d if d <= 10 else 10 + math.log(d - 9)
    value = factor ** dd
    return cap if not math.isfinite(value) else min(value, cap)


def layer_table(plan: Plan, depth_factor: float, depth_cap: float) -> np.ndarray:
    """Per-layer float64 table: type rate, depth scale and target clamp range.

    Depth counts layers, not plan rows: the begin and end rows of a Residual are not layers.
    """
    n = plan.n_layers
    ltab = np.zeros((n, NLCOL), dtype=np.float64)
    kinds_ = [kind_of(spec).name for spec, _, _ in plan.network.rows]
    is_layer = [k not in ("residual_begin", "residual_end") for k in kinds_]
    for i, (spec, in_shape, _) in enumerate(plan.network.rows):
        lo, hi = TARGET_RANGE[getattr(spec, "activation", "linear")]
        ltab[i, LT_TYPE_RATE] = kind_of(spec).rate_of(spec, in_shape)
        below = sum(is_layer[i + 1:])  # layers between this row and the output
        ltab[i, LT_DEPTH] = depth_scale(below, depth_factor, depth_cap)
        ltab[i, LT_LO] = max(lo, -3.0e38)
        ltab[i, LT_HI] = min(hi, 3.0e38)
    return ltab
