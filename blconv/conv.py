"""Band-limited cross-correlation, forward and exact backward, in 1D and 2D.

``y = conv2d(x, w, b)`` computes, for each retained frequency ``f``,
``Y[f] = X[f] @ conj(W[f])`` (an ``(N x C_in) @ (C_in x C_out)`` product per group),
and returns the stride-subsampled inverse transform plus the bias.  The
backward is the adjoint of that map, computed from the retained spectra kept in
``ctx``: ``DX[f] = DY[f] @ W[f]^T`` and ``DW[f] = X[f]^T @ conj(DY[f])``.
See :mod:`blconv.band` for the band and :mod:`blconv.spectral` for the transforms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _backend as B
from . import _validation as V
from . import settings, spectral
from .band import Band, energy_keep, fft_shape_for, rate_keep

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
    x_hat : array, shape (F, groups, N, C_in / groups)
        Retained spectrum of the input.
    w_hat : array, shape (F, groups, C_in / groups, C_out / groups)
        Conjugate of the retained spectrum of the filter.
    w_shape : tuple of int
    has_bias : bool
    """
    band: Band
    geometry: V.Geometry
    groups: int
    x_hat: Any
    w_hat: Any
    w_shape: tuple
    has_bias: bool
    fn: str
    max_workspace_bytes: int | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held between forward and backward (the retained spectra)."""
        return int(self.x_hat.size * self.x_hat.dtype.itemsize +
                   self.w_hat.size * self.w_hat.dtype.itemsize)

    @property
    def out_shape(self) -> tuple:
        n = self.x_hat.shape[2]
        return (n, self.w_shape[0]) + self.geometry.out


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


def _power(x, n, *, xp, opts):
    """Full one-sided spectrum of ``x`` and its power summed over batch and channels."""
    axes = tuple(range(2, 2 + len(n)))
    full = B.rfftn(x, n, axes, xp=xp, workers=opts.fft_workers)     # (N, C, *spectrum)
    # squared in float64: float32 power under- and overflows for |x| < 1e-23 or > 1e18
    re, im = xp.astype(xp.real(full), xp.float64), xp.astype(xp.imag(full), xp.float64)
    return full, xp.sum(re * re + im * im, axis=(0, 1))


def _parseval(power, n) -> np.ndarray:
    """Host energy per one-sided position: columns other than DC and Nyquist count twice."""
    energy = np.asarray(B.to_numpy(power), dtype=np.float64)
    weight = np.full(energy.shape[-1], 2.0)
    weight[0] = 1.0
    if n[-1] % 2 == 0:
        weight[-1] = 1.0
    return energy * weight


def _crop(full, band, *, xp, like):
    """Retained coefficients ``(F, N, C)`` of a full one-sided spectrum ``(N, C, *spectrum)``."""
    d = len(band.fft_shape)
    if d == 2:
        full = xp.take(full, B.asarray(band.indices(0), xp=xp, like=like), axis=2)
    N, C = full.shape[:2]
    return xp.reshape(spectral.contiguous(xp.permute_dims(
        full[..., :band.keep[-1]], tuple(range(2, 2 + d)) + (0, 1)), xp=xp), (band.retained, N, C))


def _bytes_per_sample(geom, band, c_in, c_out, itemsize, energy):
    """Estimated transient bytes one sample needs in forward or backward (see Notes)."""
    F, K = band.retained, band.keep[-1]
    rows_in = math.prod(geom.length[:-1])
    rows_out = math.prod(geom.out[:-1])
    cs = 2 * itemsize
    est = cs * (2 * c_in * rows_in * K + 2 * F * (c_in + c_out) + 2 * c_out * rows_out * K)
    est += itemsize * (c_in * math.prod(geom.length) + c_out * math.prod(geom.out))
    if energy:
        est += cs * c_in * math.prod(band.fft_shape[:-1]) * (band.fft_shape[-1] // 2 + 1)
    return est


def _chunks(fn, n, per_sample, max_workspace_bytes):
    if max_workspace_bytes is None:
        return [(0, n)]
    if (not isinstance(max_workspace_bytes, (int, np.integer)) or isinstance(max_workspace_bytes,
                                                                           bool)
            or max_workspace_bytes < 1):
        raise ValueError(f"{fn}: max_workspace_bytes must be None or an int >= 1, "
                         f"got {max_workspace_bytes!r}")
    size = max(1, int(max_workspace_bytes) // max(1, per_sample))
    return [(i, min(n, i + size)) for i in range(0, max(n, 1), size)]


def _out_of_memory(fn, xp, err):
    """CuPy's out-of-memory error, re-raised with the option that avoids it."""
    if B.is_cupy(xp) and type(err).__name__ == "OutOfMemoryError":
        return MemoryError(f"{fn}: out of GPU memory ({err}); pass max_workspace_bytes=... "
                           f"(bytes) to process the batch in chunks")
    return None


