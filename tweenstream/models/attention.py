"""MultiHeadAttention: scaled dot-product self-attention over a sequence ``(steps, d_model)``.

Shapes: input x (T, d); W_q, W_k, W_v, W_o (d, d) and b_q, b_k, b_v, b_o (d,); with
dk = d / heads, per head softmax(Q_h K_h^T / sqrt(dk)) V_h, the heads concatenated, then the
output projection; output (T, d). ``causal`` lets step i attend only to steps j <= i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.init import xavier_uniform
from tweenstream.models.registry import LayerKind, Shape, register


@dataclass(frozen=True)
class MultiHeadAttention:
    """Self-attention with ``heads`` heads; d_model is the input's last axis.

    Examples
    --------
    >>> MultiHeadAttention(2, causal=True)
    MultiHeadAttention(heads=2, causal=True)
    """

    heads: int = 1
    causal: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.heads, bool) or not isinstance(self.heads, (int, np.integer)):
            raise TypeError("MultiHeadAttention.heads must be an int, found "
                            f"{type(self.heads).__name__}")
        if self.heads < 1:
            raise ValueError(f"MultiHeadAttention.heads must be >= 1, found {self.heads}")
        if not isinstance(self.causal, bool):
            raise TypeError("MultiHeadAttention.causal must be True or False")
        object.__setattr__(self, "heads", int(self.heads))


def _check(spec: MultiHeadAttention, in_shape: Shape) -> tuple[int, int]:
    if len(in_shape) != 2:
        raise ValueError(f"MultiHeadAttention expects a sequence (steps, d_model), found shape "
                         f"{in_shape}")
    T, d = in_shape
    if d % spec.heads:
        raise ValueError(f"d_model {d} is not divisible by heads {spec.heads}")
    return T, d


def _param_shapes(spec: MultiHeadAttention, in_shape: Shape) -> list[tuple[str, Shape]]:
    _, d = _check(spec, in_shape)
    return [(f"W_{n}", (d, d)) for n in "qkvo"] + [(f"b_{n}", (d,)) for n in "qkvo"]


def _init(spec: MultiHeadAttention, in_shape: Shape, rng: np.random.Generator) -> list:
    _, d = _check(spec, in_shape)
    return [xavier_uniform(rng, d, d, (d, d)) for _ in range(4)] + \
        [np.zeros(d, np.float32) for _ in range(4)]


def _scratch(spec: MultiHeadAttention, in_shape: Shape) -> dict[str, int]:
    """Q, K, V; attention weights per head; context C; dC; dQ, dK, dV; dA; the gradients
    (weights then biases, laid out like the parameters)."""
    T, d = _check(spec, in_shape)
    return {"qkv": 3 * T * d, "weights": spec.heads * T * T, "context": T * d,
            "grad_context": T * d, "grad_qkv": 3 * T * d, "grad_weights": T * T,
            "grads": 4 * d * d + 4 * d}


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import Dense, Flatten, MultiHeadAttention, Network

    return Network((3, 4), [MultiHeadAttention(2), MultiHeadAttention(1, causal=True),
                            Flatten(), Dense(3)])


ATTENTION = register(LayerKind(
    name="attention", spec_type=MultiHeadAttention, op_code=13, type_rate=0.2,
    output_shape=lambda spec, s: _check(spec, s),
    param_shapes=_param_shapes, init=_init,
    plan_dims=lambda spec, s: dict(zip(("steps", "d"), _check(spec, s), strict=True),
                                   heads=spec.heads, causal=int(spec.causal)),
    dims=("steps", "d", "heads", "causal"), scratch=_scratch,
    segments=("qkv", "weights", "context", "grad_context", "grad_qkv", "grad_weights", "grads"),
    params=("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o"),
    kernels="tweenstream.runtime.attention:ATTENTION_KERNELS",
    converter="tweenstream.export.attention:convert_attention", oracle="attention",
    example=_example,
))
