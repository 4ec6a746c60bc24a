"""Oracle of one Dense layer, float64, written the obvious way from docs/tweening.md.

Shapes: input x (n_in,), weights W (n_out, n_in), bias b (n_out,), pre-activation
z = W x + b (n_out,), output a = f(z) (n_out,), signal g = -dloss/da (n_out,),
target t (n_out,), local error e (n_out,), deltas dW (n_out, n_in) and db (n_out,).

Each activation's value and derivative sit side by side so the chain rule can be reviewed.
"""

from __future__ import annotations

import math

import numpy as np

LEAKY_SLOPE = 0.01
GELU_C = math.sqrt(2.0 / math.pi)
GELU_K = 0.044715

ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "sine")

# Target clamp [lo, hi] per activation, copied from the table in docs/tweening.md
# (a classifier's "softmax" output layer is linear).
TARGET_RANGE: dict[str, tuple[float, float]] = {
    "linear": (-np.inf, np.inf),
    "softmax": (-np.inf, np.inf),
    "relu": (0.0, 10.0),
    "leaky_relu": (-10.0, 10.0),
    "tanh": (-0.95, 0.95),
    "sigmoid": (0.05, 0.95),
    "gelu": (-np.inf, np.inf),
    "silu": (-np.inf, np.inf),
    "sine": (-1.0, 1.0),
}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh form never overflows, unlike 1 / (1 + exp(-z)) for very negative z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """f(z) for an activation name (``softmax`` on a layer means linear logits).

    Examples
    --------
    >>> activation("leaky_relu", np.array([-1.0, 2.0]))
    array([-0.01,  2.  ])
    """
    z = np.asarray(z, dtype=np.float64)
    if name in ("linear", "softmax"):
        return z.copy()
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "gelu":
        return 0.5 * z * (1.0 + np.tanh(GELU_C * (z + GELU_K * z**3)))
    if name == "silu":
        return z * _sigmoid(z)
    if name == "sine":
        return np.sin(z)
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """f'(z), taken from the pre-activation (relu'(0) = 0, leaky_relu'(0) = 0.01).

    Examples
    --------
    >>> activation_derivative("relu", np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.])
    """
    z = np.asarray(z, dtype=np.float64)
    if name in ("linear", "softmax"):
        return np.ones_like(z)
    if name == "relu":
        return np.where(z > 0, 1.0, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = _sigmoid(z)
        return s * (1.0 - s)
    if name == "gelu":
        th = np.tanh(GELU_C * (z + GELU_K * z**3))
        return 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th**2) * GELU_C * (1.0 + 3.0 * GELU_K * z**2)
    if name == "silu":
        s = _sigmoid(z)
        return s * (1.0 + z * (1.0 - s))
    if name == "sine":
        return np.cos(z)
    raise ValueError(f"unknown activation {name!r}")


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities of a logit vector (max subtracted for range only)."""
    e = np.exp(z - np.max(z))
    return e / e.sum()


def dense_forward(W: np.ndarray, b: np.ndarray, x: np.ndarray,
                  act: str) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activation z = W x + b and output a = f(z)."""
    z = W @ x + b
    return z, activation(act, z)


