"""blconv.torch: band-limited convolutions under PyTorch's autograd.

Correctness comes from outside the adapter: PyTorch's own convolutions at compress
rate 0, finite differences (``torch.autograd.gradcheck``) at rate 0.5, and the core's
``conv*_forward/backward`` called directly on the same arrays.
"""
import copy
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import blconv  # noqa: E402
import blconv.torch as bt  # noqa: E402

F = torch.nn.functional
ROOT = Path(__file__).resolve().parents[1]

# float32: the FFT route's rounding grows like eps * log(n) * (sum of |terms|); relative to
# the largest output that stays well under 1e-4 for these sizes.  float64: eps-scaled.
RTOL = {torch.float32: 1e-4, torch.float64: 1e-10}
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


def close(actual, expected, rtol):
    """``|actual - expected| <= rtol * max|expected|``, elementwise."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= rtol * max(scale, 1e-30), f"max error {err:.3g} vs scale {scale:.3g}"


def core_backward_calls(monkeypatch, name):
    """The list to which each call of ``blconv.<name>`` appends its need flags."""
    calls, backward = [], getattr(blconv, name)
    monkeypatch.setattr(blconv, name,
                        lambda dy, ctx, **need: calls.append(need) or backward(dy, ctx, **need))
    return calls


def rand(gen, *shape, dtype=torch.float64, grad=True):
    t = torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)
    return t.requires_grad_(grad)


# name: (x shape, w shape, bias, kwargs)
CASES_2D = {
    "plain": ((2, 3, 9, 10), (4, 3, 3, 3), True, {}),
    "stride2-pad1": ((2, 3, 11, 9), (5, 3, 3, 3), True, dict(stride=2, padding=1)),
    "same-odd": ((2, 3, 8, 9), (4, 3, 3, 3), False, dict(padding="same")),
    "same-even-kernel": ((1, 2, 7, 8), (3, 2, 4, 2), True, dict(padding="same")),
    "same-dilated": ((2, 2, 9, 9), (3, 2, 2, 3), True, dict(padding="same", dilation=(3, 2))),
    "valid": ((2, 3, 6, 7), (2, 3, 2, 5), True, dict(padding="valid")),
    "dilation2-pad2": ((1, 3, 10, 10), (4, 3, 3, 3), False, dict(dilation=2, padding=2)),
    "groups2": ((2, 4, 8, 8), (6, 2, 3, 3), True, dict(groups=2, padding=1)),
    "depthwise-stride2": ((2, 4, 9, 9), (4, 1, 3, 3), True,
                          dict(groups=4, stride=2, padding=1)),
    "mixed-axes": ((2, 3, 9, 12), (4, 3, 3, 2), True,
                   dict(stride=(1, 3), padding=(0, 2), dilation=(2, 1))),
    "1x1-stride2": ((2, 6, 8, 8), (5, 6, 1, 1), False, dict(stride=2)),
}
CASES_1D = {
    "plain": ((2, 3, 20), (4, 3, 5), True, {}),
    "stride3-pad2": ((2, 3, 21), (4, 3, 4), True, dict(stride=3, padding=2)),
    "same-even-kernel": ((2, 2, 16), (3, 2, 8), False, dict(padding="same")),
    "same-dilated": ((1, 2, 15), (2, 2, 3), True, dict(padding="same", dilation=4)),
    "groups3": ((2, 6, 12), (9, 2, 3), True, dict(groups=3, padding=1)),
    "valid-dilation2": ((2, 3, 17), (2, 3, 3), True, dict(padding="valid", dilation=2)),
    "1x1-pad1": ((2, 3, 20), (4, 3, 1), True, dict(padding=1)),
}


# PyTorch's own 'same' with an even effective kernel warns that it pads a copy
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _grid(cases):
    return [pytest.param(*v, id=k) for k, v in cases.items()]


def _vs_torch(d, xs, ws, has_bias, kw, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x, w = rand(gen, *xs, dtype=dtype), rand(gen, *ws, dtype=dtype)
    b = rand(gen, ws[0], dtype=dtype) if has_bias else None
    ours = getattr(bt, f"conv{d}d")(x, w, b, **kw)
    ref = getattr(F, f"conv{d}d")(x, w, b, **kw)
    close(ours, ref.detach(), RTOL[dtype])
    g = rand(gen, *ref.shape, dtype=dtype, grad=False)
    inputs = [t for t in (x, w, b) if t is not None]
    got = torch.autograd.grad((ours * g).sum(), inputs)
    want = torch.autograd.grad((ref * g).sum(), inputs)
    for a, e in zip(got, want):
        close(a, e, RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, has_bias, kw", _grid(CASES_2D))
def test_conv2d_at_rate_0_is_torch_conv2d(xs, ws, has_bias, kw, dtype):
    _vs_torch(2, xs, ws, has_bias, kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, has_bias, kw", _grid(CASES_1D))
def test_conv1d_at_rate_0_is_torch_conv1d(xs, ws, has_bias, kw, dtype):
    _vs_torch(1, xs, ws, has_bias, kw, dtype)


@pytest.mark.parametrize("d, xs, ws, kw", [
    pytest.param(2, (2, 3, 8, 7), (4, 3, 3, 3), dict(padding=1), id="2d-pad1"),
    pytest.param(2, (1, 4, 9, 8), (4, 2, 3, 2), dict(stride=2, groups=2), id="2d-stride2-groups2"),
    pytest.param(2, (2, 2, 8, 8), (3, 2, 2, 2), dict(padding="same", dilation=2),
                 id="2d-same-dilated"),
    pytest.param(1, (2, 3, 16), (2, 3, 5), dict(padding="same"), id="1d-same"),
    pytest.param(1, (2, 2, 15), (3, 2, 3), dict(stride=2, padding=1), id="1d-stride2"),
    pytest.param(2, (2, 3, 9, 8), (4, 3, 1, 1), dict(stride=2, padding=1), id="2d-1x1-stride2"),
])
def test_gradcheck_at_rate_half(d, xs, ws, kw):
    gen = torch.Generator().manual_seed(1)
    x, w, b = rand(gen, *xs), rand(gen, *ws), rand(gen, ws[0])
    fn = getattr(bt, f"conv{d}d")

    def f(x, w, b):
        return fn(x, w, b, compress_rate=0.5, **kw)
    assert torch.autograd.gradcheck(f, (x, w, b), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d, kw", [
    pytest.param(2, dict(stride=2, padding=1), id="2d-stride2"),
    pytest.param(2, dict(padding="same", groups=2), id="2d-same-groups2"),
    pytest.param(1, dict(padding=2, dilation=2), id="1d-dilated"),
])
@pytest.mark.parametrize("rate", [0.5, 0.75])
def test_equals_the_core_on_the_same_arrays(d, kw, dtype, rate):
    gen = torch.Generator().manual_seed(2)
    spatial = (12, 10) if d == 2 else (24,)
    x = rand(gen, 3, 4, *spatial, dtype=dtype)
    w = rand(gen, 6, 4 // kw.get("groups", 1), *(3,) * d, dtype=dtype)
    b = rand(gen, 6, dtype=dtype)
    y = getattr(bt, f"conv{d}d")(x, w, b, compress_rate=rate, **kw)
    dy = rand(gen, *y.shape, dtype=dtype, grad=False)
    y.backward(dy)
    y_ref, ctx = getattr(blconv, f"conv{d}d_forward")(
        x.detach().numpy(), w.detach().numpy(), b.detach().numpy(), compress_rate=rate, **kw)
    grads = getattr(blconv, f"conv{d}d_backward")(dy.numpy(), ctx)
    # the same arithmetic on the same arrays: agreement to a few roundings
    tight = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    for got, want in zip((y, x.grad, w.grad, b.grad), (y_ref,) + tuple(grads)):
        close(got.detach(), torch.from_numpy(want), tight)


def test_tensors_reach_the_core_and_come_back_without_copies(monkeypatch):
    seen = {}
    forward, backward = blconv.conv2d_forward, blconv.conv2d_backward

    def spy_forward(x, w, b, **kw):
        y, ctx = forward(x, w, b, **kw)
        seen.update(x=x, w=w, y=y, x_hat=ctx.x_hat)
        return y, ctx

    def spy_backward(dy, ctx, **kw):
        grads = backward(dy, ctx, **kw)
        seen.update(dy=dy, ctx_x_hat=ctx.x_hat, dx=grads[0])
        return grads

    monkeypatch.setattr(blconv, "conv2d_forward", spy_forward)
    monkeypatch.setattr(blconv, "conv2d_backward", spy_backward)
    gen = torch.Generator().manual_seed(3)
    x, w = rand(gen, 2, 3, 8, 8), rand(gen, 4, 3, 3, 3)
    y = bt.conv2d(x, w, padding=1, compress_rate=0.5)
    assert np.shares_memory(seen["x"], x.detach().numpy())
    assert np.shares_memory(seen["w"], w.detach().numpy())
    assert np.shares_memory(seen["y"], y.detach().numpy())
    dy = torch.ones_like(y)
    y.backward(dy)
    assert np.shares_memory(seen["dy"], dy.numpy())
    assert np.shares_memory(seen["ctx_x_hat"], seen["x_hat"])   # the spectra, not a copy
    assert np.shares_memory(seen["dx"], x.grad.numpy())


def test_the_node_saves_the_input_spectrum_and_the_weight_only():
    gen = torch.Generator().manual_seed(4)
    x, w = rand(gen, 4, 8, 16, 16, dtype=torch.float32), rand(gen, 8, 8, 3, 3,
                                                               dtype=torch.float32)
    saved = []

    def pack(t):
        saved.append(t)
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = bt.conv2d(x, w, padding=1, compress_rate=0.5)
    _, ctx = blconv.conv2d_forward(x.detach().numpy(), w.detach().numpy(), padding=1,
                                   compress_rate=0.5)
    assert [t.dtype for t in saved] == [torch.complex64, torch.float32]
    assert tuple(saved[0].shape) == ctx.x_hat.shape
    assert saved[1].data_ptr() == w.data_ptr()       # the weight itself, as torch's conv saves
    assert saved[0].numel() * saved[0].element_size() == ctx.nbytes == bt.saved_bytes(y)
    # the input's spectrum at c=0.5 is smaller than the input itself
    assert saved[0].numel() * saved[0].element_size() < x.numel() * x.element_size()


@pytest.mark.parametrize("bad", [torch.float16, torch.bfloat16, torch.int64, torch.complex64])
def test_other_dtypes_are_a_type_error_naming_the_dtype(bad):
    x = torch.ones(1, 2, 6, 6).to(bad)
    w = torch.ones(3, 2, 3, 3).to(bad)
    with pytest.raises(TypeError, match=rf"conv2d: x must be float32 or float64, got {bad}"):
        bt.conv2d(x, w)
    with pytest.raises(TypeError, match=rf"conv1d: weight must be float32 or float64, "
                                        rf"got {bad}"):
        bt.conv1d(torch.ones(1, 2, 6), torch.ones(3, 2, 3).to(bad))


def test_argument_errors_name_the_argument():
    x, w = torch.ones(1, 2, 6, 6), torch.ones(3, 2, 3, 3)
    with pytest.raises(TypeError, match=r"conv2d: x, weight and bias must share one dtype; "
                                        r"got x.dtype=torch.float32, weight.dtype=torch.float64"):
        bt.conv2d(x, w.double())
    with pytest.raises(TypeError, match=r"conv2d: weight must be a torch.Tensor, got "
                                        r"numpy.ndarray"):
        bt.conv2d(x, w.numpy())
    with pytest.raises(ValueError, match=r"conv2d: compress_rate must be in \[0, 1\), got 50 "
                                         r"\(a fraction"):
        bt.conv2d(x, w, compress_rate=50)
    with pytest.raises(ValueError, match=r"conv2d: x.shape\[1\] \(C_in=2\) must equal"):
        bt.conv2d(x, torch.ones(3, 4, 3, 3))
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1"):
        bt.conv2d(x, w, stride=2, padding="same")


@pytest.mark.parametrize("requires_grad", [True, False], ids=["leaf-requires-grad",
                                                               "nothing-requires-grad"])
def test_no_grad_builds_no_graph(requires_grad):
    gen = torch.Generator().manual_seed(5)
    x, w = rand(gen, 2, 3, 8, 8, grad=requires_grad), rand(gen, 4, 3, 3, 3, grad=requires_grad)
    with torch.no_grad():
        y = bt.conv2d(x, w, padding=1)
    assert not y.requires_grad and y.grad_fn is None
    close(y, F.conv2d(x, w, padding=1).detach(), RTOL[torch.float64])


def test_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(6)
    base = rand(gen, 3, 2, 10, 16, grad=False)
    x = base.transpose(0, 1)[..., ::2].requires_grad_()      # (2, 3, 10, 8), odd strides
    wb = rand(gen, 3, 3, 4, 4, grad=False)
    w = wb.transpose(2, 3)[:, :, :3, :3].requires_grad_()    # non-contiguous filters
    assert not x.is_contiguous() and not w.is_contiguous()
    y = bt.conv2d(x, w, padding=1, stride=(2, 1))
    ref = F.conv2d(x, w, padding=1, stride=(2, 1))
    close(y, ref.detach(), RTOL[torch.float64])
    # y.sum()'s gradient is an expanded tensor: stride 0 on every axis
    got = torch.autograd.grad(y.sum(), (x, w))
    want = torch.autograd.grad(ref.sum(), (x, w))
    for a, e in zip(got, want):
        close(a, e, RTOL[torch.float64])


def test_unbatched_input_as_torch():
    gen = torch.Generator().manual_seed(7)
    x, w = rand(gen, 3, 9, 9), rand(gen, 4, 3, 3, 3)
    y = bt.conv2d(x, w, padding=1)
    assert y.shape == (4, 9, 9)
    close(y.detach(), F.conv2d(x, w, padding=1).detach(), RTOL[torch.float64])


def test_backward_twice_with_retain_graph_and_buffers_freed_without():
    gen = torch.Generator().manual_seed(8)
    x, w = rand(gen, 2, 3, 8, 8), rand(gen, 4, 3, 3, 3)
    y = bt.conv2d(x, w, padding=1, compress_rate=0.5)
    held = bt.saved_bytes(y)
    assert held > 0
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone(), w.grad.clone()
    loss.backward(retain_graph=True)
    close(x.grad, 2 * first[0], 1e-14)
    close(w.grad, 2 * first[1], 1e-14)
    assert bt.saved_bytes(loss) == held
    loss.backward()                               # the last one frees the spectra
    assert bt.saved_bytes(loss) == 0
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


@pytest.mark.parametrize("grad_x, grad_w, grad_b", [
    (False, True, True), (True, False, True), (True, True, False), (False, False, True)],
    ids=["no-dx", "no-dw", "no-db", "db-only"])
@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
def test_gradients_only_for_inputs_that_require_them(monkeypatch, op, grad_x, grad_w, grad_b):
    calls = core_backward_calls(monkeypatch, f"{op}2d_backward")
    gen = torch.Generator().manual_seed(9)
    x, w = rand(gen, 2, 3, 7, 7, grad=grad_x), rand(gen, *((4, 3) if op == "conv" else (3, 4)),
                                                      3, 3, grad=grad_w)
    b = rand(gen, 4, grad=grad_b)
    y = getattr(bt, f"{op}2d")(x, w, b, padding=1)
    dy = rand(gen, *y.shape, grad=False)
    y.backward(dy)
    ref = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    getattr(F, f"{op}2d")(*ref, padding=1).backward(dy)
    for t, r, need in zip((x, w, b), ref, (grad_x, grad_w, grad_b)):
        if need:
            close(t.grad, r.grad, RTOL[torch.float64])
        else:
            assert t.grad is None
    # the core's backward runs only when dx or dw is needed, and computes only those
    assert calls == ([dict(need_dx=grad_x, need_dw=grad_w)] if grad_x or grad_w else [])


def test_without_the_engine_query_everything_required_is_computed(monkeypatch):
    """A PyTorch without torch._C._will_engine_execute_node: the backward computes every
    gradient that is required, and autograd.grad still gets the right one."""
    calls = core_backward_calls(monkeypatch, "conv2d_backward")
    monkeypatch.delattr(torch._C, "_will_engine_execute_node")
    gen = torch.Generator().manual_seed(12)
    x, w = rand(gen, 2, 3, 6, 6), rand(gen, 4, 3, 3, 3)
    got = torch.autograd.grad((bt.conv2d(x, w, padding=1) ** 2).sum(), x)[0]
    ref_x = x.detach().clone().requires_grad_()
    want = torch.autograd.grad((F.conv2d(ref_x, w.detach(), padding=1) ** 2).sum(), ref_x)[0]
    close(got, want, RTOL[torch.float64])
    assert calls == [dict(need_dx=True, need_dw=True)]


@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
def test_an_all_zero_output_gradient_gives_zero_gradients_without_the_core(monkeypatch, op):
    """What an activation's second derivative sends back to the forward's output in a
    gradient penalty's backward: zeros of each argument's shape, dtype and device, as
    PyTorch's convolution gives, without calling the core; a non-zero one calls it."""
    calls = core_backward_calls(monkeypatch, f"{op}2d_backward")
    gen = torch.Generator().manual_seed(11)
    x0 = rand(gen, 2, 3, 6, 6, dtype=torch.float32)
    w = rand(gen, *((4, 3) if op == "conv" else (3, 4)), 3, 3, dtype=torch.float32)
    b = rand(gen, 4, dtype=torch.float32)
    y = getattr(bt, f"{op}2d")(x0 * 1, w, b, padding=1, compress_rate=0.5)
    y.backward(torch.zeros_like(y), retain_graph=True)
    assert calls == []
    for t in (x0, w, b):
        assert t.grad.dtype == t.dtype and t.grad.shape == t.shape and not t.grad.any()
    y.backward(torch.ones_like(y))
    assert len(calls) == 1 and w.grad.any() and x0.grad.any()


