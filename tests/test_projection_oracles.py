"""Heuristic target projection (``tween-heuristic``, TWEENING.md "Targets") of every kind against
plain-NumPy float64 oracles (tests/oracle/*.project_target, dense.project_through).

The rule: going down through a layer with weights W (out x in), the target of its input is
t_in[j] = sum_o W[o,j] t[o] / sum_o |W[o,j]| over the output units o that have a target (NaN
marks none); where that denominator is <= 0.01 the input has no target (NaN: it keeps its own
activation); the result is clamped to [lo, hi], the producing layer's range. RNN/LSTM project
through their input weights (the LSTM's four gates summed), Conv through its (transposed)
convolution, SwiGLU through W_d then W_u and attention through W_o then W_v (the intermediate
target is not clamped). Shape-preserving kinds pass the target through (clamped); kinds with
neither keep the activation (NaN everywhere).

Each case builds a small network, a seeded Arena, fills every work row with noise, writes random
output targets (some NaN), calls the compiled kernel on the layer's plan row and compares the
target at the input slot with the oracle. Offsets come from the named plan columns; kind
geometry comes from the layer spec and shapes, never from decoding kind-specific row integers.
The kernels must not touch the parameters, the W_ACT/W_PRE/W_DELTA rows, or any target outside
the input slot (the W_DZ row is their scratch).

Tolerances: the kernels sum in float32; each target is a weighted mean of output targets of
size <= 2, so rtol 1e-4 / atol 1e-5 is ~100x the float32 error seen. Denominators within 0.1%
of the 0.01 threshold are avoided (asserted), since float32 rounding may put them either side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from kinds import EXAMPLES
from oracle import attention as ref_attention
from oracle import conv as ref_conv
from oracle import dense as ref_dense
from oracle import lstm as ref_lstm
from oracle import rnn as ref_rnn
from oracle import sequence as ref_sequence
from oracle import swiglu as ref_swiglu
from oracle.dense import TARGET_RANGE

from tweenstream import Dense, Network
from tweenstream.models import (
    LSTM,
    RNN,
    Conv1D,
    Conv2D,
    Flatten,
    MultiHeadAttention,
    RepeatVector,
    SwiGLU,
    TimeDense,
)
from tweenstream.models.registry import kind_of, kinds
from tweenstream.runtime import layout
from tweenstream.runtime.arena import Arena
from tweenstream.runtime.attention import attention_project_target
from tweenstream.runtime.conv import conv_project_target
from tweenstream.runtime.dense import dense_project_target
from tweenstream.runtime.lstm import lstm_project_target
from tweenstream.runtime.plan import compile_plan
from tweenstream.runtime.rnn import rnn_project_target
from tweenstream.runtime.sequence import repeat_project_target
from tweenstream.runtime.swiglu import swiglu_project_target
from tweenstream.runtime.targets import keep_target, pass_target, project_target

RTOL, ATOL = 1e-4, 1e-5
THRESHOLD = 0.01  # denominators <= this give no target
SAFE_MARGIN = 1e-3  # relative distance from THRESHOLD every oracle denominator must keep
TARGET_SCALE = 2.0  # output targets ~ U(-2, 2): wide enough to hit the tanh/sigmoid/relu clamps
MISSING = 0.3  # fraction of output targets that are NaN in the "random" variant
SEEDS = (0, 1)
F32 = np.float32


def _bounds(act: str) -> tuple[np.float32, np.float32]:
    """Clamp range of a producing activation as the interpreter passes it (float32, finite)."""
    lo, hi = TARGET_RANGE[act]
    return F32(max(lo, -3.0e38)), F32(min(hi, 3.0e38))


# --- per-kind kernels and oracles ----------------------------------------------------------
Oracle = Callable[[Any, tuple, tuple, dict, np.ndarray, float, float], tuple]


def _conv_geometry(spec: Conv2D, in_shape: tuple) -> tuple[tuple, int, int, int, int, int]:
    """((H, W, C), stride, pad_top, pad_left, Ho, Wo) from the spec (models/conv.py docstring:
    "same" gives ceil(H / stride) with the padding split top/left-first, "valid" none). Conv1D
    is a Conv2D of height 1 with a (1, k) kernel."""
    if isinstance(spec, Conv1D):
        (W, C), H, kh = in_shape, 1, 1
    else:
        (H, W, C), kh = in_shape, spec.kernel
    kw, s = spec.kernel, spec.stride
    if spec.padding == "same":
        Ho, Wo = -(-H // s), -(-W // s)
        pt = max((Ho - 1) * s + kh - H, 0) // 2
        pl = max((Wo - 1) * s + kw - W, 0) // 2
    else:
        Ho, Wo, pt, pl = (H - kh) // s + 1, (W - kw) // s + 1, 0, 0
    return (H, W, C), s, pt, pl, Ho, Wo


def _dense_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    return ref_dense.project_through(P["W"], t, lo, hi)


def _rnn_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    T, H = in_shape[0], spec.units
    tau = t.reshape(T, H) if spec.return_sequences else t
    return ref_rnn.project_target(P["W_x"], tau, T, lo, hi)


def _lstm_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    T, H = in_shape[0], spec.units
    tau = t.reshape(T, H) if spec.return_sequences else t
    return ref_lstm.project_target(P["W"], tau, T, lo, hi)


def _conv_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    x_shape, s, pt, pl, Ho, Wo = _conv_geometry(spec, in_shape)
    assert Ho * Wo * spec.filters == t.size, "geometry disagrees with the layer's output shape"
    return ref_conv.project_target(P["W"], t.reshape(Ho, Wo, spec.filters), x_shape, s, pt, pl,
                                   lo, hi)


def _swiglu_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    return ref_swiglu.project_target(P["W_u"], P["W_d"], t.reshape(-1, out_shape[-1]), lo, hi)


def _attention_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    return ref_attention.project_target(P["W_v"], P["W_o"], t.reshape(in_shape), lo, hi)


def _time_dense_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    return ref_sequence.time_dense_project_target(P["W"], t.reshape(out_shape), lo, hi)


def _repeat_oracle(spec, in_shape, out_shape, P, t, lo, hi):
    return ref_sequence.repeat_project_target(t.reshape(out_shape), lo, hi)


#: kind -> (compiled kernel, oracle, [(parameter, axis of its input units)] with the tensor the
#: final projection step goes through first)
PROJECTIONS: dict[str, tuple[Any, Oracle, list[tuple[str, int]]]] = {
    "dense": (dense_project_target, _dense_oracle, [("W", 1)]),
    "rnn": (rnn_project_target, _rnn_oracle, [("W_x", 1)]),
    "lstm": (lstm_project_target, _lstm_oracle, [("W", 1)]),
    "conv2d": (conv_project_target, _conv_oracle, [("W", 3)]),
    "conv1d": (conv_project_target, _conv_oracle, [("W", 3)]),
    "swiglu": (swiglu_project_target, _swiglu_oracle, [("W_u", 1), ("W_d", 1)]),
    "attention": (attention_project_target, _attention_oracle, [("W_v", 1), ("W_o", 1)]),
    "time_dense": (conv_project_target, _time_dense_oracle, [("W", 1)]),
    "repeat_vector": (repeat_project_target, _repeat_oracle, []),  # no weights: a mean of steps
}

# Shapes beyond tests/kinds.py: last-state recurrences, asymmetric "same" padding with stride,
# "valid" Conv1D, several SwiGLU rows, causal attention with 3 heads.
EXTRA = {
    "dense-12-9": Network(12, [Dense(9, "relu"), Dense(4)]),
    "rnn-last": Network((5, 3), [RNN(4), Dense(3)]),
    "lstm-seq": Network((4, 5), [LSTM(3, return_sequences=True), Flatten(), Dense(3)]),
    "conv2d-stride-same": Network((7, 6, 1), [Conv2D(2, 3, stride=2, padding="same",
                                                     activation="sigmoid"), Flatten(), Dense(3)]),
    "conv1d-valid": Network((8, 3), [Conv1D(2, 4), Flatten(), Dense(3)]),
    "swiglu-rows": Network((3, 5), [SwiGLU(4, out=2), Flatten(), Dense(3)]),
    "attention-causal": Network((4, 6), [MultiHeadAttention(3, causal=True), Flatten(),
                                         Dense(3)]),
    "time_dense-wide": Network((3, 7), [TimeDense(4, "sigmoid"), Flatten(), Dense(3)]),
    "repeat_vector-long": Network(5, [Dense(4), RepeatVector(6), Flatten(), Dense(3)]),
}


NETWORKS = {**{f"example-{k}": v for k, v in EXAMPLES.items()}, **EXTRA}


def _rows_by_rule() -> dict[str, list[tuple[str, str, int]]]:
    """(case id, network name, row index) of every plan row of NETWORKS, grouped by the kind's
    heuristic rule: "project", "pass" or "keep"."""
    found: dict[str, list[tuple[str, str, int]]] = {"project": [], "pass": [], "keep": []}
    seen: set[str] = set()
    for name, net in NETWORKS.items():
        same = f"{net.input_shape} {net.layers!r}"  # kinds may share one example network
        if same in seen:
            continue
        seen.add(same)
        for i, (spec, _, _) in enumerate(net.rows):
            kind = kind_of(spec)
            found[kind.heuristic].append((f"{name}-{i}-{kind.name}", name, i))
    return found


ROWS = _rows_by_rule()
#: the projecting rows of the networks built for their kind ("example-rnn" or "rnn-last" for
#: the RNN row, not for the Dense head every network ends with)
PROJECT_CASES = [c for c in ROWS["project"]
                 if (kind := kind_of(NETWORKS[c[1]].rows[c[2]][0]).name) in PROJECTIONS
                 and c[1].removeprefix("example-").split("-")[0] == kind]
#: the cases whose projection divides by summed weights (RepeatVector's averages the steps)
WEIGHTED_CASES = [c for c in PROJECT_CASES
                  if PROJECTIONS[kind_of(NETWORKS[c[1]].rows[c[2]][0]).name][2]]
WEIGHTED_IDS = [c[0] for c in WEIGHTED_CASES]


# --- setup and checks ----------------------------------------------------------------------
class Layer:
    """One plan row of a seeded arena whose work rows hold noise."""

    def __init__(self, net_name: str, index: int, seed: int) -> None:
        net = NETWORKS[net_name]
        self.spec, self.in_shape, self.out_shape = net.rows[index]
        self.kind = kind_of(self.spec).name
        self.arena = Arena(compile_plan(net))
        rng = np.random.default_rng(seed)
        self.arena.initialise(rng)
        self.rng = rng
        self.row = self.arena.plan.table[index]
        self.index = index
        self.xi, self.n_in = int(self.row[layout.C_IN]), int(self.row[layout.C_NIN])
        self.oo, self.n_out = int(self.row[layout.C_OUT]), int(self.row[layout.C_NOUT])
        assert self.n_in == int(np.prod(self.in_shape))
        assert self.n_out == int(np.prod(self.out_shape))
        # noise everywhere: the kernels must neither rely on zeroed scratch nor read activations
        work = self.arena.work
        work[:] = rng.standard_normal(work.shape).astype(np.float32)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Writable float32 views of the layer's parameters."""
        return self.arena.layer_params(self.index)

    def set_targets(self, missing: float) -> np.ndarray:
        """Random output targets U(-TARGET_SCALE, TARGET_SCALE), a ``missing`` fraction NaN."""
        t = self.rng.uniform(-TARGET_SCALE, TARGET_SCALE, self.n_out).astype(np.float32)
        t[self.rng.random(self.n_out) < missing] = np.nan
        self.arena.work[layout.W_TGT, self.oo:self.oo + self.n_out] = t
        return t

    def oracle(self, lo: float | np.floating, hi: float | np.floating
               ) -> tuple[np.ndarray, np.ndarray]:
        """(ref target of the input, ref final denominator), both flat, float64."""
        P = {k: v.astype(np.float64) for k, v in self.params.items()}
        t = self.arena.work[layout.W_TGT, self.oo:self.oo + self.n_out].astype(np.float64)
        ref_t, ref_den = PROJECTIONS[self.kind][1](self.spec, self.in_shape, self.out_shape,
                                                    P, t, float(lo), float(hi))
        return np.ravel(ref_t), np.ravel(ref_den)

    def project(self, lo: np.float32, hi: np.float32) -> np.ndarray:
        """Run the kind's compiled projection; returns a copy of the input slot's target and
        checks that nothing outside the kernel's outputs and scratch changed."""
        before_work, before_pbuf = self.arena.work.copy(), self.arena.pbuf.copy()
        PROJECTIONS[self.kind][0](self.row, self.arena.pbuf, self.arena.work, lo, hi)
        _assert_only_input_target_changed(before_work, self.arena.work, self.xi, self.n_in)
        np.testing.assert_array_equal(self.arena.pbuf, before_pbuf, err_msg="parameters")
        return self.arena.work[layout.W_TGT, self.xi:self.xi + self.n_in].copy()


