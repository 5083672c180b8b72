"""Pruned transforms between real arrays and their retained spectra.

A retained spectrum is laid out frequency-major, ``(F, B1, B2)`` with
``F = R_1 * K`` in 2D (``R_1`` retained rows of the full axis, ``K`` retained
columns of the one-sided last axis) and ``F = K`` in 1D, so that the channel
products are one batched GEMM per frequency.

Positions along each spatial axis are ``start + step * i`` (mod ``n``): the
input sits at ``0, 1, ...``; the filter at ``j * dilation - pad_lo`` (padding is
a phase of the filter spectrum, so the padded input is never built); strided
outputs and output gradients at ``0, stride, 2 * stride, ...`` (only the kept
outputs are computed, and the zero-upsampled gradient is never built).

Each axis is transformed by one of two exact routes, chosen per axis:

* ``"matrix"``: a GEMM with the DFT matrix restricted to the retained
  frequencies and the positions needed, ``O(keep * length)`` per row — the
  pruned transform; on short axes (the CNN case) BLAS runs it faster than an
  FFT, and its cost falls with the compress rate;
* ``"fft"``: an ``n``-point (real) FFT, then the retained coefficients
  (``O(n log n)`` per row) — used for long axes, where a DFT matrix would be
  quadratic.

The route is a speed setting (:mod:`blconv.settings`: ``"auto"``, the default,
takes the matrix when ``n <= matrix_max_n``), read once per call and handed
down as ``opts``; both routes give the same result to rounding.
"""
from __future__ import annotations


import numpy as np

from . import _backend as B
from . import _graphs, _threads
from ._cache import ByteCache
from .band import Band
from .settings import Settings

__all__ = ["forward", "inverse", "filter_forward", "filter_inverse", "complex_dtype", "contiguous",
           "clear_caches"]

#: DFT matrices per (sizes, positions, kind, dtype, namespace, device); the least
#: recently used go first past the bound.
_MATRICES = ByteCache(256 << 20)


def clear_caches() -> None:
    """Free the cached DFT matrices (host and device) and CUDA graphs; they are rebuilt
    on demand.

    The matrices take at most 256 MiB per process, the graphs of
    :func:`blconv.cuda_graphs` at most 4 GiB of input and output buffers (and their
    shared intermediates) of device memory; results never depend on either.

    Examples
    --------
    >>> import blconv
    >>> blconv.clear_caches()
    """
    _MATRICES.clear()
    _graphs.clear()


def complex_dtype(dtype, *, xp):
    return xp.complex64 if dtype == xp.float32 else xp.complex128


def real_dtype(dtype, *, xp):
    return xp.float32 if dtype == xp.complex64 else xp.float64


def contiguous(a, *, xp):
    """A C-contiguous copy when needed (BLAS wants unit-stride operands)."""
    f = getattr(xp, "ascontiguousarray", None)
    return a if f is None else f(a)


