"""Band-limited layers for PyTorch models: :class:`Conv1d`, :class:`Conv2d`, and
:func:`convert` / :func:`set_compress_rate` for whole models."""
from __future__ import annotations

import warnings

import torch

from .. import _validation as V
from .functional import band_conv, not_traced

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "convert",
           "set_compress_rate"]


# --- layers ---------------------------------------------------------------------------
def _check_band(fn, compress_rate, preserve_energy):
    c = V.check_rate(fn, compress_rate)
    e = V.check_energy(fn, preserve_energy, c)
    return c, e


class _BandConvMixin:
    """What :class:`Conv1d` and :class:`Conv2d` add to ``torch.nn.Conv1d/Conv2d``."""

    _nd = 0

    def _set_band(self, compress_rate, preserve_energy, fft_size):
        fn = type(self).__name__
        self.compress_rate, self.preserve_energy = _check_band(fn, compress_rate,
                                                               preserve_energy)
        if not (fft_size in ("fast", "pow2") or isinstance(fft_size, (int, tuple, list))):
            raise ValueError(f"{fn}: fft_size must be 'fast', 'pow2', an int or a tuple of "
                             f"{self._nd} ints, got {fft_size!r}")
        self.fft_size = fft_size
        self.last_band = None

    @not_traced                          # as band_conv: the layer runs as it is
    def forward(self, input):  # noqa: A002 - torch's own argument name
        padding = self.padding
        if self.padding_mode != "zeros":
            # as torch.nn.Conv{1,2}d does: the input padded in that mode, then no padding
            if not isinstance(input, torch.Tensor):
                raise TypeError(f"{type(self).__name__}: input must be a torch.Tensor, got "
                                f"{type(input).__module__}.{type(input).__qualname__}")
            input = torch.nn.functional.pad(input, self._reversed_padding_repeated_twice,  # noqa: A001
                                            mode=self.padding_mode)
            padding = 0
        y, self.last_band = band_conv(self._nd, input, self.weight, self.bias,
                                      stride=self.stride, padding=padding,
                                      dilation=self.dilation, groups=self.groups,
                                      compress_rate=self.compress_rate,
                                      preserve_energy=self.preserve_energy,
                                      fft_size=self.fft_size)
        return y

    def extra_repr(self):
        s = super().extra_repr()
        if self.preserve_energy is not None:
            s += f", preserve_energy={self.preserve_energy}"
        else:
            s += f", compress_rate={self.compress_rate}"
        if self.fft_size != "fast":
            s += f", fft_size={self.fft_size!r}"
        return s


def _layer_init(self, d, in_channels, out_channels, kernel_size, stride, padding, dilation,
                groups, bias, compress_rate, preserve_energy, fft_size, padding_mode, device,
                dtype):
    name = type(self).__name__
    c, e = _check_band(name, compress_rate, preserve_energy)   # before any allocation
    # torch checks the rest (padding_mode one of 'zeros', 'reflect', 'replicate', 'circular')
    getattr(torch.nn, f"Conv{d}d").__init__(
        self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
        dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode, device=device,
        dtype=dtype)
    self._set_band(c, e, fft_size)


class Conv1d(_BandConvMixin, torch.nn.Conv1d):
    """Band-limited 1-D convolution layer: ``torch.nn.Conv1d`` computed by blconv.

    A subclass of ``torch.nn.Conv1d`` with the same parameters (``weight``, ``bias``),
    the same initialisation and the same ``state_dict`` keys, so pretrained weights load
    unchanged; its forward is :func:`conv1d` with the layer's band.  The band settings
    are plain attributes (not in the ``state_dict``): set them, or call
    :func:`set_compress_rate`, to run at another rate.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As for ``torch.nn.Conv1d`` (``padding`` may be ``'same'`` or ``'valid'``).
    compress_rate : float in [0, 1), default 0.0
        Fraction of the one-sided spectrum discarded (see :mod:`blconv.band`).
    preserve_energy : float in (0, 1], optional
        Keep the smallest band holding this fraction of the input's spectral energy
        instead (excludes ``compress_rate > 0``).
    fft_size : 'fast', 'pow2', int or tuple of int, default 'fast'
    padding_mode : 'zeros', 'reflect', 'replicate' or 'circular', default 'zeros'
        As for ``torch.nn.Conv1d``: with a mode other than ``'zeros'`` the input is
        padded in that mode (``torch.nn.functional.pad``), as PyTorch's layer does, and
        the band-limited correlation of the padded input is taken without padding.
    device, dtype
        As for ``torch.nn.Conv1d``; the dtype must be float32 or float64 to run.

    Attributes
    ----------
    compress_rate, preserve_energy, fft_size
        The band policy.
    last_band : blconv.Band or None
        The band of the last forward (``effective_rate`` is the compression actually
        applied, after rounding to whole frequencies).

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> conv = bt.Conv1d(3, 8, 3, padding=1, compress_rate=0.5)
    >>> conv
    Conv1d(3, 8, kernel_size=(3,), stride=(1,), padding=(1,), compress_rate=0.5)
    >>> y = conv(torch.randn(2, 3, 16))
    >>> tuple(y.shape), conv.last_band.effective_rate > 0.4
    ((2, 8, 16), True)
    >>> list(conv.state_dict()) == list(torch.nn.Conv1d(3, 8, 3).state_dict())
    True
    """

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, *, compress_rate=0.0, preserve_energy=None,
                 fft_size="fast", padding_mode="zeros", device=None, dtype=None):
        _layer_init(self, 1, in_channels, out_channels, kernel_size, stride, padding,
                    dilation, groups, bias, compress_rate, preserve_energy, fft_size,
                    padding_mode, device, dtype)


