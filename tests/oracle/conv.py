"""Plain-NumPy convolution and pooling, float64, channels last, written with explicit loops.

conv: x (H, W, C), K (F, kh, kw, C), b (F,), zero padding (pt, pl) before, stride s.
"""

from __future__ import annotations

import numpy as np


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