def _assert_only_input_target_changed(before: np.ndarray, after: np.ndarray, xi: int,
                                      n_in: int) -> None:
    for r, name in ((layout.W_ACT, "W_ACT"), (layout.W_PRE, "W_PRE"),
                    (layout.W_DELTA, "W_DELTA")):
        np.testing.assert_array_equal(after[r], before[r], err_msg=f"row {name} changed")
    outside = np.ones(after.shape[1], bool)
    outside[xi:xi + n_in] = False
    np.testing.assert_array_equal(after[layout.W_TGT, outside], before[layout.W_TGT, outside],
                                  err_msg="a target outside the input slot changed")


def _assert_targets(comp_t: np.ndarray, ref_t: np.ndarray, what: str) -> None:
    np.testing.assert_array_equal(np.isnan(comp_t), np.isnan(ref_t),
                                  err_msg=f"{what}: which inputs have no target (NaN)")
    np.testing.assert_allclose(comp_t, ref_t, rtol=RTOL, atol=ATOL, err_msg=what)


def _assert_well_posed(ref_den: np.ndarray) -> None:
    """No denominator so close to the threshold that float32 rounding could flip it."""
    near = np.abs(ref_den / THRESHOLD - 1.0) < SAFE_MARGIN
    assert not near.any(), f"denominators {ref_den[near]} are within float32 reach of 0.01"


