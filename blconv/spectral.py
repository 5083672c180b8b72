"""Pruned transforms between real arrays and their retained spectra.

A retained spectrum is laid out frequency-major, ``(F, B1, B2)`` with
``F = R_1 * ... * K`` (``R_a`` retained rows of each full axis, ``K`` retained
columns of the one-sided last axis), so that the channel products are one
batched GEMM per frequency.

Positions along each spatial axis are ``start + step * i`` (mod ``n``): the
input sits at ``0, 1, ...``; the filter at ``j * dilation - pad_lo`` (padding is
a phase of the filter spectrum, so the padded input is never built); strided
outputs and output gradients at ``0, stride, 2 * stride, ...``.

The last axis goes through a real FFT (``n`` points, zero-fill by the FFT's
length argument) where the positions are contiguous, and through a small DFT
matrix otherwise; every other axis goes through a DFT matrix restricted to the
retained rows and to the positions needed, which is the pruned transform.
"""
from __future__ import annotations

import functools

import numpy as np

from . import _backend as B
from .band import Band

__all__ = ["forward", "inverse", "complex_dtype", "contiguous"]

_DEVICE_CACHE: dict = {}


def complex_dtype(dtype, *, xp):
    return xp.complex64 if dtype == xp.float32 else xp.complex128


def contiguous(a, *, xp):
    """A C-contiguous copy when needed (BLAS wants unit-stride operands)."""
    f = getattr(xp, "ascontiguousarray", None)
    return a if f is None else f(a)


@functools.lru_cache(maxsize=512)
def _dft_host(n: int, rows: tuple, start: int, step: int, count: int, inverse: bool):
    """exp(-+2 pi i u m / n) for retained ``u`` and positions ``m``; (R, count) or (count, R)."""
    u = np.asarray(rows, dtype=np.int64)
    m = start + step * np.arange(count, dtype=np.int64)
    phase = np.outer(u, m) % n                     # exact integer reduction keeps accuracy
    e = np.exp((2j if inverse else -2j) * np.pi * phase / n)
    if inverse:
        return np.ascontiguousarray(e.T) / n       # (count, R)
    return e                                        # (R, count)


def _matrix(n, rows, start, step, count, inverse, *, xp, cdtype, like):
    key = (n, rows, start, step, count, inverse, str(cdtype), xp.__name__, str(B.device(like)))
    m = _DEVICE_CACHE.get(key)
    if m is None:
        host = _dft_host(n, rows, start, step, count, inverse)
        m = B.asarray(host.astype(np.complex64 if cdtype == xp.complex64 else np.complex128),
                      xp=xp, like=like)
        if len(_DEVICE_CACHE) > 1024:
            _DEVICE_CACHE.clear()
        _DEVICE_CACHE[key] = m
    return m


def _rows(band: Band, a: int) -> tuple:
    return tuple(int(i) for i in band.indices(a))


def forward(a, band: Band, *, start, step, xp):
    """Retained spectrum ``(F, B1, B2)`` of the real array ``a`` of shape ``(B1, B2, *S)``.

    ``a[..., i]`` along spatial axis ``t`` sits at position ``start[t] + step[t] * i``.
    """
    d = len(band.fft_shape)
    b1, b2, *size = a.shape
    cdtype = complex_dtype(a.dtype, xp=xp)
    n, k = band.fft_shape[-1], band.keep[-1]
    if start[-1] == 0 and step[-1] == 1:
        z = B.rfft(a, n, -1, xp=xp)[..., :k]                       # (B1, B2, *S[:-1], K)
    else:
        m = _matrix(n, tuple(range(k)), start[-1], step[-1], size[-1], False,
                    xp=xp, cdtype=cdtype, like=a)                   # (K, S_last)
        z = xp.astype(a, cdtype) @ xp.matrix_transpose(m)
    if d == 1:
        return contiguous(xp.permute_dims(z, (2, 0, 1)), xp=xp)    # (K, B1, B2)
    rows = _rows(band, 0)
    e = _matrix(band.fft_shape[0], rows, start[0], step[0], size[0], False,
                xp=xp, cdtype=cdtype, like=a)                       # (R1, S1)
    z = contiguous(xp.permute_dims(z, (2, 3, 0, 1)), xp=xp)         # (S1, K, B1, B2)
    z = e @ xp.reshape(z, (size[0], k * b1 * b2))                   # (R1, K*B1*B2)
    return xp.reshape(z, (len(rows) * k, b1, b2))


def inverse(z, band: Band, *, start, step, count, xp):
    """Real array ``(B1, B2, *count)`` at positions ``start + step * i`` from ``z`` ``(F, B1, B2)``."""
    d = len(band.fft_shape)
    _, b1, b2 = z.shape
    n, k = band.fft_shape[-1], band.keep[-1]
    if d == 2:
        rows = _rows(band, 0)
        g = _matrix(band.fft_shape[0], rows, start[0], step[0], count[0], True,
                    xp=xp, cdtype=z.dtype, like=z)                  # (T1, R1)
        z = g @ xp.reshape(contiguous(z, xp=xp), (len(rows), k * b1 * b2))
        z = xp.permute_dims(xp.reshape(z, (count[0], k, b1, b2)), (2, 3, 0, 1))
    else:
        z = xp.permute_dims(z, (1, 2, 0))                           # (B1, B2, K)
    y = B.irfft(z, n, -1, xp=xp)                                    # zero-fills columns >= K
    s0, s1, c = start[-1], step[-1], count[-1]
    if s0 == 0 and s1 == 1:
        return y[..., :c]
    if s0 == 0:
        return y[..., : (c - 1) * s1 + 1 : s1]
    idx = B.asarray(np.asarray((s0 + s1 * np.arange(c)) % n), xp=xp, like=z)
    return xp.take(y, idx, axis=-1)
