"""Pointwise filters (``blconv._pointwise``): every kernel size 1 takes the low-pass and
channel-GEMM route, which computes the band-limited correlation and its exact gradients,
checked against the full-FFT masked reference in float64 (agreement to ~1e-14; 1e-10
leaves room for the longer sums), on both transform routes and every namespace."""
import numpy as np
import pytest

import blconv
from blconv.reference import correlate, correlate_backward

from helpers import masked_correlation, rel

# (x shape, w shape, keywords)
CASES = {
    "2d-shortcut-full": ((3, 4, 9, 8), (6, 4, 1, 1), dict(stride=2)),
    "2d-shortcut-half": ((3, 4, 9, 8), (6, 4, 1, 1), dict(stride=2, compress_rate=0.5)),
    "2d-padded": ((2, 5, 7, 6), (3, 5, 1, 1), dict(padding=1, compress_rate=0.3)),
    "2d-padded-full": ((2, 5, 7, 6), (3, 5, 1, 1), dict(padding=(2, 1), stride=(3, 2))),
    "2d-groups": ((2, 6, 8, 8), (9, 2, 1, 1), dict(groups=3, compress_rate=0.6)),
    "2d-pow2": ((2, 3, 5, 7), (4, 3, 1, 1), dict(fft_size="pow2", stride=2)),
    "2d-dilated": ((2, 3, 6, 6), (2, 3, 1, 1), dict(dilation=2, padding=1,
                                                   compress_rate=0.75)),
    "1d-strided": ((4, 7, 30), (5, 7, 1), dict(stride=3, padding=2, compress_rate=0.25)),
    "1d-full": ((4, 7, 30), (5, 7, 1), dict(stride=3, padding=2)),
    "1d-groups": ((3, 8, 21), (4, 4, 1), dict(groups=2, padding="same",
                                             compress_rate=0.5)),
}


def _data(name, dtype=np.float64):
    xs, ws, kw = CASES[name]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b, kw


def _functions(x):
    return ((blconv.conv1d_forward, blconv.conv1d_backward) if x.ndim == 3
            else (blconv.conv2d_forward, blconv.conv2d_backward))


def _reference(x, w, ctx, kw, dy):
    pad = kw.get("padding", 0)
    if pad == "same":
        pad = 0                             # one tap: "same" pads nothing
    return masked_correlation(x, w, fft_shape=ctx.band.fft_shape, keep=ctx.band.keep,
                              stride=kw.get("stride", 1), padding=pad,
                              dilation=kw.get("dilation", 1), groups=kw.get("groups", 1),
                              dy=dy)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_pointwise_route_computes_the_masked_correlation_and_its_gradients(name, route,
                                                                               backend):
    x, w, b, kw = _data(name)
    fwd, bwd = _functions(x)
    y, ctx = fwd(backend.asarray(x), backend.asarray(w), backend.asarray(b), **kw)
    assert ctx.layout == "pointwise"
    assert tuple(ctx.x_hat.shape) == (x.shape[0], x.shape[1]) + tuple(ctx.geometry.out)
    dy = np.random.default_rng(1).standard_normal(tuple(y.shape))
    dx, dw, db = bwd(backend.asarray(dy), ctx)
    ref_y, ref_dx, ref_dw = _reference(x, w, ctx, kw, dy)
    bias = b.reshape((-1,) + (1,) * (x.ndim - 2))
    assert rel(y, ref_y + bias) < 1e-10
    assert rel(dx, ref_dx) < 1e-10
    assert rel(dw, ref_dw) < 1e-10
    assert rel(db, dy.sum(axis=(0,) + tuple(range(2, x.ndim)))) < 1e-12
    assert tuple(dx.shape) == x.shape and tuple(dw.shape) == w.shape


@pytest.mark.parametrize("name", ["2d-shortcut-full", "2d-padded-full", "1d-full"])
def test_at_the_full_band_it_is_the_spatial_convolution(name):
    """compress_rate=0 keeps every coefficient: the result is the spatial-domain
    correlation and its gradients (blconv.reference, im2col), and no transform runs,
    so they agree to the rounding of the channel sums alone."""
    x, w, b, kw = _data(name)
    fwd, bwd = _functions(x)
    y, ctx = fwd(x, w, b, **kw)
    assert ctx.band.retained == ctx.band.total
    geo = dict(stride=kw.get("stride", 1), padding=kw.get("padding", 0))
    assert rel(y, correlate(x, w, b, **geo)) < 1e-14
    dy = np.random.default_rng(5).standard_normal(y.shape)
    for got, ref in zip(bwd(dy, ctx), correlate_backward(dy, x, w, **geo)):
        assert rel(got, ref) < 1e-14


@pytest.mark.parametrize("name", ["2d-shortcut-half", "1d-groups"])
def test_float32_on_the_pointwise_route_is_float64_to_rounding(name):
    """Each output is a sum of C_in/G products of low-passed values, each a pair of
    transforms over ~L terms: a few hundred times 2**-24 relative at worst, 1e-5."""
    x, w, b, kw = _data(name)
    fwd, bwd = _functions(x)
    y64, ctx64 = fwd(x, w, b, **kw)
    y32, ctx32 = fwd(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **kw)
    assert ctx32.layout == "pointwise" and ctx32.x_hat.dtype == np.float32
    assert y32.dtype == np.float32
    dy = np.random.default_rng(2).standard_normal(y64.shape)
    g64 = bwd(dy, ctx64)
    g32 = bwd(dy.astype(np.float32), ctx32)
    assert rel(y32, y64) < 1e-5
    for a, b_ in zip(g32, g64):
        assert a.dtype == np.float32 and rel(a, b_) < 1e-5