def _moved(a, src: int, dst: int, perm, *, xp):
    """``permute_dims(a, perm)`` as a C-contiguous array, ``a``'s axis ``src`` becoming ``dst``.

    On NumPy a large transpose is copied in slabs along that axis: each slab's
    gather then runs in cache (about twice as fast as one strided copy).
    """
    if not B.is_numpy(xp) or a.nbytes <= _SLAB_BYTES or a.shape[src] < 2:
        return contiguous(xp.permute_dims(a, perm), xp=xp)
    out = np.empty(tuple(a.shape[i] for i in perm), dtype=a.dtype)
    step = max(1, _SLAB_BYTES * a.shape[src] // a.nbytes)
    for i0 in range(0, a.shape[src], step):
        sl = (slice(None),) * src + (slice(i0, i0 + step),)
        out[(slice(None),) * dst + (slice(i0, i0 + step),)] = a[sl].transpose(perm)
    return out


_SLAB_BYTES = 1 << 20


def _has_view(xp) -> bool:
    return B.is_numpy(xp) or B.is_cupy(xp)


# --- DFT matrices (built once on the host, cached per device) ------------------------
def _dft_host(n, rows, start, step, count, kind):
    """DFT matrices between retained frequencies ``rows`` and positions ``start + step*i``.

    kind "fwd": exp(-2 pi i u m / n), shape (R, count);
    "inv": exp(+2 pi i u m / n) / n, shape (count, R);
    "fwd_real": the real (count, 2R) matrix whose product with a real row gives
    interleaved (re, im) pairs of the forward transform;
    "inv_real": the real (2R, count) matrix taking interleaved (re, im) pairs of a
    one-sided spectrum to the real inverse (Hermitian weights 1 for DC and Nyquist,
    2 otherwise; imaginary parts of DC and Nyquist ignored, as irfft does).
    A kind ending in "_conj" is the same map for conjugated spectra: the forward
    matrices give ``conj(X)``, the inverse ones take ``conj(Z)``.
    """
    if kind.endswith("_conj"):
        m = np.array(_dft_host(n, rows, start, step, count, kind[:-5]))
        if kind == "fwd_real_conj":
            m[:, 1::2] *= -1
        elif kind == "inv_real_conj":
            m[1::2] *= -1
        else:
            m = np.conj(m)
        return m
    u = np.asarray(rows, dtype=np.int64)
    m = start + step * np.arange(count, dtype=np.int64)
    theta = 2 * np.pi * (np.outer(u, m) % n) / n           # exact integer reduction first
    if kind == "fwd":
        return np.exp(-1j * theta)
    if kind == "inv":
        return np.ascontiguousarray(np.exp(1j * theta).T) / n
    if kind == "fwd_real":
        out = np.empty((count, 2 * len(u)))
        out[:, 0::2] = np.cos(theta).T
        out[:, 1::2] = -np.sin(theta).T
        return out
    weight = np.where((u == 0) | (2 * u == n), 1.0, 2.0)[:, None] / n
    out = np.empty((2 * len(u), count))
    out[0::2] = weight * np.cos(theta)
    out[1::2] = -weight * np.sin(theta) * ((u != 0) & (2 * u != n))[:, None]
    return out


def _filter_dft_host(fft_shape, rows, start, step, count, kind):
    """DFT matrices between a filter's positions and a band's retained frequencies.

    ``rows[t]`` are the retained frequencies of axis ``t`` (the frequencies run
    row-major over the axes, as in :func:`forward`); the positions run row-major over
    ``count``, ``start[t] + step[t] * i`` along axis ``t``.  With ``theta`` the
    phase of frequency ``f`` at position ``p``:

    kind "fwd_conj": exp(+i theta), shape (F, P) — the conjugate forward transform;
    "inv_real": ``a_f exp(+i theta) / prod(n)``, shape (P, F), whose real part after
    the product is the real inverse of a one-sided spectrum (``a_f`` = 2 except on
    the last axis' DC and Nyquist columns, as ``irfftn`` counts them).
    "taps_fwd" and "taps_adj" (each (P, F), for :mod:`blconv._taps`): the transpose
    of "fwd_conj" and the transpose of its conjugate.
    """
    phase = np.zeros((1, 1))                                # (F, P) in turns
    for n, u, s0, st, c in zip(fft_shape, rows, start, step, count):
        m = s0 + st * np.arange(c, dtype=np.int64)
        turns = (np.outer(np.asarray(u, np.int64), m) % n) / n     # exact reduction first
        phase = (phase[:, None, :, None] + turns[None, :, None, :]).reshape(
            phase.shape[0] * turns.shape[0], phase.shape[1] * turns.shape[1])
    e = np.exp(2j * np.pi * (phase % 1.0))
    if kind == "fwd_conj":
        return e
    if kind == "taps_fwd":
        return np.ascontiguousarray(e.T)
    if kind == "taps_adj":
        return np.ascontiguousarray(np.conj(e).T)
    n_last, u_last = fft_shape[-1], np.asarray(rows[-1])
    a_last = np.where((u_last == 0) | (2 * u_last == n_last), 1.0, 2.0)
    a = np.broadcast_to(a_last, (int(np.prod([len(u) for u in rows[:-1]])), len(u_last)))
    return np.ascontiguousarray((e * a.reshape(-1, 1)).T) / int(np.prod(fft_shape))


#: Largest (frequencies x filter positions) DFT matrix built for a filter; beyond it
#: (filters of hundreds of taps on axes of thousands) the filters are transformed as the
#: input is.
FILTER_MATRIX_MAX = 1 << 22


def filter_forward(w, band: Band, *, start, step, groups, xp, opts: Settings):
    """Conjugated retained spectrum of real filters ``w`` ``(O, C/G, *k)``, as ``(F, G, C/G, O/G)``.

    ``out[f, g, c, o] = conj(W[g * O/G + o, c, f])`` (so that ``Y[f] = X[f] @ out[f]``
    per group), computed as one GEMM of the small ``(F, prod(k))`` DFT matrix of the
    filter's positions with the filters: never padded to the FFT size, never
    transposed at spectrum size (unless that matrix would pass ``FILTER_MATRIX_MAX``
    elements).
    """
    o, cg, *k = w.shape
    og, p = o // groups, int(np.prod(k))
    f = band.retained
    if f * p > FILTER_MATRIX_MAX:                  # long filters on long axes: transform
        z = xp.conj(forward(w, band, start=start, step=step, xp=xp, opts=opts))  # (F, O, C/G)
        return contiguous(xp.permute_dims(xp.reshape(z, (f, groups, og, cg)), (0, 1, 3, 2)),
                          xp=xp)
    cdtype = complex_dtype(w.dtype, xp=xp)
    wt = contiguous(xp.permute_dims(xp.reshape(w, (groups, og, cg, p)), (3, 0, 2, 1)), xp=xp)
    e = filter_matrix(band, start, step, tuple(k), "fwd_conj", xp=xp, dtype=cdtype, like=w)
    z = B.matmul(e, xp.astype(xp.reshape(wt, (p, groups * cg * og)), cdtype),
                 xp=xp)                                                  # (F, G*C/G*O/G)
    return xp.reshape(z, (f, groups, cg, og))


def filter_inverse(z, band: Band, *, start, step, count, xp, opts: Settings):
    """Real filters ``(O, C/G, *count)`` from a one-sided spectrum laid out as in :func:`filter_forward`.

    The real inverse transform (``irfftn`` of the zero-filled band, read at the
    filter's positions), evaluated as one GEMM with the ``(prod(count), F)`` matrix.
    """
    f, groups, cg, og = z.shape
    p = int(np.prod(count))
    if f * p > FILTER_MATRIX_MAX:
        z = xp.reshape(xp.permute_dims(z, (0, 1, 3, 2)), (f, groups * og, cg))
        return inverse(z, band, start=start, step=step, count=count, xp=xp, opts=opts)
    g = filter_matrix(band, start, step, tuple(count), "inv_real", xp=xp, dtype=z.dtype,
                       like=z)
    wt = xp.real(B.matmul(g, xp.reshape(z, (f, groups * cg * og)), xp=xp))  # (P, G*C/G*O/G)
    wt = xp.permute_dims(xp.reshape(wt, (p, groups, cg, og)), (1, 3, 2, 0))
    return xp.reshape(contiguous(wt, xp=xp), (groups * og, cg) + tuple(count))


def filter_matrix(band, start, step, count, kind, *, xp, dtype, like):
    """The cached DFT matrix of :func:`_filter_dft_host` for ``band`` and the tap positions."""
    rows = tuple(_rows(band, a) for a in range(len(band.fft_shape)))
    key = (band.fft_shape, rows, tuple(start), tuple(step), count)
    return _matrix(*key, kind, xp=xp, dtype=dtype, like=like, host=_filter_dft_host)


def _lowpass_host(n, rows, start, step, count, kind):
    """The real ``(count[1], count[0])`` matrix of the projection onto the two-sided
    frequencies ``rows`` of size ``n``, from positions ``start[0] + step[0] * j`` to
    positions ``start[1] + step[1] * i``: ``p((m_i - m_j) mod n)`` with
    ``p(m) = sum_u cos(2 pi u m / n) / n`` (``rows`` symmetric under ``u -> -u``)."""
    u = np.asarray(rows, dtype=np.int64)
    p = np.cos(2 * np.pi * (np.outer(u, np.arange(n)) % n) / n).sum(axis=0) / n
    src = start[0] + step[0] * np.arange(count[0], dtype=np.int64)
    dst = start[1] + step[1] * np.arange(count[1], dtype=np.int64)
    return p[(dst[:, None] - src[None, :]) % n]


def lowpass_matrix(n, k, src, dst, *, xp, dtype, like):
    """The cached real matrix of :func:`_lowpass_host` for the low-pass ``|u| < k`` on an
    axis of size ``n`` (``k`` as in :attr:`blconv.band.Band.keep`); ``src`` and ``dst``
    are ``(start, step, count)`` of the positions read and written."""
    u = np.arange(n)
    rows = tuple(int(i) for i in u[np.minimum(u, n - u) < k])
    return _matrix(n, rows, (src[0], dst[0]), (src[1], dst[1]), (src[2], dst[2]), "lowpass",
                   xp=xp, dtype=dtype, like=like, host=_lowpass_host)


def dft_matrix(n, k, start, step, count, kind, *, dtype):
    """The cached NumPy DFT matrix of :func:`_dft_host` between the first ``k`` one-sided
    frequencies of size ``n`` and the positions ``start + step * i``, ``i < count``."""
    return _matrix(n, tuple(range(k)), start, step, count, kind, xp=np, dtype=dtype,
                   like=_HOST)


_HOST = np.empty(0)


def _matrix(n, rows, start, step, count, kind, *, xp, dtype, like, host=None):
    name = getattr(dtype, "__name__", None) or str(dtype).split(".")[-1]
    key = (n, rows, start, step, count, kind, name, xp.__name__, str(B.device(like)))
    m = _MATRICES.get(key)
    if m is None:
        host = (host or _dft_host)(n, rows, start, step, count, kind).astype(name)
        m = B.asarray(host, xp=xp, like=like)
        _MATRICES.put(key, m, host.nbytes)
    return m


def _positions(n, start, step, count):
    return (start + step * np.arange(count)) % n


def _scatter_last(a, n, start, step, *, xp):
    """``a`` (..., S) placed at positions ``start + step*i`` (mod n) of zeros (..., n)."""
    count = a.shape[-1]
    z = xp.zeros(a.shape[:-1] + (n,), dtype=a.dtype, device=B.device(a))
    pos = _positions(n, start, step, count)
    # positions are one or two arithmetic runs (a negative start wraps to the end)
    split = int(np.argmax(pos[1:] < pos[:-1]) + 1) if count > 1 and np.any(pos[1:] < pos[:-1]) \
        else count
    for i0, i1 in ((0, split), (split, count)):
        if i1 > i0:
            p0 = int(pos[i0])
            z[..., p0: p0 + step * (i1 - i0 - 1) + 1: step] = a[..., i0:i1]
    return z


def _take_last(y, n, start, step, count, *, xp):
    if start >= 0 and start + step * (count - 1) < n:
        return y[..., start: start + step * (count - 1) + 1: step]
    idx = B.asarray(_positions(n, start, step, count), xp=xp, like=y)
    return xp.take(y, idx, axis=-1)


# --- one axis at a time --------------------------------------------------------------
def forward_last(a, n, k, start, step, *, xp, opts: Settings, conj=""):
    """Real (..., S) -> complex (..., K): the first K one-sided coefficients (conjugated
    with ``conj="_conj"``, matrix route only)."""
    lead, count = a.shape[:-1], a.shape[-1]
    if not opts.use_matrix(n):
        if not (start == 0 and step == 1):
            a = _scatter_last(a, n, start, step, xp=xp)
        return B.rfft(a, n, -1, xp=xp, workers=opts.fft_workers)[..., :k]
    cdtype = complex_dtype(a.dtype, xp=xp)
    m = _matrix(n, tuple(range(k)), start, step, count, "fwd_real" + conj, xp=xp, dtype=a.dtype,
                like=a)
    z = B.matmul(xp.reshape(contiguous(a, xp=xp), (-1, count)), m,
                 xp=xp)                                     # (rows, 2K): re, im pairs
    if _has_view(xp):
        return xp.reshape(z.view(cdtype), lead + (k,))
    z = xp.reshape(z, lead + (k, 2))
    return xp.astype(z[..., 0], cdtype) + 1j * xp.astype(z[..., 1], cdtype)


def inverse_last(z, n, start, step, count, *, xp, opts: Settings, conj=""):
    """Complex (..., K) one-sided coefficients -> real (..., count) at the positions (of
    the conjugated coefficients with ``conj="_conj"``, matrix route only)."""
    lead, k = z.shape[:-1], z.shape[-1]
    if not opts.use_matrix(n):
        return _take_last(B.irfft(z, n, -1, xp=xp, workers=opts.fft_workers), n, start, step,
                          count, xp=xp)
    rdtype = real_dtype(z.dtype, xp=xp)
    m = _matrix(n, tuple(range(k)), start, step, count, "inv_real" + conj, xp=xp, dtype=rdtype,
                like=z)
    z = contiguous(z, xp=xp)
    if _has_view(xp):
        pairs = xp.reshape(z, (-1, k)).view(rdtype)                # (rows, 2K)
    else:
        pairs = xp.reshape(xp.stack([xp.real(z), xp.imag(z)], axis=-1), (-1, 2 * k))
    return xp.reshape(B.matmul(pairs, m, xp=xp), lead + (count,))


# Bytes of one slab's GEMM output in the fused transform-and-transpose below (in L2).
_FUSED_SLAB_BYTES = 1 << 18


def _fused(xp, opts: Settings, n: int) -> bool:
    """Whether an axis goes through the fused transform-and-transpose (NumPy, matrix route)."""
    return B.is_numpy(xp) and opts.use_matrix(n)


def _forward_last_major(a, n, k, start, step, *, opts: Settings, conj=""):
    """NumPy real ``(B, *mid, S)`` -> complex ``(*mid, K, B)``: :func:`forward_last` with
    the leading axis moved last (the frequency-major layout), without a spectrum-sized
    intermediate.

    The GEMM runs in slabs of ``B``; each slab's ``(rows, 2K)`` output is transposed
    into place while it is in cache, and the slabs are shared among the threads.
    """
    b, mid, count = a.shape[0], a.shape[1:-1], a.shape[-1]
    rows = int(np.prod(mid))
    a = np.ascontiguousarray(a).reshape(b, rows, count)               # (B, M, S)
    cdtype = complex_dtype(a.dtype, xp=np)
    m = _matrix(n, tuple(range(k)), start, step, count, "fwd_real" + conj, xp=np,
                dtype=a.dtype, like=a)                                # (S, 2K)
    out = np.empty((rows, k, b), dtype=cdtype)
    slab = max(1, _FUSED_SLAB_BYTES // (rows * k * np.dtype(cdtype).itemsize))

    def run(i0, i1):
        for s0 in range(i0, i1, slab):
            s1 = min(i1, s0 + slab)
            z = (a[s0:s1].reshape(-1, count) @ m).view(cdtype)          # (nb*M, K)
            out[:, :, s0:s1] = z.reshape(s1 - s0, rows, k).transpose(1, 2, 0)

    _threads.parallel(run, b, _threads.count(opts, xp=np), slab)
    return out.reshape(mid + (k, b))


def _inverse_last_major(z, n, start, step, count, *, opts: Settings, conj=""):
    """NumPy complex ``(*mid, K, B)`` -> real ``(B, *mid, count)``: :func:`inverse_last`
    of the layout :func:`_forward_last_major` makes, in slabs of ``B`` transposed in cache."""
    *mid, k, b = z.shape
    rows = int(np.prod(mid))
    z = z.reshape(rows, k, b)                                           # (M, K, B)
    rdtype = real_dtype(z.dtype, xp=np)
    m = _matrix(n, tuple(range(k)), start, step, count, "inv_real" + conj, xp=np,
                dtype=rdtype, like=z)                                   # (2K, count)
    out = np.empty((b, rows, count), dtype=rdtype)
    slab = max(1, _FUSED_SLAB_BYTES // (rows * k * z.itemsize))

    def run(i0, i1):
        for s0 in range(i0, i1, slab):
            s1 = min(i1, s0 + slab)
            # (M, K, nb) -> (nb, M, K) in two copies: the slab gathered whole, then one
            # 2D transpose in cache (3-6x faster than one 3D copy, whose inner loop is K long)
            t = np.ascontiguousarray(z[:, :, s0:s1]).reshape(rows * k, s1 - s0)
            t = np.ascontiguousarray(t.T)                                 # (nb, M*K)
            np.matmul(t.view(rdtype).reshape(-1, 2 * k), m,
                      out=out[s0:s1].reshape(-1, count))

    _threads.parallel(run, b, _threads.count(opts, xp=np), slab)
    return out.reshape((b,) + tuple(mid) + (count,))


def _forward_rows(z, n, rows, start, step, *, xp, opts: Settings, conj=""):
    """Complex (S1, M) -> (R1, M): the retained rows of the full axis."""
    if opts.use_matrix(n):
        e = _matrix(n, rows, start, step, z.shape[0], "fwd" + conj, xp=xp, dtype=z.dtype, like=z)
        return B.matmul(e, z, xp=xp)
    zt = xp.matrix_transpose(z)                                    # (M, S1)
    if not (start == 0 and step == 1):
        zt = _scatter_last(zt, n, start, step, xp=xp)
    full = B.fft(zt, n, -1, xp=xp, workers=opts.fft_workers)       # (M, n)
    idx = B.asarray(np.asarray(rows), xp=xp, like=z)
    return contiguous(xp.matrix_transpose(xp.take(full, idx, axis=-1)), xp=xp)


def _inverse_rows(z, n, rows, start, step, count, *, xp, opts: Settings, conj=""):
    """Complex (R1, M) retained rows -> complex (count, M) at the positions."""
    if opts.use_matrix(n):
        g = _matrix(n, rows, start, step, count, "inv" + conj, xp=xp, dtype=z.dtype, like=z)
        return B.matmul(g, z, xp=xp)
    k = (len(rows) + 1) // 2
    zt = xp.matrix_transpose(z)                                    # (M, R1)
    if len(rows) == n:
        full = zt
    else:                                                          # rows [0, k) and (n-k, n)
        full = xp.zeros((zt.shape[0], n), dtype=z.dtype, device=B.device(z))
        full[:, :k] = zt[:, :k]
        full[:, n - k + 1:] = zt[:, k:]
    y = _take_last(B.ifft(full, n, -1, xp=xp, workers=opts.fft_workers), n, start, step,
                   count, xp=xp)
    return contiguous(xp.matrix_transpose(y), xp=xp)


# --- whole arrays --------------------------------------------------------------------
def _rows(band: Band, a: int) -> tuple:
    return band.rows(a)


def all_matrix(band: Band, opts: Settings) -> bool:
    """Whether every axis of ``band`` goes through the DFT-matrix route."""
    return all(opts.use_matrix(n) for n in band.fft_shape)


def forward(a, band: Band, *, start, step, xp, opts: Settings, conj=False):
    """Retained spectrum ``(F, B1, B2)`` of the real array ``a`` of shape ``(B1, B2, *S)``.

    ``a[..., i]`` along spatial axis ``t`` sits at position ``start[t] + step[t] * i``.
    With ``conj``, the conjugated spectrum (free on the matrix route: conjugated
    DFT matrices).
    """
    if conj and not all_matrix(band, opts):
        return xp.conj(forward(a, band, start=start, step=step, xp=xp, opts=opts))
    c = "_conj" if conj else ""
    b1, b2, *size = a.shape
    n, k = band.fft_shape[-1], band.keep[-1]
    if _fused(xp, opts, n):                                         # ([S1,] K, B1*B2)
        z = _forward_last_major(xp.reshape(a, (b1 * b2, *size)), n, k, start[-1], step[-1],
                                opts=opts, conj=c)
        if len(band.fft_shape) == 1:
            return xp.reshape(z, (k, b1, b2))
    else:
        z = forward_last(a, n, k, start[-1], step[-1], xp=xp, opts=opts,
                          conj=c)                                   # (B1, B2, [S1,] K)
        if len(band.fft_shape) == 1:
            return _moved(z, 0, 1, (2, 0, 1), xp=xp)               # (K, B1, B2)
        z = _moved(z, 0, 2, (2, 3, 0, 1), xp=xp)                    # (S1, K, B1, B2)
    rows = _rows(band, 0)
    z = _forward_rows(xp.reshape(z, (size[0], k * b1 * b2)), band.fft_shape[0], rows,
                      start[0], step[0], xp=xp, opts=opts, conj=c)  # (R1, K*B1*B2)
    return xp.reshape(z, (len(rows) * k, b1, b2))


def inverse(z, band: Band, *, start, step, count, xp, opts: Settings, conj=False):
    """Real ``(B1, B2, *count)`` at positions ``start + step * i`` from ``z`` ``(F, B1, B2)``.

    With ``conj``, the inverse of ``conj(z)`` (free on the matrix route).
    """
    if conj and not all_matrix(band, opts):
        z, conj = xp.conj(z), False
    c = "_conj" if conj else ""
    _, b1, b2 = z.shape
    n, k = band.fft_shape[-1], band.keep[-1]
    if len(band.fft_shape) == 2:
        rows = _rows(band, 0)
        z = _inverse_rows(xp.reshape(contiguous(z, xp=xp), (len(rows), k * b1 * b2)),
                          band.fft_shape[0], rows, start[0], step[0], count[0], xp=xp,
                          opts=opts, conj=c)
        z = xp.reshape(z, (count[0], k, b1, b2))
    if _fused(xp, opts, n):
        y = _inverse_last_major(xp.reshape(z, z.shape[:-2] + (b1 * b2,)), n, start[-1],
                                step[-1], count[-1], opts=opts, conj=c)
        return xp.reshape(y, (b1, b2) + tuple(count))
    if len(band.fft_shape) == 2:
        z = _moved(z, 2, 0, (2, 3, 0, 1), xp=xp)                    # (B1, B2, S1, K)
    else:
        z = _moved(z, 1, 0, (1, 2, 0), xp=xp)                       # (B1, B2, K)
    return inverse_last(z, n, start[-1], step[-1], count[-1], xp=xp, opts=opts, conj=c)
