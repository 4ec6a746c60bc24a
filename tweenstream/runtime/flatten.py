"""Compiled Flatten kernels: the output is the input, in the same order."""

import numpy as np

from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import C_IN, C_NOUT, C_OUT, W_ACT, W_DELTA, W_DZ, W_PRE
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.unmanaged import copy_into


@kernel
def flatten_forward(row, pbuf, work):
    """a = x (and z = x)."""
    xi, oo, n = row[C_IN], row[C_OUT], row[C_NOUT]
    copy_into(work[W_ACT, oo:oo + n], work[W_ACT, xi:xi + n])
    copy_into(work[W_PRE, oo:oo + n], work[W_ACT, xi:xi + n])
@kernel
def flatten_signal(row, pbuf, work, need_input):
    """dz = g; g_in = g."""
    xi, oo, n = row[C_IN], row[C_OUT], row[C_NOUT]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        copy_into(work[W_DELTA, xi:xi + n], work[W_DELTA, oo:oo + n])
    return np.float64(0.0)


FLATTEN_KERNELS = Kernels(flatten_forward, flatten_signal)
