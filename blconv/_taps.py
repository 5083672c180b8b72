"""The channel products of a 1D band-limited correlation as real GEMMs over the filter taps.

With ``e[p, f]`` the phase of tap ``p`` at retained frequency ``f``, the filters'
conjugated spectrum is ``conj(W[f]) = sum_p e[p, f] w_p`` (``w_p`` the real
``(C_in, C_out)`` matrix of tap ``p``), so the forward's products are

    Y[o, n, f] = sum_{c, p} w[o, c, p] * (e[p, f] X[c, n, f])

one real GEMM of the ``(C_out, C_in * P)`` filters with the spectrum "expanded" over
the taps, ``(C_in * P, N * F)`` complex numbers read as ``2 N F`` real columns (a
complex array is its real and imaginary parts side by side, so a real matrix on the
left multiplies both at once).  The backward is two more over one expansion of the
output gradient: ``DX = W^T @ (conj(e) DY)`` and ``dw = Re(X @ conj(g conj(DY))^T)``
with ``g`` the filters' inverse transform, which is ``conj(e)`` weighted per
frequency.  The input, output and gradient transforms write and
read this channel-major layout ``(C, N, F)`` directly on the DFT-matrix route (one
GEMM per sample with a strided output; the FFT route transposes).

Each product costs ``4 P N F C_in C_out`` real flops, ``P/2`` times the ``8 N F C_in
C_out`` of the per-frequency complex products (:mod:`blconv._channels`), but runs as
one large GEMM at the BLAS's full rate, where the per-frequency products, each
``(N x C_in) @ (C_in x C_out)``, reuse every filter coefficient only ``N`` times and
run at a fraction of it.  With few taps and a small batch this route is the faster
(measured: :data:`MAX_TAPS_BATCH`, and :data:`MAX_TAPS_BATCH_ONE_THREAD` over a one-thread
BLAS); it is a NumPy, 1D, fixed-band route, within the workspace bound.  Both routes
compute the same correlation; they differ by float rounding only.
"""
from __future__ import annotations

import numpy as np

from . import _threads, spectral
from .band import parseval_weights

__all__ = ["use", "fits", "forward", "backward", "workspace_bytes"]

#: The route is taken when taps x batch is at most this, where NumPy's BLAS runs more
#: than one thread (:data:`MAX_TAPS_BATCH_ONE_THREAD` where it runs one).  Measured on
#: the FCN's layers (AMD EPYC with AVX-512), time on this route over the per-frequency one
#: at c = 0, 0.5 and 0.75, with two threads: ``k = 3`` 0.3-0.35 at batch 8, 0.4-0.5 at
#: 16, 0.5-0.7 at 32; ``k = 5`` 0.4-0.5 at batch 8, 0.5-0.85 at 16, 0.8-0.9 at 32.
MAX_TAPS_BATCH = 80
#: The bound over a one-thread BLAS (Dask's workers run one thread each), where the gain
#: is smaller and turns to a loss sooner.  Measured with one thread at c = 0 and 0.5,
#: lengths 150 and 427: ``k = 3`` 0.5-0.65 at batch 8 (24), 0.8-1.05 at 16 (48); ``k = 8``
#: 0.7-0.95 at batch 8 (64); ``k = 5`` 0.7-1.0 at batch 8 (40) but 1.3-1.5 at 16 (80).
MAX_TAPS_BATCH_ONE_THREAD = 64


def workspace_bytes(n, c_in, c_out, taps, f, itemsize) -> int:
    """Bytes of the largest spectra a forward or backward over ``n`` samples holds at once
    (``itemsize``: the real dtype's): the input expanded over the taps in the forward;
    the output gradient expanded, the weighted input and ``DX`` in the backward."""
    return 2 * itemsize * n * f * max(c_in * taps, c_out * taps + 2 * c_in)


def fits(n, c_in, c_out, taps, f, itemsize, max_workspace_bytes) -> bool:
    """Whether the route's expanded spectra fit ``max_workspace_bytes`` (None: always)."""
    return (max_workspace_bytes is None
            or workspace_bytes(n, c_in, c_out, taps, f, itemsize) <= max_workspace_bytes)


def use(*, d, n, taps, xp_is_numpy, energy, workspace_ok) -> bool:
    """Whether a correlation goes through this route (see the module's docstring)."""
    if not (d == 1 and xp_is_numpy and energy is None and workspace_ok):
        return False
    limit = MAX_TAPS_BATCH if _threads.blas_threads() > 1 else MAX_TAPS_BATCH_ONE_THREAD
    return taps * n <= limit


def _transform(a, band, start, step, opts):
    """Real ``(N, C, S)`` -> complex channel-major ``(C, N, K)``.  On the DFT-matrix route,
    one GEMM per sample with the real DFT matrix, written through a strided view of the
    output; on the FFT route, the FFT's spectrum transposed."""
    b, c, count = a.shape
    n_fft, k = band.fft_shape[0], band.retained
    if not opts.use_matrix(n_fft):
        z = spectral.forward_last(a, n_fft, k, start, step, xp=np, opts=opts)    # (N, C, K)
        return np.ascontiguousarray(z.transpose(1, 0, 2))
    m = spectral.dft_matrix(n_fft, k, start, step, count, "fwd_real", dtype=a.dtype)  # (S, 2K)
    out = np.empty((c, b, 2 * k), dtype=a.dtype)
    np.matmul(np.ascontiguousarray(a), m, out=out.transpose(1, 0, 2))
    return out.view(spectral.complex_dtype(a.dtype, xp=np))