@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
@pytest.mark.parametrize("ask", ["autograd.grad-x", "backward-inputs-w"])
def test_gradients_only_for_what_the_backward_reaches(monkeypatch, op, ask):
    """Everything requires a gradient, but torch.autograd.grad(loss, x) wants only the
    input's (adversarial examples, saliency, a gradient penalty) and
    loss.backward(inputs=[w]) only the weight's: the core computes that one alone, and
    it equals PyTorch's."""
    calls = core_backward_calls(monkeypatch, f"{op}2d_backward")
    gen = torch.Generator().manual_seed(10)
    x0 = rand(gen, 2, 3, 7, 7)
    w, b = rand(gen, *((4, 3) if op == "conv" else (3, 4)), 3, 3), rand(gen, 4)
    ref_w, ref_b = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    grads = []
    for fn, wt, bt_ in ((getattr(bt, f"{op}2d"), w, b), (getattr(F, f"{op}2d"), ref_w, ref_b)):
        x = x0 * 2                                # a layer's input: not a leaf
        loss = (fn(x, wt, bt_, padding=1) ** 2).sum()
        if ask == "autograd.grad-x":
            grads.append(torch.autograd.grad(loss, x)[0])
        else:
            loss.backward(inputs=[wt])
            grads.append(wt.grad)
    close(grads[0], grads[1], RTOL[torch.float64])
    assert calls == [dict(need_dx=ask == "autograd.grad-x", need_dw=ask != "autograd.grad-x")]
    assert b.grad is None and x0.grad is None