def _scale_to_sum(view: np.ndarray, axis: int, index: int, total: float) -> None:
    """Rescale one input unit's slice of a weight tensor so that its summed |w| is ``total``
    (every denominator of that unit is then <= total)."""
    sl = np.take(view, index, axis=axis)
    size = float(np.abs(sl).sum())
    idx: list[int | slice] = [slice(None)] * view.ndim
    idx[axis] = index
    view[tuple(idx)] = sl * F32(total / size) if size > 0 else sl


# --- the compiled per-kind projections -----------------------------------------------------
@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid", "relu", "tight"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case, net_name, index", PROJECT_CASES, ids=[c[0] for c in PROJECT_CASES])
def test_projection_matches_oracle(case, net_name, index, seed, act):
    """Random weights and targets (30% missing), clamped to the producing activation's range;
    "tight" clamps to 30% / 70% of the span of the unclamped targets, so both bounds are hit."""
    layer = Layer(net_name, index, seed)
    layer.set_targets(MISSING)
    if act == "tight":
        for _ in range(20):  # targets whose span float32 can split in three (not all equal)
            free, _ = layer.oracle(-np.inf, np.inf)
            low, high = np.nanmin(free), np.nanmax(free)
            lo, hi = F32(low + 0.3 * (high - low)), F32(low + 0.7 * (high - low))
            if F32(low) < lo < hi < F32(high):
                break
            layer.set_targets(MISSING)
        assert F32(low) < lo < hi < F32(high)  # both bounds inside the span, in float32
    else:
        lo, hi = _bounds(act)
    ref_t, ref_den = layer.oracle(lo, hi)
    _assert_well_posed(ref_den)
    _assert_targets(layer.project(lo, hi), ref_t, case)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case, net_name, index", PROJECT_CASES, ids=[c[0] for c in PROJECT_CASES])
