"""Pointwise filters (every kernel size 1): a low-pass and one channel GEMM.

A filter with a single tap, at position ``-p`` (``p`` the padding), has the same
spectrum ``w`` at every frequency up to that position's phase.  So the band-limited
correlation is the input low-passed to the band and read at the output positions
``-p + s * i`` (``s`` the stride), mixed over channels in the spatial domain:

    z = L x,    y[n, o, i] = sum_c w[o, c] z[n, c, i]

where ``L`` is the projection onto the band read at the output positions.  The band
is a product of one low-pass per axis, so on the DFT-matrix route ``L`` is one small
real matrix per axis (:func:`blconv.spectral.lowpass_matrix`); on FFT axes, the
forward transform onto the band and the inverse at the output positions.  The
band is symmetric under ``u -> -u``, so the projection is a symmetric real map and
``L^T`` is the same construction from the output positions to the input's.  The
backward is ``dx = L^T (w^T dy)`` and ``dw = sum_{n, i} dy z^T``, with ``z`` kept
from the forward.  With the full band (``compress_rate=0``) ``L`` is the zero-padded
input read at the output positions: no arithmetic at all.

Against the per-frequency route this projects ``C_in`` channels instead of
transforming ``C_in + C_out``, and the channel mixing is one real GEMM per sample at
the output positions instead of ``F`` complex products: on a ResNet's strided 1x1
shortcuts that is most of the work.  Both compute the same correlation; they differ by float
rounding only.  Any array namespace.
"""
from __future__ import annotations

from . import _backend as B
from . import spectral

__all__ = ["use", "forward", "backward"]


def use(kernel) -> bool:
    """Whether a correlation with this kernel shape goes through this route."""
    return all(int(k) == 1 for k in kernel)


def _full(band) -> bool:
    return band.retained == band.total