@pytest.mark.parametrize("name", ["2d-shortcut-half", "1d-strided"])
def test_batch_chunks_change_nothing_but_rounding(name, route):
    """A workspace bound that splits the batch into one-sample chunks: the transforms
    run per chunk, the arithmetic per sample is the same."""
    x, w, b, kw = _data(name)
    fwd, bwd = _functions(x)
    y, ctx = fwd(x, w, b, **kw)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    grads = bwd(dy, ctx)
    with blconv.max_workspace_bytes(1):
        y2, ctx2 = fwd(x, w, b, **kw)
        grads2 = bwd(dy, ctx2)
    assert rel(y2, y) < 1e-13
    for a, b_ in zip(grads2, grads):
        assert rel(a, b_) < 1e-13


def test_energy_mode_chooses_the_band_from_the_input_as_on_the_other_routes():
    """preserve_energy picks the band from x's own spectrum: the same band a 3x3 layer
    picks for the same x, and the masked correlation on it."""
    x, w, b, kw = _data("2d-padded")
    x = np.cumsum(np.cumsum(x, axis=2), axis=3)          # a random walk: low frequencies
    kw = dict(padding=1, preserve_energy=0.9, fft_size=(10, 9))
    y, ctx = blconv.conv2d_forward(x, w, b, **kw)
    w3 = np.zeros(w.shape[:2] + (3, 3))
    w3[:, :, 1, 1] = w[:, :, 0, 0]
    _, ctx3 = blconv.conv2d_forward(x, w3, b, padding=2, preserve_energy=0.9,
                                    fft_size=(10, 9))
    assert ctx.layout == "pointwise" and ctx3.layout == "freq"
    assert ctx.band.fft_shape == ctx3.band.fft_shape and ctx.band == ctx3.band
    assert 0 < ctx.band.effective_rate < 1
    dy = np.random.default_rng(4).standard_normal(y.shape)
    dx, dw, _ = blconv.conv2d_backward(dy, ctx)
    ref_y, ref_dx, ref_dw = _reference(x, w, ctx, kw, dy)
    assert rel(y, ref_y + b[:, None, None]) < 1e-10
    assert rel(dx, ref_dx) < 1e-10 and rel(dw, ref_dw) < 1e-10


def test_the_same_layer_as_a_3x3_filter_with_one_centre_tap():
    """A 1x1 filter is a 3x3 filter whose other taps are zero, with the padding one
    larger (the same tap position, the same output size): the per-frequency route
    computes that one, on the same band."""
    x, w, b, _ = _data("2d-shortcut-half")
    y, ctx = blconv.conv2d_forward(x, w, b, stride=2, padding=1, compress_rate=0.5,
                                   fft_size=(12, 10))
    w3 = np.zeros(w.shape[:2] + (3, 3))
    w3[:, :, 1, 1] = w[:, :, 0, 0]
    y3, ctx3 = blconv.conv2d_forward(x, w3, b, stride=2, padding=2, compress_rate=0.5,
                                     fft_size=(12, 10))
    assert (ctx.layout, ctx3.layout) == ("pointwise", "freq") and ctx.band == ctx3.band
    assert y.shape == y3.shape and rel(y, y3) < 1e-12


def test_every_kernel_of_one_tap_and_only_those_take_the_route():
    rng = np.random.default_rng(0)
    for xs, ws, kw in [((2, 3, 9), (4, 3, 1), {}), ((40, 3, 9), (4, 3, 1), {}),
                       ((2, 3, 9, 9), (4, 3, 1, 1), dict(preserve_energy=0.9)),
                       ((2, 3, 9, 9), (4, 3, 1, 1), dict(max_workspace_bytes=1)),
                       ((2, 3, 9, 9), (4, 3, 1, 2), {}), ((2, 3, 9, 9), (4, 3, 2, 1), {}),
                       ((2, 3, 9), (4, 3, 2), {})]:
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        f = blconv.conv1d_forward if len(xs) == 3 else blconv.conv2d_forward
        layout = f(x, w, **kw)[1].layout
        assert (layout == "pointwise") == all(k == 1 for k in ws[2:]), (xs, ws, kw, layout)


def test_it_keeps_at_most_the_input_for_the_backward():
    """What the backward reads is the low-passed input at the output positions: at
    stride 2 a quarter of x, never more than x."""
    x, w, b, kw = _data("2d-shortcut-half")
    _, ctx = blconv.conv2d_forward(x.astype(np.float32), w.astype(np.float32), **kw)
    assert ctx.nbytes == ctx.x_hat.nbytes
    assert ctx.nbytes == x.shape[0] * x.shape[1] * 5 * 4 * 4      # out = 5 x 4, float32
    _, ctx1 = blconv.conv2d_forward(x, w, padding=0, compress_rate=0.5)
    assert ctx1.nbytes == x.nbytes
