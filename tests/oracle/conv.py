"""Plain-NumPy convolution and pooling, float64, channels last, written with explicit loops.

conv: x (H, W, C), K (F, kh, kw, C), b (F,), zero padding (pt, pl) before, stride s.
"""

from __future__ import annotations

import numpy as np

from .dense import project_through


def conv_forward(x, K, b, s, pt, pl, Ho, Wo):
    H, W, _ = x.shape
    F, kh, kw, _ = K.shape
    xp = np.zeros((H + kh + s * Ho, W + kw + s * Wo, x.shape[2]))
    xp[pt:pt + H, pl:pl + W] = x
    z = np.zeros((Ho, Wo, F))
    for oy in range(Ho):
        for ox in range(Wo):
            patch = xp[oy * s:oy * s + kh, ox * s:ox * s + kw]
            z[oy, ox] = (K * patch[None]).sum(axis=(1, 2, 3)) + b
    return z


def conv_backward(x, K, dz, s, pt, pl):
    """Gradients of sum(dz * z): (dx, dK, db)."""
    H, W, C = x.shape
    F, kh, kw, _ = K.shape
    Ho, Wo, _ = dz.shape
    xp = np.zeros((H + kh + s * Ho, W + kw + s * Wo, C))
    xp[pt:pt + H, pl:pl + W] = x
    dxp = np.zeros_like(xp)
    dK = np.zeros_like(K, dtype=float)
    for oy in range(Ho):
        for ox in range(Wo):
            patch = xp[oy * s:oy * s + kh, ox * s:ox * s + kw]
            for f in range(F):
                dK[f] += dz[oy, ox, f] * patch
                dxp[oy * s:oy * s + kh, ox * s:ox * s + kw] += dz[oy, ox, f] * K[f]
    return dxp[pt:pt + H, pl:pl + W], dK, dz.sum(axis=(0, 1))


def pool_forward(x, p, average):
    H, W, C = x.shape
    blocks = x[:H // p * p, :W // p * p].reshape(H // p, p, W // p, p, C)
    return blocks.mean(axis=(1, 3)) if average else blocks.max(axis=(1, 3))


def pool_backward(x, g, p, average):
    """Gradient of sum(g * pool(x)) with respect to x (the first maximum takes it all)."""
    dx = np.zeros_like(x, dtype=float)
    Ho, Wo, C = g.shape
    for oy in range(Ho):
        for ox in range(Wo):
            for c in range(C):
                window = x[oy * p:(oy + 1) * p, ox * p:(ox + 1) * p, c]
                if average:
                    dx[oy * p:(oy + 1) * p, ox * p:(ox + 1) * p, c] += g[oy, ox, c] / (p * p)
                else:
                    ky, kx = np.unravel_index(np.argmax(window), window.shape)
                    dx[oy * p + ky, ox * p + kx, c] += g[oy, ox, c]
    return dx


def conv_matrix(K, in_shape, s, pt, pl, Ho, Wo):
    """The convolution as a dense matrix M (Ho*Wo*F, H*W*C): z.ravel() = M @ x.ravel() (no
    bias), built column by column from the forward pass of each unit input."""
    n_in = int(np.prod(in_shape))
    M = np.zeros((Ho * Wo * K.shape[0], n_in))
    for j in range(n_in):
        e = np.zeros(n_in)
        e[j] = 1.0
        M[:, j] = conv_forward(e.reshape(in_shape), K, np.zeros(K.shape[0]), s, pt, pl,
                               Ho, Wo).ravel()
    return M


def project_target(K, t_out, in_shape, s, pt, pl, lo, hi):
    """Heuristic input target of a convolution: the output target t_out (Ho, Wo, F), NaN where
    missing, projected through the convolution's matrix as for Dense (weight-normalised,
    NaN where the summed |weight| of the voters is <= 0.01, clamped to [lo, hi]).

    Returns (t_in, den), both shaped ``in_shape``.
    """
    Ho, Wo, _ = t_out.shape
    M = conv_matrix(K, in_shape, s, pt, pl, Ho, Wo)
    t_in, den = project_through(M, t_out.ravel(), lo, hi)
    return t_in.reshape(in_shape), den.reshape(in_shape)
