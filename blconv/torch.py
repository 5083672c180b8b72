"""Band-limited convolutions inside PyTorch models.

``blconv.torch`` runs blconv's core, unchanged, under PyTorch's autograd:

* :func:`conv1d`, :func:`conv2d`: ``torch.nn.functional.conv1d/conv2d`` with a
  band, as ``torch.autograd.Function`` objects whose forward calls
  :func:`blconv.conv2d_forward` (or ``conv1d_forward``) and whose backward calls
  :func:`blconv.conv2d_backward`;
* :class:`Conv1d`, :class:`Conv2d`: subclasses of ``torch.nn.Conv1d/Conv2d`` with
  the same parameters and ``state_dict`` keys, plus the band settings;
* :func:`convert`: turns every ``torch.nn.Conv1d/Conv2d`` of a model into one of
  these, in place, keeping the same ``Parameter`` objects; :func:`set_compress_rate`
  changes the band of every such layer (band-limited inference at another rate);
* :func:`saved_bytes`: the bytes of retained spectra an autograd graph holds.

Tensors are handed to the core without a copy: CPU tensors as NumPy arrays
(``Tensor.numpy()`` on the detached tensor), CUDA tensors as CuPy arrays through
DLPack, with CuPy running on the tensor's current CUDA stream; the results come
back the same way.  Between forward and backward the autograd node keeps only the
retained spectrum of the input (the core's ``ctx.x_hat``, saved as a complex tensor
that shares the array's memory) and the weight itself, as PyTorch's own convolution
saves it (modifying it in place before the backward raises PyTorch's usual error):
not the input, not a padded copy.  The backward recomputes the filters' retained
spectrum from the weight.  PyTorch frees what was saved after the backward (unless
``retain_graph=True``), exactly as it frees the tensors its own layers save.

PyTorch is an optional dependency: ``pip install "blconv[torch]"``.
``import blconv`` never imports it.
"""
from __future__ import annotations

import dataclasses
import warnings

try:
    import torch
except ImportError as _err:  # torch missing, or blocked
    raise ImportError('blconv.torch needs PyTorch, which is not installed: '
                      'pip install "blconv[torch]" (or pip install "torch>=2.1")') from _err

import numpy as np

import blconv as _core
from . import _validation as V

__all__ = ["conv1d", "conv2d", "Conv1d", "Conv2d", "convert", "set_compress_rate",
           "saved_bytes"]

_FLOATS = (torch.float32, torch.float64)


# --- tensors <-> arrays, without copies ---------------------------------------------------
def _cupy():
    try:
        import cupy
    except ImportError as e:
        raise ImportError('blconv.torch: CUDA tensors are computed by CuPy, which is not '
                          'installed: pip install "blconv[gpu]"') from e
    return cupy


