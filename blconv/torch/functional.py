"""The band-limited correlations and transposed convolutions as PyTorch autograd
functions: :func:`conv1d`, :func:`conv2d`, :func:`conv_transpose1d`,
:func:`conv_transpose2d`, and :func:`saved_bytes` to see what their graph nodes hold."""
from __future__ import annotations

import dataclasses
import functools
import sys

import numpy as np
import torch

import blconv as _core
from blconv import settings as _settings

__all__ = ["band_conv", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
           "saved_bytes"]

_FLOATS = (torch.float32, torch.float64)
_HALF = (torch.float16, torch.bfloat16)


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


# --- the autograd Functions -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Call:
    """One band-limited call, what its backward (and that backward's own backward) needs
    besides the saved tensors: ``op`` ("conv" or "conv_transpose"), ``d``, which field
    of the core ctx the saved tensor fills (``kept``), the core ctx without its arrays,
    the call's keyword ``options`` and the speed settings of the forward."""
    op: str
    d: int
    kept: str
    core_ctx: object
    options: dict
    settings: object

    def backward(self, dy, saved, weight, need_x=True, need_w=True):
        """The core's ``(dx, dw, db)`` for output gradient ``dy`` (tensors); ``dx`` or
        ``dw`` is ``None`` where not needed."""
        dev = _Device(dy.device)
        with dev, _settings.using(self.settings):
            core_ctx = dataclasses.replace(self.core_ctx, **{self.kept: dev.array(saved)},
                                           w=dev.array(weight))
            grads = getattr(_core, f"{self.op}{self.d}d_backward")(
                dev.array(dy), core_ctx, need_dx=need_x, need_dw=need_w)
            return tuple(dev.tensor(g) for g in grads)


class _BandConv(torch.autograd.Function):
    """``y = {op}{d}d_forward(x, w, b)``; backward ``{op}{d}d_backward(dy, ctx)``, where
    ``op`` is ``conv`` (the correlation) or ``conv_transpose``.

    The node saves the input's retained spectrum (a complex tensor over the array's
    memory; for the transposed convolution the input itself) and the weight with
    ``save_for_backward``, and the rest of the core ctx
    (band, geometry: small) as a plain attribute, so PyTorch frees the spectrum with
    the graph's buffers and checks the weight's version before the backward.  With
    ``create_graph=True`` the backward runs as :class:`_BandConvBackward`, which
    autograd differentiates again.
    """

    @staticmethod
    def forward(ctx, op, d, x, weight, bias, options, info):
        dev = _Device(x.device)
        with dev:
            y, core_ctx = getattr(_core, f"{op}{d}d_forward")(
                dev.array(x), dev.array(weight), dev.array(bias), **options)
            out = dev.tensor(y)
            # the correlation keeps its input's retained spectrum, the transposed
            # convolution its input itself (blconv.transpose says why)
            kept = "x_hat" if op == "conv" else "x"
            saved = dev.tensor(core_ctx.x_hat) if op == "conv" else x
        ctx.save_for_backward(saved, weight)
        ctx.x_shape = x.shape
        # autograd may run the backward in a thread of its own (on CUDA it does): the
        # forward's speed settings go with it
        ctx.call = _Call(op, d, kept, dataclasses.replace(core_ctx, **{kept: None}, w=None),
                         options, _settings.current())
        info["band"] = core_ctx.band
        return out

    @staticmethod
    def backward(ctx, dy):
        need_x, need_w, need_b = ctx.needs_input_grad[2:5]
        # x and the weight are the first two tensors: skip the gradient of one that this
        # backward does not reach (torch.autograd.grad(loss, x) leaves the weights out)
        (x_node, _), (w_node, _) = ctx.next_functions[:2]
        need_x, need_w = need_x and _will_run(x_node), need_w and _will_run(w_node)
        saved, weight = ctx.saved_tensors
        dx = dw = db = None
        if need_x or need_w:
            if torch.is_grad_enabled():   # create_graph=True: gradients with a graph
                dx, dw = _BandConvBackward.apply(ctx.call, dy, saved, weight, need_x, need_w)
            elif dy.device.type == "cpu" and not dy.any():
                # all zero, as an activation's second derivative sends to the forward's
                # output in a gradient penalty's backward: the gradients are zero (a GPU
                # computes them rather than wait for this test)
                dx = dy.new_zeros(ctx.x_shape) if need_x else None
                dw = torch.zeros_like(weight) if need_w else None
            else:
                dx, dw, db = ctx.call.backward(dy, saved, weight, need_x, need_w)
        if need_b and db is None:         # without the core, or recorded: dy summed
            db = dy.sum(dim=(0,) + tuple(range(2, 2 + ctx.call.d)))
        return (None, None, dx if need_x else None, dw if need_w else None,
                db if need_b else None, None, None)