class Conv2d(_BandConvMixin, torch.nn.Conv2d):
    """Band-limited 2-D convolution layer: ``torch.nn.Conv2d`` computed by blconv.

    As :class:`Conv1d`, with two spatial axes: the same parameters, initialisation and
    ``state_dict`` keys as ``torch.nn.Conv2d``, its forward :func:`conv2d` with the
    layer's band (``compress_rate``, ``preserve_energy``, ``fft_size``, ``last_band``).

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> conv = bt.Conv2d(3, 8, 3, padding=1, compress_rate=0.5)
    >>> conv
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), compress_rate=0.5)
    >>> tuple(conv(torch.randn(2, 3, 8, 8)).shape)
    (2, 8, 8, 8)
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, *, compress_rate=0.0, preserve_energy=None,
                 fft_size="fast", padding_mode="zeros", device=None, dtype=None):
        _layer_init(self, 2, in_channels, out_channels, kernel_size, stride, padding,
                    dilation, groups, bias, compress_rate, preserve_energy, fft_size,
                    padding_mode, device, dtype)


class _BandConvTransposeMixin(_BandConvMixin):
    """What :class:`ConvTranspose1d` and :class:`ConvTranspose2d` add to PyTorch's."""

    def _set_band(self, compress_rate, preserve_energy, fft_size):
        _no_energy(type(self).__name__, preserve_energy)
        super()._set_band(compress_rate, None, fft_size)

    @not_traced
    def forward(self, input, output_size=None):  # noqa: A002 - torch's own argument names
        _no_energy(type(self).__name__, self.preserve_energy)
        # torch's own choice of output_padding, from output_size when given
        output_padding = self._output_padding(input, output_size, self.stride, self.padding,
                                              self.kernel_size, self._nd, self.dilation)
        y, self.last_band = band_conv(self._nd, input, self.weight, self.bias, transposed=True,
                                      stride=self.stride, padding=self.padding,
                                      output_padding=output_padding, groups=self.groups,
                                      dilation=self.dilation,
                                      compress_rate=self.compress_rate, fft_size=self.fft_size)
        return y


def _no_energy(fn, preserve_energy):
    if preserve_energy is not None:
        raise ValueError(f"{fn}: preserve_energy has no counterpart for a transposed "
                         f"convolution (the energy policy picks a correlation's band from "
                         f"its input); set compress_rate instead, got "
                         f"preserve_energy={preserve_energy!r}")


def _transpose_init(self, d, in_channels, out_channels, kernel_size, stride, padding,
                    output_padding, groups, bias, dilation, compress_rate, fft_size, device,
                    dtype):
    c, _ = _check_band(type(self).__name__, compress_rate, None)    # before any allocation
    getattr(torch.nn, f"ConvTranspose{d}d").__init__(
        self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
        output_padding=output_padding, groups=groups, bias=bias, dilation=dilation,
        device=device, dtype=dtype)
    self._set_band(c, None, fft_size)


class ConvTranspose1d(_BandConvTransposeMixin, torch.nn.ConvTranspose1d):
    """Band-limited 1-D transposed convolution layer: ``torch.nn.ConvTranspose1d``
    computed by blconv.

    A subclass of ``torch.nn.ConvTranspose1d`` with the same parameters, initialisation
    and ``state_dict`` keys; its forward is :func:`conv_transpose1d` with the layer's
    band: the adjoint of the band-limited correlation whose input has this layer's
    output shape (see :func:`blconv.conv_transpose1d`).  ``forward(input,
    output_size=None)`` chooses ``output_padding`` from ``output_size`` as PyTorch's
    layer does.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation
        As for ``torch.nn.ConvTranspose1d`` (``output_padding`` smaller than
        ``stride``).
    compress_rate : float in [0, 1), default 0.0
    fft_size : 'fast', 'pow2', int or tuple of int, default 'fast'
    device, dtype

    Attributes
    ----------
    compress_rate, fft_size
        The band settings, as for :class:`Conv1d` (``preserve_energy`` is always
        ``None``: the energy policy has no counterpart here).
    last_band : blconv.Band or None
        The band of the last forward.

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> up = bt.ConvTranspose1d(8, 4, 4, stride=2, padding=1, compress_rate=0.5)
    >>> tuple(up(torch.randn(2, 8, 16)).shape)
    (2, 4, 32)
    """

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, *, compress_rate=0.0,
                 fft_size="fast", device=None, dtype=None):
        _transpose_init(self, 1, in_channels, out_channels, kernel_size, stride, padding,
                        output_padding, groups, bias, dilation, compress_rate, fft_size,
                        device, dtype)