def test_autograd_through_two_layers_and_a_shared_weight():
    gen = torch.Generator().manual_seed(10)
    x, w = rand(gen, 2, 3, 8, 8), rand(gen, 3, 3, 3, 3)
    for fn in (bt.conv2d, F.conv2d):
        y = fn(torch.tanh(fn(x, w, padding=1)), w, padding=1)
        gx, gw = torch.autograd.grad(y.square().sum(), (x, w))
        if fn is bt.conv2d:
            ours = gx, gw
    close(ours[0], gx, RTOL[torch.float64])
    close(ours[1], gw, RTOL[torch.float64])


# --- layers ------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2])
def test_layers_are_torch_convs_with_the_same_state_dict(d):
    torch.manual_seed(0)
    plain = getattr(torch.nn, f"Conv{d}d")(3, 6, 3, padding=1, bias=True).double()
    ours = getattr(bt, f"Conv{d}d")(3, 6, 3, padding=1, compress_rate=0.5,
                                    dtype=torch.float64)
    assert isinstance(ours, getattr(torch.nn, f"Conv{d}d"))
    assert list(ours.state_dict()) == list(plain.state_dict()) == ["weight", "bias"]
    ours.load_state_dict(plain.state_dict())              # pretrained weights load unchanged
    bt.set_compress_rate(ours, 0.0)
    x = torch.randn((2, 3) + (10,) * d, dtype=torch.float64)
    close(ours(x).detach(), plain(x).detach(), RTOL[torch.float64])
    assert repr(ours) == repr(plain)[:-1] + ", compress_rate=0.0)"


def test_layer_repr_states_the_band_policy():
    assert repr(bt.Conv2d(3, 8, 3, compress_rate=0.5)) == (
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), compress_rate=0.5)")
    assert repr(bt.Conv1d(2, 4, 5, padding="same", bias=False, preserve_energy=0.9)) == (
        "Conv1d(2, 4, kernel_size=(5,), stride=(1,), padding=same, bias=False, "
        "preserve_energy=0.9)")


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"padding_mode.*'mirror'"):      # torch's own check
        bt.Conv2d(3, 8, 3, padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"Conv1d: compress_rate must be in \[0, 1\), got 1.5"):
        bt.Conv1d(3, 8, 3, compress_rate=1.5)
    with pytest.raises(ValueError, match=r"Conv2d: give either preserve_energy or "
                                         r"compress_rate > 0"):
        bt.Conv2d(3, 8, 3, compress_rate=0.5, preserve_energy=0.9)
    with pytest.raises(TypeError, match=r"Conv2d: input must be a torch.Tensor, got "
                                        r"numpy.ndarray"):
        bt.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")(np.ones((1, 3, 8, 8)))
    with pytest.raises(TypeError, match=r"conv2d: x must be float32 or float64, got "
                                        r"torch.float16"):
        bt.Conv2d(3, 8, 3, dtype=torch.float16)(torch.ones(1, 3, 8, 8, dtype=torch.float16))


