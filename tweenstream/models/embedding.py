"""Embedding: integer token ids to learned vectors. It must be a network's first layer.

Shapes: input ids (T,) given as numbers (exact integers, as float32 holds them up to 2**24);
table E (vocab, dim); output (T, dim). Ids that are not integers in [0, vocab) are refused at
the boundary; inside compiled code they give a non-finite output, which rejects the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.registry import LayerKind, Shape, register

MAX_VOCAB = 1 << 24  # float32 represents every integer below this exactly


@dataclass(frozen=True)
class Embedding:
    """Look up a ``dim``-vector for each of the input's token ids.

    Examples
    --------
    >>> Embedding(100, 8)
    Embedding(vocab=100, dim=8)
    """

    vocab: int
    dim: int

    def __post_init__(self) -> None:
        for name in ("vocab", "dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Embedding.{name} must be an int, found {type(value).__name__}")
            if value < 1:
                raise ValueError(f"Embedding.{name} must be >= 1, found {value}")
            object.__setattr__(self, name, int(value))
        if self.vocab > MAX_VOCAB:
            raise ValueError(f"Embedding.vocab must be <= {MAX_VOCAB} (ids travel as float32)")


def _output_shape(spec: Embedding, in_shape: Shape) -> Shape:
    if len(in_shape) != 1:
        raise ValueError(f"Embedding expects a flat sequence of ids (steps,), found {in_shape}")
    return (in_shape[0], spec.dim)


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import Dense, Embedding, Flatten, Network

    return Network(5, [Embedding(7, 3), Flatten(), Dense(3)])


EMBEDDING = register(LayerKind(
    name="embedding", spec_type=Embedding, op_code=11, type_rate=0.1,
    output_shape=_output_shape,
    param_shapes=lambda spec, s: [("E", (spec.vocab, spec.dim))],
    init=lambda spec, s, rng: [(rng.standard_normal((spec.vocab, spec.dim)) * 0.1)
                               .astype(np.float32)],
    plan_dims=lambda spec, s: {"steps": s[0], "vocab": spec.vocab, "dim": spec.dim},
    dims=("steps", "vocab", "dim"), segments=("grad",), params=("E",),
    scratch=lambda spec, s: {"grad": spec.vocab * spec.dim},
    heuristic="keep", kernels="tweenstream.runtime.embedding:EMBEDDING_KERNELS",
    converter="tweenstream.export.embedding:convert_embedding", oracle="embedding",
    example=_example,
))
