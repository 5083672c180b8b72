"""The channel products as real GEMMs over the filter taps (``blconv._taps``): which calls
take that route, and that it computes the band-limited correlation and its exact
gradients, checked against the full-FFT masked reference in float64 (agreement to
~1e-13; 1e-10 leaves room for the longer sums)."""
import importlib.util

import numpy as np
import pytest

import blconv
from blconv import _taps, _threads

from helpers import masked_correlation, rel

# (N, C_in, C_out, L, k, keywords): each with N * k <= 80
CASES = {
    "same-k3": (4, 16, 8, 40, 3, dict(padding="same")),
    "k5-stride2": (2, 8, 12, 33, 5, dict(padding=2, stride=2)),
    "dilated-half": (3, 12, 6, 50, 3, dict(padding=4, dilation=3, compress_rate=0.5)),
    "groups2": (4, 64, 8, 31, 3, dict(groups=2, padding=1, compress_rate=0.3)),
    "two-taps": (8, 40, 16, 27, 2, dict(compress_rate=0.25)),
    "strided-odd": (5, 11, 7, 61, 4, dict(stride=3, padding=3, compress_rate=0.6)),
}


def _data(name, dtype=np.float64):
    n, c, o, length, k, kw = CASES[name]
    rng = np.random.default_rng(len(name))
    g = kw.get("groups", 1)
    x = rng.standard_normal((n, c, length)).astype(dtype)
    w = rng.standard_normal((o, c // g, k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, w, b, kw


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_taps_route_computes_the_masked_correlation_and_its_gradients(name, route):
    x, w, b, kw = _data(name)
    y, ctx = blconv.conv1d_forward(x, w, b, **kw)
    assert ctx.layout == "taps"
    assert ctx.x_hat.shape == (ctx.groups, w.shape[1], x.shape[0], ctx.band.retained)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx, dw, db = blconv.conv1d_backward(dy, ctx)
    ref_y, ref_dx, ref_dw = masked_correlation(
        x, w, fft_shape=ctx.band.fft_shape, keep=ctx.band.keep, stride=kw.get("stride", 1),
        padding=kw.get("padding", 0), dilation=kw.get("dilation", 1),
        groups=kw.get("groups", 1), dy=dy)
    assert rel(y, ref_y + b[:, None]) < 1e-10
    assert rel(dx, ref_dx) < 1e-10
    assert rel(dw, ref_dw) < 1e-10
    assert np.allclose(db, dy.sum(axis=(0, 2)), rtol=1e-12, atol=0)
    assert dx.shape == x.shape and dw.shape == w.shape


@pytest.mark.parametrize("name", ["same-k3", "groups2"])
def test_float32_on_the_taps_route_is_float64_to_rounding(name):
    """Each output sums a few hundred float32 products (C_in/G * k taps, then ~L
    frequencies): a few hundred times 2**-24 relative at worst, 1e-5."""
    x, w, b, kw = _data(name)
    y64, ctx64 = blconv.conv1d_forward(x, w, b, **kw)
    y32, ctx32 = blconv.conv1d_forward(x.astype(np.float32), w.astype(np.float32),
                                       b.astype(np.float32), **kw)
    assert ctx32.layout == "taps" and y32.dtype == np.float32
    assert ctx32.x_hat.dtype == np.complex64
    dy = np.random.default_rng(2).standard_normal(y64.shape)
    g64 = blconv.conv1d_backward(dy, ctx64)
    g32 = blconv.conv1d_backward(dy.astype(np.float32), ctx32)
    assert rel(y32, y64) < 1e-5
    for a, b_ in zip(g32, g64):
        assert a.dtype == np.float32 and rel(a, b_) < 1e-5


def test_the_two_routes_agree():
    """The same call on the per-frequency route (a workspace bound too small for the
    expanded spectra forces it)."""
    x, w, b, kw = _data("dilated-half")
    y, ctx = blconv.conv1d_forward(x, w, b, **kw)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    grads = blconv.conv1d_backward(dy, ctx)
    with blconv.max_workspace_bytes(1000):
        y2, ctx2 = blconv.conv1d_forward(x, w, b, **kw)
        grads2 = blconv.conv1d_backward(dy, ctx2)
    assert (ctx.layout, ctx2.layout) == ("taps", "freq") and ctx.band == ctx2.band
    assert rel(y, y2) < 1e-12
    for a, b_ in zip(grads, grads2):
        assert rel(a, b_) < 1e-12


def _layout(x_shape, w_shape, **kw):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    f = blconv.conv1d_forward if len(x_shape) == 3 else blconv.conv2d_forward
    return f(x, w, **kw)[1].layout


def test_which_calls_take_the_taps_route():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(2):
        if _threads.blas_threads() < 2:
            pytest.skip("this BLAS runs one thread at most")
        assert _layout((26, 32, 40), (8, 32, 3)) == "taps"                   # 26 * 3 = 78
        assert _layout((27, 32, 40), (8, 32, 3)) == "freq"                   # 81 > 80
        assert _layout((10, 1, 40), (8, 1, 8)) == "taps"                     # 10 * 8 = 80
        assert _layout((17, 32, 40), (8, 32, 5)) == "freq"                   # 85 > 80
        assert _layout((16, 32, 40), (8, 32, 5)) == "taps"                   # 80
        assert _layout((4, 8, 12, 12), (4, 8, 3, 3)) == "freq"               # 2D
        assert _layout((8, 32, 40), (8, 32, 1)) == "pointwise"               # one tap
        assert _layout((8, 32, 40), (8, 32, 3), preserve_energy=0.9) == "freq"  # band per call
        with blconv.transform("fft"):
            assert _layout((8, 32, 400), (8, 32, 3)) == "taps"
        with blconv.max_workspace_bytes(1000):                               # too small
            assert _layout((8, 32, 40), (8, 32, 3)) == "freq"
        assert _layout((8, 32, 40), (8, 32, 3), max_workspace_bytes=10**8) == "taps"


def test_a_one_thread_blas_takes_the_taps_route_for_fewer_taps_times_batch():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        assert _threads.blas_threads() == 1
        assert _layout((8, 1, 40), (8, 1, 8)) == "taps"                      # 64
        assert _layout((16, 32, 40), (8, 32, 3)) == "taps"                   # 48
        assert _layout((16, 32, 40), (8, 32, 5)) == "freq"                   # 80 > 64
        assert _layout((13, 32, 40), (8, 32, 5)) == "freq"                   # 65 > 64


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_taps_route_through_the_pytorch_adapter_matches_torch():
    import torch
    import blconv.torch as bt
    x, w, b, kw = _data("k5-stride2")
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt_ = torch.tensor(b, requires_grad=True)
    ours = bt.conv1d(xt, wt, bt_, stride=2, padding=2)
    theirs = torch.nn.functional.conv1d(xt, wt, bt_, stride=2, padding=2)
    dy = torch.tensor(np.random.default_rng(4).standard_normal(tuple(ours.shape)))
    got = torch.autograd.grad(ours, (xt, wt, bt_), dy)
    want = torch.autograd.grad(theirs, (xt, wt, bt_), dy)
    assert rel(ours.detach().numpy(), theirs.detach().numpy()) < 1e-10
    for a, b_ in zip(got, want):
        assert rel(a.numpy(), b_.numpy()) < 1e-10
    _, ctx = blconv.conv1d_forward(x, w, b, **kw)
    assert ctx.layout == "taps"


def test_workspace_estimate_counts_the_expanded_spectra():
    # forward: C_in * P * N * F complex; backward: O * P * N * F expanded, and two C_in * N * F
    assert _taps.workspace_bytes(4, 32, 8, 3, 21, 8) == 2 * 8 * 4 * 21 * 32 * 3      # forward
    assert _taps.workspace_bytes(4, 16, 8, 3, 21, 8) == 2 * 8 * 4 * 21 * (8 * 3 + 2 * 16)
    assert _taps.workspace_bytes(4, 8, 16, 3, 21, 4) == 2 * 4 * 4 * 21 * (16 * 3 + 2 * 8)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_route_timing_script_runs():
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "scripts", "channel_routes.py"),
                          "--layers", "fcn1", "--batches", "2", "--rates", "0.5",
                          "--repeats", "1"], capture_output=True, text=True, check=True,
                         env=os.environ | {"PYTHONPATH": root})
    lines = out.stdout.splitlines()
    assert lines[0].startswith("layer batch taps*batch rate") and len(lines) == 2
    assert lines[1].startswith("fcn1   2   16 0.50:")