def _will_run(node) -> bool:
    """Whether the running backward executes autograd node ``node``; True where PyTorch
    does not say (a leaf's node under ``torch.autograd.grad``, or a PyTorch without the
    query)."""
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):
        return True


class _BandConvBackward(torch.autograd.Function):
    """``(dx, dw) = {op}{d}d_backward(dy, ctx)`` as a function of ``dy``, the weight
    and, for the transposed convolution, its input: the backward of :class:`_BandConv`
    when autograd records it (``create_graph=True``: gradient penalties, double
    backprop).

    The backward is bilinear, so its own derivatives are band-limited correlations and
    transposed convolutions at the same band, computed by the core.  For the
    correlation ``C(x, w)``, with ``T`` its adjoint in ``x`` and ``G`` its adjoint in
    ``w``: ``dx = T(dy, w)`` and ``dw = G(x, dy)``, so for incoming ``(ggx, ggw)``

    - ``d/d dy = C(ggx, w) + C(x, ggw)``, ``d/dw = G(ggx, dy)``, ``d/dx = T(dy, ggw)``.

    The correlation keeps its input's retained spectrum, not its input, so it has no
    edge to ``x``: differentiating its ``dw`` (``ggw``) is refused with an error rather
    than answered without the ``x`` term.  The transposed convolution ``T(x, w)``
    keeps its input, so all of it is differentiated: ``dx = C(dy, w)``, ``dw =
    G(dy, x)``, and ``d/d dy = T(ggx, w) + T(x, ggw)``, ``d/dw = G(dy, ggx)``,
    ``d/dx = C(dy, ggw)``.  The derivatives are not themselves differentiable (third
    order is refused by ``once_differentiable``).
    """

    @staticmethod
    def forward(ctx, call, dy, saved, weight, need_x, need_w):
        ctx.set_materialize_grads(False)          # None for an unused dx or dw
        ctx.call = call
        ctx.save_for_backward(dy, saved, weight)
        dx, dw, _ = call.backward(dy, saved, weight, need_x, need_w)
        return dx, dw

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, ggx, ggw):
        call = ctx.call
        dy, saved, weight = ctx.saved_tensors
        need_dy, need_x, need_w = ctx.needs_input_grad[1:4]
        fn = f"blconv.torch.{call.op}{call.d}d"
        if call.op == "conv" and ggw is not None:
            raise RuntimeError(
                f"{fn}: the filter gradient of a band-limited correlation cannot be "
                f"differentiated again: the layer keeps its input's retained spectrum, not "
                f"its input.  Gradients of the input gradient (gradient penalties such as "
                f"WGAN-GP or R1, double backprop) are supported; second derivatives "
                f"through the filter gradient (Hessians in the weights, MAML) are not")
        dev = _Device(dy.device)
        with dev, _settings.using(call.settings):
            a_dy, a_w, a_x = dev.array(dy), dev.array(weight), dev.array(saved)
            a_ggx, a_ggw = dev.array(ggx), dev.array(ggw)
            forward = getattr(_core, f"{call.op}{call.d}d_forward")
            backward = getattr(_core, f"{call.op}{call.d}d_backward")
            # the forward at the call's band (and geometry), without a bias
            options = {k: v for k, v in call.options.items()
                       if k not in ("compress_rate", "preserve_energy")}
            options["band"] = call.core_ctx.band
            g_dy = g_x = g_w = None
            if call.op == "conv":
                if a_ggx is not None and (need_dy or need_w):
                    g_dy, ggx_ctx = forward(a_ggx, a_w, None, **options)   # C(ggx, w)
                    if need_w:
                        g_w = backward(a_dy, ggx_ctx, need_dx=False)[1]     # G(ggx, dy)
            else:
                if need_dy:                               # T(ggx, w) + T(x, ggw)
                    for a, b in ((a_ggx, a_w), (a_x, a_ggw)):
                        if a is not None and b is not None:
                            t = forward(a, b, None, **options)[0]
                            g_dy = t if g_dy is None else g_dy + t
                want_x, want_w = need_x and a_ggw is not None, need_w and a_ggx is not None
                if want_x or want_w:
                    # dx = C(dy, ctx.w), dw = G(dy, ctx.x): (C(dy, ggw), G(dy, ggx)) in one
                    # call; the ctx's other array, not read, only gives the shape
                    g_x, g_w, _ = backward(a_dy, dataclasses.replace(
                        call.core_ctx, x=a_ggx if want_w else a_x,
                        w=a_ggw if want_x else a_w), need_dx=want_x, need_dw=want_w)
            g_dy, g_x, g_w = (dev.tensor(g) for g in (g_dy, g_x, g_w))
        return None, g_dy, g_x, g_w, None, None


