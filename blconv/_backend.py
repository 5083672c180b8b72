"""Array namespaces, devices and FFT routing.

Public functions call :func:`namespace` once, at entry, and hand ``xp`` to the
private helpers.  NumPy arrays get their FFTs from :mod:`scipy.fft` (multi-
threaded through ``workers``, float32 kept as complex64); every other namespace
(CuPy, array-api-strict) uses its own ``xp.fft``.
"""
from __future__ import annotations

import contextlib
import contextvars

import array_api_compat
import numpy as np
import scipy.fft

from . import _cublas, settings

__all__ = ["namespace", "to_numpy", "is_cupy"]

def _type_name(a) -> str:
    t = type(a)
    return f"{t.__module__.split('.')[0]}.{t.__qualname__}"


def namespace(*arrays, fn: str, names: tuple[str, ...] | None = None):
    """The array namespace shared by ``arrays`` (``None`` entries skipped).

    Raises ``TypeError`` naming ``fn`` and the offending types when the arrays
    come from different libraries, or when one is not an array at all.
    """
    names = names or tuple(f"arrays[{i}]" for i in range(len(arrays)))
    present = [(n, a) for n, a in zip(names, arrays) if a is not None]
    for n, a in present:
        if not array_api_compat.is_array_api_obj(a):
            raise TypeError(f"{fn}: {n} must be an array (NumPy, CuPy or array-API), "
                            f"got {_type_name(a)}")
    kinds = {type(a) for _, a in present}
    if len(kinds) > 1:
        desc = ", ".join(f"{n} is {_type_name(a)}" for n, a in present)
        raise TypeError(f"{fn}: all arrays must come from one library; {desc}")
    return array_api_compat.array_namespace(*(a for _, a in present))


def is_numpy(xp) -> bool:
    return array_api_compat.is_numpy_namespace(xp)


def is_cupy(xp) -> bool:
    return array_api_compat.is_cupy_namespace(xp)


def device(a):
    return array_api_compat.device(a)


def to_numpy(a) -> np.ndarray:
    """Copy any supported array to a NumPy array on the host."""
    if isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":
        return a.get()
    if mod == "array_api_strict":
        import array_api_strict as s
        return np.asarray(a.to_device(s.Device("CPU_DEVICE")))
    return np.asarray(a)


def asarray(a, *, xp, like):
    """Put a host NumPy array on the namespace and device of ``like``."""
    if is_numpy(xp):
        return a
    return xp.asarray(a, device=device(like))


# --- matrix products -----------------------------------------------------------------
_DIRECT_GEMM = contextvars.ContextVar("blconv_direct_gemm", default=False)


@contextlib.contextmanager
def direct_gemm():
    """Inside: CuPy products go to cuBLAS directly (:mod:`blconv._cublas`), as a CUDA
    graph capture needs (:mod:`blconv._graphs`)."""
    token = _DIRECT_GEMM.set(True)
    try:
        yield
    finally:
        _DIRECT_GEMM.reset(token)


def matmul(a, b, *, xp):
    """``a @ b``; on CuPy inside :func:`direct_gemm` or under the precision setting
    :func:`blconv.tf32`, one cuBLAS call reading both operands in place (made contiguous
    first where their layout needs it)."""
    if is_cupy(xp):
        tf32 = settings.current().tf32
        if tf32 or _DIRECT_GEMM.get():
            out = _cublas.matmul(a, b, tf32=tf32)
            if out is None:
                out = _cublas.matmul(xp.ascontiguousarray(a), xp.ascontiguousarray(b),
                                     tf32=tf32)
            if out is not None:
                return out
    return a @ b


# --- FFTs ---------------------------------------------------------------------------
def _fft(name: str, a, *, xp, workers: int, **kw):
    """``scipy.fft.<name>`` with ``workers`` threads for NumPy, ``xp.fft.<name>`` otherwise."""
    if is_numpy(xp):
        return getattr(scipy.fft, name)(a, workers=workers, **kw)
    return getattr(xp.fft, name)(a, **kw)


def rfft(a, n: int, axis: int, *, xp, workers: int):
    return _fft("rfft", a, n=n, axis=axis, xp=xp, workers=workers)


def irfft(a, n: int, axis: int, *, xp, workers: int):
    return _fft("irfft", a, n=n, axis=axis, xp=xp, workers=workers)


def fft(a, n: int, axis: int, *, xp, workers: int):
    return _fft("fft", a, n=n, axis=axis, xp=xp, workers=workers)


def ifft(a, n: int, axis: int, *, xp, workers: int):
    return _fft("ifft", a, n=n, axis=axis, xp=xp, workers=workers)


def rfftn(a, s: tuple[int, ...], axes: tuple[int, ...], *, xp, workers: int):
    return _fft("rfftn", a, s=s, axes=axes, xp=xp, workers=workers)
