"""Batched matrix products through cuBLAS itself, for CuPy arrays inside a CUDA graph capture.

CuPy refuses to call cuBLAS while a stream is capturing (its issue #6290); cuBLAS
itself supports capture.  :func:`matmul` runs ``a @ b`` as one
``cublasGemmStridedBatchedEx`` call on CuPy's cuBLAS handle, set to the current
stream, and :mod:`blconv._graphs` routes the products of a captured correlation here.

The operands are what :mod:`blconv.spectral` and :mod:`blconv._channels` multiply:
``a`` ``(*batch, m, k)`` and ``b`` ``(*batch, k, n)``, a batch missing or of size 1
on one side broadcast against the other, the last two axes of each row-major or a
transposed view of a row-major array (``matrix_transpose``): no copy is made for
either layout, the transpose is cuBLAS's ``op``.

cuBLAS is column-major: the row-major product ``C = A @ B`` is computed as the
column-major ``C^T = B^T @ A^T``, whose operands are ``B``'s and ``A``'s memory
as they lie.  :func:`plan` derives the arguments from shapes and element strides
alone (tested on the CPU against a model of the cuBLAS call); :func:`matmul` only
passes them on.
"""
from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GemmCall", "plan", "matmul"]

OP_N, OP_T = 0, 1                                          # cublasOperation_t
#: cudaDataType per NumPy dtype name.
DATA_TYPE = {"float32": 0, "float64": 1, "complex64": 4, "complex128": 5}
#: cublasComputeType_t: full-precision float32 and float64 accumulation, and float32
#: with TF32 tensor-core inputs.
COMPUTE_32F, COMPUTE_64F, COMPUTE_32F_FAST_TF32 = 68, 70, 77


@dataclass(frozen=True)
class GemmCall:
    """The arguments of one ``cublasGemmStridedBatchedEx`` for a row-major ``a @ b``.

    cuBLAS computes the column-major ``C^T = op(first) @ op(second)`` of shape
    ``(m, n)`` = (columns, rows) of the row-major product: ``first`` is ``b``'s
    memory and ``second`` is ``a``'s.  Leading dimensions and strides are in elements;
    a batch stride of 0 broadcasts that operand.
    """
    op_first: int
    op_second: int
    m: int
    n: int
    k: int
    ld_first: int
    stride_first: int
    ld_second: int
    stride_second: int
    ldc: int
    stride_c: int
    batch: int
    batch_shape: tuple


def _matrix_layout(rows, cols, s_rows, s_cols):
    """``(op, ld)`` that reads the transpose of a row-major ``(rows, cols)`` matrix with
    element strides ``(s_rows, s_cols)`` from its memory taken column-major, or ``None``
    when the memory is neither row-major nor a transposed view of it."""
    if (rows > 1 and s_rows < 1) or (cols > 1 and s_cols < 1):
        return None
    if cols == 1 or (s_cols == 1 and s_rows >= cols):
        # row-major: the memory is the (cols, rows) transpose, column-major
        return OP_N, max(cols, s_rows if rows > 1 else cols)
    if rows == 1 or (s_rows == 1 and s_cols >= rows):
        # a transposed view: the memory is the (rows, cols) matrix, column-major
        return OP_T, max(rows, s_cols if cols > 1 else rows)
    return None


def _batch_stride(shape, strides):
    """The one element stride that walks the batch axes ``shape`` in order (0 when they
    hold one matrix), or ``None`` when they do not lie evenly in memory."""
    axes = [(s, st) for s, st in zip(shape, strides) if s != 1]
    if not axes:
        return 0
    for (_, st0), (s1, st1) in zip(axes, axes[1:]):
        if st0 != st1 * s1:
            return None
    return axes[-1][1] if axes[-1][1] > 0 else None


