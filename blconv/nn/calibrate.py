"""Calibration: one band per conv layer, chosen from the energy of a whole data set.

With ``preserve_energy`` a layer chooses its band at every forward from the
spectrum of the batch it is given, so a sample's output depends on the other
samples of its batch and on the batch size.  :func:`calibrate` chooses each
layer's band once, from the spectral energy of its input aggregated over a
calibration set, and freezes it (:attr:`Conv1d.frozen_band`): the model then
treats every sample alike, whatever the batch.
"""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .. import settings
from .._validation import check_energy, check_int
from ..band import Band, energy_keep
from ..conv import host_energy, power_spectrum
from ._base import check_module, np_dtype
from .conv import Conv1d, Conv2d

__all__ = ["calibrate"]


class _Measured(Exception):
    """Raised by the measuring hook once the layer under calibration has seen its input:
    the rest of the forward is not needed."""


def _batches(fn: str, data, batch_size: int) -> list:
    """The calibration inputs as a list of arrays (host or device), each ``(n, C, ...)``."""
    from ..data import Dataset
    if isinstance(data, Dataset):
        data = data.x
    if hasattr(data, "shape") and hasattr(data, "ndim"):             # one array: split it
        if data.ndim < 3:
            raise ValueError(f"{fn}: data must be (N, C_in, *spatial) inputs, got an array of "
                             f"shape {tuple(data.shape)}")
        return [data[i:i + batch_size, ...] for i in range(0, data.shape[0], batch_size)]
    if isinstance(data, (list, tuple)):
        bad = [i for i, x in enumerate(data) if not (hasattr(x, "shape") and hasattr(x, "ndim"))]
        if bad:
            raise TypeError(f"{fn}: data[{bad[0]}] must be an array (N, C_in, *spatial), got "
                            f"{type(data[bad[0]]).__name__}")
        return list(data)
    raise TypeError(f"{fn}: data must be a blconv.data.Dataset, an array (N, C_in, *spatial) "
                    f"or a list of such arrays (batches), got {type(data).__name__}")


def _placed(x, *, xp, like, dtype):
    """A host batch cast to the model's dtype and moved to its device; a device one as is."""
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x, dtype=dtype)
        return x if like is None else B.asarray(x, xp=xp, like=like)
    return x


def _input_energy(layer, x, *, xp):
    """``(fft_shape, energy)``: the Parseval-weighted energy of ``x`` per one-sided position
    of the layer's FFT grid, summed over batch and channels (float64, host)."""
    n = layer.fft_grid(x.shape)
    _, power = power_spectrum(x, n, xp=xp, opts=settings.current())   # as the energy mode
    return n, host_energy(power, n)


class _Accumulator:
    """The energy one layer's inputs add up to, on one FFT grid."""

    def __init__(self, fn: str, name: str):
        self.fn, self.name = fn, name
        self.fft_shape, self.energy, self.count = None, None, 0

    def add(self, layer, x, *, xp):
        n, e = _input_energy(layer, x, xp=xp)
        if self.fft_shape is not None and n != self.fft_shape:
            raise ValueError(f"{self.fn}: every calibration input must give conv layer "
                             f"{self.name!r} the same FFT grid; an input of spatial shape "
                             f"{tuple(x.shape[2:])} gives {n}, an earlier one {self.fft_shape} "
                             f"(calibrate on inputs of one size)")
        self.fft_shape = n
        self.energy = e if self.energy is None else self.energy + e
        self.count += int(x.shape[0])


