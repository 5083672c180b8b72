"""Band-limited cross-correlation, forward and exact backward, in 1D and 2D.

``y = conv2d(x, w, b)`` computes, for each retained frequency ``f``,
``Y[f] = X[f] @ conj(W[f])`` (an ``(N x C_in) @ (C_in x C_out)`` product per group),
and returns the stride-subsampled inverse transform plus the bias.  The
backward is the adjoint of that map, computed from the retained spectra kept in
``ctx``: ``DX[f] = DY[f] @ W[f]^T`` and ``DW[f] = X[f]^T @ conj(DY[f])``.
See :mod:`blconv.band` for the band and :mod:`blconv.spectral` for the transforms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _backend as B
from . import _validation as V
from . import spectral
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


def _energy_band(x, n, *, xp):
    """Energy policy: the input's full spectrum decides the band (one host sync)."""
    d = len(n)
    axes = tuple(range(2, 2 + d))
    full = B.rfftn(x, n, axes, xp=xp)                               # (N, C, *spectrum)
    power = xp.sum(xp.real(full) ** 2 + xp.imag(full) ** 2, axis=(0, 1))
    energy = np.asarray(B.to_numpy(power), dtype=np.float64)
    weight = np.full(energy.shape[-1], 2.0)                         # Parseval: both halves
    weight[0] = 1.0
    if n[-1] % 2 == 0:
        weight[-1] = 1.0
    return full, energy * weight


def _forward(d, x, w, b, *, stride, padding, dilation, groups, compress_rate,
             preserve_energy, fft_size):
    fn = f"conv{d}d"
    xp = B.namespace(x, w, b, fn=fn, names=("x", "w", "b"))
    V.check_dtypes(fn, xp, x=x, w=w, b=b)
    _check_shapes(fn, d, x, w, b, groups)
    geom = V.conv_geometry(fn, tuple(x.shape[2:]), tuple(w.shape[2:]),
                           stride=stride, padding=padding, dilation=dilation)
    c = V.check_rate(fn, compress_rate)
    e = V.check_energy(fn, preserve_energy, c)
    n = fft_shape_for(geom, fft_size, fn=fn)
    N, C = x.shape[:2]
    O, G = w.shape[0], groups
    if e is None:
        band = Band.from_keep(n, rate_keep(n, c))
        x_hat = spectral.forward(x, band, start=(0,) * d, step=(1,) * d, xp=xp)
    else:
        full, energy = _energy_band(x, n, xp=xp)
        band = Band.from_keep(n, energy_keep(energy, n, e))
        if d == 2:
            rows = B.asarray(band.indices(0), xp=xp, like=x)
            full = xp.take(full, rows, axis=2)
        x_hat = xp.reshape(spectral.contiguous(
            xp.permute_dims(full[..., :band.keep[-1]], tuple(range(2, 2 + d)) + (0, 1)), xp=xp),
            (band.retained, N, C))
    F = x_hat.shape[0]
    # (F, G, N, C/G): one (N x C/G) @ (C/G x O/G) product per frequency and group
    x_hat = spectral.contiguous(
        xp.permute_dims(xp.reshape(x_hat, (F, N, G, C // G)), (0, 2, 1, 3)), xp=xp)
    w_hat = spectral.forward(w, band, start=tuple(-p for p in geom.pad_lo), step=geom.dilation,
                             xp=xp)                                 # (F, O, C/G)
    w_hat = spectral.contiguous(xp.permute_dims(
        xp.reshape(xp.conj(w_hat), (F, G, O // G, C // G)), (0, 1, 3, 2)), xp=xp)
    y_hat = x_hat @ w_hat                                           # (F, G, N, O/G)
    y_hat = xp.reshape(xp.permute_dims(y_hat, (0, 2, 1, 3)), (F, N, O))
    y = spectral.inverse(y_hat, band, start=(0,) * d, step=geom.stride, count=geom.out, xp=xp)
    if b is not None:
        y = y + xp.reshape(b, (O,) + (1,) * d)
    y = xp.astype(y, x.dtype, copy=False)
    ctx = ConvContext(band, geom, G, x_hat, w_hat, tuple(w.shape), b is not None, fn)
    return y, ctx


def _backward(d, dy, ctx):
    fn = f"conv{d}d_backward"
    if not isinstance(ctx, ConvContext) or len(ctx.geometry.out) != d:
        raise TypeError(f"{fn}: ctx must be the ConvContext returned by conv{d}d_forward, "
                        f"got {type(ctx).__name__}"
                        + (f" from {ctx.fn}" if isinstance(ctx, ConvContext) else ""))
    xp = B.namespace(dy, ctx.x_hat, fn=fn, names=("dy", "ctx arrays"))
    real = xp.float32 if ctx.x_hat.dtype == xp.complex64 else xp.float64
    if dy.dtype != real:
        name = "float32" if real == xp.float32 else "float64"
        raise TypeError(f"{fn}: dy must have the forward's dtype {name}, got {dy.dtype}")
    if tuple(dy.shape) != ctx.out_shape:
        raise ValueError(f"{fn}: dy must have the forward output's shape {ctx.out_shape}, "
                         f"got {tuple(dy.shape)}")
    geom, band, G = ctx.geometry, ctx.band, ctx.groups
    F, _, N, Cg = ctx.x_hat.shape
    O = ctx.w_shape[0]
    dy_hat = spectral.forward(dy, band, start=(0,) * d, step=geom.stride, xp=xp)  # (F, N, O)
    dy_hat = spectral.contiguous(
        xp.permute_dims(xp.reshape(dy_hat, (F, N, G, O // G)), (0, 2, 1, 3)), xp=xp)
    # DX[f] = DY[f] @ W[f]^T  with W = conj(w_hat)^T per group
    dx_hat = dy_hat @ xp.conj(xp.matrix_transpose(ctx.w_hat))        # (F, G, N, C/G)
    dx_hat = xp.reshape(xp.permute_dims(dx_hat, (0, 2, 1, 3)), (F, N, G * Cg))
    dx = spectral.inverse(dx_hat, band, start=(0,) * d, step=(1,) * d, count=geom.length, xp=xp)
    # DW[f] = X[f]^T @ conj(DY[f])
    dw_hat = xp.matrix_transpose(ctx.x_hat) @ xp.conj(dy_hat)        # (F, G, C/G, O/G)
    dw_hat = xp.reshape(xp.permute_dims(dw_hat, (0, 1, 3, 2)), (F, O, Cg))
    dw = spectral.inverse(dw_hat, band, start=tuple(-p for p in geom.pad_lo),
                          step=geom.dilation, count=geom.kernel, xp=xp)
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
        FFT size per axis: the smallest 5-smooth size ``>=`` the padded length
        (default), the authors' power of two, or explicit (``>=`` the padded length).
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
                   compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    return _forward(1, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size)


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
                   compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    return _forward(2, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size)


def conv1d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
           compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    return _forward(1, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size)[0]


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
           compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    return _forward(2, x, w, b, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, fft_size=fft_size)[0]


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