def dense_input_signal(W: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Signal for the layer below: g_in = W^T dz, with dz = g * f'(z)."""
    return W.T @ dz


def chain_target(a: np.ndarray, g: np.ndarray, act: str, scale: float) -> np.ndarray:
    """Chain-rule tween target t = clamp(a + s g, lo, hi) with the layer's own range."""
    lo, hi = TARGET_RANGE[act]
    return np.clip(a + scale * g, lo, hi)


def project_target(W: np.ndarray, t_out: np.ndarray, has_out: np.ndarray,
                   act_in: str) -> tuple[np.ndarray, np.ndarray]:
    """Heuristic target of a layer's input from its output target (tween-heuristic step 2).

    Only output units that have a target vote. An input unit whose summed |W| over the voters
    is <= 0.01 gets no target (``has_in`` False; it keeps its activation later). The others are
    clamped to the range of ``act_in``, the activation of the layer that produces the input.
    """
    Wv = W[has_out]
    num = Wv.T @ t_out[has_out]
    den = np.abs(Wv).sum(axis=0)
    has_in = den > 0.01
    lo, hi = TARGET_RANGE[act_in]
    t_in = np.full(W.shape[1], np.nan)
    t_in[has_in] = np.clip(num[has_in] / den[has_in], lo, hi)
    return t_in, has_in


def gap_and_budget(a: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Gap mean((a - t)^2) and link budget (cos(a, t) + 1) / 2 (0.5 for near-zero vectors)."""
    gap = float(np.mean((a - t) ** 2))
    na, nt = float(a @ a), float(t @ t)
    if na < 1e-3 or nt < 1e-3:
        return gap, 0.5
    return gap, (float(a @ t) / math.sqrt(na * nt) + 1.0) / 2.0


def local_error(a: np.ndarray, t: np.ndarray, z: np.ndarray, act: str,
                use_derivative: bool = True) -> np.ndarray:
    """e = (t - a) * f'(z), minus the gradient of ½‖a - t‖² w.r.t. z (or t - a without f')."""
    if use_derivative:
        return (t - a) * activation_derivative(act, z)
    return t - a


def tween_deltas(e: np.ndarray, x: np.ndarray, rate_w: float, rate_b: float,
                 clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Clipped tween deltas: dW = clip(rate_w e x^T), db = clip(rate_b e)."""
    return (np.clip(rate_w * np.outer(e, x), -clip, clip),
            np.clip(rate_b * e, -clip, clip))


def backprop_grads(dz: np.ndarray, x: np.ndarray,
                   grad_clip: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Descent direction of the loss, -dloss/dW = dz x^T and -dloss/db = dz, clipped elementwise."""
    dW, db = np.outer(dz, x), dz.copy()
    if grad_clip is not None:
        dW, db = np.clip(dW, -grad_clip, grad_clip), np.clip(db, -grad_clip, grad_clip)
    return dW, db


def project_through(W: np.ndarray, t_out: np.ndarray, lo: float = -np.inf,
                    hi: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Weight-normalised projection of a target through W (n_out, n_in), with a [lo, hi] clamp.

    t_in[j] = sum_o W[o,j] t_out[o] / sum_o |W[o,j]| over the output units o that have a
    target (NaN in ``t_out`` means none). Where that denominator is <= 0.01, t_in[j] is NaN
    (the input keeps its own activation). Returns (t_in (n_in,), den (n_in,)).
    """
    has = ~np.isnan(t_out)
    num = W[has].T @ t_out[has]
    den = np.abs(W[has]).sum(axis=0)
    t_in = np.full(W.shape[1], np.nan)
    ok = den > 0.01
    t_in[ok] = np.clip(num[ok] / den[ok], lo, hi)
    return t_in, den


def pass_target(t_out: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Heuristic input target of a shape-preserving layer: the output target, clamped to
    [lo, hi]; a missing (NaN) target stays missing."""
    return np.clip(t_out, lo, hi)  # np.clip keeps NaN


def keep_target(n_in: int) -> np.ndarray:
    """Heuristic input target of a layer without a projection: none (NaN), so every input
    unit keeps its own activation."""
    return np.full(n_in, np.nan)


def project_rows_twice(W_out, W_in, t_rows, lo, hi):
    """Each row of ``t_rows`` projected through ``W_out`` (unclamped; units left without a
    target do not vote), then through ``W_in`` into [lo, hi]: SwiGLU's down-then-up and
    attention's output-then-value projections. Returns (targets, last denominators) per row."""
    rows = []
    for t in t_rows:
        tau, _ = project_through(W_out, t)
        rows.append(project_through(W_in, tau, lo, hi))
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