class _Device:
    """Where the core runs for tensors on ``device``: NumPy, or CuPy on torch's stream.

    Used as a context manager around every core call: for CUDA tensors it makes the
    tensor's device current in CuPy and CuPy's current stream torch's current stream
    of that device, so that no synchronisation is needed in either direction.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self._stack = []

    def __enter__(self):
        if self.cuda:
            cp = _cupy()
            index = self.device.index if self.device.index is not None else \
                torch.cuda.current_device()
            stream = torch.cuda.current_stream(index)
            dev = cp.cuda.Device(index)
            ext = cp.cuda.ExternalStream(stream.cuda_stream, index)
            dev.__enter__()
            ext.__enter__()
            self._stack = [ext, dev]
        return self

    def __exit__(self, *exc):
        while self._stack:
            self._stack.pop(0).__exit__(*exc)
        return False

    def array(self, t):
        """A NumPy or CuPy view of tensor ``t`` (``None`` passes through)."""
        if t is None:
            return None
        t = t.detach()
        if self.cuda:
            return _cupy().from_dlpack(t)
        return t.numpy()

    def tensor(self, a):
        """A tensor sharing the memory of NumPy or CuPy array ``a``."""
        if a is None:
            return None
        if self.cuda:
            return torch.from_dlpack(a)
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            a = np.array(a)        # torch.from_numpy takes neither; never the case for the core's outputs
        return torch.from_numpy(a)


def _check_tensors(fn, x, weight, bias):
    named = [("x", x), ("weight", weight), ("bias", bias)]
    for name, t in named:
        if t is None and name != "bias":
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got None")
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got "
                            f"{type(t).__module__}.{type(t).__qualname__}")
    present = [(n, t) for n, t in named if t is not None]
    for name, t in present:
        if t.dtype not in _FLOATS:
            raise TypeError(f"{fn}: {name} must be float32 or float64, got {t.dtype}")
    if len({t.dtype for _, t in present}) > 1:
        desc = ", ".join(f"{n}.dtype={t.dtype}" for n, t in present)
        raise TypeError(f"{fn}: x, weight and bias must share one dtype; got {desc}")
    for name, t in present:
        if t.device.type not in ("cpu", "cuda"):
            raise TypeError(f"{fn}: {name} is on device {t.device}; blconv.torch computes on "
                            f"CPU (NumPy) and CUDA (CuPy) tensors only")
    if len({t.device for _, t in present}) > 1:
        desc = ", ".join(f"{n} on {t.device}" for n, t in present)
        raise TypeError(f"{fn}: x, weight and bias must be on one device; got {desc}")
    for name, t in present:
        if t.is_sparse or t.layout != torch.strided:
            raise TypeError(f"{fn}: {name} must be a dense (strided) tensor, got layout "
                            f"{t.layout}")


# --- the autograd Function ------------------------------------------------------------
class _BandConv(torch.autograd.Function):
    """``y = conv{d}d_forward(x, w, b)``; backward ``conv{d}d_backward(dy, ctx)``.

    The node saves the input's retained spectrum (a complex tensor over the array's
    memory) and the weight with ``save_for_backward``, and the rest of the core ctx
    (band, geometry: small) as a plain attribute, so PyTorch frees the spectrum with
    the graph's buffers and checks the weight's version before the backward.
    """

    @staticmethod
    def forward(ctx, d, x, weight, bias, options, info):
        dev = _Device(x.device)
        with dev:
            y, core_ctx = getattr(_core, f"conv{d}d_forward")(
                dev.array(x), dev.array(weight), dev.array(bias), **options)
            out = dev.tensor(y)
            x_hat = dev.tensor(core_ctx.x_hat)
        ctx.save_for_backward(x_hat, weight)
        ctx.core_ctx = dataclasses.replace(core_ctx, x_hat=None, w=None)
        ctx.d = d
        info["band"] = core_ctx.band
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        need_x, need_w, need_b = ctx.needs_input_grad[1:4]
        x_hat, weight = ctx.saved_tensors
        dx = dw = db = None
        if need_x or need_w:
            dev = _Device(dy.device)
            with dev:
                core_ctx = dataclasses.replace(ctx.core_ctx, x_hat=dev.array(x_hat),
                                               w=dev.array(weight))
                # the core computes dx and dw together; what is not needed is dropped
                gx, gw, gb = getattr(_core, f"conv{ctx.d}d_backward")(dev.array(dy), core_ctx)
                dx = dev.tensor(gx) if need_x else None
                dw = dev.tensor(gw) if need_w else None
                db = dev.tensor(gb) if need_b else None
        elif need_b:
            db = dy.sum(dim=(0,) + tuple(range(2, 2 + ctx.d)))
        return None, dx, dw, db, None, None


def _conv(d, x, weight, bias, stride, padding, dilation, groups, compress_rate,
          preserve_energy, fft_size):
    """``(y, band)``: the output tensor and the band the core used."""
    fn = f"conv{d}d"
    _check_tensors(fn, x, weight, bias)
    unbatched = x.dim() == d + 1          # (C_in, *spatial), as torch accepts
    if unbatched:
        x = x.unsqueeze(0)
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                   compress_rate=compress_rate, preserve_energy=preserve_energy,
                   fft_size=fft_size)
    info = {}
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (x, weight, bias)):
        y = _BandConv.apply(d, x, weight, bias, options, info)
    else:                                 # no graph: nothing is kept for a backward
        dev = _Device(x.device)
        with dev:
            out, core_ctx = getattr(_core, f"conv{d}d_forward")(
                dev.array(x), dev.array(weight), dev.array(bias), **options)
            y = dev.tensor(out)
        info["band"] = core_ctx.band
        del core_ctx
    return (y.squeeze(0) if unbatched else y), info["band"]


_FUNC_DOC = """Band-limited {d}D cross-correlation of tensors, differentiable by autograd.