def test_projection_every_target_present(case, net_name, index, seed):
    layer = Layer(net_name, index, seed)
    layer.set_targets(0.0)
    lo, hi = _bounds("tanh")
    ref_t, ref_den = layer.oracle(lo, hi)
    _assert_well_posed(ref_den)
    _assert_targets(layer.project(lo, hi), ref_t, case)


@pytest.mark.parametrize("case, net_name, index", PROJECT_CASES, ids=[c[0] for c in PROJECT_CASES])
def test_projection_without_any_target_gives_none(case, net_name, index):
    """No output target at all: no input target (every input keeps its activation)."""
    layer = Layer(net_name, index, 0)
    layer.set_targets(1.0)
    comp_t = layer.project(*_bounds("tanh"))
    assert np.isnan(comp_t).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case, net_name, index", WEIGHTED_CASES, ids=WEIGHTED_IDS)
def test_projection_weak_units_have_no_target(case, net_name, index, seed):
    """Small denominators: input unit 0 of the last projection step disconnected (0/0), unit 1
    with summed |w| = 0.009 (<= 0.01 whichever outputs vote); for SwiGLU / attention also two
    hidden units, which then must not vote in the next step."""
    layer = Layer(net_name, index, seed)
    layer.set_targets(MISSING)
    params = layer.params
    for name, axis in PROJECTIONS[layer.kind][2]:
        view = params[name]
        _scale_to_sum(view, axis, 0, 0.0)
        if view.shape[axis] > 1:
            _scale_to_sum(view, axis, 1, 0.009)
    lo, hi = _bounds("linear")
    ref_t, ref_den = layer.oracle(lo, hi)
    _assert_well_posed(ref_den[ref_den > 0])
    comp_t = layer.project(lo, hi)
    by_feature = comp_t.reshape(layer.in_shape)  # input units are the last axis in every kind
    assert np.isnan(by_feature[..., :2]).all(), "weakly connected inputs got a target"
    _assert_targets(comp_t, ref_t, case)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case, net_name, index", WEIGHTED_CASES, ids=WEIGHTED_IDS)