def _inverse(z, band, step, count, opts):
    """Complex channel-major ``(C, N, K)`` -> real ``(N, C, count)`` at positions ``step * i``
    (one GEMM per sample on the DFT-matrix route)."""
    c, b, k = z.shape
    n_fft = band.fft_shape[0]
    rdtype = spectral.real_dtype(z.dtype, xp=np)
    if not opts.use_matrix(n_fft):
        return spectral.inverse_last(z.transpose(1, 0, 2), n_fft, 0, step, count, xp=np,
                                     opts=opts)
    m = spectral.dft_matrix(n_fft, k, 0, step, count, "inv_real", dtype=rdtype)      # (2K, S)
    out = np.empty((b, c, count), dtype=rdtype)
    np.matmul(z.view(rdtype).transpose(1, 0, 2), m, out=out)
    return out


def _expand(z, phases, groups):
    """``out[g, c, p, n, f] = phases[p, f] * z[g*C/G + c, n, f]``: ``(G, C/G * P, 2 N K)`` real."""
    c, b, k = z.shape
    p = phases.shape[0]
    out = np.empty((groups, c // groups, p, b * k), dtype=z.dtype)
    # the phases repeated over the batch, so that the product's inner loop runs over N K
    # contiguous elements rather than K (measured 0.65-0.85x the broadcast product's time)
    tiled = np.broadcast_to(phases[:, None, :], (p, b, k)).reshape(p, b * k)
    np.multiply(z.reshape(groups, c // groups, 1, b * k), tiled, out=out)
    return out.view(np.float32 if z.dtype == np.complex64 else np.float64).reshape(
        groups, (c // groups) * p, 2 * b * k)


def forward(x, w, band, geom, groups, opts):
    """``(y, x_hat)``: the correlation ``(N, C_out, L_out)`` (no bias) and the input's
    retained spectrum, channel-major ``(G, C_in/G, N, F)``."""
    n, c, _ = x.shape
    o, cg, k = w.shape
    f = band.retained
    cdtype = spectral.complex_dtype(x.dtype, xp=np)
    x_hat = _transform(x, band, 0, 1, opts)                                 # (C, N, F)
    phases = _phases(band, geom, k, "taps_fwd", x_hat)                      # (P, F)
    xt = _expand(x_hat, phases, groups)                                     # (G, C/G*P, 2NF)
    y_hat = np.matmul(w.reshape(groups, o // groups, cg * k), xt)          # (G, O/G, 2NF)
    y = _inverse(y_hat.reshape(o, n, 2 * f).view(cdtype), band, geom.stride[0], geom.out[0],
                 opts)
    return y, x_hat.reshape(groups, cg, n, f)


def backward(dy, x_hat, w, band, geom, groups, opts, *, need_dx=True, need_dw=True):
    """``(dx, dw)`` from ``dy`` ``(N, C_out, L_out)`` and :func:`forward`'s ``x_hat``; each
    ``None`` where not needed."""
    o, cg, k = w.shape
    og = o // groups
    n, f = dy.shape[0], band.retained
    cdtype = x_hat.dtype
    dy_hat = _transform(dy, band, 0, geom.stride[0], opts)                  # (O, N, F)
    # DX[c] = sum_{o, p} w[o, c, p] conj(e[p]) DY[o], e the forward's phases
    e1 = _expand(dy_hat, _phases(band, geom, k, "taps_adj", dy_hat), groups)   # (G, O/G*P, .)
    dx = dw = None
    if need_dx:
        wt = w.reshape(groups, og, cg, k).transpose(0, 2, 1, 3).reshape(groups, cg, og * k)
        dx_hat = np.matmul(wt, e1).reshape(groups * cg, n, 2 * f).view(cdtype)   # (C, N, F)
        dx = _inverse(dx_hat, band, 1, geom.length[0], opts)
    if not need_dw:
        return dx, dw
    # dw[o, c, p] = Re sum_{n, f} X[c, n, f] g[p, f] conj(DY[o, n, f]) with g the filters'
    # inverse transform, g[p, f] = (a_f / n) e[p, f] (a_f = 1 at DC and Nyquist, 2
    # elsewhere).  As interleaved real pairs, sum (a_re b_re + a_im b_im) = Re(a conj(b)),
    # so the right factor is conj(g) DY = (a_f / n) e1: the weights go on X, e1 is reused
    xw = x_hat.reshape(groups * cg, n, f) * _weights(band, spectral.real_dtype(cdtype, xp=np))
    xr = xw.view(e1.dtype).reshape(groups, cg, 2 * n * f)
    dw = np.matmul(xr, e1.transpose(0, 2, 1))                              # (G, C/G, O/G*P)
    dw = dw.reshape(groups, cg, og, k).transpose(0, 2, 1, 3).reshape(o, cg, k)
    return dx, np.ascontiguousarray(dw)


def _weights(band, rdtype):
    """``a_f / n`` per retained frequency: the real inverse transform's weights."""
    a = parseval_weights(band.fft_shape)[:band.retained]
    return (a / band.fft_shape[0]).astype(rdtype)


def _phases(band, geom, k, kind, like):
    """The taps' phases ``(P, F)`` of ``kind`` in ``like``'s complex dtype (cached)."""
    start, step = -geom.pad_lo[0], geom.dilation[0]
    return spectral.filter_matrix(band, (start,), (step,), (k,), kind, xp=np,
                                  dtype=like.dtype, like=like)