class ConvTranspose2d(_BandConvTransposeMixin, torch.nn.ConvTranspose2d):
    """Band-limited 2-D transposed convolution layer: ``torch.nn.ConvTranspose2d``
    computed by blconv.

    As :class:`ConvTranspose1d`, with two spatial axes.

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> up = bt.ConvTranspose2d(8, 4, 4, stride=2, padding=1, compress_rate=0.5)
    >>> up
    ConvTranspose2d(8, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), compress_rate=0.5)
    >>> tuple(up(torch.randn(2, 8, 5, 5), output_size=(11, 11)).shape)
    (2, 4, 11, 11)
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, *, compress_rate=0.0,
                 fft_size="fast", device=None, dtype=None):
        _transpose_init(self, 2, in_channels, out_channels, kernel_size, stride, padding,
                        output_padding, groups, bias, dilation, compress_rate, fft_size,
                        device, dtype)


_TARGET = {torch.nn.Conv1d: Conv1d, torch.nn.Conv2d: Conv2d,
           torch.nn.ConvTranspose1d: ConvTranspose1d, torch.nn.ConvTranspose2d: ConvTranspose2d}
_SUPPORTED = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose1d,
              torch.nn.ConvTranspose2d)


# --- whole models ---------------------------------------------------------------------
# what torch.nn.utils.parametrize puts in the class it makes for a parametrized module:
# a property per parametrized tensor, and its own (de)serialisation guards
_PARAMETRIZE_NAMES = {"__getstate__", "__deepcopy__", "__module__", "__doc__"}


def _parametrized_target(m):
    """The blconv class for a parametrized ``torch.nn.Conv1d/Conv2d``, else ``None``.

    ``torch.nn.utils.parametrize`` (``weight_norm``, ``spectral_norm``, ...) changes a
    module's class to a one-off subclass holding a property per parametrized tensor.
    Such a class over a plain ``Conv1d/Conv2d`` gets the same members over the blconv
    layer, so the parametrizations keep working and ``remove_parametrizations`` (which
    restores the class's base) leaves a blconv layer."""
    cls = type(m)
    if (not torch.nn.utils.parametrize.is_parametrized(m) or len(cls.__bases__) != 1
            or cls.__bases__[0] not in _TARGET):
        return None
    members = {k: v for k, v in vars(cls).items()         # less what Python adds itself
               if k not in ("__dict__", "__weakref__", "__slotnames__")}
    if not set(members) <= _PARAMETRIZE_NAMES | set(m.parametrizations):
        return None                    # something else subclassed it: its own behaviour
    return type(cls.__name__, (_TARGET[cls.__bases__[0]],), members)


def _blconv_class(m, energy):
    """``(cls, None)``: the blconv class conv module ``m`` takes (its own where it is one
    already), or ``(None, why)`` where it cannot become one with the band asked for
    (``energy``: the energy policy)."""
    kind = type(m).__name__
    if not isinstance(m, _SUPPORTED):
        return None, kind
    transposed = isinstance(m, (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d))
    if transposed and energy:
        return None, f"{kind}: the energy policy has no counterpart for a transposed convolution"
    if transposed and any(o >= s for o, s in zip(m.output_padding, m.stride)):
        return None, (f"{kind}: output_padding {m.output_padding} not smaller than stride "
                      f"{m.stride}")
    if isinstance(m, _BandConvMixin):
        return type(m), None
    if isinstance(m, torch.nn.modules.lazy.LazyModuleMixin):
        return None, f"{kind}: its shapes are not known yet; convert after a first forward"
    cls = _TARGET.get(type(m)) or _parametrized_target(m)
    if cls is not None:
        return cls, None
    base = next(c.__name__ for c in _SUPPORTED if isinstance(m, c))
    return None, f"{kind}, a subclass of torch.nn.{base}"


def _check_model(fn, model):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{fn}: model must be a torch.nn.Module, got "
                        f"{type(model).__module__}.{type(model).__qualname__}")


