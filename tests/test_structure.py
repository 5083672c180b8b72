"""Structural facts of the fast path (no timings): what is computed and what is kept."""
import tracemalloc

import numpy as np
import pytest

import blconv
from blconv import _backend


def _layer(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    return x, w


def test_short_axes_never_build_a_full_spectrum(monkeypatch):
    """On CNN-sized axes the pruned GEMM route runs: no n-point FFT is ever called."""
    def refuse(*a, **k):
        raise AssertionError("full-size FFT called on the pruned path")
    for name in ("rfft", "irfft", "fft", "ifft", "rfftn"):
        monkeypatch.setattr(_backend, name, refuse)
    x, w = _layer()
    y, ctx = blconv.conv2d_forward(x, w, padding=1, stride=2, compress_rate=0.5)
    blconv.conv2d_backward(np.ones_like(y), ctx)
    y, ctx = blconv.conv1d_forward(x[:, :, 0], w[:, :, 0], padding="same", compress_rate=0.5)
    blconv.conv1d_backward(np.ones_like(y), ctx)


def _peak(fn):
    fn()                                   # warm caches (DFT matrices)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("route", ["auto", "fft"])
def test_peak_memory_falls_with_compress_rate(route):
    x, w = _layer()
    peaks = {}
    with blconv.transform(route):
        for rate in (0.0, 0.5, 0.75):
            def step(rate=rate):
                y, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=rate)
                blconv.conv2d_backward(y, ctx)
            peaks[rate] = _peak(step)
    assert peaks[0.5] < peaks[0.0] and peaks[0.75] < peaks[0.5]


def test_ctx_keeps_no_full_size_array():
    x, w = _layer()
    _, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=0.5)
    arrays = [v for v in vars(ctx).values() if isinstance(v, np.ndarray)]
    assert {id(a) for a in arrays} == {id(ctx.x_hat), id(w)}   # the filters referenced
    assert ctx.x_hat.shape[0] == ctx.band.retained and ctx.nbytes == ctx.x_hat.nbytes
    assert ctx.x_hat.nbytes < x.nbytes  # less than the input itself at half the spectrum


def test_float32_stays_single_precision_inside():
    seen = set()
    x, w = _layer()
    y, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=0.25)
    dx, dw, db = blconv.conv2d_backward(np.ones_like(y), ctx)
    seen.add(ctx.x_hat.dtype)
    assert seen == {np.dtype(np.complex64)}
    assert {y.dtype, dx.dtype, dw.dtype} == {np.dtype(np.float32)}


@pytest.mark.parametrize("name", ["resnet-first", "resnet64", "resnet128", "resnet256",
                                  "resnet512", "fcn1", "fcn2", "fcn3"])
def test_memory_kept_for_the_backward_follows_the_band(name):
    """What the forward keeps is the input's retained spectrum alone: at c = 0.5 at most
    0.6 of what a spatial convolution keeps (x and w), at c = 0 at most 1.1 of it."""
    from blconv.bench import LAYERS
    layer = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.x_shape).astype(np.float32)
    w = rng.standard_normal(layer.w_shape).astype(np.float32)
    fwd = blconv.conv1d_forward if layer.dim == 1 else blconv.conv2d_forward
    spatial = x.nbytes + w.nbytes
    for rate, bound in ((0.5, 0.6), (0.0, 1.1)):
        _, ctx = fwd(x, w, padding=layer.padding, compress_rate=rate)
        # complex64 (8 bytes) per retained coefficient of each sample and channel
        assert ctx.nbytes == 8 * ctx.band.retained * x.shape[0] * x.shape[1]
        assert ctx.nbytes <= bound * spatial, (rate, ctx.nbytes / spatial)