def test_layer_records_its_band():
    conv = bt.Conv2d(2, 4, 3, padding=1, compress_rate=0.5)
    assert conv.last_band is None
    conv(torch.randn(1, 2, 16, 16))
    assert 0.45 < conv.last_band.effective_rate < 0.6


# --- whole models ------------------------------------------------------------------------
def small_cnn(seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding="same", groups=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))


def batch(seed=0, n=16):
    """Noisy images whose class (0, 1, 2) sets their brightness: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=gen)
    x = (labels - 1).float()[:, None, None, None] + 0.5 * torch.randn(n, 1, 12, 12,
                                                                       generator=gen)
    return x, labels


def test_convert_keeps_modules_parameters_and_outputs():
    model = small_cnn().eval()
    x, _ = batch()
    before = model(x).detach()
    modules, params = list(model.modules()), list(model.parameters())
    buffers, keys = list(model.buffers()), list(model.state_dict())
    fired = []
    model[0].register_forward_hook(lambda m, i, o: fired.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # nothing unsupported here
        out = bt.convert(model, compress_rate=0.0)
    assert out is model
    assert all(a is b for a, b in zip(model.modules(), modules))
    assert all(a is b for a, b in zip(model.parameters(), params))
    assert all(a is b for a, b in zip(model.buffers(), buffers))
    assert list(model.state_dict()) == keys
    assert [type(m) for m in model if isinstance(m, torch.nn.Conv2d)] == [bt.Conv2d] * 3
    close(model(x).detach(), before, RTOL[torch.float32])
    assert fired == [1]


def test_an_optimizer_built_before_convert_trains_the_converted_model():
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    bt.convert(model, compress_rate=0.5)
    x, y = batch(1, n=32)
    w0 = model[0].weight.detach().clone()
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert not torch.equal(model[0].weight.detach(), w0)     # the optimizer moved it
    assert losses[-1] < 0.5 * losses[0]


def test_set_compress_rate_there_and_back_restores_the_outputs():
    model = bt.convert(small_cnn().eval(), compress_rate=0.5)
    x, _ = batch(2)
    at_half = model(x).detach()
    bt.set_compress_rate(model, 0.75)
    assert {m.compress_rate for m in model.modules() if isinstance(m, bt.Conv2d)} == {0.75}
    assert not torch.allclose(model(x), at_half)
    bt.set_compress_rate(model, preserve_energy=0.9)
    model(x)
    bt.set_compress_rate(model, 0.5)
    assert torch.equal(model(x).detach(), at_half)          # same arithmetic, same numbers


def test_set_compress_rate_errors():
    with pytest.raises(ValueError, match="model has no blconv.torch layer"):
        bt.set_compress_rate(small_cnn(), 0.5)
    model = bt.convert(small_cnn(), compress_rate=0.25)
    with pytest.raises(ValueError, match=r"set_compress_rate: compress_rate must be in"):
        bt.set_compress_rate(model, -0.1)
    with pytest.raises(TypeError, match="set_compress_rate: model must be a torch.nn.Module"):
        bt.set_compress_rate([model], 0.5)
    assert model[0].compress_rate == 0.25                   # nothing changed


PADDING_MODES = ["reflect", "replicate", "circular"]
# (d, kwargs): geometry that the padding modes meet in models, 'same' with an even kernel
# included (torch pads its odd extra element at the end)
MODE_CASES = [
    pytest.param(2, dict(kernel_size=3, padding=1), id="2d-pad1"),
    pytest.param(2, dict(kernel_size=(4, 3), padding="same"), id="2d-same-even"),
    pytest.param(2, dict(kernel_size=3, padding=(2, 1), stride=2, dilation=(2, 1)),
                 id="2d-stride2-dilated"),
    pytest.param(1, dict(kernel_size=5, padding=2, groups=2), id="1d-groups2"),
    pytest.param(1, dict(kernel_size=2, padding="same"), id="1d-same-even"),
]


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("d, kw", MODE_CASES)
def test_other_padding_modes_at_rate_0_are_torch_s_layer(mode, d, kw):
    torch.manual_seed(31)
    ref = getattr(torch.nn, f"Conv{d}d")(4, 6, padding_mode=mode, dtype=torch.float64, **kw)
    conv = bt.convert(copy.deepcopy(ref))
    assert type(conv) is getattr(bt, f"Conv{d}d") and conv.padding_mode == mode
    x = torch.randn(2, 4, *(9,) * d, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = conv(x), ref(x_ref)
    close(y.detach(), y_ref.detach(), RTOL[torch.float64])
    dy = torch.randn_like(y_ref)
    y.backward(dy)
    y_ref.backward(dy)
    close(x.grad, x_ref.grad, RTOL[torch.float64])
    for p, q in zip(conv.parameters(), ref.parameters()):
        close(p.grad, q.grad, RTOL[torch.float64])
    # unbatched, as torch takes it
    close(conv(x[0]).detach(), ref(x_ref[0]).detach(), RTOL[torch.float64])


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_other_padding_modes_band_limited_gradients_by_finite_differences(mode):
    torch.manual_seed(32)
    conv = bt.Conv2d(2, 3, 3, padding=1, padding_mode=mode, compress_rate=0.5,
                     dtype=torch.float64)
    x = torch.randn(1, 2, 7, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: bt.conv2d(
        F.pad(x, conv._reversed_padding_repeated_twice, mode=mode), w, b,
        compress_rate=0.5), (x, conv.weight, conv.bias))
    assert torch.autograd.gradcheck(conv, (x,))
    assert conv.last_band.retained < conv.last_band.total / 2      # band-limited indeed


class WeightScaledConv(torch.nn.Conv2d):
    def forward(self, x):
        return super().forward(2 * x)


def test_convert_leaves_unsupported_convolutions_with_one_warning():
    nn = torch.nn
    model = nn.ModuleDict(dict(
        ok=nn.Conv2d(2, 2, 3), ok1d=nn.Conv1d(2, 2, 3), reflect=nn.Conv2d(2, 2, 3,
                                                                          padding_mode="reflect"),
        up=nn.ConvTranspose2d(2, 2, 2), up1d=nn.ConvTranspose1d(2, 2, 3, stride=2),
        cube=nn.Conv3d(2, 2, 3), upcube=nn.ConvTranspose3d(2, 2, 2),
        custom=WeightScaledConv(2, 2, 3),
        wide=nn.ConvTranspose2d(2, 2, 3, stride=1, dilation=2, output_padding=1)))
    types = {k: type(m) for k, m in model.items()}
    with pytest.warns(UserWarning) as record:
        bt.convert(model, compress_rate=0.5)
    assert len(record) == 1
    msg = str(record[0].message)
    assert msg.startswith("convert: 4 convolution(s) left as they are")
    for part in ("cube (Conv3d)", "upcube (ConvTranspose3d)",
                 "custom (WeightScaledConv, a subclass of torch.nn.Conv2d)",
                 "wide (ConvTranspose2d: output_padding (1, 1) not smaller than stride (1, 1))"):
        assert part in msg
    assert type(model["ok"]) is bt.Conv2d and type(model["ok1d"]) is bt.Conv1d
    assert type(model["reflect"]) is bt.Conv2d and model["reflect"].padding_mode == "reflect"
    assert type(model["up"]) is bt.ConvTranspose2d and type(model["up1d"]) is bt.ConvTranspose1d
    for k in ("cube", "upcube", "custom", "wide"):
        assert type(model[k]) is types[k]


def test_convert_a_lazy_convolution_after_its_first_forward():
    """A lazy convolution is named in the warning with what to do; after a forward it is
    a torch.nn.Conv2d (ConvTranspose2d) and converts."""
    model = torch.nn.Sequential(torch.nn.LazyConv2d(4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.LazyConvTranspose2d(2, 2, stride=2))
    with pytest.warns(UserWarning, match=r"0 \(LazyConv2d: its shapes are not known yet; "
                                         r"convert after a first forward\), 2 \(Lazy"):
        bt.convert(model, compress_rate=0.5)
    x = torch.randn(2, 3, 6, 6)
    want = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bt.convert(model)                                    # rate 0: the same function
    assert type(model[0]) is bt.Conv2d and type(model[2]) is bt.ConvTranspose2d
    close(model(x), want, RTOL[torch.float32])


def test_convert_a_conv_itself_again_and_bad_arguments():
    conv = torch.nn.Conv1d(2, 3, 3)
    assert bt.convert(conv, compress_rate=0.5) is conv and type(conv) is bt.Conv1d
    bt.convert(conv, preserve_energy=0.95)                   # again: new settings
    assert (conv.compress_rate, conv.preserve_energy) == (0.0, 0.95)
    model = small_cnn()
    with pytest.raises(ValueError, match=r"convert: compress_rate must be in \[0, 1\)"):
        bt.convert(model, compress_rate=1.0)
    assert type(model[0]) is torch.nn.Conv2d                 # nothing changed
    with pytest.raises(TypeError, match="convert: model must be a torch.nn.Module"):
        bt.convert(object())


def test_a_converted_model_saves_and_loads():
    model = bt.convert(small_cnn(1), compress_rate=0.5)
    state = copy.deepcopy(small_cnn(2).state_dict())         # "pretrained" plain torch weights
    model.load_state_dict(state)
    assert torch.equal(model[0].weight, state["0.weight"])
    twin = copy.deepcopy(model)
    x, _ = batch(3)
    assert torch.equal(twin.eval()(x), model.eval()(x))


# --- transposed convolutions -------------------------------------------------------------
# name: (d, x shape, weight shape, bias, kwargs); weight (C_in, C_out / groups, *k)
TRANSPOSED = {
    "1d-s2-p1-op1": (1, (2, 4, 7), (4, 3, 4), True, dict(stride=2, padding=1,
                                                        output_padding=1)),
    "1d-d2-g2": (1, (2, 4, 6), (4, 1, 3), False, dict(dilation=2, groups=2, padding=2)),
    "2d-s2-p1": (2, (2, 3, 5, 4), (3, 2, 4, 4), True, dict(stride=2, padding=1)),
    "2d-mixed": (2, (1, 4, 4, 5), (4, 3, 3, 2), True, dict(stride=(2, 3), padding=(1, 0),
                                                           output_padding=(1, 2),
                                                           dilation=(1, 2), groups=2)),
}


def transposed_case(name, dtype=torch.float64):
    d, xs, ws, has_bias, kw = TRANSPOSED[name]
    gen = torch.Generator().manual_seed(13)
    x, w = rand(gen, *xs, dtype=dtype), rand(gen, *ws, dtype=dtype)
    b = rand(gen, ws[1] * kw.get("groups", 1), dtype=dtype) if has_bias else None
    return d, x, w, b, kw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TRANSPOSED)
def test_conv_transpose_at_rate_0_is_torchs(name, dtype):
    d, x, w, b, kw = transposed_case(name, dtype)
    ours = getattr(bt, f"conv_transpose{d}d")
    theirs = getattr(F, f"conv_transpose{d}d")
    leaves = [t for t in (x, w, b) if t is not None]
    z = ours(x, w, b, **kw)
    dz = torch.randn(z.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    got = torch.autograd.grad(z, leaves, dz)
    z_ref = theirs(x, w, b, **kw)
    want = torch.autograd.grad(z_ref, leaves, dz)
    close(z.detach(), z_ref.detach(), RTOL[dtype])
    for g, h in zip(got, want):
        close(g, h, RTOL[dtype])
    close(ours(x[0], w, b, **kw).detach(), z_ref[0].detach(), RTOL[dtype])    # unbatched


@pytest.mark.parametrize("name", TRANSPOSED)
def test_conv_transpose_band_limited_gradients_by_finite_differences(name):
    d, x, w, b, kw = transposed_case(name)
    f = getattr(bt, f"conv_transpose{d}d")
    args = tuple(t for t in (x, w, b) if t is not None)
    assert torch.autograd.gradcheck(
        lambda *a: f(*a, **kw, compress_rate=0.5) if len(a) == 3
        else f(*a, None, **kw, compress_rate=0.5), args)
    # the band-limited map is the adjoint of the band-limited correlation
    z = f(x, w, **kw, compress_rate=0.5).detach()
    r = torch.randn(z.shape, generator=torch.Generator().manual_seed(2), dtype=z.dtype)
    corr = {k: v for k, v in kw.items() if k != "output_padding"}
    y = getattr(bt, f"conv{d}d")(r, w, **corr, compress_rate=0.5).detach()
    lhs, rhs = (y * x.detach()).sum().item(), (z * r).sum().item()
    assert abs(lhs - rhs) <= 1e-12 * z.norm().item() * r.norm().item()
    full = f(x, w, **kw).detach()
    assert (z - full).norm() > 1e-3 * full.norm()                     # band-limited indeed


def test_conv_transpose_layers_match_torch_and_keep_their_parameters():
    torch.manual_seed(8)
    nn = torch.nn
    plain = nn.Sequential(nn.Conv2d(2, 6, 3, stride=2, padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(6, 3, 4, stride=2, padding=1)).double()
    model = copy.deepcopy(plain)
    up = model[2]
    weight = up.weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bt.convert(model)
    assert type(up) is bt.ConvTranspose2d and up.weight is weight
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    close(model(x).detach(), plain(x).detach(), RTOL[torch.float64])
    # output_size picks output_padding as torch's layer does
    h = model[1](model[0](x))
    close(up(h, output_size=(10, 10)).detach(), plain[2](h, output_size=(10, 10)).detach(),
          RTOL[torch.float64])
    assert up(h, output_size=(10, 10)).shape[-2:] == (10, 10)
    # at a rate: the band is the correlation's on the output's shape
    bt.set_compress_rate(model, 0.5)
    z = up(h)
    assert up.last_band == blconv.band_for(z.shape, up.weight.shape, padding=1,
                                           compress_rate=0.5)
    assert "compress_rate=0.5" in repr(up)
    assert list(model.state_dict()) == list(plain.state_dict())


def test_conv_transpose_layers_train_and_save_their_input_as_torch_does():
    torch.manual_seed(9)
    up = bt.ConvTranspose2d(16, 8, 4, stride=2, padding=1, compress_rate=0.5)
    x = torch.randn(4, 16, 16, 16, requires_grad=True)
    z = up(x)
    assert bt.saved_bytes(z) == 0                            # nothing allocated for it
    saved = z.grad_fn.saved_tensors
    assert saved[0].data_ptr() == x.data_ptr() and saved[1].data_ptr() == up.weight.data_ptr()
    with torch.no_grad():
        x.mul_(2)                                            # PyTorch's in-place check holds
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    opt = torch.optim.SGD(up.parameters(), lr=0.1)
    target = torch.randn(4, 8, 32, 32)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (up(x.detach()) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_conv_transpose_energy_policy_is_refused_or_left_out():
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ConvTranspose2d(4, 2, 3))
    with pytest.warns(UserWarning, match=r"1 \(ConvTranspose2d: the energy policy has no "
                                         r"counterpart"):
        bt.convert(model, preserve_energy=0.9)
    assert type(model[0]) is bt.Conv2d and type(model[1]) is nn.ConvTranspose2d
    bt.convert(model, compress_rate=0.5)
    with pytest.warns(UserWarning, match=r"set_compress_rate: 1 transposed convolution\(s\) "
                                         r"keep their band .*: 1 \(compress_rate=0.5\)"):
        bt.set_compress_rate(model, preserve_energy=0.9)
    assert model[0].preserve_energy == 0.9 and model[1].compress_rate == 0.5
    assert model[1].preserve_energy is None
    with pytest.raises(ValueError, match="ConvTranspose2d: preserve_energy has no counterpart"):
        bt.ConvTranspose2d(2, 2, 3, compress_rate=0.0)._set_band(0.0, 0.9, "fast")
    model[1].preserve_energy = 0.9                            # set by hand: refused at the call
    with pytest.raises(ValueError, match="ConvTranspose2d: preserve_energy has no counterpart"):
        model[1](torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be smaller"):
        bt.conv_transpose2d(torch.randn(1, 4, 5, 5), torch.randn(4, 2, 3, 3), stride=2,
                            output_padding=2)


# --- parametrized convolutions (torch.nn.utils.parametrize) -------------------------------
P = torch.nn.utils.parametrize


def parametrized_net():
    """weight_norm on a 1-D convolution, spectral_norm on a 2-D one (float64)."""
    torch.manual_seed(5)
    pz = torch.nn.utils.parametrizations
    conv1 = pz.weight_norm(torch.nn.Conv1d(3, 4, 5, padding=2, dtype=torch.float64))
    conv2 = pz.spectral_norm(torch.nn.Conv2d(2, 3, 3, padding=1, dtype=torch.float64))
    return torch.nn.ModuleDict(dict(conv1=conv1, conv2=conv2))


def run_net(net, gen):
    """Both layers on fresh inputs; returns the outputs and the input gradients."""
    x1, x2 = rand(gen, 2, 3, 11), rand(gen, 2, 2, 7, 6)
    y1, y2 = net["conv1"](x1), net["conv2"](x2)
    (y1.square().sum() + (y2 * torch.arange(y2.numel()).reshape(y2.shape)).sum()).backward()
    return [y1.detach(), y2.detach(), x1.grad, x2.grad]


def test_convert_keeps_parametrizations_and_matches_torch_at_rate_0():
    net = parametrized_net()
    ref = copy.deepcopy(net)
    params = {k: id(p) for k, p in net.named_parameters()}
    keys = list(net.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # nothing left unconverted
        bt.convert(net)
    assert isinstance(net["conv1"], bt.Conv1d) and isinstance(net["conv2"], bt.Conv2d)
    assert P.is_parametrized(net["conv1"], "weight") and P.is_parametrized(net["conv2"], "weight")
    assert {k: id(p) for k, p in net.named_parameters()} == params
    assert list(net.state_dict()) == keys
    # in training mode spectral_norm runs a power iteration per forward: both nets do
    for step in range(2):
        got, want = run_net(net, torch.Generator().manual_seed(step)), \
            run_net(ref, torch.Generator().manual_seed(step))
        for a, b in zip(got, want):
            close(a, b, RTOL[torch.float64])
        for (name, p), q in zip(net.named_parameters(), ref.parameters()):
            close(p.grad, q.grad, RTOL[torch.float64])
            assert "original" in name or name.endswith("bias")
    close(net["conv2"].parametrizations.weight[0]._u, ref["conv2"].parametrizations.weight[0]._u,
          RTOL[torch.float64])
    assert net["conv1"].last_band.effective_rate == 0.0


def test_parametrized_band_limited_gradients_by_finite_differences():
    """The gradient reaching weight_norm's magnitude and direction at rate 0.5, checked
    against central differences of the loss along a random direction."""
    net = bt.convert(parametrized_net(), compress_rate=0.5)
    conv = net["conv1"]
    gen = torch.Generator().manual_seed(3)
    x, r = rand(gen, 2, 3, 11, grad=False), rand(gen, 2, 4, 11, grad=False)

    def loss():
        return (conv(x) * r).sum()

    loss().backward()
    assert conv.last_band.retained < conv.last_band.total        # band-limited indeed
    for p in (conv.parametrizations.weight.original0, conv.parametrizations.weight.original1):
        d = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        eps = 1e-6
        with torch.no_grad():
            p += eps * d
            up = loss()
            p -= 2 * eps * d
            down = loss()
            p += eps * d
        fd = (up - down) / (2 * eps)
        assert abs(fd - (p.grad * d).sum()) <= 1e-6 * abs(fd)


def test_parametrize_after_conversion_and_removal_keep_the_blconv_layer():
    conv = bt.convert(torch.nn.Conv2d(2, 3, 3, dtype=torch.float64), compress_rate=0.5)
    torch.nn.utils.parametrizations.weight_norm(conv)            # parametrized after
    assert isinstance(conv, bt.Conv2d) and P.is_parametrized(conv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bt.convert(conv, compress_rate=0.25)                     # again: new band, no warning
    assert conv.compress_rate == 0.25
    twin = copy.deepcopy(conv)                                   # parametrize's own deepcopy
    x = rand(torch.Generator().manual_seed(0), 1, 2, 9, 9, grad=False)
    y = conv(x)
    assert torch.equal(twin(x), y)
    P.remove_parametrizations(conv, "weight")                   # leave_parametrized=True
    assert type(conv) is bt.Conv2d
    close(conv(x), y, RTOL[torch.float64])


def test_hook_based_weight_norm_still_works_after_conversion():
    def make():
        torch.manual_seed(2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)       # torch's deprecated API
            return torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 3, dtype=torch.float64))

    conv, ref = bt.convert(make()), make()                       # (it cannot be deep-copied)
    assert type(conv) is bt.Conv1d
    with torch.no_grad():
        conv.weight_g.mul_(2)                                    # the hook recomputes weight
        ref.weight_g.mul_(2)
    x = rand(torch.Generator().manual_seed(1), 2, 2, 10, grad=False)
    close(conv(x), ref(x), RTOL[torch.float64])


def test_a_parametrized_user_subclass_is_left_as_it_is():
    conv = torch.nn.utils.parametrizations.weight_norm(WeightScaledConv(2, 2, 3))
    with pytest.warns(UserWarning, match=r"\(ParametrizedWeightScaledConv, a subclass of "
                                         r"torch.nn.Conv2d\)"):
        bt.convert(conv, compress_rate=0.5)
    assert not isinstance(conv, bt.Conv2d)


# --- memory ------------------------------------------------------------------------------
def test_graph_memory_at_half_rate_is_about_half_of_rate_0():
    """What the graph keeps for backward: the bytes of the spectra the blconv nodes save."""
    torch.manual_seed(0)
    nn = torch.nn
    model = bt.convert(nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1)))
    x = torch.randn(16, 3, 32, 32)
    held = {}
    for rate in (0.0, 0.5, 0.75):
        bt.set_compress_rate(model, rate)
        held[rate] = bt.saved_bytes(model(x))
    assert 0.4 <= held[0.5] / held[0.0] <= 0.55
    assert held[0.75] < held[0.5]


# --- packaging: torch is optional ----------------------------------------------------------
def _python(code):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=120)


def test_import_blconv_does_not_import_torch():
    r = _python("import sys, blconv, blconv.nn, blconv.models, blconv.train\n"
                "print(sorted(m for m in sys.modules if m == 'torch' or "
                "m.startswith('torch.')))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_eager_use_of_blconv_torch_does_not_import_torchdynamo():
    """Keeping the core out of torch.compile's tracing must not cost the import of
    TorchDynamo (seconds) in a program that never compiles."""
    r = _python("import sys, torch, blconv.torch as bt\n"
                "y = bt.Conv2d(2, 3, 3, compress_rate=0.5)(torch.randn(1, 2, 8, 8))\n"
                "y.sum().backward()\n"
                "print('torch._dynamo' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_blconv_torch_without_torch_says_what_to_install():
    r = _python("import sys\nsys.modules['torch'] = None\nimport blconv\n"
                "try:\n    import blconv.torch\nexcept ImportError as e:\n    print(e)\n")
    assert r.returncode == 0, r.stderr
    assert 'pip install "blconv[torch]"' in r.stdout


# --- the CIFAR-10 ResNet-18 example ------------------------------------------------------
def _example():
    spec = importlib.util.spec_from_file_location("cifar_resnet18",
                                                  ROOT / "scripts" / "cifar_resnet18.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_cifar(path, n=4, seed=0):
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, size=(n, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        (path / name).write_bytes(np.concatenate([labels, pixels], axis=1).tobytes())


def test_example_resnet18_is_the_cifar_variant():
    ex = _example()
    model = ex.resnet18()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1)
    assert len(convs) == 20                         # stem, 16 in the blocks, 3 projections
    assert sorted({c.out_channels for c in convs}) == [64, 128, 256, 512]
    assert sum(p.numel() for p in model.parameters()) == 11_173_962


def test_example_counts_every_distinct_convolution_input():
    """What torch's convolutions save, by hand: the inputs of the four convolutions, each
    a distinct tensor, though the activations before each are dead under no_grad and
    their memory may be reused at once (the count once took such reuse for sharing)."""
    ex = _example()
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    x = torch.randn(8, 1, 64, 64)                       # megabyte activations, as in a CNN
    per_map = 8 * 64 * 64 * 4                             # one channel, float32
    assert ex._conv_input_bytes(model, x) == per_map * (1 + 8 + 8 + 8)


def test_example_augmentation_crops_and_flips():
    ex = _example()
    x = np.arange(2 * 3 * 32 * 32, dtype=np.float32).reshape(2, 3, 32, 32)
    out = ex.augment(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    for i in range(2):               # each crop is a 32x32 window of the zero-padded image,
        padded = np.pad(x[i], ((0, 0), (4, 4), (4, 4)))   # flipped or not
        found = [(a, b, f) for a in range(9) for b in range(9) for f in (False, True)
                 if np.array_equal(out[i], (lambda c: c[..., ::-1] if f else c)(
                     padded[:, a:a + 32, b:b + 32]))]
        assert found


def test_example_trains_two_steps_on_a_fake_cifar_directory(tmp_path, capsys):
    _fake_cifar(tmp_path)
    ex = _example()
    result = ex.main(["--data", str(tmp_path), "--compress-rate", "0.5", "--epochs", "1",
                      "--batch-size", "4", "--max-steps", "2", "--device", "cpu"])
    assert result["steps"] == 2 and len(result["losses"]) == 2
    assert all(np.isfinite(result["losses"]))
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert "compress rate 0.5" in capsys.readouterr().out


def test_example_bench_times_and_profiles_a_step(tmp_path):
    ex = _example()
    out, prof = tmp_path / "step.json", tmp_path / "profile.txt"
    record = ex.main(["--bench", "--batch-size", "2", "--rates", "0.5", "--repeats", "1",
                      "--cuda-graphs", "--json", str(out), "--profile", str(prof)])
    # the graphs model is the same model (graphs act on CuPy only: here it is the CPU path)
    assert [r["model"] for r in record["rows"]] == ["torch", "blconv c=0.5",
                                                    "blconv c=0.5 graphs"]
    assert json.loads(out.read_text())["batch_size"] == 2
    text = prof.read_text()
    assert "== torch: 3 steps" in text and "== blconv c=0.5: 3 steps" in text
    assert "aten::convolution" in text.split("== blconv")[0]     # plain torch convolves


# --- CUDA: the same adapter on CuPy, on torch's stream ----------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_torch_at_rate_0_and_the_cpu_path_at_half(dtype):
    gen = torch.Generator().manual_seed(11)
    x, w, b = rand(gen, 4, 3, 16, 16, dtype=dtype), rand(gen, 8, 3, 3, 3, dtype=dtype), \
        rand(gen, 8, dtype=dtype)
    xc, wc, bc = (t.detach().cuda().requires_grad_() for t in (x, w, b))
    ref = F.conv2d(xc, wc, bc, padding=1)
    close(bt.conv2d(xc, wc, bc, padding=1).detach(), ref.detach(), RTOL[dtype])
    y_cpu = bt.conv2d(x, w, b, stride=2, padding=1, compress_rate=0.5)
    y_gpu = bt.conv2d(xc, wc, bc, stride=2, padding=1, compress_rate=0.5)
    assert y_gpu.is_cuda
    close(y_gpu.detach().cpu(), y_cpu.detach(), RTOL[dtype])
    dy = rand(gen, *y_cpu.shape, dtype=dtype, grad=False)
    y_cpu.backward(dy)
    y_gpu.backward(dy.cuda())
    for t, tc in zip((x, w, b), (xc, wc, bc)):
        close(tc.grad.cpu(), t.grad, RTOL[dtype])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_conv_transpose_matches_torch_at_rate_0_and_the_cpu_path_at_half(dtype):
    d, x, w, b, kw = transposed_case("2d-s2-p1", dtype)
    xc, wc, bc = (t.detach().cuda().requires_grad_() for t in (x, w, b))
    close(bt.conv_transpose2d(xc, wc, bc, **kw).detach(),
          F.conv_transpose2d(xc, wc, bc, **kw).detach(), RTOL[dtype])
    z_cpu = bt.conv_transpose2d(x, w, b, **kw, compress_rate=0.5)
    z_gpu = bt.conv_transpose2d(xc, wc, bc, **kw, compress_rate=0.5)
    assert z_gpu.is_cuda
    close(z_gpu.detach().cpu(), z_cpu.detach(), RTOL[dtype])
    dz = torch.randn(z_cpu.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    z_cpu.backward(dz)
    z_gpu.backward(dz.cuda())
    for t, tc in zip((x, w, b), (xc, wc, bc)):
        close(tc.grad.cpu(), t.grad, RTOL[dtype])


def test_the_backward_runs_under_the_forward_s_settings_in_any_thread(monkeypatch):
    # PyTorch runs a CUDA graph's backward in a thread of its own, where a `with` block
    # of the caller's is not in force: the node carries the forward's settings
    import threading
    seen = []
    real = blconv.conv2d_backward

    def spy(dy, ctx, **need):
        seen.append(blconv.settings.current())
        return real(dy, ctx, **need)

    monkeypatch.setattr(blconv, "conv2d_backward", spy)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    with blconv.transform("fft"), blconv.fft_workers(1):
        loss = bt.conv2d(x, w, padding=1, compress_rate=0.5).sum()
    worker = threading.Thread(target=loss.backward)
    worker.start()
    worker.join()
    assert len(seen) == 1 and seen[0].transform == "fft" and seen[0].fft_workers == 1
    assert x.grad is not None and w.grad is not None
    assert blconv.settings.current().transform == "auto"


def test_modifying_the_weight_before_the_backward_is_an_error():
    """The node saves the weight, not its spectrum: changing it in place in between is
    caught by PyTorch's version check, as for its own convolution."""
    gen = torch.Generator().manual_seed(5)
    x, w = rand(gen, 2, 3, 8, 8), rand(gen, 4, 3, 3, 3)
    y = bt.conv2d(x, w, padding=1, compress_rate=0.5)
    with torch.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# --- mixed precision and torch.compile -------------------------------------------------