def _forward(d, x, w, b, *, stride, padding, dilation, groups, compress_rate,
             preserve_energy, fft_size, max_workspace_bytes=None):
    fn = f"conv{d}d"
    xp = B.namespace(x, w, b, fn=fn, names=("x", "w", "b"))
    x, w, b = V.native(x), V.native(w), V.native(b)
    V.check_dtypes(fn, xp, x=x, w=w, b=b)
    _check_shapes(fn, d, x, w, b, groups)
    geom = V.conv_geometry(fn, tuple(x.shape[2:]), tuple(w.shape[2:]),
                           stride=stride, padding=padding, dilation=dilation)
    c = V.check_rate(fn, compress_rate)
    e = V.check_energy(fn, preserve_energy, c)
    n = fft_shape_for(geom, fft_size, fn=fn)
    opts = settings.current()                                   # read once per call
    if max_workspace_bytes is None:
        max_workspace_bytes = opts.max_workspace_bytes
    try:
        return _forward_impl(d, fn, x, w, b, geom, n, c, e, groups, max_workspace_bytes, xp=xp,
                             opts=opts)
    except Exception as err:
        mem = _out_of_memory(fn, xp, err)
        if mem is None:
            raise
        raise mem from err


def _forward_impl(d, fn, x, w, b, geom, n, c, e, G, max_workspace_bytes, *, xp, opts):
    N, C = x.shape[:2]
    O = w.shape[0]
    band = Band.from_keep(n, rate_keep(n, c))                       # sizes the chunks
    itemsize = 4 if x.dtype == xp.float32 else 8
    chunks = _chunks(fn, N, _bytes_per_sample(geom, band, C, O, itemsize, e is not None),
                     max_workspace_bytes)
    full = None
    if e is not None:                                               # the band from all of x
        power = None
        for i0, i1 in chunks:
            full, p = _power(x[i0:i1, ...], n, xp=xp, opts=opts)
            power = p if power is None else power + p
        band = Band.from_keep(n, energy_keep(_parseval(power, n), n, e))
        full = full if len(chunks) == 1 else None
    F = band.retained
    # (F, G, C/G, O/G): conj(W[f])^T per group, so that Y[f] = X[f] @ w_hat[f]
    w_hat = spectral.filter_forward(w, band, start=tuple(-p for p in geom.pad_lo),
                                    step=geom.dilation, groups=G, xp=xp, opts=opts)
    x_hat = y = None
    for i0, i1 in chunks:
        xc, m = x[i0:i1, ...], i1 - i0
        if e is None:
            xc_hat = spectral.forward(xc, band, start=(0,) * d, step=(1,) * d, xp=xp,
                                      opts=opts)
        else:
            xc_hat = _crop(full if full is not None else _power(xc, n, xp=xp, opts=opts)[0],
                           band, xp=xp, like=x)
        # (F, G, m, C/G): one (m x C/G) @ (C/G x O/G) product per frequency and group
        xc_hat = spectral.contiguous(
            xp.permute_dims(xp.reshape(xc_hat, (F, m, G, C // G)), (0, 2, 1, 3)), xp=xp)
        yc_hat = xp.reshape(xp.permute_dims(xc_hat @ w_hat, (0, 2, 1, 3)), (F, m, O))
        yc = spectral.inverse(yc_hat, band, start=(0,) * d, step=geom.stride, count=geom.out,
                              xp=xp, opts=opts)
        if len(chunks) == 1:
            x_hat, y = xc_hat, yc
            break
        if y is None:
            y = xp.empty((N, O) + geom.out, dtype=yc.dtype, device=B.device(x))
            x_hat = xp.empty((F, G, N, C // G), dtype=xc_hat.dtype, device=B.device(x))
        y[i0:i1, ...] = yc
        x_hat[:, :, i0:i1, :] = xc_hat
    if b is not None:
        y = y + xp.reshape(b, (O,) + (1,) * d)
    y = xp.astype(y, x.dtype, copy=False)
    ctx = ConvContext(band, geom, G, x_hat, w_hat, tuple(w.shape), b is not None, fn,
                      max_workspace_bytes)
    return y, ctx


def _backward(d, dy, ctx):
    fn = f"conv{d}d_backward"
    if not isinstance(ctx, ConvContext) or len(ctx.geometry.out) != d:
        raise TypeError(f"{fn}: ctx must be the ConvContext returned by conv{d}d_forward, "
                        f"got {type(ctx).__name__}"
                        + (f" from {ctx.fn}" if isinstance(ctx, ConvContext) else ""))
    xp = B.namespace(dy, ctx.x_hat, fn=fn, names=("dy", "ctx arrays"))
    dy = V.native(dy)
    real = xp.float32 if ctx.x_hat.dtype == xp.complex64 else xp.float64
    if dy.dtype != real:
        name = "float32" if real == xp.float32 else "float64"
        raise TypeError(f"{fn}: dy must have the forward's dtype {name}, got {dy.dtype}")
    if tuple(dy.shape) != ctx.out_shape:
        raise ValueError(f"{fn}: dy must have the forward output's shape {ctx.out_shape}, "
                         f"got {tuple(dy.shape)}")
    try:
        return _backward_impl(d, fn, dy, ctx, real, xp=xp, opts=settings.current())
    except Exception as err:
        mem = _out_of_memory(fn, xp, err)
        if mem is None:
            raise
        raise mem from err


def _backward_impl(d, fn, dy, ctx, real, *, xp, opts):
    geom, band, G = ctx.geometry, ctx.band, ctx.groups
    F, _, N, Cg = ctx.x_hat.shape
    O = ctx.w_shape[0]
    itemsize = 4 if real == xp.float32 else 8
    chunks = _chunks(fn, N, _bytes_per_sample(geom, band, G * Cg, O, itemsize, False),
                     ctx.max_workspace_bytes)
    w_t = xp.matrix_transpose(ctx.w_hat)                # (F, G, O/G, C/G) = conj(W[f]), a view
    dx = dw_hat = None
    for i0, i1 in chunks:
        m = i1 - i0
        # conj(DY) directly: conjugated DFT matrices on the matrix route
        cdy = spectral.forward(dy[i0:i1, ...], band, start=(0,) * d, step=geom.stride,
                               xp=xp, opts=opts, conj=True)           # (F, m, O)
        cdy = spectral.contiguous(
            xp.permute_dims(xp.reshape(cdy, (F, m, G, O // G)), (0, 2, 1, 3)), xp=xp)
        # DX[f] = DY[f] @ W[f] = conj(conj(DY[f]) @ conj(W[f])): no copy of the filters,
        # and the outer conj is the inverse transform's
        dxc_hat = xp.reshape(xp.permute_dims(cdy @ w_t, (0, 2, 1, 3)), (F, m, G * Cg))
        dxc = spectral.inverse(dxc_hat, band, start=(0,) * d, step=(1,) * d,
                               count=geom.length, xp=xp, opts=opts, conj=True)
        # DW[f] = X[f]^T @ conj(DY[f]), summed over the batch (and over chunks)
        xc_hat = ctx.x_hat if len(chunks) == 1 else ctx.x_hat[:, :, i0:i1, :]
        part = xp.matrix_transpose(xc_hat) @ cdy                        # (F, G, C/G, O/G)
        dw_hat = part if dw_hat is None else dw_hat + part
        if len(chunks) == 1:
            dx = dxc
            break
        if dx is None:
            dx = xp.empty((N, G * Cg) + geom.length, dtype=dxc.dtype, device=B.device(dy))
        dx[i0:i1, ...] = dxc
    dw = spectral.filter_inverse(dw_hat, band, start=tuple(-p for p in geom.pad_lo),
                                 step=geom.dilation, count=geom.kernel, xp=xp, opts=opts)
    db = xp.sum(dy, axis=(0,) + tuple(range(2, 2 + d))) if ctx.has_bias else None
    return (xp.astype(dx, real, copy=False), xp.astype(dw, real, copy=False), db)


_PARAMS = """
    Parameters
    ----------
    x : array, shape {xs}
        Input, float32 or float64 (NumPy, CuPy or any array-API namespace; the
        output lives in the same namespace and on the same device).
    w : array, shape {ws}
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
        rows, and ``dw`` sums the chunks' contributions).  On CuPy an out-of-memory error is
        re-raised as ``MemoryError`` naming this option.
"""

_RAISES = """
    Raises
    ------
    ValueError
        Shapes, sizes or ranges that do not fit; the message names the argument.
    TypeError
        Dtypes other than float32/float64, mixed dtypes, or arrays of different libraries.
"""

_NOTES = """
    Notes
    -----
    With ``X``, ``W`` the spectra restricted to the retained band and ``f`` a
    retained frequency, ``Y[f] = X[f] @ conj(W[f])`` per group; ``y`` is the
    inverse transform at the (strided) output positions, plus ``b``.  At
    ``compress_rate=0`` this is exact cross-correlation.
"""


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
                   compress_rate=0.0, preserve_energy=None, fft_size="fast",
                   max_workspace_bytes=None):
    return _forward(1, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size,
                    max_workspace_bytes=max_workspace_bytes)


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
                   compress_rate=0.0, preserve_energy=None, fft_size="fast",
                   max_workspace_bytes=None):
    return _forward(2, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size,
                    max_workspace_bytes=max_workspace_bytes)


def conv1d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
           compress_rate=0.0, preserve_energy=None, fft_size="fast",
                   max_workspace_bytes=None):
    return _forward(1, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size,
                    max_workspace_bytes=max_workspace_bytes)[0]


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
           compress_rate=0.0, preserve_energy=None, fft_size="fast",
                   max_workspace_bytes=None):
    return _forward(2, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size,
                    max_workspace_bytes=max_workspace_bytes)[0]


def conv1d_backward(dy, ctx):
    return _backward(1, dy, ctx)


def conv2d_backward(dy, ctx):
    return _backward(2, dy, ctx)


_SHAPES = {1: ("(N, C_in, L)", "(C_out, C_in / groups, k)", "(N, C_out, L_out)"),
           2: ("(N, C_in, H, W)", "(C_out, C_in / groups, kH, kW)", "(N, C_out, H_out, W_out)")}
_EXAMPLES = {
    "conv1d": """
    >>> import numpy as np, blconv
    >>> x = np.array([[[1., 2., 3., 4.]]]); w = np.array([[[1., -1.]]])
    >>> blconv.conv1d(x, w).round(12)
    array([[[-1., -1., -1.]]])
    >>> y = blconv.conv1d(np.ones((2, 3, 50)), np.ones((4, 3, 5)), padding="same",
    ...                   compress_rate=0.5)
    >>> y.shape
    (2, 4, 50)""",
    "conv2d": """
    >>> import numpy as np, blconv
    >>> x = np.arange(1., 10.).reshape(1, 1, 3, 3); w = np.array([[[[1., 0.], [0., -1.]]]])
    >>> blconv.conv2d(x, w).round(12)
    array([[[[-4., -4.],
             [-4., -4.]]]])
    >>> x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    >>> w = np.ones((16, 3, 3, 3), np.float32)
    >>> y = blconv.conv2d(x, w, padding=1, compress_rate=0.5)
    >>> y.shape, y.dtype
    ((8, 16, 32, 32), dtype('float32'))""",
}


def _document(d):
    xs, ws, ys = _SHAPES[d]
    params = _PARAMS.format(xs=xs, ws=ws)
    name = f"conv{d}d"
    globals()[name].__doc__ = (
        f"""Band-limited {d}D cross-correlation.
{params}
    Returns
    -------
    y : array, shape {ys}
        Same dtype, namespace and device as ``x``.
{_RAISES}{_NOTES}
    See Also
    --------
    {name}_forward, {name}_backward, band_for

    Examples
    --------{_EXAMPLES[name]}
""")
    globals()[f"{name}_forward"].__doc__ = (
        f"""Band-limited {d}D cross-correlation, keeping what the backward needs.
{params}
    Returns
    -------
    y : array, shape {ys}
    ctx : ConvContext
        The band used (``ctx.band``) and the retained spectra of ``x`` and ``w``
        (``ctx.nbytes`` of them): nothing full-size is kept.
{_RAISES}
    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.ones((2, 3) + (12,) * {d}); w = np.ones((4, 3) + (3,) * {d})
    >>> y, ctx = blconv.{name}_forward(x, w, padding=1, compress_rate=0.5)
    >>> dx, dw, db = blconv.{name}_backward(np.ones_like(y), ctx)
    >>> dx.shape == x.shape, dw.shape == w.shape, db is None
    (True, True, True)
""")
    globals()[f"{name}_backward"].__doc__ = (
        f"""Exact gradients of :func:`{name}_forward` (the adjoint of the band-limited map).

    Parameters
    ----------
    dy : array, shape {ys}
        Gradient of the loss with respect to ``y``; same dtype and namespace.
    ctx : ConvContext
        From :func:`{name}_forward`.

    Returns
    -------
    dx : array, shape {xs}
    dw : array, shape {ws}
    db : array, shape (C_out,), or None when the forward had no bias

    Raises
    ------
    ValueError
        ``dy`` does not have the forward output's shape.
    TypeError
        ``dy`` has another dtype or library, or ``ctx`` is not from {name}_forward.

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
    >>> y, ctx = blconv.{name}_forward(np.ones((1, 1) + (6,) * {d}), np.ones((1, 1) + (2,) * {d}))
    >>> [g.shape for g in blconv.{name}_backward(np.ones_like(y), ctx)[:2]]
    [{(1, 1) + (6,) * d}, {(1, 1) + (2,) * d}]
""")


_document(1)
_document(2)