def _autocasting(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for ``device_type`` ('cpu' or 'cuda')."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:                     # PyTorch before 2.4: one query per device type
        return (torch.is_autocast_cpu_enabled() if device_type == "cpu"
                else torch.is_autocast_enabled())


def _float32_under_autocast(x, weight, bias):
    """Under ``torch.autocast``, the float16/bfloat16 tensors among ``x, weight, bias``
    as float32 (the others as they are): the band-limited correlation runs in float32,
    as the operations that autocast runs in float32 do.  The casts are autograd
    operations, so each gradient comes back in its tensor's own dtype."""
    if not (isinstance(x, torch.Tensor) and x.device.type in ("cpu", "cuda")
            and _autocasting(x.device.type)):
        return x, weight, bias
    return tuple(t.float() if isinstance(t, torch.Tensor) and t.dtype in _HALF else t
                 for t in (x, weight, bias))


def not_traced(fn):
    """``fn``, which ``torch.compile`` runs as it is, between two compiled graphs.

    TorchDynamo would trace the core's NumPy/CuPy code and run it as PyTorch operations
    of its own, with other rounding; ``torch.compiler.disable`` keeps it out.  Applying
    that decorator imports TorchDynamo, which doubles the time of ``import blconv.torch``,
    so it is applied at the first call made after something else has imported TorchDynamo
    (``torch.compile`` does, before it traces anything); until then nothing is compiled
    and ``fn`` is called directly.
    """
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if "torch._dynamo" not in sys.modules:
            return fn(*args, **kwargs)
        disabled = getattr(fn, "_blconv_not_traced", None)
        if disabled is None:
            disabled = fn._blconv_not_traced = torch.compiler.disable(fn)
        return disabled(*args, **kwargs)
    return call


@not_traced
def band_conv(d, x, weight, bias, *, transposed=False, **options):
    """``(y, band)``: the output tensor and the band the core used, for the correlation
    or (``transposed``) the transposed convolution with the core's keyword ``options``."""
    op = "conv_transpose" if transposed else "conv"
    fn = f"{op}{d}d"
    x, weight, bias = _float32_under_autocast(x, weight, bias)
    _check_tensors(fn, x, weight, bias)
    unbatched = x.dim() == d + 1          # (C_in, *spatial), as torch accepts
    if unbatched:
        x = x.unsqueeze(0)
    info = {}
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (x, weight, bias)):
        # a leaf (a parameter) enters through a view, whose node the backward can ask the
        # engine about (_will_run): under torch.autograd.grad it answers for nodes only
        x, weight = (t.view_as(t) if t.requires_grad and t.grad_fn is None else t
                     for t in (x, weight))
        y = _BandConv.apply(op, d, x, weight, bias, options, info)
    else:                                 # no graph: nothing is kept for a backward
        dev = _Device(x.device)
        with dev:
            out, core_ctx = getattr(_core, f"{fn}_forward")(
                dev.array(x), dev.array(weight), dev.array(bias), **options)
            y = dev.tensor(out)
        info["band"] = core_ctx.band
        del core_ctx
    return (y.squeeze(0) if unbatched else y), info["band"]


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    """Band-limited 1D cross-correlation of tensors, differentiable by autograd.

    ``torch.nn.functional.conv1d`` computed by :func:`blconv.conv1d_forward` through
    the FFT, keeping only the low frequencies of the input's and the filters' spectra;
    the backward is :func:`blconv.conv1d_backward`, the exact gradient of that
    band-limited map.  At ``compress_rate=0`` the result equals
    ``torch.nn.functional.conv1d`` to floating-point rounding.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C_in, L) (or without the batch axis)
        float32 or float64, on the CPU or a CUDA device (CUDA needs CuPy).  Under
        ``torch.autocast`` float16 and bfloat16 tensors are taken too, and cast to
        float32 (see Notes).
    weight : torch.Tensor, shape (C_out, C_in / groups, k)
        Same dtype and device as ``x``.
    bias : torch.Tensor, shape (C_out,), optional
    stride, dilation : int or tuple of 1 ints, default 1
    padding : int, tuple of 1 ints, 'valid' or 'same', default 0
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
        Transform size per axis (see :func:`blconv.conv1d_forward`).

    Returns
    -------
    torch.Tensor, shape (N, C_out, L_out)
        Same dtype and device as ``x`` (float32 under autocast); it shares its memory
        with the core's output (no copy).

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
    The autograd node then saves the input's retained spectrum (:func:`saved_bytes`
    counts it) and the weight, freed by PyTorch after the backward unless
    ``retain_graph=True``; the backward can run more than once with it.  Only the gradients of inputs that
    require them are computed: the core's backward skips ``dx`` or ``dw`` when it is not
    needed (a bias-only gradient is ``dy`` summed, without the core).

    Under ``torch.autocast`` the correlation runs in float32, as the operations that
    autocast keeps in float32 do: float16 and bfloat16 arguments are cast to float32
    (autograd operations, so their gradients come back in their own dtype) and the
    output is float32; float32 and float64 arguments are used as they are.  Under
    ``torch.compile`` the call is not traced: it runs as it is, between two compiled
    graphs, so the results are those of the eager call.

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> x = torch.randn((2, 3, 16), dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn((4, 3, 3), dtype=torch.float64, requires_grad=True)
    >>> y = bt.conv1d(x, w, padding=1)
    >>> bool(torch.allclose(y, torch.nn.functional.conv1d(x, w, padding=1)))
    True
    >>> y = bt.conv1d(x, w, padding="same", compress_rate=0.5)
    >>> y.sum().backward()
    >>> tuple(y.shape), tuple(x.grad.shape), tuple(w.grad.shape)
    ((2, 4, 16), (2, 3, 16), (4, 3, 3))
    """
    return band_conv(1, x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, compress_rate=compress_rate,
                     preserve_energy=preserve_energy, fft_size=fft_size)[0]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           compress_rate=0.0, preserve_energy=None, fft_size="fast"):
    """Band-limited 2D cross-correlation of tensors, differentiable by autograd.

    ``torch.nn.functional.conv2d`` computed by :func:`blconv.conv2d_forward`, with the
    exact gradient of the band-limited map (:func:`blconv.conv2d_backward`).

    Parameters
    ----------
    x : torch.Tensor, shape (N, C_in, H, W) (or without the batch axis)
    weight : torch.Tensor, shape (C_out, C_in / groups, kH, kW)
    bias, stride, padding, dilation, groups, compress_rate, preserve_energy, fft_size
        As in :func:`conv1d`, per spatial axis (an int or a pair).

    Returns
    -------
    torch.Tensor, shape (N, C_out, H_out, W_out)
        Same dtype and device as ``x``, sharing its memory with the core's output.

    Raises
    ------
    TypeError, ValueError
        As in :func:`conv1d`.

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> x = torch.randn((2, 3, 8, 8), dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn((4, 3, 3, 3), dtype=torch.float64, requires_grad=True)
    >>> y = bt.conv2d(x, w, padding=1)
    >>> bool(torch.allclose(y, torch.nn.functional.conv2d(x, w, padding=1)))
    True
    >>> y = bt.conv2d(x, w, padding="same", compress_rate=0.5)
    >>> y.sum().backward()
    >>> tuple(y.shape), tuple(x.grad.shape), tuple(w.grad.shape)
    ((2, 4, 8, 8), (2, 3, 8, 8), (4, 3, 3, 3))
    """
    return band_conv(2, x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, compress_rate=compress_rate,
                     preserve_energy=preserve_energy, fft_size=fft_size)[0]


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, compress_rate=0.0, fft_size="fast"):
    """Band-limited 1D transposed convolution of tensors, differentiable by autograd.

    ``torch.nn.functional.conv_transpose1d`` (the same arguments, in the same order)
    computed by :func:`blconv.conv_transpose1d_forward`: the adjoint of the
    band-limited correlation at the band that correlation uses on an input of this
    call's output shape; the backward is :func:`blconv.conv_transpose1d_backward`.  At
    ``compress_rate=0`` the result equals ``torch.nn.functional.conv_transpose1d`` to
    floating-point rounding.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C_in, L) (or without the batch axis)
        As in :func:`conv1d`.
    weight : torch.Tensor, shape (C_in, C_out / groups, k)
    bias : torch.Tensor, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or tuple of 1 ints
        PyTorch's meanings (``output_padding`` smaller than ``stride``).
    groups : int, default 1
    compress_rate : float in [0, 1), default 0.0
        Of the correlation whose adjoint this is (see :func:`blconv.conv_transpose1d`).
    fft_size : 'fast', 'pow2', int or tuple of int, default 'fast'

    Returns
    -------
    torch.Tensor, shape (N, C_out, L_out)
        ``L_out = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding
        + 1``; same dtype and device as ``x`` (float32 under autocast).

    Raises
    ------
    TypeError, ValueError
        As in :func:`conv1d`.

    Notes
    -----
    As in :func:`conv1d` (gradients, what the node saves, autocast, ``torch.compile``).
    The energy policy has no counterpart for a transposed convolution.

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> x = torch.randn((2, 4, 8), dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn((4, 3, 4), dtype=torch.float64, requires_grad=True)
    >>> z = bt.conv_transpose1d(x, w, stride=2, padding=1)
    >>> bool(torch.allclose(z, torch.nn.functional.conv_transpose1d(x, w, stride=2,
    ...                                                              padding=1)))
    True
    >>> z = bt.conv_transpose1d(x, w, stride=2, padding=1, compress_rate=0.5)
    >>> z.sum().backward()
    >>> tuple(z.shape), tuple(x.grad.shape), tuple(w.grad.shape)
    ((2, 3, 16), (2, 4, 8), (4, 3, 4))
    """
    return band_conv(1, x, weight, bias, transposed=True, stride=stride, padding=padding,
                     output_padding=output_padding, groups=groups, dilation=dilation,
                     compress_rate=compress_rate, fft_size=fft_size)[0]


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, compress_rate=0.0, fft_size="fast"):
    """Band-limited 2D transposed convolution of tensors, differentiable by autograd.

    ``torch.nn.functional.conv_transpose2d`` computed by
    :func:`blconv.conv_transpose2d_forward`, with the exact gradient of the
    band-limited map (:func:`blconv.conv_transpose2d_backward`).

    Parameters
    ----------
    x : torch.Tensor, shape (N, C_in, H, W) (or without the batch axis)
    weight : torch.Tensor, shape (C_in, C_out / groups, kH, kW)
    bias, stride, padding, output_padding, groups, dilation, compress_rate, fft_size
        As in :func:`conv_transpose1d`, per spatial axis (an int or a pair).

    Returns
    -------
    torch.Tensor, shape (N, C_out, H_out, W_out)

    Raises
    ------
    TypeError, ValueError
        As in :func:`conv1d`.

    Examples
    --------
    >>> import torch, blconv.torch as bt
    >>> x = torch.randn((2, 8, 4, 4))
    >>> w = torch.randn((8, 3, 4, 4))
    >>> tuple(bt.conv_transpose2d(x, w, stride=2, padding=1, compress_rate=0.5).shape)
    (2, 3, 8, 8)
    """
    return band_conv(2, x, weight, bias, transposed=True, stride=stride, padding=padding,
                     output_padding=output_padding, groups=groups, dilation=dilation,
                     compress_rate=compress_rate, fft_size=fft_size)[0]


def saved_bytes(output) -> int:
    """Bytes of retained spectra that blconv nodes of ``output``'s autograd graph hold.

    Walks the graph from ``output.grad_fn`` and sums, over the band-limited
    convolutions in it, the bytes of what each allocated for its backward: the
    retained spectrum of its input, or for 1x1 filters its low-passed values at the
    output positions (``ConvContext.nbytes`` of the core; the weight
    it also saves is the model's own parameter).  A transposed convolution allocates
    nothing: it saves its input and weight, as PyTorch's own layer does.  Nodes whose buffers were freed (after a backward without
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
        if getattr(type(node), "_forward_cls", None) is _BandConv and \
                node.call.kept == "x_hat":
            try:
                x_hat = node.saved_tensors[0]          # then the weight, the model's own
                total += x_hat.numel() * x_hat.element_size()
            except RuntimeError:      # freed by a backward without retain_graph
                pass
        stack.extend(f for f, _ in node.next_functions)
    return total