``torch.nn.functional.conv{d}d`` computed by :func:`blconv.conv{d}d_forward` through
the FFT, keeping only the low frequencies of the input's and the filters' spectra;
the backward is :func:`blconv.conv{d}d_backward`, the exact gradient of that
band-limited map.  At ``compress_rate=0`` the result equals
``torch.nn.functional.conv{d}d`` to floating-point rounding.

Parameters
----------
x : torch.Tensor, shape {xs} (or without the batch axis)
    float32 or float64, on the CPU or a CUDA device (CUDA needs CuPy).
weight : torch.Tensor, shape {ws}
    Same dtype and device as ``x``.
bias : torch.Tensor, shape (C_out,), optional
stride, dilation : int or tuple of {d} ints, default 1
padding : int, tuple of {d} ints, 'valid' or 'same', default 0
    Zero padding, with PyTorch's conventions (``'same'`` needs stride 1 and puts
    the odd extra zero at the end).
groups : int, default 1
compress_rate : float in [0, 1), default 0.0
    Fraction of the one-sided spectrum discarded; defined in :mod:`blconv.band`.
preserve_energy : float in (0, 1], optional
    Instead of a fixed rate, keep the smallest band holding this fraction of the
    input's spectral energy, chosen anew at every call.  The band is then picked
    from the data and is not differentiated through (as in the paper).
fft_size : 'fast', 'pow2', int or tuple of int, default 'fast'
    Transform size per axis (see :func:`blconv.conv{d}d_forward`).

Returns
-------
torch.Tensor, shape {ys}
    Same dtype and device as ``x``; it shares its memory with the core's output
    (no copy).

Raises
------
TypeError
    A non-tensor argument, a dtype other than float32/float64 (the message names
    it), mixed dtypes, or tensors on different or unsupported devices.
ValueError
    Shapes, sizes or ranges that do not fit (raised by the core, naming the
    argument).

Notes
-----
Gradients are computed only when some input requires them and grad mode is on.
The autograd node then saves the retained spectra only (:func:`saved_bytes` counts
them), freed by PyTorch after the backward unless ``retain_graph=True``; the
backward can run more than once with it.  Only the gradients of inputs that
require them are returned; the core computes ``dx`` and ``dw`` in one pass, so
asking for either computes both (a bias-only gradient is ``dy`` summed).

Examples
--------
>>> import torch, blconv.torch as bt
>>> x = torch.randn({xex}, dtype=torch.float64, requires_grad=True)
>>> w = torch.randn({wex}, dtype=torch.float64, requires_grad=True)
>>> y = bt.conv{d}d(x, w, padding=1)
>>> bool(torch.allclose(y, torch.nn.functional.conv{d}d(x, w, padding=1)))
True
>>> y = bt.conv{d}d(x, w, padding="same", compress_rate=0.5)
>>> y.sum().backward()
>>> tuple(y.shape), tuple(x.grad.shape), tuple(w.grad.shape)
({yex}, {xex}, {wex})
"""


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    return _conv(1, x, weight, bias, stride, padding, dilation, groups, compress_rate,
                 preserve_energy, fft_size)[0]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    return _conv(2, x, weight, bias, stride, padding, dilation, groups, compress_rate,
                 preserve_energy, fft_size)[0]


conv1d.__doc__ = _FUNC_DOC.format(
    d=1, xs="(N, C_in, L)", ws="(C_out, C_in / groups, k)", ys="(N, C_out, L_out)",
    xex="(2, 3, 16)", wex="(4, 3, 3)", yex="(2, 4, 16)")
conv2d.__doc__ = _FUNC_DOC.format(
    d=2, xs="(N, C_in, H, W)", ws="(C_out, C_in / groups, kH, kW)",
    ys="(N, C_out, H_out, W_out)", xex="(2, 3, 8, 8)", wex="(4, 3, 3, 3)",
    yex="(2, 4, 8, 8)")


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

    def forward(self, input):  # noqa: A002 - torch's own argument name
        if self.padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: padding_mode must be 'zeros' (the band-"
                             f"limited correlation pads with zeros), got "
                             f"{self.padding_mode!r}")
        y, self.last_band = _conv(self._nd, input, self.weight, self.bias, self.stride,
                                  self.padding, self.dilation, self.groups,
                                  self.compress_rate, self.preserve_energy, self.fft_size)
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


_LAYER_DOC = """Band-limited {d}-D convolution layer: ``torch.nn.Conv{d}d`` computed by blconv.

