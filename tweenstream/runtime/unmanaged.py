"""Unmanaged views: arrays that compiled code uses without reference counting.

Every array Numba handles carries a reference count, updated with atomic instructions each
time compiled code passes the array to a function it does not inline or takes a view of it.
On a small network those updates were more than half the time of a learning step (measured:
0.97 -> 0.41 us per sample on an 8-4 network, 2.6 -> 1.4 us on 8-32-32-4). The interpreter's
entry points therefore rebuild their buffers with ``unmanaged``: same memory, no reference
count. This is safe because the caller (Python) holds the arrays for the whole call, and no
compiled code keeps a view after it returns. These functions are for compiled code only: a view
returned to Python would not keep its memory alive. Non-contiguous arrays are refused (their
strides would be ignored).
"""

import numpy as np
from numba import carray, types
from numba.extending import intrinsic

from tweenstream.runtime.numba_config import inline


@intrinsic
def _void_pointer(typingctx, address):
    """The integer ``address`` as a ``void*`` (no ownership)."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return sig, codegen


@inline
def unmanaged_f32(a):
    """An unmanaged view of a C-contiguous float32 array (same shape, same memory)."""
    if not a.flags.c_contiguous:
        raise ValueError("unmanaged views need C-contiguous arrays")
    return carray(_void_pointer(a.ctypes.data), a.shape, np.float32)


@inline
def unmanaged_f64(a):
    """An unmanaged view of a C-contiguous float64 array."""
    if not a.flags.c_contiguous:
        raise ValueError("unmanaged views need C-contiguous arrays")
    return carray(_void_pointer(a.ctypes.data), a.shape, np.float64)


@inline
def unmanaged_i64(a):
    """An unmanaged view of a C-contiguous int64 array."""
    if not a.flags.c_contiguous:
        raise ValueError("unmanaged views need C-contiguous arrays")
    return carray(_void_pointer(a.ctypes.data), a.shape, np.int64)


@inline
def matrix_f32(flat, rows, cols):
    """The C-contiguous float32 vector ``flat`` (at least rows * cols long) as a (rows, cols)
    matrix, without ``reshape``: same memory, no reference count, no shape-error path to
    compile (that path alone took seconds of every cold start)."""
    return carray(_void_pointer(flat.ctypes.data), (rows, cols), np.float32)


@inline
def block3_f32(flat, a, b, c):
    """``flat`` as an (a, b, c) array, like ``matrix_f32``."""
    return carray(_void_pointer(flat.ctypes.data), (a, b, c), np.float32)


@inline
def block4_f32(flat, a, b, c, d):
    """``flat`` as an (a, b, c, d) array, like ``matrix_f32``."""
    return carray(_void_pointer(flat.ctypes.data), (a, b, c, d), np.float32)


@inline
def copy_into(dst, src):
    """dst[:] = src, as a loop: an array-to-array slice assignment brings Numba's shape-error
    path into the caller, seconds of compilation on every cold start."""
    for j in range(src.shape[0]):
        dst[j] = src[j]
