"""Band-limited transposed convolution, forward and exact backward, in 1D and 2D.

A transposed convolution is the adjoint of a cross-correlation: ``conv_transpose2d(x,
w)`` is the gradient that :func:`blconv.conv2d` gives its input when ``x`` is the
gradient of its output, for the correlation of an input ``z`` of the transposed
convolution's output shape.  The band-limited transposed convolution is the adjoint
of the band-limited correlation, at the band that correlation uses on ``z``:

    <conv2d(z, w, compress_rate=c), x> = <conv_transpose2d(x, w, compress_rate=c), z>

Per retained frequency ``f`` and group, ``Z[f] = X[f] @ W[f]^T`` (``X`` the spectrum of
``x`` placed at the strided positions, never built zero-upsampled), inverse-transformed
at the output positions, plus the bias.  The backward is the adjoint of that map: the
input's gradient is the band-limited correlation of ``dz`` with ``w``, and the filters'
gradient ``DW[f] = DZ[f]^T @ conj(X[f])``.  Shapes and arguments follow PyTorch's
``conv_transpose1d/2d``; the band is the one :func:`blconv.band_for` gives the
correlation of ``z``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _backend as B
from . import _workspace as W
from . import _validation as V
from . import _channels, _threads, settings, spectral
from .band import Band, check_band, fft_shape_for, rate_keep
from .conv import bias_grad, freq_chunk, grouped_spectrum, real_grads

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose1d_forward",
           "conv_transpose1d_backward", "conv_transpose2d_forward",
           "conv_transpose2d_backward", "ConvTransposeContext"]


@dataclass(frozen=True)
class ConvTransposeContext:
    """What the backward of one band-limited transposed convolution needs.

    Attributes
    ----------
    band : Band
        The band used: that of the correlation whose adjoint this is.
    geometry : blconv._validation.Geometry
        That correlation's geometry: ``length`` is this call's output size and ``out``
        its input size.
    groups : int
    x : array, shape (N, C_in, L) or (N, C_in, H, W)
        The input, referenced, not copied (as PyTorch's layer saves it); the backward
        recomputes its retained spectrum.  That spectrum lies on the grid of the
        output, where a stride-2 input fills about four times its own size of
        coefficients (two per axis): at any rate up to about 0.75 it would be larger
        than the input.
    w : array, shape (C_in, C_out / groups, k) or (C_in, C_out / groups, kH, kW)
        The filters, referenced, not copied.  Modify neither in place between a
        forward and its backward.
    has_bias : bool
    fn : str
        The forward that made it (``"conv_transpose1d"`` or ``"conv_transpose2d"``).
    max_workspace_bytes : int or None
        The forward's bound, used again by the backward.
    """
    band: Band
    geometry: V.Geometry
    groups: int
    x: Any
    w: Any
    has_bias: bool
    fn: str
    max_workspace_bytes: int | None = None

    @property
    def nbytes(self) -> int:
        """Bytes the forward allocates and holds for the backward: none (the input and
        the filters are the caller's own arrays, referenced)."""
        return 0

    @property
    def out_shape(self) -> tuple:
        return (self.x.shape[0], self.groups * self.w.shape[1]) + self.geometry.length


def _check_shapes(fn, d, x, w, b, groups):
    if x.ndim != d + 2:
        lay = "(N, C_in, L)" if d == 1 else "(N, C_in, H, W)"
        raise ValueError(f"{fn}: x must be {d + 2}-D {lay}, got shape {tuple(x.shape)}")
    if w.ndim != d + 2:
        lay = "(C_in, C_out/groups, k)" if d == 1 else "(C_in, C_out/groups, kH, kW)"
        raise ValueError(f"{fn}: w must be {d + 2}-D {lay}, got shape {tuple(w.shape)}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{fn}: groups must be an int >= 1, got {groups!r}")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"{fn}: x.shape[1] (C_in={x.shape[1]}) must equal w.shape[0] "
                         f"({w.shape[0]})")
    if w.shape[0] % groups:
        raise ValueError(f"{fn}: w.shape[0] (C_in={w.shape[0]}) must be divisible by groups "
                         f"({groups})")
    if any(s < 1 for s in w.shape[1:]):
        raise ValueError(f"{fn}: w must have a non-empty kernel and C_out/groups >= 1, "
                         f"got shape {tuple(w.shape)}")
    c_out = w.shape[1] * groups
    if b is not None and tuple(b.shape) != (c_out,):
        raise ValueError(f"{fn}: b must have shape (C_out,) = ({c_out},), got {tuple(b.shape)}")


def geometry(fn, length, kernel, *, stride=1, padding=0, output_padding=0, dilation=1):
    """The geometry of the correlation whose adjoint is this transposed convolution.

    Its input (the transposed convolution's output) has ``(L - 1) * stride - 2 * padding
    + dilation * (k - 1) + output_padding + 1`` positions per axis, PyTorch's size.
    """
    d = len(length)
    s = V.ntuple(fn, "stride", stride, d, minimum=1)
    dl = V.ntuple(fn, "dilation", dilation, d, minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"{fn}: padding must be an int or a tuple of {d} ints (as in "
                         f"PyTorch's transposed convolutions), got {padding!r}")
    p = V.ntuple(fn, "padding", padding, d, minimum=0)
    op = V.ntuple(fn, "output_padding", output_padding, d, minimum=0)
    for a in range(d):
        if op[a] >= s[a]:
            raise ValueError(f"{fn}: output_padding must be smaller than stride along each "
                             f"axis, got output_padding={op} and stride={s}")
    out = tuple((n - 1) * st - 2 * pa + di * (k - 1) + o + 1
                for n, st, pa, di, k, o in zip(length, s, p, dl, kernel, op))
    if any(n < 1 for n in out):
        raise ValueError(f"{fn}: the output would have size {out} (input {tuple(length)}, "
                         f"kernel {tuple(kernel)}, stride {s}, padding {p}, dilation {dl}, "
                         f"output_padding {op}); it must be at least 1 along each axis")
    # (L - 1) * s + op + 1 stride-1 outputs with op < s: L strided ones, the input's size
    return V.conv_geometry(fn, out, tuple(kernel), stride=s, padding=p, dilation=dl)


def _forward(d, x, w, b, *, stride, padding, output_padding, dilation, groups, compress_rate,
             fft_size, max_workspace_bytes, band):
    fn = f"conv_transpose{d}d"
    xp = B.namespace(x, w, b, fn=fn, names=("x", "w", "b"))
    x, w, b = V.native(x), V.native(w), V.native(b)
    V.check_dtypes(fn, xp, x=x, w=w, b=b)
    _check_shapes(fn, d, x, w, b, groups)
    groups = int(groups)
    geom = geometry(fn, tuple(x.shape[2:]), tuple(w.shape[2:]), stride=stride,
                    padding=padding, output_padding=output_padding, dilation=dilation)
    rate = V.check_rate(fn, compress_rate)
    if band is not None:
        if rate > 0:
            raise ValueError(f"{fn}: band excludes compress_rate > 0, got "
                             f"compress_rate={compress_rate!r}")
        band = check_band(fn, band, geom, fft_size)
    else:
        n = fft_shape_for(geom, fft_size, fn=fn)
        band = Band.from_keep(n, rate_keep(n, rate))
    opts = settings.current()                                   # read once per call
    bound = opts.max_workspace_bytes if max_workspace_bytes is None else max_workspace_bytes
    with W.memory_hint(fn, xp):
        return _forward_impl(fn, x, w, b, band, geom, groups, bound, opts, xp=xp)


def _forward_impl(fn, x, w, b, band, geom, G, bound, opts, *, xp):
    d, (N, C) = len(geom.out), x.shape[:2]
    O, F = G * w.shape[1], band.retained
    itemsize = 4 if x.dtype == xp.float32 else 8
    chunks = W.chunks(fn, N, W.bytes_per_sample(geom, band, O, C, itemsize, False), bound)
    # the correlation's backward filters: conj(W[f])^T per group, (F, G, C/G, O/G)
    filters = _channels.Filters(w, band, **geom.tap_grid(), groups=G, xp=xp, opts=opts,
                                nthreads=_threads.count(opts, xp=xp), transposed=True)
    z = None
    for i0, i1 in chunks:
        cx = _input_spectrum(x[i0:i1, ...], band, geom, G, opts, xp=xp)
        m = cx.shape[2]
        # conj(Z[f]) = conj(X[f]) @ conj(W[f])^T; the inverse takes the outer conj
        cz = xp.reshape(xp.permute_dims(_channels.forward(cx, filters, xp=xp), (0, 2, 1, 3)),
                        (F, m, O))
        zc = spectral.inverse(cz, band, start=(0,) * d, step=(1,) * d, count=geom.length,
                              xp=xp, opts=opts, conj=True)
        if len(chunks) == 1:
            z = zc
            break
        if z is None:
            z = xp.empty((N, O) + geom.length, dtype=zc.dtype, device=B.device(x))
        z[i0:i1, ...] = zc
    if b is not None:
        z += xp.reshape(b, (O,) + (1,) * d)                      # z is ours
    z = xp.astype(z, x.dtype, copy=False)
    return z, ConvTransposeContext(band, geom, G, x, w, b is not None, fn, bound)


def _input_spectrum(x, band, geom, G, opts, *, xp):
    """``conj(X)`` ``(F, G, m, C/G)``: the retained spectrum of ``x`` ``(m, C, *L)`` placed
    at the strided positions of the output's grid, conjugated."""
    d, (m, C), F = len(geom.out), x.shape[:2], band.retained
    cx = spectral.forward(x, band, start=(0,) * d, step=geom.stride, xp=xp, opts=opts,
                          conj=True)                                      # (F, m, C)
    return spectral.contiguous(
        xp.permute_dims(xp.reshape(cx, (F, m, G, C // G)), (0, 2, 1, 3)), xp=xp)


def _backward(d, dz, ctx, need_dx, need_dw):
    fn = f"conv_transpose{d}d_backward"
    need_dx, need_dw = V.need_flags(fn, need_dx, need_dw)
    if not isinstance(ctx, ConvTransposeContext) or len(ctx.geometry.out) != d:
        raise TypeError(f"{fn}: ctx must be the ConvTransposeContext returned by "
                        f"conv_transpose{d}d_forward, got {type(ctx).__name__}"
                        + (f" from {ctx.fn}" if isinstance(ctx, ConvTransposeContext) else ""))
    xp = B.namespace(dz, ctx.x, fn=fn, names=("dz", "ctx arrays"))
    dz = V.native(dz)
    real = ctx.x.dtype
    if dz.dtype != real:
        name = "float32" if real == xp.float32 else "float64"
        raise TypeError(f"{fn}: dz must have the forward's dtype {name}, got {dz.dtype}")
    if tuple(dz.shape) != ctx.out_shape:
        raise ValueError(f"{fn}: dz must have the forward output's shape {ctx.out_shape}, "
                         f"got {tuple(dz.shape)}")
    with W.memory_hint(fn, xp):
        return _backward_impl(fn, dz, ctx, real, need_dx, need_dw, xp=xp,
                              opts=settings.current())


def _backward_impl(fn, dz, ctx, real, need_dx, need_dw, *, xp, opts):
    geom, band, G = ctx.geometry, ctx.band, ctx.groups
    N, O = dz.shape[:2]
    C = ctx.w.shape[0]
    itemsize = 4 if real == xp.float32 else 8
    chunks = W.chunks(fn, N, W.bytes_per_sample(geom, band, O, C, itemsize, False),
                      ctx.max_workspace_bytes)
    # the correlation's forward filters: conj(W[f]) per group, (F, G, O/G, C/G)
    filters = _channels.Filters(ctx.w, band, **geom.tap_grid(), groups=G, xp=xp, opts=opts,
                                nthreads=_threads.count(opts, xp=xp))
    dx = acc = None
    for i0, i1 in chunks:
        dzc = dz[i0:i1, ...]
        if need_dx:
            # dx: the band-limited correlation of dz with w, and dz's spectrum DZ it used
            dxc, spec = freq_chunk(dzc, None, filters, band, geom, G, opts, xp=xp)
            if len(chunks) == 1:
                dx = dxc
            else:
                if dx is None:
                    dx = xp.empty((N, C) + geom.out, dtype=dxc.dtype, device=B.device(dz))
                dx[i0:i1, ...] = dxc
        else:
            spec = grouped_spectrum(dzc, None, band, G, opts, xp=xp)
        if need_dw:
            # dw: DW[f] = DZ[f]^T @ conj(X[f]), summed over the batch
            cx = _input_spectrum(ctx.x[i0:i1, ...], band, geom, G, opts, xp=xp)
            part = _channels.backward(spec, cx, filters, xp=xp, need_dx=False)[1]
            acc = part if acc is None else acc + part
    return real_grads(dx, acc, filters, real, xp=xp) + (bias_grad(dz, ctx.has_bias, xp=xp),)


def _args(stride, padding, output_padding, dilation, groups, compress_rate, fft_size,
          max_workspace_bytes, band):
    return dict(stride=stride, padding=padding, output_padding=output_padding,
                dilation=dilation, groups=groups, compress_rate=compress_rate,
                fft_size=fft_size, max_workspace_bytes=max_workspace_bytes, band=band)


def conv_transpose1d(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, compress_rate=0.0, fft_size="fast", max_workspace_bytes=None,
                     band=None):
    """Band-limited 1D transposed convolution: the adjoint of :func:`blconv.conv1d`.

    Parameters
    ----------
    x : array, shape (N, C_in, L)
        Input, float32 or float64 (NumPy, CuPy or any array-API namespace; the
        output lives in the same namespace and on the same device).
    w : array, shape (C_in, C_out / groups, k)
        Filters, in PyTorch's layout for transposed convolutions.
    b : array, shape (C_out,), optional
        Bias.
    stride, dilation : int or tuple of int
    padding : int or tuple of int
        Removed from both ends of the full transposed convolution (PyTorch's
        meaning: the zero padding of the correlation whose adjoint this is).
    output_padding : int or tuple of int
        Added to the end of the output, to pick one of the sizes that ``stride``
        maps to the same input size; smaller than ``stride`` along each axis.
    groups : int
        ``C_in`` and ``C_out`` are split into this many independent groups.
    compress_rate : float
        Fraction of one-sided spectral coefficients discarded, in ``[0, 1)``, by
        the correlation whose adjoint this is (whose input has this call's output
        shape); ``0`` is the exact transposed convolution.
    fft_size : 'fast', 'pow2', int or tuple of int
        Transform size per axis, as in :func:`blconv.conv1d` for that correlation.
    max_workspace_bytes : int, optional
        Bound on the transient memory of one call and its backward, as in
        :func:`blconv.conv1d`.
    band : Band, optional
        Use exactly this band, as in :func:`blconv.conv1d` (excludes
        ``compress_rate > 0``).

    Returns
    -------
    z : array, shape (N, C_out, L_out)
        ``L_out = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding
        + 1``, as in PyTorch; same dtype, namespace and device as ``x``.

    Raises
    ------
    ValueError
        Shapes, sizes or ranges that do not fit; the message names the argument.
    TypeError
        Dtypes other than float32/float64, mixed dtypes, arrays of different libraries.

    Notes
    -----
    ``<conv1d(z, w, compress_rate=c), x> = <conv_transpose1d(x, w, compress_rate=c),
    z>`` for every ``z`` of the output's shape (same stride, padding, dilation and
    groups, no bias): this is the map the backward of a band-limited correlation
    applies to its output's gradient.  The energy policy, which depends on the
    correlation's input, has no counterpart here.

    See Also
    --------
    conv_transpose1d_forward, conv_transpose1d_backward, conv_transpose2d, blconv.conv1d

    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.array([[[1., 2.]]]); w = np.array([[[1., 10., 100.]]])
    >>> blconv.conv_transpose1d(x, w, stride=2).round(12)
    array([[[  1.,  10., 102.,  20., 200.]]])
    """
    return _forward(1, x, w, b, **_args(stride, padding, output_padding, dilation, groups,
                                        compress_rate, fft_size, max_workspace_bytes, band))[0]


def conv_transpose2d(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, compress_rate=0.0, fft_size="fast", max_workspace_bytes=None,
                     band=None):
    """Band-limited 2D transposed convolution: the adjoint of :func:`blconv.conv2d`.

    Parameters
    ----------
    x : array, shape (N, C_in, H, W)
    w : array, shape (C_in, C_out / groups, kH, kW)
    b, stride, padding, output_padding, dilation, groups, compress_rate, fft_size, max_workspace_bytes, band
        As in :func:`conv_transpose1d`, per spatial axis (an int or a pair).

    Returns
    -------
    z : array, shape (N, C_out, H_out, W_out)
        Per axis as in :func:`conv_transpose1d`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv_transpose1d`.

    See Also
    --------
    conv_transpose2d_forward, conv_transpose2d_backward, conv_transpose1d, blconv.conv2d

    Examples
    --------
    >>> import numpy as np, blconv
    >>> x = np.ones((1, 1, 2, 2)); w = np.ones((1, 1, 2, 2))
    >>> blconv.conv_transpose2d(x, w).round(12)
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    >>> z = blconv.conv_transpose2d(np.ones((4, 8, 16, 16), np.float32),
    ...                             np.ones((8, 3, 4, 4), np.float32), stride=2, padding=1,
    ...                             compress_rate=0.5)
    >>> z.shape, z.dtype
    ((4, 3, 32, 32), dtype('float32'))
    """
    return _forward(2, x, w, b, **_args(stride, padding, output_padding, dilation, groups,
                                        compress_rate, fft_size, max_workspace_bytes, band))[0]


def conv_transpose1d_forward(x, w, b=None, *, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, compress_rate=0.0, fft_size="fast",
                             max_workspace_bytes=None, band=None):
    """Band-limited 1D transposed convolution, keeping what the backward needs.

    Parameters
    ----------
    x, w, b, stride, padding, output_padding, dilation, groups, compress_rate, fft_size, max_workspace_bytes, band
        As in :func:`conv_transpose1d`.

    Returns
    -------
    z : array, shape (N, C_out, L_out)
    ctx : ConvTransposeContext
        The band used (``ctx.band``), and references to ``x`` and ``w``: nothing is
        allocated for the backward.

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv_transpose1d`.

    Examples
    --------
    >>> import numpy as np, blconv
    >>> z, ctx = blconv.conv_transpose1d_forward(np.ones((2, 4, 8)), np.ones((4, 3, 3)),
    ...                                          stride=2, compress_rate=0.5)
    >>> dx, dw, db = blconv.conv_transpose1d_backward(np.ones_like(z), ctx)
    >>> z.shape, dx.shape, dw.shape, db is None
    ((2, 3, 17), (2, 4, 8), (4, 3, 3), True)
    """
    return _forward(1, x, w, b, **_args(stride, padding, output_padding, dilation, groups,
                                        compress_rate, fft_size, max_workspace_bytes, band))


def conv_transpose2d_forward(x, w, b=None, *, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, compress_rate=0.0, fft_size="fast",
                             max_workspace_bytes=None, band=None):
    """Band-limited 2D transposed convolution, keeping what the backward needs.

    Parameters
    ----------
    x, w, b, stride, padding, output_padding, dilation, groups, compress_rate, fft_size, max_workspace_bytes, band
        As in :func:`conv_transpose2d`.

    Returns
    -------
    z : array, shape (N, C_out, H_out, W_out)
    ctx : ConvTransposeContext
        As in :func:`conv_transpose1d_forward`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv_transpose2d`.
    """
    return _forward(2, x, w, b, **_args(stride, padding, output_padding, dilation, groups,
                                        compress_rate, fft_size, max_workspace_bytes, band))


def conv_transpose1d_backward(dz, ctx, *, need_dx=True, need_dw=True):
    """Exact gradients of :func:`conv_transpose1d_forward`.

    Parameters
    ----------
    dz : array, shape (N, C_out, L_out)
        Gradient of the loss with respect to the output; the forward's dtype.
    ctx : ConvTransposeContext
        From :func:`conv_transpose1d_forward`; it can be used more than once.
    need_dx, need_dw : bool, default True
        Whether to compute ``dx`` and ``dw``; one not needed is returned as ``None``
        and its work is skipped: for ``dx`` a channel product per frequency and an
        inverse transform (a generator's first layer, whose input is noise), for
        ``dw`` the input's spectrum and a channel product (a frozen decoder).  What
        is computed is the same either way, to rounding.

    Returns
    -------
    dx : array, shape (N, C_in, L), or None without ``need_dx``
        The band-limited correlation of ``dz`` with ``w`` (:func:`blconv.conv1d` at
        the same band).
    dw : array, shape (C_in, C_out / groups, k), or None without ``need_dw``
    db : array, shape (C_out,), or None when the forward had no bias

    Raises
    ------
    ValueError
        ``dz`` does not have the forward output's shape.
    TypeError
        ``dz`` has another dtype or library, ``ctx`` is not from
        conv_transpose1d_forward, or ``need_dx``/``need_dw`` is not a bool.
    """
    return _backward(1, dz, ctx, need_dx, need_dw)


def conv_transpose2d_backward(dz, ctx, *, need_dx=True, need_dw=True):
    """Exact gradients of :func:`conv_transpose2d_forward`.

    Parameters
    ----------
    dz : array, shape (N, C_out, H_out, W_out)
    ctx : ConvTransposeContext
        From :func:`conv_transpose2d_forward`.
    need_dx, need_dw : bool, default True
        As in :func:`conv_transpose1d_backward`.

    Returns
    -------
    dx : array, shape (N, C_in, H, W), or None without ``need_dx``
    dw : array, shape (C_in, C_out / groups, kH, kW), or None without ``need_dw``
    db : array, shape (C_out,), or None when the forward had no bias

    Raises
    ------
    ValueError, TypeError
        As in :func:`conv_transpose1d_backward`.
    """
    return _backward(2, dz, ctx, need_dx, need_dw)
