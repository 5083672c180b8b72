"""Band-limited convolution layers over :func:`blconv.conv1d_forward` / ``conv2d_forward``."""
from __future__ import annotations

import math

import numpy as np

from .._validation import check_energy, check_int, check_rate, conv_geometry, ntuple
from ..band import Band, fft_shape_for
from ._base import (
    Module,
    check_bool,
    check_dtype,
    check_rng,
    init_uniform,
)

__all__ = ["Conv1d", "Conv2d"]


def _core():
    # imported at call time: blconv/__init__ may import blconv.nn while it initialises
    import blconv
    return blconv


class _ConvNd(Module):
    _nd = 0
    _FORWARD_STATE = ("_cache", "last_band")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 compress_rate: float = 0.0, preserve_energy: float | None = None,
                 fft_size="fast", dtype="float32", rng=None):
        super().__init__()
        name, d = type(self).__name__, self._nd
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        self.groups = check_int(name, "groups", groups)
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if v % groups:
                raise ValueError(f"{name}: {arg} ({v}) must be divisible by groups ({groups})")
        self.kernel_size = ntuple(name, "kernel_size", kernel_size, d, minimum=1)
        self.stride = ntuple(name, "stride", stride, d, minimum=1)
        self.dilation = ntuple(name, "dilation", dilation, d, minimum=1)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: padding must be an int, a tuple of {d} ints, "
                                 f"'valid' or 'same', got {padding!r}")
            self.padding = padding
        else:
            self.padding = ntuple(name, "padding", padding, d, minimum=0)
        self.bias = check_bool(name, "bias", bias)
        self.compress_rate = check_rate(name, compress_rate)
        check_energy(name, preserve_energy, self.compress_rate)
        self.preserve_energy = preserve_energy
        self.fft_size = fft_size
        self.last_band = None
        self._frozen_band = None
        # called as hook(layer, x) before each forward while blconv.nn.calibrate measures
        self._energy_hook = None
        dt, rng = check_dtype(name, dtype), check_rng(name, rng)
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        self._params["w"] = init_uniform(rng, bound, (out_channels, in_channels // groups)
                                     + self.kernel_size, dt)
        if bias:
            self._params["b"] = init_uniform(rng, bound, (out_channels,), dt)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    @property
    def frozen_band(self) -> Band | None:
        """The band this layer always uses, or ``None`` (its policy chooses; see the class
        docstring).  Set by :func:`blconv.nn.calibrate`; set it to ``None`` to unfreeze."""
        return self._frozen_band

    @frozen_band.setter
    def frozen_band(self, band):
        name = type(self).__name__
        if band is not None:
            if not isinstance(band, Band):
                raise TypeError(f"{name}: frozen_band must be a blconv.Band or None, got "
                                f"{type(band).__name__}")
            if len(band.fft_shape) != self._nd or len(band.keep) != self._nd:
                raise ValueError(f"{name}: frozen_band must have {self._nd} fft_shape and keep "
                                 f"entries (one per spatial axis), got fft_shape="
                                 f"{tuple(band.fft_shape)}, keep={tuple(band.keep)}")
            bad = [a for a, (n, k) in enumerate(zip(band.fft_shape, band.keep))
                   if not 1 <= k <= n // 2 + 1]
            if bad:
                raise ValueError(f"{name}: frozen_band.keep must lie in 1..n // 2 + 1 per axis, "
                                 f"got keep={tuple(band.keep)} for fft_shape="
                                 f"{tuple(band.fft_shape)}")
            band = Band.from_keep(band.fft_shape, band.keep)
        self._frozen_band = band

    def fft_grid(self, x_shape) -> tuple:
        """The FFT size per spatial axis for an input of shape ``x_shape``.

        ``(N, C_in, *spatial)`` or only the spatial shape; it depends on the
        input size, kernel, padding, dilation and ``fft_size``, never on the
        band: the grid a frozen band and its calibration energy live on.
        """
        name = type(self).__name__
        spatial = tuple(int(n) for n in x_shape)
        spatial = spatial[2:] if len(spatial) == self._nd + 2 else spatial
        if len(spatial) != self._nd:
            raise ValueError(f"{name}: x_shape must be (N, C_in) plus {self._nd} spatial "
                             f"sizes, or the spatial sizes alone, got {tuple(x_shape)}")
        geom = conv_geometry(name, spatial, self.kernel_size, stride=self.stride,
                             padding=self.padding, dilation=self.dilation)
        return fft_shape_for(geom, self.fft_size, fn=name)

    def forward(self, x):
        if self._energy_hook is not None:
            self._energy_hook(self, x)
        fwd = getattr(_core(), f"conv{self._nd}d_forward")
        band = self._frozen_band
        if band is None:
            policy = dict(compress_rate=self.compress_rate, preserve_energy=self.preserve_energy,
                          fft_size=self.fft_size)
        else:
            if x.ndim == self._nd + 2 and self.fft_grid(x.shape) != band.fft_shape:
                raise ValueError(
                    f"{type(self).__name__}: the frozen band was chosen on the FFT grid "
                    f"{band.fft_shape}, but an input of spatial shape {tuple(x.shape[2:])} gives "
                    f"{self.fft_grid(x.shape)}; calibrate again on inputs of this size "
                    f"(blconv.nn.calibrate) or unfreeze (frozen_band = None)")
            policy = dict(band=band)
        y, ctx = fwd(x, self._params["w"], self._params.get("b"), stride=self.stride,
                     padding=self.padding, dilation=self.dilation, groups=self.groups, **policy)
        self._cache, self.last_band = ctx, ctx.band
        return y

    def backward(self, dy):
        bwd = getattr(_core(), f"conv{self._nd}d_backward")
        dx, dw, db = bwd(dy, self._take_cache())
        self._grads["w"] = dw
        if self.bias:
            self._grads["b"] = db
        return dx

    @property
    def last_nbytes(self) -> int:
        """Bytes the last forward holds for the backward (0 once backward has run)."""
        return 0 if self._cache is None else int(self._cache.nbytes)

    def extra_repr(self):
        one = (lambda t: t[0]) if self._nd == 1 else (lambda t: t)
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={one(self.kernel_size)}"
        for arg, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
            v = getattr(self, arg)
            if v != (default,) * self._nd:
                s += f", {arg}={repr(v) if isinstance(v, str) else one(v)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.bias:
            s += ", bias=False"
        if self.preserve_energy is not None:
            s += f", preserve_energy={self.preserve_energy}"
        else:
            s += f", compress_rate={self.compress_rate}"
        band = self._frozen_band
        if band is not None:
            s += f", frozen band keep={band.keep} of fft {band.fft_shape}"
        return s


_DOC = """Band-limited {nd}-D convolution layer (cross-correlation, as PyTorch's ``{torch}``).

Computed through the FFT by :func:`blconv.{fn}_forward`, keeping only the low
frequencies of the input and filter spectra (the band); the backward is the
exact gradient of that band-limited forward.

Parameters
----------
in_channels, out_channels : int
    Both divisible by ``groups``.
kernel_size : int or tuple of {nd} ints
stride, dilation : int or tuple of {nd} ints, default 1
padding : int, tuple of {nd} ints, "valid" or "same", default 0
groups : int, default 1
bias : bool, default True
compress_rate : float, default 0.0
    Fraction of the one-sided spectrum discarded (see :mod:`blconv.band`).
preserve_energy : float, optional
    Instead of a fixed rate, keep the smallest band holding this fraction of
    the input's spectral energy (recomputed at each call, from the whole
    batch: a sample's output then depends on the other samples; freeze the
    band with :func:`blconv.nn.calibrate` for inference).
fft_size : default "fast"
    Passed to the core (see :func:`blconv.{fn}_forward`).
dtype : {{"float32", "float64"}}, default "float32"
rng : numpy.random.Generator or int or None
    Source of the initial values.

Attributes
----------
compress_rate, preserve_energy, fft_size
    Plain attributes: set them after training to evaluate at another rate.
frozen_band : blconv.Band or None
    A fixed band, used instead of ``compress_rate`` and ``preserve_energy``
    while it is set (by :func:`blconv.nn.calibrate`; ``None`` unfreezes).  It
    lives on the FFT grid of one input size (:meth:`fft_grid`): an input of
    another size is refused.  Saved in checkpoints and shown in the repr.
last_band : blconv.band.Band or None
    The band of the last forward (``effective_rate`` is the compression
    actually applied).
last_nbytes : int
    Bytes the last forward holds for the backward.

Notes
-----
Input {layout}.  ``params``: ``w`` of shape {wshape} and ``b`` of shape
(C_out,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
``fan_in = C_in / groups * {fan}`` (PyTorch's default).

Examples
--------
>>> import numpy as np
>>> from blconv.nn import {name}
>>> conv = {name}(2, 4, 3, padding=1, compress_rate=0.5, rng=0)
>>> y = conv(np.ones({xshape}, dtype=np.float32))
>>> y.shape, y.dtype, conv.last_band.effective_rate > 0
({yshape}, dtype('float32'), True)
"""


class Conv1d(_ConvNd):
    __doc__ = _DOC.format(nd=1, torch="conv1d", fn="conv1d", layout="(N, C_in, L)",
                          wshape="(C_out, C_in / groups, k)", fan="k", name="Conv1d",
                          xshape="(1, 2, 16)", yshape="(1, 4, 16)")
    _nd = 1


class Conv2d(_ConvNd):
    __doc__ = _DOC.format(nd=2, torch="conv2d", fn="conv2d", layout="(N, C_in, H, W)",
                          wshape="(C_out, C_in / groups, kH, kW)", fan="kH * kW",
                          name="Conv2d", xshape="(1, 2, 8, 8)", yshape="(1, 4, 8, 8)")
    _nd = 2
