"""Band-limited cross-correlation, forward and exact backward, in 1D and 2D.

``y = conv2d(x, w, b)`` computes, for each retained frequency ``f``,
``Y[f] = X[f] @ conj(W[f])`` (an ``(N x C_in) @ (C_in x C_out)`` product per group),
and returns the stride-subsampled inverse transform plus the bias.  The
backward is the adjoint of that map, computed from the retained spectra kept in
``ctx``: ``DX[f] = DY[f] @ W[f]^T`` and ``DW[f] = X[f]^T @ conj(DY[f])``.
See :mod:`blconv.band` for the band and :mod:`blconv.spectral` for the transforms.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _backend as B
from . import _workspace as W
from . import _validation as V
from . import _channels, _graphs, _pointwise, _taps, _threads, settings, spectral
from .band import Band, check_band, energy_keep, fft_shape_for, parseval_weights, rate_keep

__all__ = ["conv1d", "conv2d", "conv1d_forward", "conv1d_backward",
           "conv2d_forward", "conv2d_backward", "ConvContext"]


@dataclass(frozen=True)
class ConvContext:
    """What the backward of one band-limited correlation needs, and nothing more.

    Attributes
    ----------
    band : Band
        The band actually used (also in energy mode).
    geometry : blconv._validation.Geometry
        Per-axis sizes (input, kernel, stride, dilation, padding, outputs).
    groups : int
    x_hat : array
        What is kept of the input: its retained spectrum, frequency-major
        ``(F, groups, N, C_in / groups)``, or channel-major ``(groups, C_in / groups,
        N, F)`` where ``layout`` is ``"taps"``; where ``layout`` is ``"pointwise"``,
        the input low-passed to the band and read at the output positions, real
        ``(N, C_in, *out)``.
    w : array, shape (C_out, C_in / groups, k) or (C_out, C_in / groups, kH, kW)
        The filters, referenced, not copied (as autograd frameworks save them): do
        not modify them in place between a forward and its backward.  The backward
        recomputes their retained spectrum (one small GEMM) rather than keeping it:
        on a 64-channel 3x3 layer that spectrum is some 30-60 times their size.
    has_bias : bool
    fn : str
        The forward that made it (``"conv1d"`` or ``"conv2d"``).
    max_workspace_bytes : int or None
        The forward's bound, used again by the backward.
    layout : {"freq", "taps", "pointwise"}
        How the channel products run: per retained frequency (:mod:`blconv._channels`),
        as real GEMMs over the filter taps (:mod:`blconv._taps`: 1D layers on NumPy
        with few taps and a small batch, chosen by the forward from the shapes and the
        workspace bound), or for filters of one tap as a low-pass followed by one
        real GEMM over the channels (:mod:`blconv._pointwise`); the backward runs them
        the same way.
    """
    band: Band
    geometry: V.Geometry
    groups: int
    x_hat: Any
    w: Any
    has_bias: bool
    fn: str
    max_workspace_bytes: int | None = None
    layout: str = "freq"

    @property
    def nbytes(self) -> int:
        """Bytes the forward allocates and holds for the backward: the input's retained
        spectrum, or its low-passed values at the output positions (the filters are the
        caller's own array, referenced)."""
        return int(self.x_hat.size * self.x_hat.dtype.itemsize)

    @property
    def w_shape(self) -> tuple:
        return tuple(self.w.shape)

    @property
    def out_shape(self) -> tuple:
        n = self.x_hat.shape[0 if self.layout == "pointwise" else 2]
        return (n, self.w_shape[0]) + self.geometry.out


@dataclass(frozen=True)
class _Args:
    """The keyword arguments of the four public forwards, as passed."""
    stride: Any
    padding: Any
    dilation: Any
    groups: Any
    compress_rate: Any
    preserve_energy: Any
    fft_size: Any
    max_workspace_bytes: Any
    band: Any = None


@dataclass(frozen=True)
class _Plan:
    """One validated call: its geometry, FFT size, band policy and settings."""
    fn: str
    d: int
    geom: V.Geometry
    fft_shape: tuple
    rate: float
    energy: float | None
    groups: int
    max_workspace_bytes: int | None
    opts: settings.Settings
    band: Band | None = None            # a band given explicitly: no rate or energy choice


def _check_shapes(fn, d, x, w, b, groups):
    if x.ndim != d + 2:
        lay = "(N, C_in, L)" if d == 1 else "(N, C_in, H, W)"
        raise ValueError(f"{fn}: x must be {d + 2}-D {lay}, got shape {tuple(x.shape)}")
    if w.ndim != d + 2:
        lay = "(C_out, C_in/groups, k)" if d == 1 else "(C_out, C_in/groups, kH, kW)"
        raise ValueError(f"{fn}: w must be {d + 2}-D {lay}, got shape {tuple(w.shape)}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{fn}: groups must be an int >= 1, got {groups!r}")
    c_in, c_out = x.shape[1], w.shape[0]
    if c_in % groups:
        raise ValueError(f"{fn}: x.shape[1] (C_in={c_in}) must be divisible by groups ({groups})")
    if c_out % groups:
        raise ValueError(f"{fn}: w.shape[0] (C_out={c_out}) must be divisible by groups "
                         f"({groups})")
    if c_in != w.shape[1] * groups:
        raise ValueError(f"{fn}: x.shape[1] (C_in={c_in}) must equal w.shape[1] * groups "
                         f"({w.shape[1]} * {groups} = {w.shape[1] * groups})")
    if any(s < 1 for s in w.shape[2:]) or c_out < 1:
        raise ValueError(f"{fn}: w must have a non-empty kernel and C_out >= 1, "
                         f"got shape {tuple(w.shape)}")
    if b is not None and tuple(b.shape) != (c_out,):
        raise ValueError(f"{fn}: b must have shape (C_out,) = ({c_out},), got {tuple(b.shape)}")


def power_spectrum(x, n, *, xp, opts):
    """Full one-sided spectrum of ``x`` on the FFT grid ``n`` and its power summed over
    batch and channels (float64, on ``x``'s device)."""
    axes = tuple(range(2, 2 + len(n)))
    full = B.rfftn(x, n, axes, xp=xp, workers=opts.fft_workers)     # (N, C, *spectrum)
    # squared in float64: float32 power under- and overflows for |x| < 1e-23 or > 1e18
    re, im = xp.astype(xp.real(full), xp.float64), xp.astype(xp.imag(full), xp.float64)
    return full, xp.sum(re * re + im * im, axis=(0, 1))


def host_energy(power, n) -> np.ndarray:
    """The power of :func:`power_spectrum` on the host, weighted to two-sided energy per
    one-sided position (:func:`blconv.band.parseval_weights`): what ``energy_keep`` reads."""
    return np.asarray(B.to_numpy(power), dtype=np.float64) * parseval_weights(n)


def _crop(full, band, *, xp, like):
    """Retained coefficients ``(F, N, C)`` of a full one-sided spectrum ``(N, C, *spectrum)``."""
    d = len(band.fft_shape)
    if d == 2:
        full = xp.take(full, B.asarray(band.indices(0), xp=xp, like=like), axis=2)
    N, C = full.shape[:2]
    return xp.reshape(spectral.contiguous(xp.permute_dims(
        full[..., :band.keep[-1]], tuple(range(2, 2 + d)) + (0, 1)), xp=xp), (band.retained, N, C))


def _forward(d, x, w, b, args: _Args):
    fn = f"conv{d}d"
    xp = B.namespace(x, w, b, fn=fn, names=("x", "w", "b"))
    x, w, b = V.native(x), V.native(w), V.native(b)
    V.check_dtypes(fn, xp, x=x, w=w, b=b)
    _check_shapes(fn, d, x, w, b, args.groups)
    geom = V.conv_geometry(fn, tuple(x.shape[2:]), tuple(w.shape[2:]), stride=args.stride,
                           padding=args.padding, dilation=args.dilation)
    rate = V.check_rate(fn, args.compress_rate)
    energy = V.check_energy(fn, args.preserve_energy, rate)
    band = None
    if args.band is not None:
        if rate > 0 or energy is not None:
            raise ValueError(f"{fn}: band excludes compress_rate > 0 and preserve_energy, got "
                             f"compress_rate={args.compress_rate!r}, "
                             f"preserve_energy={args.preserve_energy!r}")
        band = check_band(fn, args.band, geom, args.fft_size)
    opts = settings.current()                                   # read once per call
    plan = _Plan(fn, d, geom, band.fft_shape if band is not None
                 else fft_shape_for(geom, args.fft_size, fn=fn), rate, energy, int(args.groups),
                 opts.max_workspace_bytes if args.max_workspace_bytes is None
                 else args.max_workspace_bytes, opts, band)
    with W.memory_hint(fn, xp):
        return _forward_impl(x, w, b, plan, xp=xp)


def _energy_band(x, plan: _Plan, chunks, *, xp):
    """The band holding ``plan.energy`` of all of ``x``'s spectral energy, and ``x``'s
    full spectrum when it was computed in one piece."""
    n, power, full = plan.fft_shape, None, None
    for i0, i1 in chunks:
        full, p = power_spectrum(x[i0:i1, ...], n, xp=xp, opts=plan.opts)
        power = p if power is None else power + p
    band = Band.from_keep(n, energy_keep(host_energy(power, n), n, plan.energy))
    return band, (full if len(chunks) == 1 else None)


def _forward_impl(x, w, b, plan: _Plan, *, xp):
    d, G, geom, opts = plan.d, plan.groups, plan.geom, plan.opts
    N, C = x.shape[:2]
    O = w.shape[0]
    band = (plan.band if plan.band is not None                      # also sizes the chunks
            else Band.from_keep(plan.fft_shape, rate_keep(plan.fft_shape, plan.rate)))
    itemsize = 4 if x.dtype == xp.float32 else 8
    # also checks max_workspace_bytes, before either route reads it
    chunks = W.chunks(plan.fn, N, W.bytes_per_sample(geom, band, C, O, itemsize,
                                                   plan.energy is not None),
                     plan.max_workspace_bytes)
    if _pointwise.use(w.shape[2:]):
        if plan.energy is not None:                                 # the band from all of x
            band = _energy_band(x, plan, chunks, xp=xp)[0]
        y, z = _pointwise.forward(x, w, band, geom, G, chunks, xp=xp, opts=opts)
        if b is not None:
            y += xp.reshape(b, (O,) + (1,) * d)                     # y is ours
        return y, ConvContext(band, geom, G, z, w, b is not None, plan.fn,
                              plan.max_workspace_bytes, layout="pointwise")
    taps = int(np.prod(w.shape[2:]))
    if _taps.use(d=d, n=N, taps=taps, xp_is_numpy=B.is_numpy(xp), energy=plan.energy,
                 workspace_ok=_taps.fits(N, C, O, taps, band.retained, itemsize,
                                         plan.max_workspace_bytes)):
        y, x_hat = _taps.forward(x, w, band, geom, G, opts)
        if b is not None:
            y += xp.reshape(b, (O,) + (1,) * d)
        return y, ConvContext(band, geom, G, x_hat, w, b is not None, plan.fn,
                              plan.max_workspace_bytes, layout="taps")
    if plan.energy is None and len(chunks) == 1:                    # a CUDA graph can hold it
        y, x_hat = _graphs.run(
            ("forward", band, geom, G, opts),
            functools.partial(_freq_forward, band=band, geom=geom, groups=G, opts=opts, xp=xp),
            (x, w, b), xp=xp, capturable=spectral.all_matrix(band, opts))
        return y, ConvContext(band, geom, G, x_hat, w, b is not None, plan.fn,
                              plan.max_workspace_bytes)
    full = None
    if plan.energy is not None:                                     # the band from all of x
        band, full = _energy_band(x, plan, chunks, xp=xp)
    filters = _channels.Filters(w, band, **geom.tap_grid(), groups=G, xp=xp, opts=opts,
                                nthreads=_threads.count(opts, xp=xp))
    x_hat = y = None
    for i0, i1 in chunks:
        xc = x[i0:i1, ...]
        spec = None
        if plan.energy is not None:
            spec = _crop(full if full is not None else power_spectrum(xc, plan.fft_shape, xp=xp,
                                                                      opts=opts)[0],
                         band, xp=xp, like=x)
        yc, xc_hat = freq_chunk(xc, spec, filters, band, geom, G, opts, xp=xp)
        if len(chunks) == 1:
            x_hat, y = xc_hat, yc
            break
        if y is None:
            y = xp.empty((N, O) + geom.out, dtype=yc.dtype, device=B.device(x))
            x_hat = xp.empty((band.retained, G, N, C // G), dtype=xc_hat.dtype,
                             device=B.device(x))
        y[i0:i1, ...] = yc
        x_hat[:, :, i0:i1, :] = xc_hat
    if b is not None:
        y += xp.reshape(b, (O,) + (1,) * d)       # in place: y is ours (0.25-0.5x a new sum)
    y = xp.astype(y, x.dtype, copy=False)
    ctx = ConvContext(band, geom, G, x_hat, w, b is not None, plan.fn, plan.max_workspace_bytes)
    return y, ctx


def freq_chunk(xc, spec, filters, band, geom, G, opts, *, xp):
    """The per-frequency route on a batch ``xc`` ``(m, C, *length)``: ``y`` (no bias) and
    what the backward keeps, ``x_hat`` ``(F, G, m, C/G)``; ``spec`` is ``xc``'s retained
    spectrum ``(F, m, C)`` where the energy band already made it."""
    d, m, F = len(geom.out), xc.shape[0], band.retained
    xc_hat = grouped_spectrum(xc, spec, band, G, opts, xp=xp)
    yc_hat = xp.reshape(xp.permute_dims(_channels.forward(xc_hat, filters, xp=xp),
                                        (0, 2, 1, 3)), (F, m, G * filters.og))
    yc = spectral.inverse(yc_hat, band, start=(0,) * d, step=geom.stride, count=geom.out,
                          xp=xp, opts=opts)
    return yc, xc_hat


def grouped_spectrum(xc, spec, band, G, opts, *, xp):
    """``x_hat`` ``(F, G, m, C/G)`` of a batch ``xc`` ``(m, C, *length)``: its retained
    spectrum ``spec`` ``(F, m, C)`` (computed when ``None``), grouped for one
    ``(m x C/G) @ (C/G x O/G)`` product per frequency and group."""
    d, (m, C), F = xc.ndim - 2, xc.shape[:2], band.retained
    if spec is None:
        spec = spectral.forward(xc, band, start=(0,) * d, step=(1,) * d, xp=xp, opts=opts)
    return spectral.contiguous(
        xp.permute_dims(xp.reshape(spec, (F, m, G, C // G)), (0, 2, 1, 3)), xp=xp)


def _freq_forward(x, w, b, *, band, geom, groups, opts, xp):
    """The whole per-frequency forward of one batch as a function of arrays alone (what
    :mod:`blconv._graphs` captures): ``y`` with its bias, and ``x_hat``."""
    filters = _channels.Filters(w, band, **geom.tap_grid(), groups=groups, xp=xp, opts=opts,
                                nthreads=_threads.count(opts, xp=xp))
    y, x_hat = freq_chunk(x, None, filters, band, geom, groups, opts, xp=xp)
    if b is not None:
        y += xp.reshape(b, (w.shape[0],) + (1,) * len(geom.out))
    return xp.astype(y, x.dtype, copy=False), x_hat


def _backward(d, dy, ctx, need_dx, need_dw):
    fn = f"conv{d}d_backward"
    need_dx, need_dw = V.need_flags(fn, need_dx, need_dw)
    if not isinstance(ctx, ConvContext) or len(ctx.geometry.out) != d:
        raise TypeError(f"{fn}: ctx must be the ConvContext returned by conv{d}d_forward, "
                        f"got {type(ctx).__name__}"
                        + (f" from {ctx.fn}" if isinstance(ctx, ConvContext) else ""))
    xp = B.namespace(dy, ctx.x_hat, fn=fn, names=("dy", "ctx arrays"))
    dy = V.native(dy)
    real = xp.float32 if ctx.x_hat.dtype in (xp.complex64, xp.float32) else xp.float64
    if dy.dtype != real:
        name = "float32" if real == xp.float32 else "float64"
        raise TypeError(f"{fn}: dy must have the forward's dtype {name}, got {dy.dtype}")
    if tuple(dy.shape) != ctx.out_shape:
        raise ValueError(f"{fn}: dy must have the forward output's shape {ctx.out_shape}, "
                         f"got {tuple(dy.shape)}")
    with W.memory_hint(fn, xp):
        return _backward_impl(d, fn, dy, ctx, real, need_dx, need_dw, xp=xp,
                              opts=settings.current())


def _backward_impl(d, fn, dy, ctx, real, need_dx, need_dw, *, xp, opts):
    geom, band, G = ctx.geometry, ctx.band, ctx.groups
    need = dict(need_dx=need_dx, need_dw=need_dw)
    if ctx.layout == "taps":
        dx, dw = _taps.backward(dy, ctx.x_hat, ctx.w, band, geom, G, opts, **need)
        return dx, dw, bias_grad(dy, ctx.has_bias, xp=xp)
    O, Cg = ctx.w_shape[:2]
    N = ctx.out_shape[0]
    itemsize = 4 if real == xp.float32 else 8
    chunks = W.chunks(fn, N, W.bytes_per_sample(geom, band, G * Cg, O, itemsize, False),
                     ctx.max_workspace_bytes)
    if ctx.layout == "pointwise":
        dx, dw = _pointwise.backward(dy, ctx.x_hat, ctx.w, band, geom, G, chunks, xp=xp,
                                     opts=opts, **need)
        return dx, dw, bias_grad(dy, ctx.has_bias, xp=xp)
    if len(chunks) == 1:                                            # a CUDA graph can hold it
        return _graphs.run(
            ("backward", band, geom, G, ctx.has_bias, need_dx, need_dw, opts),
            functools.partial(_freq_backward, band=band, geom=geom, groups=G,
                              has_bias=ctx.has_bias, opts=opts, xp=xp, **need),
            (dy, ctx.x_hat, ctx.w), xp=xp, capturable=spectral.all_matrix(band, opts))
    # conj(W[f]) per group: recomputed from the filters (a small GEMM per block)
    filters = _channels.Filters(ctx.w, band, **geom.tap_grid(), groups=G, xp=xp, opts=opts,
                                nthreads=_threads.count(opts, xp=xp), transposed=True)
    dx = dw_acc = None
    for i0, i1 in chunks:
        dxc, part = _freq_backward_chunk(dy[i0:i1, ...], ctx.x_hat[:, :, i0:i1, :], filters,
                                         band, geom, G, opts, xp=xp, **need)
        if need_dw:
            dw_acc = part if dw_acc is None else dw_acc + part
        if need_dx:
            if dx is None:
                dx = xp.empty((N, G * Cg) + geom.length, dtype=dxc.dtype, device=B.device(dy))
            dx[i0:i1, ...] = dxc
    return real_grads(dx, dw_acc, filters, real, xp=xp) + (
        bias_grad(dy, ctx.has_bias, xp=xp),)


def real_grads(dx, dw_acc, filters, real, *, xp):
    """``(dx, dw)`` in the real dtype ``real``, ``dw`` from its accumulator; ``None``
    for what was not computed."""
    return (None if dx is None else xp.astype(dx, real, copy=False),
            None if dw_acc is None else xp.astype(_channels.dw(dw_acc, filters, xp=xp), real,
                                                  copy=False))


def bias_grad(dy, has_bias, *, xp):
    """``db``: ``dy`` summed over the batch and the spatial axes (``None`` without a bias)."""
    return xp.sum(dy, axis=(0,) + tuple(range(2, dy.ndim))) if has_bias else None


def _freq_backward_chunk(dyc, xc_hat, filters, band, geom, G, opts, *, xp, need_dx=True,
                         need_dw=True):
    """``dx`` of a batch chunk ``dyc`` ``(m, O, *out)`` on the per-frequency route, and
    its part of ``dw``'s accumulator (:func:`blconv._channels.backward`); each ``None``
    where not needed."""
    d, (m, O), F = len(geom.out), dyc.shape[:2], band.retained
    # conj(DY) directly: conjugated DFT matrices on the matrix route
    cdy = spectral.forward(dyc, band, start=(0,) * d, step=geom.stride, xp=xp, opts=opts,
                           conj=True)                                 # (F, m, O)
    cdy = spectral.contiguous(
        xp.permute_dims(xp.reshape(cdy, (F, m, G, O // G)), (0, 2, 1, 3)), xp=xp)
    # DX[f] = DY[f] @ W[f] = conj(conj(DY[f]) @ conj(W[f])): the outer conj is the
    # inverse transform's; DW[f] = X[f]^T @ conj(DY[f]), summed over the batch
    dxc_hat, part = _channels.backward(xc_hat, cdy, filters, xp=xp, need_dx=need_dx,
                                       need_dw=need_dw)
    if not need_dx:
        return None, part
    dxc_hat = xp.reshape(xp.permute_dims(dxc_hat, (0, 2, 1, 3)), (F, m, G * filters.cg))
    dxc = spectral.inverse(dxc_hat, band, start=(0,) * d, step=(1,) * d, count=geom.length,
                           xp=xp, opts=opts, conj=True)
    return dxc, part


def _freq_backward(dy, x_hat, w, *, band, geom, groups, has_bias, opts, xp, need_dx=True,
                   need_dw=True):
    """The whole per-frequency backward of one batch as a function of arrays alone (what
    :mod:`blconv._graphs` captures): ``dx``, ``dw`` (each ``None`` where not needed),
    ``db``."""
    real = spectral.real_dtype(x_hat.dtype, xp=xp)
    filters = _channels.Filters(w, band, **geom.tap_grid(), groups=groups, xp=xp, opts=opts,
                                nthreads=_threads.count(opts, xp=xp), transposed=True)
    dx, acc = _freq_backward_chunk(dy, x_hat, filters, band, geom, groups, opts, xp=xp,
                                   need_dx=need_dx, need_dw=need_dw)
    return real_grads(dx, acc, filters, real, xp=xp) + (bias_grad(dy, has_bias, xp=xp),)


def conv1d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, compress_rate=0.0,
           preserve_energy=None, fft_size="fast", max_workspace_bytes=None, band=None):
    """Band-limited 1D cross-correlation.

    Parameters
    ----------
    x : array, shape (N, C_in, L)
        Input, float32 or float64 (NumPy, CuPy or any array-API namespace; the
        output lives in the same namespace and on the same device).
    w : array, shape (C_out, C_in / groups, k)
        Filters, applied without flipping (cross-correlation, as in PyTorch).
    b : array, shape (C_out,), optional
        Bias.
    stride, dilation : int or tuple of int
    padding : int, tuple of int, 'valid' or 'same'
        Zero padding on both sides; ``'same'`` needs stride 1 and puts the odd
        extra zero on the right, as PyTorch does.  The padded input is never
        built: padding is a phase of the filter's spectrum.
    groups : int
        ``C_in`` and ``C_out`` are split into this many independent groups.
    compress_rate : float
        Fraction of one-sided spectral coefficients discarded, in ``[0, 1)``;
        ``0`` is exact correlation.  The band is defined in :mod:`blconv.band`.
    preserve_energy : float, optional
        In ``(0, 1]``: instead of a fixed rate, keep the smallest band of a nested
        family holding this fraction of the input's spectral energy, chosen anew
        at every call (``ctx.band`` says which).  Excludes ``compress_rate > 0``.
    fft_size : 'fast', 'pow2', int or tuple of int
        Transform size per axis: ``'fast'`` (default) is the smallest exact size
        ``m = max(L + max(pad_lo, pad_hi), k_eff, out1)`` (at most the padded length)
        when ``m <= 256`` (:data:`blconv.band.FAST_EXACT_MAX`) and the smallest
        5-smooth size ``>= m`` above; ``'pow2'`` the authors' power of two; or
        explicit (``>=`` that smallest size).  The band depends on this and on the
        shapes and policy only, never on a speed setting (:mod:`blconv.settings`).
    max_workspace_bytes : int, optional
        Bound on the transient memory of one call (default: the setting
        :func:`blconv.max_workspace_bytes`, unbounded): the batch is processed in
        chunks sized from an estimate of the bytes one sample needs (at least one
        sample per chunk), here and in the backward.  The results equal the
        unchunked ones to rounding (BLAS blocks a GEMM differently for fewer
        rows, and ``dw`` sums the chunks' contributions).  On CuPy an
        out-of-memory error is re-raised as ``MemoryError`` naming this option.
    band : Band, optional
        Use exactly this band (its ``fft_shape`` is the transform size): a band
        chosen once, for instance by :func:`blconv.nn.calibrate`, so that the
        output of a sample does not depend on the rest of the batch.  Excludes
        ``compress_rate > 0`` and ``preserve_energy``; ``fft_shape`` needs one
        entry per spatial axis, each at least the smallest exact size for this
        input (see ``fft_size``), and ``keep[a]`` in ``1 .. fft_shape[a] // 2 + 1``.
        ``band=band_for(x.shape, w.shape, ..., compress_rate=c)`` gives exactly
        the result of ``compress_rate=c``.

    Returns
    -------
    y : array, shape (N, C_out, L_out)
        Same dtype, namespace and device as ``x``.

    Raises
    ------
    ValueError
        Shapes, sizes or ranges that do not fit; the message names the argument.
    TypeError
        Dtypes other than float32/float64, mixed dtypes, arrays of different libraries,
        or a ``band`` that is not a :class:`~blconv.Band`.

    Notes
    -----
    With ``X``, ``W`` the spectra restricted to the retained band and ``f`` a
    retained frequency, ``Y[f] = X[f] @ conj(W[f])`` per group; ``y`` is the
    inverse transform at the (strided) output positions, plus ``b``.  At
    ``compress_rate=0`` this is exact cross-correlation.

    See Also
    --------
    conv1d_forward, conv1d_backward, conv2d, band_for

    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.array([[[1., 2., 3., 4.]]]); w = np.array([[[1., -1.]]])
    >>> blconv.conv1d(x, w).round(12)
    array([[[-1., -1., -1.]]])
    >>> y = blconv.conv1d(np.ones((2, 3, 50)), np.ones((4, 3, 5)), padding="same",
    ...                   compress_rate=0.5)
    >>> y.shape
    (2, 4, 50)
    """
    return _forward(1, x, w, b, _Args(stride, padding, dilation, groups, compress_rate,
                                      preserve_energy, fft_size, max_workspace_bytes, band))[0]


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, compress_rate=0.0,
           preserve_energy=None, fft_size="fast", max_workspace_bytes=None, band=None):
    """Band-limited 2D cross-correlation.

    Parameters
    ----------
    x : array, shape (N, C_in, H, W)
        Input, float32 or float64 (NumPy, CuPy or any array-API namespace).
    w : array, shape (C_out, C_in / groups, kH, kW)
        Filters, applied without flipping (cross-correlation, as in PyTorch).
    b, stride, padding, dilation, groups, compress_rate, preserve_energy, fft_size, max_workspace_bytes, band
        As in :func:`conv1d`, per spatial axis (an int or a pair).

    Returns
    -------
    y : array, shape (N, C_out, H_out, W_out)
        Same dtype, namespace and device as ``x``.

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv1d`.

    Notes
    -----
    Per retained frequency ``f`` of the two-axis band, ``Y[f] = X[f] @ conj(W[f])``
    per group, as in :func:`conv1d`.

    See Also
    --------
    conv2d_forward, conv2d_backward, conv1d, band_for

    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.arange(1., 10.).reshape(1, 1, 3, 3); w = np.array([[[[1., 0.], [0., -1.]]]])
    >>> blconv.conv2d(x, w).round(12)
    array([[[[-4., -4.],
             [-4., -4.]]]])
    >>> x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    >>> w = np.ones((16, 3, 3, 3), np.float32)
    >>> y = blconv.conv2d(x, w, padding=1, compress_rate=0.5)
    >>> y.shape, y.dtype
    ((8, 16, 32, 32), dtype('float32'))
    """
    return _forward(2, x, w, b, _Args(stride, padding, dilation, groups, compress_rate,
                                      preserve_energy, fft_size, max_workspace_bytes, band))[0]


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
                   compress_rate=0.0, preserve_energy=None, fft_size="fast",
                   max_workspace_bytes=None, band=None):
    """Band-limited 1D cross-correlation, keeping what the backward needs.

    Parameters
    ----------
    x, w, b, stride, padding, dilation, groups, compress_rate, preserve_energy, fft_size, max_workspace_bytes, band
        As in :func:`conv1d`.

    Returns
    -------
    y : array, shape (N, C_out, L_out)
    ctx : ConvContext
        The band used (``ctx.band``), the input's retained spectrum (``ctx.nbytes``)
        and a reference to ``w``: nothing full-size is kept.

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv1d`.

    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.ones((2, 3, 12)); w = np.ones((4, 3, 3))
    >>> y, ctx = blconv.conv1d_forward(x, w, padding=1, compress_rate=0.5)
    >>> dx, dw, db = blconv.conv1d_backward(np.ones_like(y), ctx)
    >>> dx.shape == x.shape, dw.shape == w.shape, db is None
    (True, True, True)
    """
    return _forward(1, x, w, b, _Args(stride, padding, dilation, groups, compress_rate,
                                      preserve_energy, fft_size, max_workspace_bytes, band))


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
                   compress_rate=0.0, preserve_energy=None, fft_size="fast",
                   max_workspace_bytes=None, band=None):
    """Band-limited 2D cross-correlation, keeping what the backward needs.

    Parameters
    ----------
    x, w, b, stride, padding, dilation, groups, compress_rate, preserve_energy, fft_size, max_workspace_bytes, band
        As in :func:`conv2d`.

    Returns
    -------
    y : array, shape (N, C_out, H_out, W_out)
    ctx : ConvContext
        As in :func:`conv1d_forward`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv2d`.

    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.ones((2, 3, 12, 12)); w = np.ones((4, 3, 3, 3))
    >>> y, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=0.5)
    >>> ctx.band.keep, ctx.nbytes == ctx.x_hat.nbytes
    ((4, 4), True)
    """
    return _forward(2, x, w, b, _Args(stride, padding, dilation, groups, compress_rate,
                                      preserve_energy, fft_size, max_workspace_bytes, band))


def conv1d_backward(dy, ctx, *, need_dx=True, need_dw=True):
    """Exact gradients of :func:`conv1d_forward` (the adjoint of the band-limited map).

    Parameters
    ----------
    dy : array, shape (N, C_out, L_out)
        Gradient of the loss with respect to ``y``; same dtype and namespace.
    ctx : ConvContext
        From :func:`conv1d_forward`; it can be used more than once.
    need_dx, need_dw : bool, default True
        Whether to compute ``dx`` and ``dw``; one not needed is returned as ``None``
        and its share of the work (a channel product per frequency, and for ``dx`` an
        inverse transform) is skipped: ``dx`` of a first layer, ``dw`` of a frozen one
        or of an input gradient alone (adversarial examples, saliency).  What is
        computed is the same either way, to rounding.

    Returns
    -------
    dx : array, shape (N, C_in, L), or None without ``need_dx``
    dw : array, shape (C_out, C_in / groups, k), or None without ``need_dw``
    db : array, shape (C_out,), or None when the forward had no bias

    Raises
    ------
    ValueError
        ``dy`` does not have the forward output's shape.
    TypeError
        ``dy`` has another dtype or library, ``ctx`` is not from conv1d_forward, or
        ``need_dx``/``need_dw`` is not a bool.

    Notes
    -----
    With ``DY`` the spectrum of ``dy`` placed at the strided output positions
    (never built zero-upsampled) and restricted to the band,
    ``DX[f] = DY[f] @ W[f]^T`` and ``DW[f] = X[f]^T @ conj(DY[f])``; the inverse
    transforms are evaluated at the input and filter-tap positions only.  The
    result is the exact gradient of the band-limited forward, not an
    approximation of the full one.

    Examples
    --------
    >>> import numpy as np, blconv
    >>> y, ctx = blconv.conv1d_forward(np.ones((1, 1, 6)), np.ones((1, 1, 2)))
    >>> [g.shape for g in blconv.conv1d_backward(np.ones_like(y), ctx)[:2]]
    [(1, 1, 6), (1, 1, 2)]
    """
    return _backward(1, dy, ctx, need_dx, need_dw)


def conv2d_backward(dy, ctx, *, need_dx=True, need_dw=True):
    """Exact gradients of :func:`conv2d_forward` (the adjoint of the band-limited map).

    Parameters
    ----------
    dy : array, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to ``y``; same dtype and namespace.
    ctx : ConvContext
        From :func:`conv2d_forward`; it can be used more than once.
    need_dx, need_dw : bool, default True
        As in :func:`conv1d_backward`.

    Returns
    -------
    dx : array, shape (N, C_in, H, W), or None without ``need_dx``
    dw : array, shape (C_out, C_in / groups, kH, kW), or None without ``need_dw``
    db : array, shape (C_out,), or None when the forward had no bias

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv1d_backward`.

    Notes
    -----
    As in :func:`conv1d_backward`, per retained frequency of the two-axis band.

    Examples
    --------
    >>> import numpy as np, blconv
    >>> y, ctx = blconv.conv2d_forward(np.ones((1, 1, 6, 6)), np.ones((1, 1, 2, 2)))
    >>> [g.shape for g in blconv.conv2d_backward(np.ones_like(y), ctx)[:2]]
    [(1, 1, 6, 6), (1, 1, 2, 2)]
    """
    return _backward(2, dy, ctx, need_dx, need_dw)
