"""Slow, obviously correct spatial-domain correlation and its gradients.

This is the oracle the FFT path is tested against, and the im2col + GEMM peer
of the benchmark.  NumPy only; any number of spatial axes.  It shares no code
with the FFT path (padding, output sizes and gradients are worked out here
again, directly from the definition

    y[n, o, i] = b[o] + sum_{c, j} x_pad[n, g*Cg + c, i*s + j*d] * w[o, c, j]

with ``g = o // (C_out / groups)``).
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["correlate", "correlate_backward", "pads"]


def _tuple(v, d):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * d


def pads(length, kernel, padding, dilation):
    """(left, right) zero padding per axis, for an int, tuple, 'valid' or 'same'."""
    d = len(length)
    if padding == "valid":
        return [(0, 0)] * d
    if padding == "same":
        total = [dl * (k - 1) for k, dl in zip(kernel, _tuple(dilation, d))]
        return [(t // 2, t - t // 2) for t in total]
    return [(p, p) for p in _tuple(padding, d)]


def _im2col(x, kernel, stride, dilation, pad):
    """(N, C, prod(kernel), *out) view-free copy of every tap's strided window."""
    xp_ = np.pad(x, [(0, 0), (0, 0)] + list(pad))
    d = len(kernel)
    out = [(xp_.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
           for a in range(d)]
    cols = []
    for taps in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(slice(t * dl, t * dl + (o - 1) * s + 1, s)
                   for t, dl, o, s in zip(taps, dilation, out, stride))
        cols.append(xp_[(Ellipsis,) + sl])
    return np.stack(cols, axis=2), out, xp_.shape


def correlate(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Direct cross-correlation (PyTorch's ``conv1d``/``conv2d`` semantics).

    Examples
    --------
    >>> import numpy as np
    >>> correlate(np.array([[[1., 2., 3., 4.]]]), np.array([[[1., -1.]]]))
    array([[[-1., -1., -1.]]])
    """
    x, w = np.asarray(x), np.asarray(w)
    d = x.ndim - 2
    kernel = w.shape[2:]
    stride, dilation = _tuple(stride, d), _tuple(dilation, d)
    pad = pads(x.shape[2:], kernel, padding, dilation)
    cols, out, _ = _im2col(x, kernel, stride, dilation, pad)    # (N, C, T, *out)
    N, C, T = cols.shape[:3]
    O, Cg = w.shape[:2]
    cols = cols.reshape(N, groups, Cg * T, -1)                  # (N, G, Cg*T, P)
    wg = w.reshape(groups, O // groups, Cg * T)                 # (G, O/G, Cg*T)
    y = (wg[None] @ cols).reshape((N, O) + tuple(out))
    if b is not None:
        y = y + np.asarray(b).reshape((O,) + (1,) * d)
    return y


def correlate_backward(dy, x, w, *, stride=1, padding=0, dilation=1, groups=1, bias=True):
    """Gradients ``(dx, dw, db)`` of :func:`correlate` for output gradient ``dy``."""
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    d = x.ndim - 2
    kernel = w.shape[2:]
    stride, dilation = _tuple(stride, d), _tuple(dilation, d)
    pad = pads(x.shape[2:], kernel, padding, dilation)
    cols, out, padded_shape = _im2col(x, kernel, stride, dilation, pad)
    N, C, T = cols.shape[:3]
    O, Cg = w.shape[:2]
    G = groups
    dyg = dy.reshape(N, G, O // G, -1)                          # (N, G, O/G, P)
    colsg = cols.reshape(N, G, Cg * T, -1)
    dw = np.einsum("ngop,ngkp->gok", dyg, colsg).reshape(w.shape)
    dcols = (np.swapaxes(w.reshape(G, O // G, Cg * T), 1, 2)[None] @ dyg)
    dcols = dcols.reshape((N, C, T) + tuple(out))
    dxp = np.zeros(padded_shape, dtype=np.result_type(dy, w))
    for t, taps in enumerate(itertools.product(*(range(k) for k in kernel))):
        sl = tuple(slice(tp * dl, tp * dl + (o - 1) * s + 1, s)
                   for tp, dl, o, s in zip(taps, dilation, out, stride))
        dxp[(Ellipsis,) + sl] += dcols[:, :, t]
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad, x.shape[2:]))
    dx = dxp[(Ellipsis,) + crop]
    db = dy.sum(axis=(0,) + tuple(range(2, 2 + d))) if bias else None
    return dx, dw, db
