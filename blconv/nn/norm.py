"""Batch normalisation with running statistics (PyTorch's semantics)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _backend as B
from .._validation import check_int
from ._base import Module, check_dtype, check_input

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    _ndims: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1,
                 dtype="float32"):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_int(name, "num_features", num_features)
        for arg, v, lo, hi in (("eps", eps, 0.0, math.inf), ("momentum", momentum, 0.0, 1.0)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not lo <= v <= hi \
                    or (arg == "eps" and v == 0):
                rng = "> 0" if arg == "eps" else "in [0, 1]"
                raise ValueError(f"{name}: {arg} must be a number {rng}, got {v!r}")
        self.eps, self.momentum = float(eps), float(momentum)
        dt = check_dtype(name, dtype)
        c = self.num_features
        self._params = {"w": np.ones(c, dt), "b": np.zeros(c, dt)}
        self._grads = {"w": np.zeros(c, dt), "b": np.zeros(c, dt)}
        self._buffers = {"running_mean": np.zeros(c, dt), "running_var": np.ones(c, dt)}

    def forward(self, x):
        name = type(self).__name__
        p, buf = self._params, self._buffers
        xp = B.namespace(x, p["w"], fn=name, names=("x", "w"))
        check_input(name, x, self._ndims, self._layout, channels=self.num_features,
                     dtype=p["w"].dtype)
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, self.num_features) + (1,) * (x.ndim - 2)    # broadcast per channel
        w, b = xp.reshape(p["w"], bshape), xp.reshape(p["b"], bshape)
        if self.training:
            n = math.prod(x.shape) // self.num_features
            if n < 2:
                raise ValueError(f"{name}: training needs more than 1 value per channel, "
                                 f"got x of shape {tuple(x.shape)}")
            mean = xp.mean(x, axis=axes, keepdims=True)
            xc = x - mean
            var = xp.mean(xc * xc, axis=axes, keepdims=True)          # biased: normalises
            inv = 1.0 / xp.sqrt(var + self.eps)
            m = self.momentum
            buf["running_mean"] = (1 - m) * buf["running_mean"] + m * xp.reshape(mean, (-1,))
            buf["running_var"] = ((1 - m) * buf["running_var"]
                                  + (m * n / (n - 1)) * xp.reshape(var, (-1,)))  # unbiased
            xc *= inv                                                  # xc is ours
            xhat = xc
        else:
            # one affine map per channel, y = x a + (b - mean a) (as PyTorch's CPU kernel
            # folds it): two passes over x instead of four; the backward recomputes xhat
            inv = xp.reshape(1.0 / xp.sqrt(buf["running_var"] + self.eps), bshape)
            mean = xp.reshape(buf["running_mean"], bshape)
            a = w * inv
            self._cache = (x, inv, mean)
            y = x * a
            y += b - mean * a
            return y
        self._cache = (xhat, inv, None)
        y = xhat * w
        y += b
        return y

    def backward(self, dy):
        xhat, inv, running_mean = self._take_cache()
        xp = B.namespace(dy, xhat, fn=f"{type(self).__name__}.backward", names=("dy", "xhat"))
        batch_stats = running_mean is None
        if not batch_stats:                                  # eval: the cache holds x
            xhat = (xhat - running_mean) * inv
        axes = (0,) + tuple(range(2, dy.ndim))
        bshape = (1, self.num_features) + (1,) * (dy.ndim - 2)
        dw = xp.sum(dy * xhat, axis=axes, keepdims=True)
        db = xp.sum(dy, axis=axes, keepdims=True)
        self._grads["w"], self._grads["b"] = xp.reshape(dw, (-1,)), xp.reshape(db, (-1,))
        a = xp.reshape(self._params["w"], bshape) * inv      # dy/dx per channel, with x's
        dx = dy * a                                          # statistics held fixed
        if not batch_stats:                                  # eval: an affine map per channel
            return dx
        # The batch mean and variance depend on x too: with n values per channel,
        # dx = a (dy - mean(dy) - xhat mean(dy xhat)) = a dy - (a db / n) - xhat (a dw / n).
        n = math.prod(dy.shape) // self.num_features
        dx -= xhat * (a * dw / n)
        dx -= a * db / n
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


_DOC = """Batch normalisation over {what}, per channel, with running statistics.

Parameters
----------
num_features : int
    Channels C.
eps : float, default 1e-5
    Added to the variance.
momentum : float, default 0.1
    Weight of the new batch in the running statistics.
dtype : {{"float32", "float64"}}, default "float32"
    Dtype of params and buffers (the input must match).

Notes
-----
Input {layout}.  ``params``: ``w`` (gamma, ones) and ``b`` (beta, zeros), shape
(C,).  ``buffers``: ``running_mean`` (zeros) and ``running_var`` (ones).

In training, ``y = (x - mean) / sqrt(var + eps) * w + b`` with the batch mean
and *biased* batch variance over every axis but the channels, and

.. math:: r_\\mu \\leftarrow (1 - m) r_\\mu + m \\mu,\\qquad
          r_\\sigma \\leftarrow (1 - m) r_\\sigma + m \\frac{{n}}{{n - 1}} \\sigma^2

(the *unbiased* variance, ``n`` values per channel).  In eval mode the running
statistics replace the batch ones.  As in PyTorch.

Examples
--------
>>> import numpy as np
>>> from blconv.nn import {name}
>>> bn = {name}(2, dtype="float64")
>>> y = bn(np.arange({size}.0).reshape({shape}))
>>> bn.buffers["running_mean"]
array({rm})
"""


class BatchNorm1d(_BatchNorm):
    __doc__ = _DOC.format(what="(N, C) or (N, C, L)", layout="(N, C) or (N, C, L)",
                          name="BatchNorm1d", size=4, shape="2, 2", rm="[0.1, 0.2]")
    _ndims, _layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    __doc__ = _DOC.format(what="(N, C, H, W)", layout="(N, C, H, W)", name="BatchNorm2d",
                          size=8, shape="2, 2, 1, 2", rm="[0.25, 0.45]")
    _ndims, _layout = (4,), "(N, C, H, W)"