A subclass of ``torch.nn.Conv{d}d`` with the same parameters (``weight``, ``bias``),
the same initialisation and the same ``state_dict`` keys, so pretrained weights load
unchanged; its forward is :func:`conv{d}d` with the layer's band.  The band settings
are plain attributes (not in the ``state_dict``): set them, or call
:func:`set_compress_rate`, to run at another rate.

Parameters
----------
in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
    As for ``torch.nn.Conv{d}d`` (``padding`` may be ``'same'`` or ``'valid'``).
compress_rate : float in [0, 1), default 0.0
    Fraction of the one-sided spectrum discarded (see :mod:`blconv.band`).
preserve_energy : float in (0, 1], optional
    Keep the smallest band holding this fraction of the input's spectral energy
    instead (excludes ``compress_rate > 0``).
fft_size : 'fast', 'pow2', int or tuple of int, default 'fast'
padding_mode : 'zeros'
    The only mode the band-limited correlation has; others raise ``ValueError``.
device, dtype
    As for ``torch.nn.Conv{d}d``; the dtype must be float32 or float64 to run.

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
>>> conv = bt.Conv{d}d(3, 8, 3, padding=1, compress_rate=0.5)
>>> conv
Conv{d}d(3, 8, kernel_size={kex}, stride={sex}, padding={pex}, compress_rate=0.5)
>>> y = conv(torch.randn({xex}))
>>> tuple(y.shape), conv.last_band.effective_rate > 0.4
({yex}, True)
>>> list(conv.state_dict()) == list(torch.nn.Conv{d}d(3, 8, 3).state_dict())
True
"""


def _layer_init(self, d, in_channels, out_channels, kernel_size, stride, padding, dilation,
                groups, bias, compress_rate, preserve_energy, fft_size, padding_mode, device,
                dtype):
    name = type(self).__name__
    if padding_mode != "zeros":
        raise ValueError(f"{name}: padding_mode must be 'zeros' (the band-limited correlation "
                         f"pads with zeros), got {padding_mode!r}; keep torch.nn.Conv{d}d for "
                         f"other modes")
    c, e = _check_band(name, compress_rate, preserve_energy)   # before any allocation
    getattr(torch.nn, f"Conv{d}d").__init__(
        self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
        dilation=dilation, groups=groups, bias=bias, padding_mode="zeros", device=device,
        dtype=dtype)
    self._set_band(c, e, fft_size)


class Conv1d(_BandConvMixin, torch.nn.Conv1d):
    __doc__ = _LAYER_DOC.format(d=1, kex="(3,)", sex="(1,)", pex="(1,)", xex="2, 3, 16",
                                yex="(2, 8, 16)")
    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, *, compress_rate=0.0, preserve_energy=None,
                 fft_size="fast", padding_mode="zeros", device=None, dtype=None):
        _layer_init(self, 1, in_channels, out_channels, kernel_size, stride, padding,
                    dilation, groups, bias, compress_rate, preserve_energy, fft_size,
                    padding_mode, device, dtype)


class Conv2d(_BandConvMixin, torch.nn.Conv2d):
    __doc__ = _LAYER_DOC.format(d=2, kex="(3, 3)", sex="(1, 1)", pex="(1, 1)",
                                xex="2, 3, 8, 8", yex="(2, 8, 8, 8)")
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, *, compress_rate=0.0, preserve_energy=None,
                 fft_size="fast", padding_mode="zeros", device=None, dtype=None):
        _layer_init(self, 2, in_channels, out_channels, kernel_size, stride, padding,
                    dilation, groups, bias, compress_rate, preserve_energy, fft_size,
                    padding_mode, device, dtype)


_TARGET = {torch.nn.Conv1d: Conv1d, torch.nn.Conv2d: Conv2d}


# --- whole models ---------------------------------------------------------------------
def _why_not(m) -> str | None:
    """Why conv module ``m`` cannot become a blconv layer (``None``: it can)."""
    kind = type(m).__name__
    if type(m) in (Conv1d, Conv2d):
        return None
    if type(m) in _TARGET:
        if m.padding_mode != "zeros":
            return f"{kind}, padding_mode={m.padding_mode!r}"
        return None
    if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
        return f"{kind}, a subclass of torch.nn.{type(m).__mro__[1].__name__}"
    return kind


def _check_model(fn, model):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{fn}: model must be a torch.nn.Module, got "
                        f"{type(model).__module__}.{type(model).__qualname__}")


def convert(model, *, compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    """Make every ``torch.nn.Conv1d/Conv2d`` of ``model`` band-limited, in place.

    Each ``torch.nn.Conv1d`` / ``Conv2d`` with ``padding_mode='zeros'`` (``model``
    itself included) becomes a :class:`Conv1d` / :class:`Conv2d` of blconv.torch by
    a change of class: the module object, its ``Parameter`` objects, buffers, hooks
    and training mode stay the same, so an optimizer built before the call keeps
    updating them and ``state_dict`` keys do not change.  Layers that are already
    blconv layers get the new band settings.

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
        Once, listing the convolutions left as they are: other padding modes,
        transposed and 3-D convolutions, and subclasses of ``torch.nn.Conv1d/Conv2d``
        (whose own forward a change of class would lose).

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
        why = _why_not(m)
        if why is None:
            targets.append(m)
        else:
            skipped.append(f"{name or '(the model)'!s} ({why})")
    for m in targets:
        if type(m) in _TARGET:
            m.__class__ = _TARGET[type(m)]
        m._set_band(c, e, fft_size)
    if skipped:
        warnings.warn(f"convert: {len(skipped)} convolution(s) left as they are (blconv.torch "
                      f"replaces torch.nn.Conv1d/Conv2d with padding_mode='zeros'): "
                      + ", ".join(skipped), UserWarning, stacklevel=2)
    return model