def _window(length, start, step, count):
    """The outputs ``i0 <= i < i1`` whose positions ``start + step * i`` lie in
    ``[0, length)``, and the first such position."""
    i0 = max(0, -(start // step))
    i1 = min(count, (length - 1 - start) // step + 1)
    return i0, max(i0, i1), start + step * i0


def _slices(geom):
    """Index tuples ``(positions, outputs)`` pairing the input positions ``-p + s * i``
    that lie inside the input with their outputs ``i`` (leading batch, channel axes)."""
    pos, out = [slice(None)] * 2, [slice(None)] * 2
    for n, lo, s, m in zip(geom.length, geom.pad_lo, geom.stride, geom.out):
        i0, i1, p0 = _window(n, -lo, s, m)
        # the last position plus one: array-api-strict refuses stops past the end
        pos.append(slice(p0, p0 + s * (i1 - i0 - 1) + 1 if i1 > i0 else p0, s))
        out.append(slice(i0, i1))
    return tuple(pos), tuple(out)


def _read(a, geom, *, xp):
    """The zero-padded ``a`` ``(N, C, *L)`` read at the output positions (full band)."""
    pos, out = _slices(geom)
    z = xp.zeros(tuple(a.shape[:2]) + tuple(geom.out), dtype=a.dtype, device=B.device(a))
    z[out] = a[pos]
    return z


def _write(g, geom, *, xp):
    """The adjoint of :func:`_read`: ``g`` ``(N, C, *out)`` placed in zeros ``(N, C, *L)``
    (the positions are distinct)."""
    pos, out = _slices(geom)
    a = xp.zeros(tuple(g.shape[:2]) + tuple(geom.length), dtype=g.dtype, device=B.device(g))
    a[pos] = g[out]
    return a


def _lowpass(a, band, src, dst, count, chunks, *, xp, opts):
    """``a`` ``(N, C, *S)`` at positions ``src`` (start, step per axis) projected onto the
    band and read at ``count`` positions ``dst``: real ``(N, C, *count)``.

    The band is a product of one low-pass per axis, so where every axis takes the
    DFT-matrix route the projection is one real ``(count, S)`` matrix per axis, applied
    axis by axis (the last one as a single GEMM); otherwise a forward transform onto
    the band and the inverse at ``dst``, chunk by chunk of the batch."""
    d = len(count)
    if all(opts.use_matrix(n) for n in band.fft_shape):
        z = a
        for ax in reversed(range(d)):
            m = spectral.lowpass_matrix(band.fft_shape[ax], band.keep[ax],
                                        (src[0][ax], src[1][ax], z.shape[2 + ax]),
                                        (dst[0][ax], dst[1][ax], count[ax]), xp=xp,
                                        dtype=a.dtype, like=a)             # (count, S)
            if ax == d - 1:
                z = xp.reshape(xp.reshape(spectral.contiguous(z, xp=xp), (-1, z.shape[-1]))
                               @ xp.matrix_transpose(m), tuple(z.shape[:-1]) + (count[ax],))
            else:                                          # 2D: the first axis, per map
                z = xp.matmul(m, z)
        return z

    def one(i0, i1):
        h = spectral.forward(a[i0:i1, ...], band, start=src[0], step=src[1], xp=xp, opts=opts)
        return spectral.inverse(h, band, start=dst[0], step=dst[1], count=count, xp=xp,
                                opts=opts)
    if len(chunks) == 1:
        return one(0, a.shape[0])
    out = xp.empty(tuple(a.shape[:2]) + tuple(count), dtype=a.dtype, device=B.device(a))
    for i0, i1 in chunks:
        out[i0:i1, ...] = one(i0, i1)
    return out


def forward(x, w, band, geom, groups, chunks, *, xp, opts):
    """``(y, z)``: the correlation ``(N, C_out, *out)`` (no bias) and ``z``, the input
    low-passed to the band at the output positions ``(N, C_in, *out)``, which the
    backward reads."""
    d = len(geom.out)
    if _full(band):
        z = _read(x, geom, xp=xp)
    else:
        z = _lowpass(x, band, ((0,) * d, (1,) * d), (tuple(-p for p in geom.pad_lo),
                     geom.stride), geom.out, chunks, xp=xp, opts=opts)
    return _mix(w, z, groups, xp=xp), z


def _mix(w, z, groups, *, xp):
    """``y[n, o] = sum_c w[o, c] z[n, c]`` per group: one GEMM per sample and group."""
    n, c, *out = z.shape
    o = w.shape[0]
    zg = xp.reshape(z, (n, groups, c // groups, -1))
    wg = xp.reshape(w, (1, groups, o // groups, c // groups))
    return xp.reshape(xp.matmul(wg, zg), (n, o) + tuple(out))


def backward(dy, z, w, band, geom, groups, chunks, *, xp, opts, need_dx=True, need_dw=True):
    """``(dx, dw)`` from ``dy`` ``(N, C_out, *out)`` and :func:`forward`'s ``z``; each
    ``None`` where not needed."""
    n, o, *out = dy.shape
    c = z.shape[1]
    d = len(out)
    og, cg = o // groups, c // groups
    dyg = xp.reshape(dy, (n, groups, og, -1))
    dx = dw = None
    if need_dw:
        # dw = sum over samples and positions of dy z^T: one GEMM per group over both
        zg = xp.reshape(z, (n, groups, cg, -1))
        dyt = xp.reshape(xp.permute_dims(dyg, (1, 2, 0, 3)), (groups, og, -1))
        zt = xp.reshape(xp.permute_dims(zg, (1, 0, 3, 2)), (groups, -1, cg))
        dw = xp.reshape(xp.matmul(dyt, zt), tuple(w.shape))
    if need_dx:
        wt = xp.matrix_transpose(xp.reshape(w, (1, groups, og, cg)))
        dz = xp.reshape(xp.matmul(wt, dyg), (n, c) + tuple(out))                # w^T dy
        if _full(band):
            dx = _write(dz, geom, xp=xp)
        else:
            dx = _lowpass(dz, band, (tuple(-p for p in geom.pad_lo), geom.stride),
                          ((0,) * d, (1,) * d), geom.length, chunks, xp=xp, opts=opts)
    return dx, dw