def convert(model, *, compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    """Make every ``torch.nn.Conv1d/Conv2d/ConvTranspose1d/ConvTranspose2d`` of
    ``model`` band-limited, in place.

    Each ``torch.nn.Conv1d`` / ``Conv2d`` (``model`` itself included, any
    ``padding_mode``) becomes a :class:`Conv1d` / :class:`Conv2d` of blconv.torch, and
    each ``torch.nn.ConvTranspose1d`` / ``ConvTranspose2d`` a :class:`ConvTranspose1d` /
    :class:`ConvTranspose2d`, by a change of class: the module object, its
    ``Parameter`` objects, buffers, hooks and training mode stay the same, so an
    optimizer built before the call keeps updating them and ``state_dict`` keys do
    not change.  A convolution with
    parametrizations (``torch.nn.utils.parametrize``: ``weight_norm``,
    ``spectral_norm``, ...) keeps them: its band-limited forward uses the
    parametrized weight.  Layers that are already blconv layers get the new band
    settings.

    Parameters
    ----------
    model : torch.nn.Module
    compress_rate : float in [0, 1), default 0.0
        For every converted layer (see :mod:`blconv.band`); per-layer rates can be
        set afterwards on the layers' ``compress_rate`` attributes.
    preserve_energy : float in (0, 1], optional
        The energy policy instead of a fixed rate.
    fft_size : 'fast', 'pow2', int or tuple of int, default 'fast'

    Returns
    -------
    torch.nn.Module
        ``model`` itself.

    Raises
    ------
    TypeError, ValueError
        ``model`` is not a module, or an invalid band (nothing is changed).

    Warns
    -----
    UserWarning
        Once, listing the convolutions left as they are: 3-D convolutions,
        transposed ones whose ``output_padding`` is not smaller than their stride (or
        all of them with ``preserve_energy``), and subclasses of PyTorch's layers
        other than parametrize's (whose own forward a change of class would lose).

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
    >>> weight = model[0].weight
    >>> model = bt.convert(model, compress_rate=0.5)
    >>> model[0]
    Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), compress_rate=0.5)
    >>> model[0].weight is weight
    True
    """
    fn = "convert"
    _check_model(fn, model)
    c, e = _check_band(fn, compress_rate, preserve_energy)
    skipped = []
    targets = []
    for name, m in model.named_modules():
        if not isinstance(m, torch.nn.modules.conv._ConvNd):
            continue
        cls, why = _blconv_class(m, e is not None)
        if why is None:
            targets.append((m, cls))
        else:
            skipped.append(f"{name or '(the model)'!s} ({why})")
    for m, cls in targets:
        m.__class__ = cls
        m._set_band(c, e, fft_size)
    if skipped:
        warnings.warn(f"convert: {len(skipped)} convolution(s) left as they are (blconv.torch "
                      f"replaces torch.nn.Conv1d/Conv2d/ConvTranspose1d/ConvTranspose2d, "
                      f"parametrized or not, not their subclasses): "
                      + ", ".join(skipped), UserWarning, stacklevel=2)
    return model


def set_compress_rate(model, compress_rate=0.0, preserve_energy=None):
    """Set the band of every blconv layer of ``model`` (band-limited inference, or training).

    Parameters
    ----------
    model : torch.nn.Module
        A model holding blconv.torch layers (see :func:`convert`).
    compress_rate : float in [0, 1), default 0.0
    preserve_energy : float in (0, 1], optional
        With it, every correlation layer uses the energy policy (and ``compress_rate``
        must be 0); transposed convolutions keep their band, with a warning.

    Returns
    -------
    torch.nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        An invalid band, or a model without any blconv layer (nothing is changed).

    Warns
    -----
    UserWarning
        With ``preserve_energy``, listing the transposed convolutions that keep their
        band (the energy policy has no counterpart for them).

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> model = bt.convert(torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)), compress_rate=0.5)
    >>> model = bt.set_compress_rate(model, 0.25)
    >>> model[0].compress_rate
    0.25
    """
    fn = "set_compress_rate"
    _check_model(fn, model)
    c, e = _check_band(fn, compress_rate, preserve_energy)
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, _BandConvMixin)]
    if not layers:
        raise ValueError("set_compress_rate: model has no blconv.torch layer; "
                         "call blconv.torch.convert(model) first")
    kept = []
    for name, m in layers:
        if e is not None and isinstance(m, _BandConvTransposeMixin):
            kept.append(f"{name or '(the model)'} (compress_rate={m.compress_rate})")
        else:
            m.compress_rate, m.preserve_energy = c, e
    if kept:
        warnings.warn(f"set_compress_rate: {len(kept)} transposed convolution(s) keep their "
                      f"band (the energy policy has no counterpart for them): "
                      + ", ".join(kept), UserWarning, stacklevel=2)
    return model