def plan(a_shape, a_strides, b_shape, b_strides):
    """The :class:`GemmCall` of ``a @ b`` from shapes and element strides, or ``None`` when
    an operand's layout needs a copy first.

    ``a`` is ``(*batch_a, m, k)`` and ``b`` ``(*batch_b, k, n)``: the batches are equal,
    or one of them holds a single matrix (broadcast, as ``matmul`` does).  The product
    is written C-contiguous, ``(*broadcast batch, m, n)``.
    """
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise ValueError(f"_cublas.plan: shapes {tuple(a_shape)} and {tuple(b_shape)} do "
                         f"not multiply")
    m, k = a_shape[-2:]
    n = b_shape[-1]
    ba, bb = tuple(a_shape[:-2]), tuple(b_shape[:-2])
    pa, pb = math.prod(ba), math.prod(bb)
    if pa > 1 and pb > 1 and ba != bb:
        return None
    batch_shape = tuple(np.broadcast_shapes(ba, bb))
    sa = _batch_stride(ba, a_strides[:-2]) if pa > 1 else 0
    sb = _batch_stride(bb, b_strides[:-2]) if pb > 1 else 0
    first = _matrix_layout(k, n, *b_strides[-2:])
    second = _matrix_layout(m, k, *a_strides[-2:])
    if None in (sa, sb, first, second) or min(m, n, k) < 1:
        return None
    return GemmCall(first[0], second[0], n, m, k, first[1], sb, second[1], sa,
                    n, m * n, math.prod(batch_shape), batch_shape)


# --- running it --------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _gemm_ex():
    """``cublasGemmStridedBatchedEx`` of the cuBLAS library already in this process (the
    one CuPy loaded, found in ``/proc/self/maps``: of CuPy's CUDA major version where
    PyTorch brought another)."""
    import cupy
    _handle()                                     # makes CuPy load cuBLAS
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f
                        if "/libcublas.so" in line and "libcublasLt" not in line})
    major = f"libcublas.so.{cupy.cuda.runtime.runtimeGetVersion() // 1000}"
    paths = [p for p in paths if major in p] or paths
    if not paths:
        raise OSError("blconv: no cuBLAS library is loaded in this process")
    f = ctypes.CDLL(paths[0]).cublasGemmStridedBatchedEx
    p, i, ll = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
    f.argtypes = [p, i, i, i, i, i, p, p, i, i, ll, p, i, i, ll, p, p, i, i, ll, i, i, i]
    f.restype = i
    return f


_HANDLES: dict = {}


def _handle():
    """CuPy's cuBLAS handle of the current device, fetched once per device (outside any
    capture: the first products of a signature run before it is captured)."""
    import cupy
    dev = cupy.cuda.Device().id
    h = _HANDLES.get(dev)
    if h is None:
        h = _HANDLES[dev] = cupy.cuda.device.get_cublas_handle()
    return h


def matmul(a, b, *, tf32=False):
    """``a @ b`` for CuPy arrays as one cuBLAS call (see :func:`plan`); ``None`` where the
    layouts need a copy (the caller then uses ``a @ b``).

    With ``tf32``, float32 and complex64 products read their inputs as TF32 on the
    tensor cores (10-bit mantissas, float32 accumulation).
    """
    import cupy
    from cupy_backends.cuda.libs import cublas as cupy_cublas
    dtype = a.dtype
    if b.dtype != dtype or dtype.name not in DATA_TYPE:
        return None
    size = dtype.itemsize
    if any(s % size for s in a.strides + b.strides):
        return None
    call = plan(a.shape, [s // size for s in a.strides], b.shape,
                [s // size for s in b.strides])
    if call is None:
        return None
    out = cupy.empty(call.batch_shape + (call.n, call.m), dtype=dtype)
    double = dtype.name in ("float64", "complex128")
    compute = COMPUTE_64F if double else (COMPUTE_32F_FAST_TF32 if tf32 else COMPUTE_32F)
    scalar = {"float32": ctypes.c_float * 1, "float64": ctypes.c_double * 1,
              "complex64": ctypes.c_float * 2, "complex128": ctypes.c_double * 2}[dtype.name]
    one, zero = scalar(*([1] + [0] * (len(scalar()) - 1))), scalar()
    handle = _handle()
    cupy_cublas.setStream(handle, cupy.cuda.get_current_stream().ptr)
    t = DATA_TYPE[dtype.name]
    status = _gemm_ex()(handle, call.op_first, call.op_second, call.m, call.n, call.k,
                        ctypes.addressof(one), b.data.ptr, t, call.ld_first,
                        call.stride_first, a.data.ptr, t, call.ld_second,
                        call.stride_second, ctypes.addressof(zero), out.data.ptr, t,
                        call.ldc, call.stride_c, call.batch, compute, -1)
    if status != 0:
        raise RuntimeError(f"blconv: cublasGemmStridedBatchedEx failed with status {status} "
                           f"for {a.shape} @ {b.shape} ({dtype})")
    return out
