"""Max and average pooling over 1 or 2 spatial axes (no padding, no dilation).

The windows are visited by their offset inside the kernel: for each of the
``prod(kernel_size)`` offsets one strided slice of the input holds that
element of every window, so the work is vectorised over batch, channels and
positions, and the loop runs over kernel offsets only.
"""
from __future__ import annotations

import itertools

from .. import _backend as B
from .._validation import ntuple
from ._base import Module, check_input

__all__ = ["AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d"]


class _Pool(Module):
    _nd = 0
    _max = True

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = ntuple(name, "kernel_size", kernel_size, self._nd, minimum=1)
        self.stride = (self.kernel_size if stride is None
                       else ntuple(name, "stride", stride, self._nd, minimum=1))

    def _windows(self, spatial):
        """Output sizes and one index per kernel offset (the slice of all windows)."""
        name = type(self).__name__
        if any(n < k for n, k in zip(spatial, self.kernel_size)):
            raise ValueError(f"{name}: input spatial size {tuple(spatial)} must be >= "
                             f"kernel_size {self.kernel_size}")
        out = tuple((n - k) // s + 1 for n, k, s in zip(spatial, self.kernel_size, self.stride))
        keys = [(...,) + tuple(slice(o, o + s * (m - 1) + 1, s)
                               for o, s, m in zip(offs, self.stride, out))
                for offs in itertools.product(*(range(k) for k in self.kernel_size))]
        return out, keys

    def forward(self, x):
        name = type(self).__name__
        xp = B.namespace(x, fn=name, names=("x",))
        layout = "(N, C, L)" if self._nd == 1 else "(N, C, H, W)"
        check_input(name, x, (self._nd + 2,), layout)
        _, keys = self._windows(x.shape[2:])
        if not self._max:
            y = x[keys[0]]
            for key in keys[1:]:
                y = y + x[key]
            self._cache = (tuple(x.shape), None)
            return y / len(keys) if len(keys) > 1 else xp.asarray(y, copy=True)
        # running max over offsets; `arg` records which offset won (first on ties),
        # NaNs propagate as in PyTorch
        idx_dtype = xp.uint8 if len(keys) <= 255 else xp.int32
        y = xp.asarray(x[keys[0]], copy=True)
        arg = xp.zeros(y.shape, dtype=idx_dtype, device=B.device(x))
        for i, key in enumerate(keys[1:], start=1):
            v = x[key]
            better = (v > y) | xp.isnan(v)
            y = xp.where(better, v, y)
            arg = xp.where(better, xp.asarray(i, dtype=idx_dtype, device=B.device(x)), arg)
        self._cache = (tuple(x.shape), arg)
        return y

    def backward(self, dy):
        shape, arg = self._take_cache()
        name = type(self).__name__
        xp = B.namespace(dy, fn=f"{name}.backward", names=("dy",))
        _, keys = self._windows(shape[2:])
        dx = xp.zeros(shape, dtype=dy.dtype, device=B.device(dy))
        if self._max:
            zero = xp.zeros((), dtype=dy.dtype, device=B.device(dy))
            for i, key in enumerate(keys):
                dx[key] += xp.where(arg == i, dy, zero)
        else:
            g = dy / len(keys)
            for key in keys:
                dx[key] += g
        return dx

    def extra_repr(self):
        k, s = self.kernel_size, self.stride
        if self._nd == 1:
            k, s = k[0], s[0]
        return f"kernel_size={k}, stride={s}"


_DOC = """{kind} pooling over {nd} spatial axis{es} (no padding).

Parameters
----------
kernel_size : int or tuple of {nd} ints
    Window size.
stride : int or tuple of {nd} ints, optional
    Step between windows; defaults to ``kernel_size`` (non-overlapping).
    Windows may overlap (``stride < kernel_size``).

Notes
-----
Input {layout}; the output size per axis is ``(n - k) // s + 1`` (trailing
elements that fill no whole window are dropped, as in PyTorch).{extra}

Examples
--------
>>> import numpy as np
>>> from blconv.nn import {name}
>>> {name}(2)(np.arange({size}.0).reshape({shape}))
{result}
"""

_MAX_EXTRA = ("\nThe backward routes each output gradient to the first maximum of its window; "
              "NaNs propagate.")


class MaxPool1d(_Pool):
    __doc__ = _DOC.format(kind="Max", nd=1, es="", layout="(N, C, L)", extra=_MAX_EXTRA,
                          name="MaxPool1d", size=4, shape="1, 1, 4",
                          result="array([[[1., 3.]]])")
    _nd, _max = 1, True


class MaxPool2d(_Pool):
    __doc__ = _DOC.format(kind="Max", nd=2, es="es", layout="(N, C, H, W)", extra=_MAX_EXTRA,
                          name="MaxPool2d", size=16, shape="1, 1, 4, 4",
                          result="array([[[[ 5.,  7.],\n         [13., 15.]]]])")
    _nd, _max = 2, True


class AvgPool1d(_Pool):
    __doc__ = _DOC.format(kind="Average", nd=1, es="", layout="(N, C, L)", extra="",
                          name="AvgPool1d", size=4, shape="1, 1, 4",
                          result="array([[[0.5, 2.5]]])")
    _nd, _max = 1, False


class AvgPool2d(_Pool):
    __doc__ = _DOC.format(kind="Average", nd=2, es="es", layout="(N, C, H, W)", extra="",
                          name="AvgPool2d", size=16, shape="1, 1, 4, 4",
                          result="array([[[[ 2.5,  4.5],\n         [10.5, 12.5]]]])")
    _nd, _max = 2, False
