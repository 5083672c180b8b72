"""The fftconvolve peer: multi-channel correlation and its gradients by fftconvolve."""
from __future__ import annotations

import numpy as np
import scipy.fft

from .. import reference

__all__ = ["fftconvolve_backward", "fftconvolve_forward"]


def _batch_slices(n, per_sample, max_bytes):
    """Slices of the batch axis such that ``len * per_sample`` stays near ``max_bytes``."""
    step = max(1, int(max_bytes // max(per_sample, 1)))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _spectrum_bytes(c_in, c_out, length):
    # one sample's broadcast (C_out, C_in, *fft) complex64 product, with its inverse
    return 16 * c_in * c_out * int(np.prod([scipy.fft.next_fast_len(n, real=True)
                                            for n in length]))


def fftconvolve_forward(x, w, b=None, *, stride=1, padding=0, workers=None, max_bytes=2**30):
    """Multi-channel cross-correlation through :func:`scipy.signal.fftconvolve`.

    Dilation 1, one group: the naive FFT peer the benchmark compares blconv with (a
    stride keeps every ``stride``-th output of the stride-1 correlation).

    Parameters
    ----------
    x : ndarray, shape ``(N, C_in, *size)``
    w : ndarray, shape ``(C_out, C_in, *kernel)``
    b : ndarray, shape (C_out,), optional
    stride : int
    padding : int, tuple of int or 'same'
        Zero padding on both sides (``'same'``: the odd extra element on the right).
    workers : int, optional
        Threads for :mod:`scipy.fft` (default one).
    max_bytes : int
        The batch is split so that each fftconvolve call's broadcast spectra take
        about this many bytes (at least one sample per call).

    Returns
    -------
    y : ndarray, shape ``(N, C_out, *out)``, dtype of ``x``

    Notes
    -----
    ``y[n, o] = sum_c x_pad[n, c] (*) flip(w[o, c])`` in ``'valid'`` mode: one
    convolution per ``(n, o, c)``, broadcast as ``(N, 1, C) x (1, O, C)``.  The sum
    over channels happens after the inverse transforms, so the cost grows as
    ``N * C_in * C_out`` inverse FFTs (blconv sums in the frequency domain instead).

    Examples
    --------
    >>> import numpy as np
    >>> fftconvolve_forward(np.array([[[1., 2., 3., 4.]]]), np.array([[[1., -1.]]])).round(6)
    array([[[-1., -1., -1.]]])
    """
    import scipy.signal           # here, not at the top: a second's import the CLI would pay
    x, w = np.asarray(x), np.asarray(w)
    d = x.ndim - 2
    axes = tuple(range(-d, 0))
    x_pad = np.pad(x, [(0, 0), (0, 0)] + reference.pads(x.shape[2:], w.shape[2:], padding, 1))
    w_flip = w[(Ellipsis,) + (slice(None, None, -1),) * d][None]
    per_sample = _spectrum_bytes(x.shape[1], w.shape[0], x_pad.shape[2:])
    with scipy.fft.set_workers(workers or 1):
        # (n, 1, C, *P) (*) (1, O, C, *k) -> (n, O, C, *out), summed over C
        y = np.concatenate([
            scipy.signal.fftconvolve(x_pad[sl, None], w_flip, mode="valid", axes=axes).sum(2)
            for sl in _batch_slices(x.shape[0], per_sample, max_bytes)])
    y = y[(Ellipsis,) + (slice(None, None, stride),) * d]
    if b is not None:
        y = y + np.asarray(b).reshape((-1,) + (1,) * d)
    return y.astype(x.dtype, copy=False)


def fftconvolve_backward(dy, x, w, *, stride=1, padding=0, bias=True, workers=None,
                         max_bytes=2**30):
    """Gradients ``(dx, dw, db)`` of :func:`fftconvolve_forward`, also by fftconvolve.

    Parameters
    ----------
    dy : ndarray, shape ``(N, C_out, *out)``
    x, w, stride, padding, workers, max_bytes
        As given to :func:`fftconvolve_forward`.
    bias : bool
        Whether to return ``db`` (else ``None``).

    Returns
    -------
    dx : ndarray, shape of ``x``
    dw : ndarray, shape of ``w``
    db : ndarray, shape (C_out,), or None

    Notes
    -----
    ``dx_pad[n, c] = sum_o dy[n, o] (*) w[o, c]`` in ``'full'`` mode, cropped by the
    padding; ``dw[o, c] = sum_n x_pad[n, c] (*) flip(dy[n, o])`` in ``'valid'`` mode.

    Examples
    --------
    >>> import numpy as np
    >>> dx, dw, db = fftconvolve_backward(np.ones((1, 1, 3)), np.arange(4.).reshape(1, 1, 4),
    ...                                   np.array([[[1., -1.]]]))
    >>> dx.round(6), dw.round(6), db
    (array([[[ 1.,  0.,  0., -1.]]]), array([[[3., 6.]]]), array([3.]))
    """
    import scipy.signal
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    d = x.ndim - 2
    axes = tuple(range(-d, 0))
    pad = reference.pads(x.shape[2:], w.shape[2:], padding, 1)
    x_pad = np.pad(x, [(0, 0), (0, 0)] + pad)
    if stride != 1:                        # dy at the strided outputs of the stride-1 map
        out1 = tuple(p - k + 1 for p, k in zip(x_pad.shape[2:], w.shape[2:]))
        up = np.zeros(dy.shape[:2] + out1, dtype=dy.dtype)
        up[(Ellipsis,) + (slice(None, None, stride),) * d] = dy
        dy = up
    dy_flip = dy[(Ellipsis,) + (slice(None, None, -1),) * d]
    per_sample = _spectrum_bytes(x.shape[1], w.shape[0], x_pad.shape[2:])
    dx_pad, dw = [], np.zeros(w.shape, dtype=np.result_type(x, dy))
    with scipy.fft.set_workers(workers or 1):
        for sl in _batch_slices(x.shape[0], per_sample, max_bytes):
            # (n, O, 1, *out) (*) (1, O, C, *k) -> (n, O, C, *P), summed over O
            dx_pad.append(scipy.signal.fftconvolve(dy[sl, :, None], w[None], mode="full",
                                                   axes=axes).sum(axis=1))
            # (n, 1, C, *P) (*) (n, O, 1, *out) -> (n, O, C, *k), summed over n
            dw += scipy.signal.fftconvolve(x_pad[sl, None], dy_flip[sl, :, None],
                                           mode="valid", axes=axes).sum(axis=0)
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad, x.shape[2:]))
    dx = np.concatenate(dx_pad)[(Ellipsis,) + crop]
    db = dy.sum(axis=(0,) + tuple(range(2, 2 + d))) if bias else None
    return dx.astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db