def calibrate(model, data, *, preserve_energy=None, batch_size: int = 256):
    """Choose each conv layer's band from the energy of a whole data set, and freeze it.

    Parameters
    ----------
    model : Module
        Any model; its :class:`~blconv.nn.Conv1d` / :class:`~blconv.nn.Conv2d`
        layers are calibrated in :func:`blconv.models.conv_layers` order (depth
        first), in eval mode.
    data : Dataset, array or list of arrays
        The calibration inputs, all of one spatial size: a
        :class:`blconv.data.Dataset` (its ``x``; labels are not used) or one
        array ``(N, C_in, *spatial)``, both run in batches of ``batch_size``, or
        a list (or tuple) of batch arrays, run as given.  Host (NumPy) batches
        are cast to the model's dtype and moved to its device.  Read once per
        conv layer, so it cannot be a one-shot iterator.
    preserve_energy : float in (0, 1], optional
        The fraction of the aggregate input energy each band must hold; by
        default each layer's own ``preserve_energy`` (an error for a layer
        without one).  It becomes the layers' ``preserve_energy`` (their
        ``compress_rate`` 0), the policy they return to when unfrozen.
    batch_size : int, default 256
        Examples per forward for a Dataset or a single array.  The bands do not
        depend on it (the energy is a sum over examples) beyond rounding.

    Returns
    -------
    list of Band
        The frozen band of each conv layer, in :func:`blconv.models.conv_layers`
        order (also in each layer's :attr:`~blconv.nn.Conv1d.frozen_band`).

    Raises
    ------
    TypeError
        When ``model`` is not a Module, ``data`` none of the kinds above
        (e.g. a generator), or ``preserve_energy`` not a number.
    ValueError
        For ``preserve_energy`` outside (0, 1], or none given while a layer
        has none; a model without conv layers; empty data; inputs of
        different sizes; or a conv layer the forward never reaches.  Nothing is
        changed when it raises.

    Notes
    -----
    For conv layer ``l`` with FFT grid ``n`` (which depends on the input size,
    the kernel, padding and ``fft_size``, not on the band), the aggregate is

    .. math:: E_l[f] = w[f] \\sum_{\\text{samples}} \\sum_{c} |\\hat{x}_c[f]|^2,

    the one-sided power of the layer's input at each retained-grid position
    ``f`` with the Parseval weights of :func:`blconv.band.parseval_weights`,
    as the per-batch energy mode computes it for one batch.  The band is
    :func:`blconv.band.energy_keep` of ``E_l``: the smallest band of
    :func:`blconv.band.energy_family` holding ``preserve_energy`` of it.

    The layers are calibrated in order, each frozen before the next is
    measured: layer ``l`` sees the inputs it will see at inference, made by
    the frozen bands of the layers before it.  The pass that measures layer
    ``l`` stops at it, so calibrating ``L`` layers costs about as much as
    ``L / 2`` forward passes over ``data``.  BatchNorm runs on its running
    statistics (eval mode): ``data`` moves no buffer.

    A frozen layer behaves as a fixed-band layer (it passes ``band=`` to
    :func:`blconv.conv1d_forward`), also in training, for every batch and
    batch size alike.  Its band is saved by :func:`blconv.train.save`, shown
    in ``repr`` and dropped by :func:`blconv.models.set_compression` with a
    new ``compress_rate`` or ``preserve_energy``; ``layer.frozen_band = None``
    unfreezes one layer.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.models import fcn1d
    >>> from blconv.nn import calibrate
    >>> model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9).eval()
    >>> t = np.linspace(0, 1, 64, endpoint=False)
    >>> x = np.sin(2 * np.pi * 3 * t + np.arange(10)[:, None, None]).astype(np.float32)
    >>> def alone_as_in_batch(model):     # sample 0 predicted alone and in the batch
    ...     return bool(np.allclose(model(x[:1]), model(x)[:1], rtol=1e-5, atol=1e-6))
    >>> alone_as_in_batch(model)           # per-batch bands: it depends on the batch
    False
    >>> [band.keep for band in calibrate(model, x)]
    [(5,), (7,), (1,)]
    >>> model[0]
    Conv1d(1, 4, kernel_size=8, padding='same', preserve_energy=0.9, frozen band keep=(5,) of fft (68,))
    >>> alone_as_in_batch(model)
    True
    """
    fn = "calibrate"
    check_module(fn, "model", model)
    batch_size = check_int(fn, "batch_size", batch_size, minimum=1)
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, (Conv1d, Conv2d))]
    if not named:
        raise ValueError(f"{fn}: model has no Conv1d or Conv2d layer to calibrate")
    if preserve_energy is not None:
        targets = [check_energy(fn, preserve_energy, 0.0)] * len(named)
    else:
        missing = [name for name, m in named if m.preserve_energy is None]
        if missing:
            raise ValueError(f"{fn}: preserve_energy=None takes each conv layer's own, but "
                             f"layer {missing[0]!r} has none (compress_rate="
                             f"{dict(named)[missing[0]].compress_rate}); pass "
                             f"preserve_energy=E")
        targets = [m.preserve_energy for _, m in named]
    batches = _batches(fn, data, batch_size)
    if sum(int(x.shape[0]) for x in batches) == 0:
        raise ValueError(f"{fn}: data must hold at least one example, got 0")
    params = list(model.params.values())
    xp = B.namespace(params[0], fn=fn) if params else np
    like, dtype = (params[0], np_dtype(params[0])) if params else (None, np.dtype(np.float64))
    batches = [_placed(x, xp=xp, like=like, dtype=dtype) for x in batches]
    before = [(m.compress_rate, m.preserve_energy, m.frozen_band) for _, m in named]
    try:
        with model.mode(training=False):
            bands = [_calibrate_layer(fn, model, name, layer, e, batches, xp=xp)
                     for (name, layer), e in zip(named, targets)]
    except BaseException:
        for (_, m), (c, e, band) in zip(named, before):
            m.compress_rate, m.preserve_energy, m.frozen_band = c, e, band
        raise
    return bands


def _calibrate_layer(fn, model, name, layer, energy_target, batches, *, xp) -> Band:
    """Measure ``layer``'s input over ``batches`` (the forward stops there) and freeze it."""
    acc = _Accumulator(fn, name)

    def hook(m, x):
        acc.add(m, x, xp=xp)
        raise _Measured

    layer._energy_hook = hook
    try:
        for x in batches:
            if x.shape[0] == 0:
                continue
            try:
                model.forward(x)
            except _Measured:
                pass
    finally:
        layer._energy_hook = None
    if acc.energy is None:
        raise ValueError(f"{fn}: the forward of the model never reached conv layer {name!r}; "
                         f"it cannot be calibrated")
    band = Band.from_keep(acc.fft_shape, energy_keep(acc.energy, acc.fft_shape, energy_target))
    layer.compress_rate, layer.preserve_energy, layer.frozen_band = 0.0, energy_target, band
    return band