@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
def test_under_autocast_half_inputs_are_computed_in_float32(half):
    """Autocast hands a converted layer the half-precision output of the operation before
    it: the layer casts it to float32 and runs the float32 correlation, and the gradient
    comes back in the input's own dtype."""
    gen = torch.Generator().manual_seed(21)
    x_half = rand(gen, 2, 3, 10, 10).detach().to(half).requires_grad_()
    w, b = rand(gen, 4, 3, 3, 3, dtype=torch.float32), rand(gen, 4, dtype=torch.float32)
    dy = rand(gen, 2, 4, 5, 5, dtype=torch.float32, grad=False)
    with torch.autocast("cpu", dtype=half):
        y = bt.conv2d(x_half, w, b, stride=2, padding=1, compress_rate=0.5)
    assert y.dtype == torch.float32
    y.backward(dy)
    # the same call on the float32 values, outside autocast: the same arithmetic
    x32 = x_half.detach().float().requires_grad_()
    w32, b32 = (t.detach().clone().requires_grad_() for t in (w, b))
    y32 = bt.conv2d(x32, w32, b32, stride=2, padding=1, compress_rate=0.5)
    y32.backward(dy)
    assert torch.equal(y, y32)
    assert x_half.grad.dtype == half and torch.equal(x_half.grad, x32.grad.to(half))
    assert torch.equal(w.grad, w32.grad) and torch.equal(b.grad, b32.grad)
    # at rate 0, PyTorch's float32 convolution of the same values (not autocast's own)
    with torch.autocast("cpu", dtype=half):
        y0 = bt.conv2d(x_half, w, b, stride=2, padding=1)
    close(y0.detach(), F.conv2d(x32, w32, b32, stride=2, padding=1).detach(),
          RTOL[torch.float32])


