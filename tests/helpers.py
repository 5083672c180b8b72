"""Independent float64 computations used as test oracles (not the code under test)."""
import numpy as np

import blconv


def rel(a, b):
    a, b = np.asarray(blconv.to_numpy(a), dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(b)
    return np.linalg.norm(a - b) / (den if den > 0 else 1.0)


def two_sided_mask(fft_shape, keep):
    """|u_a| < k_a on every axis of the full two-sided grid (signed frequency)."""
    m = np.ones(fft_shape, dtype=bool)
    for a, (n, k) in enumerate(zip(fft_shape, keep)):
        u = np.arange(n)
        u = np.minimum(u, n - u)
        shape = [1] * len(fft_shape)
        shape[a] = -1
        m &= (u < k).reshape(shape)
    return m


def masked_correlation(x, w, *, fft_shape, keep, stride, padding, dilation, groups, dy=None):
    """Band-limited correlation from full-size two-sided FFTs and a 0/1 mask, in float64.

    Pads ``x`` explicitly, places the dilated filter in an ``n``-sized array, multiplies
    the full spectra with the mask and crops: no pruning, no one-sided layout, no GEMM.
    Returns ``y`` and, when ``dy`` is given, ``(dx, dw)`` from the same masked spectra.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    d = x.ndim - 2
    from blconv.reference import pads
    pad = pads(x.shape[2:], w.shape[2:], padding, dilation)
    dil = (dilation,) * d if np.isscalar(dilation) else tuple(dilation)
    st = (stride,) * d if np.isscalar(stride) else tuple(stride)
    xpad = np.pad(x, [(0, 0), (0, 0)] + pad)
    P = xpad.shape[2:]
    keff = [(k - 1) * dl + 1 for k, dl in zip(w.shape[2:], dil)]
    out1 = [p - ke + 1 for p, ke in zip(P, keff)]
    axes = tuple(range(2, 2 + d))
    wfull = np.zeros(w.shape[:2] + tuple(fft_shape))
    wfull[(Ellipsis,) + tuple(slice(0, (k - 1) * dl + 1, dl) for k, dl in zip(w.shape[2:], dil))] = w
    M = two_sided_mask(fft_shape, keep)
    X = np.fft.fftn(xpad, s=fft_shape, axes=axes) * M
    W = np.fft.fftn(wfull, axes=axes) * M
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    G = groups
    Xg = X.reshape((N, G, Cg) + tuple(fft_shape))
    Wg = W.reshape((G, O // G, Cg) + tuple(fft_shape))
    Y = np.einsum("ngc...,goc...->ngo...", Xg, np.conj(Wg)).reshape((N, O) + tuple(fft_shape))
    y1 = np.real(np.fft.ifftn(Y, axes=axes))
    crop = tuple(slice(0, o, s) for o, s in zip(out1, st))
    y = y1[(Ellipsis,) + crop]
    if dy is None:
        return y
    dy1 = np.zeros((N, O) + tuple(fft_shape))
    dy1[(Ellipsis,) + crop] = dy
    DY = np.fft.fftn(dy1, axes=axes) * M
    DYg = DY.reshape((N, G, O // G) + tuple(fft_shape))
    DX = np.einsum("ngo...,goc...->ngc...", DYg, Wg).reshape((N, C) + tuple(fft_shape))
    dxpad = np.real(np.fft.ifftn(DX, axes=axes))
    dx = dxpad[(Ellipsis,) + tuple(slice(lo, lo + n) for (lo, _), n in zip(pad, x.shape[2:]))]
    DW = np.einsum("ngc...,ngo...->goc...", Xg, np.conj(DYg)).reshape((O, Cg) + tuple(fft_shape))
    dwfull = np.real(np.fft.ifftn(DW, axes=axes))
    dw = dwfull[(Ellipsis,) + tuple(slice(0, (k - 1) * dl + 1, dl) for k, dl in zip(w.shape[2:], dil))]
    return y, dx, dw