def set_compress_rate(model, compress_rate=0.0, preserve_energy=None):
    """Set the band of every blconv layer of ``model`` (band-limited inference, or training).

    Parameters
    ----------
    model : torch.nn.Module
        A model holding :class:`Conv1d` / :class:`Conv2d` layers (see :func:`convert`).
    compress_rate : float in [0, 1), default 0.0
    preserve_energy : float in (0, 1], optional
        With it, every layer uses the energy policy (and ``compress_rate`` must be 0).

    Returns
    -------
    torch.nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        An invalid band, or a model without any blconv layer (nothing is changed).

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
    layers = [m for m in model.modules() if isinstance(m, _BandConvMixin)]
    if not layers:
        raise ValueError(f"set_compress_rate: model has no blconv.torch Conv1d/Conv2d layer; "
                         f"call blconv.torch.convert(model) first")
    for m in layers:
        m.compress_rate, m.preserve_energy = c, e
    return model


def saved_bytes(output) -> int:
    """Bytes of retained spectra that blconv nodes of ``output``'s autograd graph hold.

    Walks the graph from ``output.grad_fn`` and sums, over the band-limited
    convolutions in it, the bytes of what each allocated for its backward: the
    retained spectrum of its input (``ConvContext.nbytes`` of the core; the weight
    it also saves is the model's own parameter).  Nodes whose buffers were freed (after a backward without
    ``retain_graph=True``) count 0.  Tensors saved by other PyTorch operations
    (batch norm, activations) are not included; measure those with
    ``torch.autograd.graph.saved_tensors_hooks``, which sees these spectra too.

    Parameters
    ----------
    output : torch.Tensor or sequence of torch.Tensor

    Returns
    -------
    int

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> x = torch.randn(8, 16, 32, 32, requires_grad=True)
    >>> w = torch.randn(16, 16, 3, 3, requires_grad=True)
    >>> full = bt.saved_bytes(bt.conv2d(x, w, padding=1))
    >>> half = bt.saved_bytes(bt.conv2d(x, w, padding=1, compress_rate=0.5))
    >>> 0.4 < half / full < 0.6
    True
    """
    outputs = [output] if isinstance(output, torch.Tensor) else list(output)
    for o in outputs:
        if not isinstance(o, torch.Tensor):
            raise TypeError(f"saved_bytes: output must be a tensor or a sequence of tensors, "
                            f"got {type(o).__module__}.{type(o).__qualname__}")
    stack = [o.grad_fn for o in outputs if o.grad_fn is not None]
    seen, total = set(), 0
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if getattr(type(node), "_forward_cls", None) is _BandConv:
            try:
                x_hat = node.saved_tensors[0]          # then the weight, the model's own
                total += x_hat.numel() * x_hat.element_size()
            except RuntimeError:      # freed by a backward without retain_graph
                pass
        stack.extend(f for f, _ in node.next_functions)
    return total

