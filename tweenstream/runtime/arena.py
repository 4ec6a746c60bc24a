"""The Arena: every buffer a learner needs, allocated once from its Plan.

Nothing on the per-sample path allocates: the interpreter only reads and writes these arrays.
Layer parameters are views into ``pbuf[P_PARAM]``.
"""

from __future__ import annotations

import numpy as np

from tweenstream.models.registry import kind_of
from tweenstream.runtime.layout import (
    D_BUDGET,
    D_NORM2,
    N_SWITCHED_AT,
    NDROW,
    NFST,
    NIST,
    NPROW,
    NWROW,
    P_PARAM,
    P_SHADOW,
    S_NORM2,
    S_RATE,
    S_SHADOW_LOSS,
    S_SHADOW_NORM2,
    S_WIN_BEST,
)
from tweenstream.runtime.plan import Plan
from tweenstream.runtime.update import layer_norms, reset_optimizer


class Arena:
    """Preallocated float32/float64/int64 buffers for one learner.

    Examples
    --------
    >>> from tweenstream.models import Dense, Network
    >>> from tweenstream.runtime.plan import compile_plan
    >>> arena = Arena(compile_plan(Network(8, [Dense(32, "tanh"), Dense(4)])))
    >>> arena.pbuf.shape, arena.work.shape, arena.nbytes
    ((5, 420), (6, 48), 10408)
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.pbuf = np.zeros((NPROW, plan.n_params), dtype=np.float32)
        self.work = np.zeros((NWROW, plan.n_slots), dtype=np.float32)
        self.diag = np.zeros((NDROW, plan.n_layers), dtype=np.float64)
        self.fst = np.zeros(NFST, dtype=np.float64)
        self.ist = np.zeros(NIST, dtype=np.int64)
        self.reset_state()

    def reset_state(self) -> None:
        """Zero every counter and buffer except the parameters (and their shadow)."""
        reset_optimizer(self.pbuf, self.ist)
        self.work[:] = 0.0
        self.diag[:] = 0.0
        self.diag[D_BUDGET] = 0.5
        self.fst[:] = 0.0
        self.ist[:] = 0
        self.fst[S_RATE] = 1.0
        self.fst[S_WIN_BEST] = -np.inf
        self.ist[N_SWITCHED_AT] = -1

    def initialise(self, rng: np.random.Generator) -> None:
        """Draw every layer's parameters from its kind's seeded initialiser."""
        net = self.plan.network
        views = iter(self.plan.views)
        for spec, in_shape, _ in net.rows:
            for value in kind_of(spec).init(spec, in_shape, rng):
                view = next(views)
                self.pbuf[P_PARAM, view.offset:view.offset + view.size] = value.ravel()
        self.pbuf[P_SHADOW] = self.pbuf[P_PARAM]
        layer_norms(self.plan.table, self.pbuf, self.diag)
        self.fst[S_NORM2] = self.fst[S_SHADOW_NORM2] = self.diag[D_NORM2].sum()
        self.fst[S_SHADOW_LOSS] = np.inf  # no loss measured yet

    @property
    def params(self) -> np.ndarray:
        """The flat float32 parameter vector (a view)."""
        return self.pbuf[P_PARAM]

    def layer_params(self, layer: int) -> dict[str, np.ndarray]:
        """Named views of one layer's parameters, shaped as the kind declares them."""
        return {v.name: self.params[v.offset:v.offset + v.size].reshape(v.shape)
                for v in self.plan.views if v.layer == layer}

    @property
    def nbytes(self) -> int:
        """Total bytes of every buffer."""
        return sum(a.nbytes for a in (self.pbuf, self.work, self.diag, self.fst, self.ist))
