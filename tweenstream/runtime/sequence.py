"""Compiled RepeatVector kernels (TimeDense runs on the convolution's kernels, runtime/conv.py).

Shapes: v (d,) at the input slot, a (steps, d) at the output slot, step after step; the row
stores ``steps`` (``models/sequence.py``). No parameters.
"""

import numpy as np

from tweenstream.models.sequence import REPEAT_VECTOR
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import C_IN, C_NIN, C_OUT, W_ACT, W_DELTA, W_DZ, W_PRE, W_TGT, dim
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.unmanaged import copy_into

_STEPS = dim(REPEAT_VECTOR, "steps")


@kernel
def repeat_forward(row, pbuf, work):
    """a_t = v (and z_t = v) for every step t."""
    d, xi, oo, steps = row[C_NIN], row[C_IN], row[C_OUT], row[_STEPS]
    for t in range(steps):
        o = oo + t * d
        copy_into(work[W_ACT, o:o + d], work[W_ACT, xi:xi + d])
        copy_into(work[W_PRE, o:o + d], work[W_ACT, xi:xi + d])


@kernel
def repeat_signal(row, pbuf, work, need_input):
    """dz = g; g_in = the sum of g over the steps."""
    d, xi, oo, steps = row[C_NIN], row[C_IN], row[C_OUT], row[_STEPS]
    copy_into(work[W_DZ, oo:oo + steps * d], work[W_DELTA, oo:oo + steps * d])
    if need_input:
        gin = work[W_DELTA, xi:xi + d]
        gin[:] = np.float32(0.0)
        for t in range(steps):
            for j in range(d):
                gin[j] += work[W_DELTA, oo + t * d + j]


@kernel
def repeat_project_target(row, pbuf, work, lo, hi):
    """Heuristic target of the input: the mean of the steps' targets (steps without one, NaN,
    do not vote), clamped to [lo, hi]; NaN where no step has a target. ``work[W_DZ]`` at the
    input slot is scratch (the vote counts)."""
    d, xi, oo, steps = row[C_NIN], row[C_IN], row[C_OUT], row[_STEPS]
    num = work[W_TGT, xi:xi + d]
    count = work[W_DZ, xi:xi + d]
    num[:] = np.float32(0.0)
    count[:] = np.float32(0.0)
    for t in range(steps):
        for j in range(d):
            v = work[W_TGT, oo + t * d + j]
            if v == v:
                num[j] += v
                count[j] += np.float32(1.0)
    for j in range(d):
        if count[j] == np.float32(0.0):
            num[j] = np.float32(np.nan)
        else:
            num[j] = min(max(num[j] / count[j], lo), hi)


REPEAT_KERNELS = Kernels(repeat_forward, repeat_signal, None, repeat_project_target)