def test_projection_threshold_splits_the_inputs(case, net_name, index, seed):
    """Last-step weights scaled so that 0.01 falls mid-way through the denominators (in the
    widest gap between two of them): inputs just below get no target, just above do."""
    layer = Layer(net_name, index, seed)
    layer.set_targets(MISSING)
    _, den = layer.oracle(-np.inf, np.inf)
    d = np.unique(den[den > 0])
    assert d.size >= 2, "too few inputs to straddle the threshold"
    i = int(np.argmax(d[1:] / d[:-1]))
    scale = THRESHOLD / np.sqrt(d[i] * d[i + 1])
    name, _ = PROJECTIONS[layer.kind][2][0]
    layer.params[name][...] *= F32(scale)
    lo, hi = _bounds("sigmoid")
    ref_t, ref_den = layer.oracle(lo, hi)
    _assert_well_posed(ref_den)
    assert np.isnan(ref_t).any() and not np.isnan(ref_t).all()
    _assert_targets(layer.project(lo, hi), ref_t, case)


# --- the shared helpers of runtime/targets.py ----------------------------------------------
@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_project_target_matches_oracle(seed, act):
    """``targets.project_target`` on bare arrays, with hand-set columns: 0 (0/0), voters'
    |w| summing to 0.009 (none) and 0.011 (a target), both with large non-voter weights that
    must not count; plus one column that only non-voters reach."""
    rng = np.random.default_rng(seed)
    n_out, n_in = 7, 9
    W = rng.uniform(-1, 1, (n_out, n_in)).astype(np.float32)
    t = rng.uniform(-TARGET_SCALE, TARGET_SCALE, n_out).astype(np.float32)
    t[[1, 4]] = np.nan
    vote = ~np.isnan(t)
    W[:, 0] = 0.0
    for j, total in ((1, 0.009), (2, 0.011)):
        W[vote, j] *= F32(total / np.abs(W[vote, j]).sum())
        W[~vote, j] = 5.0
    W[vote, 3] = 0.0
    num = rng.standard_normal(n_in).astype(np.float32)  # overwritten, not accumulated into
    den = rng.standard_normal(n_in).astype(np.float32)
    lo, hi = _bounds(act)
    W_before, t_before = W.copy(), t.copy()
    project_target(W, t, num, den, lo, hi)
    ref_t, ref_den = ref_dense.project_through(W.astype(np.float64), t.astype(np.float64),
                                               float(lo), float(hi))
    _assert_well_posed(ref_den[ref_den > 0])
    assert np.isnan(num[[0, 1, 3]]).all() and not np.isnan(num[2])
    _assert_targets(num, ref_t, "targets.project_target")
    np.testing.assert_array_equal(W, W_before)
    np.testing.assert_array_equal(t, t_before)
    # the existing network oracle says the same for the activations it knows
    old_t, old_has = ref_dense.project_target(W.astype(np.float64), t.astype(np.float64),
                                              vote, act)
    np.testing.assert_array_equal(old_has, ~np.isnan(ref_t))
    np.testing.assert_allclose(num, old_t, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("act", ["linear", "tanh", "sigmoid"])
@pytest.mark.parametrize("case, net_name, index", ROWS["pass"], ids=[c[0] for c in ROWS["pass"]])
def test_pass_target_matches_oracle(case, net_name, index, act):
    """Shape-preserving kinds: the output target, clamped; a missing target stays missing."""
    layer = Layer(net_name, index, 0)
    assert layer.n_in == layer.n_out
    t = layer.set_targets(MISSING).astype(np.float64)
    lo, hi = _bounds(act)
    before = layer.arena.work.copy()
    pass_target(layer.row, layer.arena.work, lo, hi)
    _assert_only_input_target_changed(before, layer.arena.work, layer.xi, layer.n_in)
    np.testing.assert_array_equal(layer.arena.work[layout.W_DZ], before[layout.W_DZ])
    comp_t = layer.arena.work[layout.W_TGT, layer.xi:layer.xi + layer.n_in]
    _assert_targets(comp_t, ref_dense.pass_target(t, float(lo), float(hi)), case)


@pytest.mark.parametrize("case, net_name, index", ROWS["keep"], ids=[c[0] for c in ROWS["keep"]])
def test_keep_target_marks_every_input(case, net_name, index):
    """Kinds without a projection: every input keeps its activation (NaN target)."""
    layer = Layer(net_name, index, 0)
    layer.set_targets(MISSING)
    before = layer.arena.work.copy()
    keep_target(layer.row, layer.arena.work)
    _assert_only_input_target_changed(before, layer.arena.work, layer.xi, layer.n_in)
    np.testing.assert_array_equal(layer.arena.work[layout.W_DZ], before[layout.W_DZ])
    comp_t = layer.arena.work[layout.W_TGT, layer.xi:layer.xi + layer.n_in]
    np.testing.assert_array_equal(comp_t, ref_dense.keep_target(layer.n_in))


def test_every_kind_rule_is_covered():
    """Every registered kind that becomes a plan row has its rule tested here: a projecting
    kind needs a kernel and an oracle above, and every kind needs a case."""
    tested = {kind_of(NETWORKS[n].rows[i][0]).name for rule in ROWS.values() for _, n, i in rule}
    for kind in kinds():
        if kind.name == "residual":  # compiles to residual_begin / residual_end rows
            continue
        if kind.heuristic == "project":
            assert kind.name in PROJECTIONS, f"{kind.name}: no projection oracle"
        assert kind.name in tested, f"{kind.name}: no network row in this suite"
