"""Compiled Residual rows. The begin row copies x to its output (the inner stack's input); the
end row adds that copy to the inner output. Backward the end row passes g to the inner stack,
and the begin row, processed last, adds the end row's g (the skip path) to the inner stack's
signal. Row dims: the other row's output offset."""

from tweenstream.models.residual import RESIDUAL_BEGIN, RESIDUAL_END
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import C_IN, C_NOUT, C_OUT, W_ACT, W_DELTA, W_DZ, W_PRE, dim
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.unmanaged import copy_into

# row integers, by the names the kind declares
_BEGIN_OTHER = dim(RESIDUAL_BEGIN, "other")
_END_OTHER = dim(RESIDUAL_END, "other")


@kernel
def begin_forward(row, pbuf, work):
    xi, oo, n = row[C_IN], row[C_OUT], row[C_NOUT]
    copy_into(work[W_ACT, oo:oo + n], work[W_ACT, xi:xi + n])
    copy_into(work[W_PRE, oo:oo + n], work[W_ACT, xi:xi + n])
@kernel
def end_forward(row, pbuf, work):
    xi, oo, n, skip = row[C_IN], row[C_OUT], row[C_NOUT], row[_END_OTHER]
    for j in range(n):
        work[W_ACT, oo + j] = work[W_ACT, xi + j] + work[W_ACT, skip + j]
    copy_into(work[W_PRE, oo:oo + n], work[W_ACT, oo:oo + n])
@kernel
def begin_signal(row, pbuf, work, need_input):
    """g_in = g from the inner stack + g that reached the end row (the skip path)."""
    xi, oo, n, end = row[C_IN], row[C_OUT], row[C_NOUT], row[_BEGIN_OTHER]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        for j in range(n):
            work[W_DELTA, xi + j] = work[W_DELTA, oo + j] + work[W_DELTA, end + j]


@kernel
def end_signal(row, pbuf, work, need_input):
    """g of the inner output is g itself."""
    xi, oo, n = row[C_IN], row[C_OUT], row[C_NOUT]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        copy_into(work[W_DELTA, xi:xi + n], work[W_DELTA, oo:oo + n])
BEGIN_KERNELS = Kernels(begin_forward, begin_signal)
END_KERNELS = Kernels(end_forward, end_signal)
