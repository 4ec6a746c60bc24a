"""Plain-NumPy multi-head self-attention, float64: forward and gradients.

x (T, d); Wq, Wk, Wv, Wo (d, d); bq, bk, bv, bo (d,).
"""

from __future__ import annotations

import numpy as np

from .dense import project_rows_twice


def forward(x, Wq, Wk, Wv, Wo, bq, bk, bv, bo, heads, causal):
    """(y (T, d), cache)."""
    T, d = x.shape
    dk = d // heads
    Q, K, V = x @ Wq.T + bq, x @ Wk.T + bk, x @ Wv.T + bv
    A = np.zeros((heads, T, T))
    C = np.zeros((T, d))
    mask = np.tril(np.ones((T, T), bool)) if causal else np.ones((T, T), bool)
    for h in range(heads):
        cols = slice(h * dk, (h + 1) * dk)
        S = np.where(mask, Q[:, cols] @ K[:, cols].T / np.sqrt(dk), -np.inf)
        E = np.exp(S - S.max(axis=1, keepdims=True))
        A[h] = E / E.sum(axis=1, keepdims=True)
        C[:, cols] = A[h] @ V[:, cols]
    return C @ Wo.T + bo, (Q, K, V, A, C)


def backward(x, cache, Wq, Wk, Wv, Wo, G, heads):
    """Gradients of sum(G * y): (dx, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo)."""
    Q, K, V, A, C = cache
    d = x.shape[1]
    dk = d // heads
    dC = G @ Wo
    dQ, dK, dV = np.zeros_like(Q), np.zeros_like(K), np.zeros_like(V)
    for h in range(heads):
        cols = slice(h * dk, (h + 1) * dk)
        dA = dC[:, cols] @ V[:, cols].T
        dV[:, cols] = A[h].T @ dC[:, cols]
        dS = A[h] * (dA - (A[h] * dA).sum(axis=1, keepdims=True)) / np.sqrt(dk)
        dQ[:, cols] = dS @ K[:, cols]
        dK[:, cols] = dS.T @ Q[:, cols]
    dx = dQ @ Wq + dK @ Wk + dV @ Wv
    return (dx, dQ.T @ x, dK.T @ x, dV.T @ x, G.T @ C, dQ.sum(0), dK.sum(0), dV.sum(0),
            G.sum(0))


def project_target(Wv, Wo, t_out, lo, hi):
    """Heuristic input target, per step: t_out (T, d) projected back through the output
    projection W_o to a target of the values (unclamped; units left without one do not vote),
    then through the value projection W_v, each step as for Dense. The attention weights and
    W_q, W_k take no part.

    Returns (t_in (T, d), den (T, d)), den being the last step's denominator.
    """
    return project_rows_twice(Wo, Wv, t_out, lo, hi)
