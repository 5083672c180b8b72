"""Softmax cross-entropy and accuracy over integer class labels."""
from __future__ import annotations

from .. import _backend as B

__all__ = ["accuracy", "cross_entropy"]


def _check(fn: str, logits, y):
    xp = B.namespace(logits, y, fn=fn, names=("logits", "y"))
    if logits.ndim != 2 or logits.shape[0] < 1:
        raise ValueError(f"{fn}: logits must have shape (N, K) with N >= 1, "
                         f"got {tuple(logits.shape)}")
    if not xp.isdtype(logits.dtype, "real floating"):
        raise TypeError(f"{fn}: logits must be float32 or float64, got {logits.dtype}")
    if tuple(y.shape) != (logits.shape[0],):
        raise ValueError(f"{fn}: y must have shape (N,) = ({logits.shape[0]},), "
                         f"got {tuple(y.shape)}")
    if not xp.isdtype(y.dtype, "integral"):
        raise TypeError(f"{fn}: y must hold integer class labels, got dtype {y.dtype}")
    return xp


def cross_entropy(logits, y):
    """Mean softmax cross-entropy and its gradient with respect to the logits.

    Parameters
    ----------
    logits : array, shape (N, K)
        Unnormalised class scores, float32 or float64.
    y : array of int, shape (N,)
        Class labels in ``[0, K)``.

    Returns
    -------
    loss : 0-d array
        ``mean_i(logsumexp(logits_i) - logits_i[y_i])`` in the logits' dtype,
        on their device (``float(loss)`` reads it).
    dlogits : array, shape (N, K)
        ``(softmax(logits) - onehot(y)) / N``, the gradient of ``loss``.

    Raises
    ------
    ValueError
        For wrong shapes or labels outside ``[0, K)`` (checked on the device, one
        synchronisation per call).
    TypeError
        For non-float logits or non-integer labels.

    Notes
    -----
    The row maximum is subtracted before exponentiating, so logits of any
    magnitude give finite results.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import cross_entropy
    >>> loss, dlogits = cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(float(loss), 6) == round(float(np.log(4)), 6), dlogits[0]
    (True, array([-0.375,  0.125,  0.125,  0.125]))
    """
    xp = _check("cross_entropy", logits, y)
    n, k = logits.shape
    if bool(xp.any((y < 0) | (y >= k))):
        raise ValueError(f"cross_entropy: labels y must lie in [0, {k}), got values from "
                         f"{int(xp.min(y))} to {int(xp.max(y))}")
    z = logits - xp.max(logits, axis=1, keepdims=True)             # (N, K), max 0 per row
    e = xp.exp(z)
    s = xp.sum(e, axis=1, keepdims=True)                            # (N, 1), in [1, K]
    onehot = y[:, None] == xp.arange(k, device=B.device(logits))[None, :]
    picked = xp.sum(xp.where(onehot, z, xp.zeros_like(z)), axis=1)
    loss = xp.mean(xp.log(s[:, 0]) - picked)
    dlogits = (e / s - xp.astype(onehot, logits.dtype)) / n
    return loss, dlogits


def accuracy(logits, y) -> float:
    """Fraction of rows whose largest logit is at the label.

    Parameters
    ----------
    logits : array, shape (N, K)
    y : array of int, shape (N,)

    Returns
    -------
    float
        In [0, 1] (a host number: one synchronisation).

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import accuracy
    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1]))
    0.6666666666666666
    """
    xp = _check("accuracy", logits, y)
    hits = xp.argmax(logits, axis=1) == y
    return int(xp.sum(xp.astype(hits, xp.int32))) / logits.shape[0]