def test_under_autocast_float32_and_float64_are_left_as_they_are():
    gen = torch.Generator().manual_seed(22)
    for dtype in (torch.float32, torch.float64):
        x, w = rand(gen, 2, 3, 8, dtype=dtype), rand(gen, 4, 3, 3, dtype=dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = bt.conv1d(x, w, padding=1, compress_rate=0.5)
        assert y.dtype == dtype
        assert torch.equal(y, bt.conv1d(x, w, padding=1, compress_rate=0.5))
    # autocast for another device type does not make CPU half tensors acceptable
    with torch.autocast("cuda", enabled=False), pytest.raises(TypeError, match="bfloat16"):
        bt.conv1d(torch.ones(1, 2, 6, dtype=torch.bfloat16), torch.ones(3, 2, 3))


def test_a_converted_model_trains_under_autocast_behind_an_unconverted_layer():
    """A transposed convolution (not converted) runs in bfloat16 under autocast and feeds
    a converted convolution; one training step gives every parameter a float32 gradient
    equal to the one computed from the same bfloat16 activation cast by hand."""
    torch.manual_seed(3)
    up = torch.nn.ConvTranspose2d(3, 4, 2, stride=2)
    conv = bt.Conv2d(4, 5, 3, padding=1, compress_rate=0.5)
    x = torch.randn(2, 3, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = up(x)
        y = conv(h)
    assert h.dtype == torch.bfloat16 and y.dtype == torch.float32
    y.square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and
               bool(torch.isfinite(p.grad).all()) for p in (*up.parameters(),
                                                            *conv.parameters()))
    ref = copy.deepcopy(conv)
    ref.zero_grad()
    ref(h.detach().float()).square().mean().backward()
    assert torch.equal(conv.weight.grad, ref.weight.grad)


def test_torch_compile_runs_the_core_as_it_is(monkeypatch):
    """Dynamo must not trace the core's NumPy code (it would run it as PyTorch operations
    of its own): every call of the compiled model, not only the one that compiles it,
    runs the core itself, forward and backward, once per convolution, and the compiled
    model gives the eager model's outputs and gradients bit for bit: with the "eager"
    backend it runs the same operations on the same values in the same process, so the
    arithmetic is identical (without the fix, outputs and gradients differed in their last
    bits)."""
    dynamo = pytest.importorskip("torch._dynamo")
    calls = []
    for name in ("conv2d_forward", "conv2d_backward"):
        real = getattr(blconv, name)

        def spy(*args, _real=real, _name=name, **kw):
            calls.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(blconv, name, spy)
    model = bt.convert(small_cnn(), compress_rate=0.5)
    twin = copy.deepcopy(model)
    x, labels = batch()
    dynamo.reset()
    try:
        compiled = torch.compile(twin, backend="eager")
        F.cross_entropy(compiled(x), labels).backward()          # compiles
        twin.zero_grad()
        calls.clear()
        out = compiled(x)
        F.cross_entropy(out, labels).backward()
    finally:
        dynamo.reset()
    assert sorted(calls) == ["conv2d_backward"] * 3 + ["conv2d_forward"] * 3, calls
    assert twin[0].last_band is not None
    ref = model(x)
    F.cross_entropy(ref, labels).backward()
    assert torch.equal(out, ref)
    for p, q in zip(twin.parameters(), model.parameters()):
        assert torch.equal(p.grad, q.grad)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA device")
def test_cuda_autocast_float16_runs_the_float32_correlation():
    gen = torch.Generator().manual_seed(23)
    x = rand(gen, 2, 3, 12, 12).detach().cuda().half().requires_grad_()
    w = rand(gen, 4, 3, 3, 3, dtype=torch.float32).detach().cuda().requires_grad_()
    with torch.autocast("cuda", dtype=torch.float16):
        y = bt.conv2d(x, w, padding=1, compress_rate=0.5)
    assert y.dtype == torch.float32 and y.is_cuda
    y.sum().backward()
    x32 = x.detach().float().requires_grad_()
    w32 = w.detach().clone().requires_grad_()
    y32 = bt.conv2d(x32, w32, padding=1, compress_rate=0.5)
    y32.sum().backward()
    assert torch.equal(y, y32)
    assert x.grad.dtype == torch.float16 and torch.equal(x.grad, x32.grad.half())
    assert torch.equal(w.grad, w32.grad)


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_activation_checkpointing_recomputes_the_same_band_and_gradients(reentrant):
    from torch.utils.checkpoint import checkpoint
    model = bt.convert(small_cnn(), compress_rate=0.5).eval()
    twin = copy.deepcopy(model)
    x, labels = batch()
    x = x.requires_grad_()
    x_twin = x.detach().clone().requires_grad_()
    F.cross_entropy(model(x), labels).backward()
    out = checkpoint(twin, x_twin, use_reentrant=reentrant)
    F.cross_entropy(out, labels).backward()
    assert torch.equal(out, model(x))
    assert torch.equal(x_twin.grad, x.grad)
    for p, q in zip(twin.parameters(), model.parameters()):
        assert torch.equal(p.grad, q.grad)
