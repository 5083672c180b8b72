"""Band-limited transposed convolution (blconv.transpose).

Correctness from outside the code under test: hand-computed values; the spatial-domain
reference (the input gradient of ``blconv.reference.correlate``, float64 im2col) at
compress rate 0; at other rates, the adjoint identity with the band-limited correlation
(``<conv(z), x> = <conv_transpose(x), z>``) and central finite differences.
"""
import numpy as np
import pytest

import blconv
from blconv import reference
from helpers import randn

# name: (d, x shape, w shape, kwargs)
CASES = {
    "1d": (1, (2, 3, 9), (3, 4, 3), {}),
    "1d-s2-p1-op1": (1, (2, 4, 8), (4, 2, 3), dict(stride=2, padding=1, output_padding=1)),
    "1d-s3-d2-g2": (1, (3, 4, 7), (4, 3, 4), dict(stride=3, dilation=2, groups=2,
                                                  output_padding=2)),
    "1d-k1-s2": (1, (2, 5, 6), (5, 3, 1), dict(stride=2)),
    "2d": (2, (2, 3, 5, 6), (3, 2, 3, 3), {}),
    "2d-s2-p1-op1": (2, (2, 4, 5, 6), (4, 3, 4, 4), dict(stride=2, padding=1,
                                                         output_padding=1)),
    "2d-mixed-g2": (2, (2, 4, 6, 5), (4, 1, 3, 2), dict(stride=(2, 1), padding=(1, 0),
                                                        dilation=(1, 2), groups=2)),
    "2d-depthwise-s2": (2, (1, 3, 4, 4), (3, 1, 3, 3), dict(stride=2, groups=3)),
}


def fns(d):
    return (getattr(blconv, f"conv_transpose{d}d"), getattr(blconv, f"conv_transpose{d}d_forward"),
            getattr(blconv, f"conv_transpose{d}d_backward"), getattr(blconv, f"conv{d}d"))


def corr_kwargs(kw):
    """The correlation whose adjoint the transposed convolution is: no output_padding."""
    return {k: v for k, v in kw.items() if k != "output_padding"}


def case(name, dtype=np.float64):
    d, xs, ws, kw = CASES[name]
    x, w = randn(*xs, seed=1, dtype=dtype), randn(*ws, seed=2, dtype=dtype)
    b = randn(ws[1] * kw.get("groups", 1), seed=3, dtype=dtype)
    return d, x, w, b, kw


def test_hand_computed():
    # stride 2: each input sample scatters a copy of the filter, two positions apart
    z = blconv.conv_transpose1d(np.array([[[1., 2.]]]), np.array([[[1., 10., 100.]]]),
                                stride=2)
    np.testing.assert_allclose(z, [[[1, 10, 102, 20, 200]]], atol=1e-12)
    # padding 1 crops one position from each end; output_padding adds one at the end
    z = blconv.conv_transpose1d(np.array([[[1., 2.]]]), np.array([[[1., 10., 100.]]]),
                                stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(z, [[[10, 102, 20, 200]]], atol=1e-12)
    # two input channels, one output channel, a bias
    z = blconv.conv_transpose1d(np.array([[[1.], [2.]]]), np.array([[[1., 1.]], [[3., -1.]]]),
                                np.array([0.5]))
    np.testing.assert_allclose(z, [[[7.5, -0.5]]], atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_rate_0_equals_the_spatial_reference(name):
    d, x, w, b, kw = case(name)
    tconv, fwd, bwd, _ = fns(d)
    z, ctx = fwd(x, w, b, **kw)
    # the transposed convolution is the correlation's input gradient at dy = x
    want = reference.correlate_backward(x, np.zeros(z.shape), w, **corr_kwargs(kw))[0]
    want = want + b.reshape((-1,) + (1,) * d)
    assert z.shape == want.shape
    np.testing.assert_allclose(z, want, rtol=0, atol=1e-12 * np.abs(want).max())
    assert ctx.band.effective_rate == 0
    # its backward: dx the correlation of dz with w, dw and db by the same reference
    dz = randn(*z.shape, seed=4)
    dx, dw, db = bwd(dz, ctx)
    want_dx = reference.correlate(dz, w, **corr_kwargs(kw))
    want_dw = reference.correlate_backward(x, dz, w, **corr_kwargs(kw))[1]
    for got, ref in ((dx, want_dx), (dw, want_dw), (db, dz.sum(axis=(0,) + tuple(range(2, 2 + d))))):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_array_equal(tconv(x, w, b, **kw), z)


@pytest.mark.parametrize("rate", [0.25, 0.5, 0.75])
@pytest.mark.parametrize("name", CASES)
def test_adjoint_of_the_band_limited_correlation(name, rate):
    d, x, w, _, kw = case(name)
    tconv, *_, conv = fns(d)
    z = tconv(x, w, **kw, compress_rate=rate)
    r = randn(*z.shape, seed=5)
    lhs = np.vdot(conv(r, w, **corr_kwargs(kw), compress_rate=rate), x)
    rhs = np.vdot(z, r)
    assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(z) * np.linalg.norm(r)
    # and band-limiting changed something (a band narrower than the spectrum)
    full = tconv(x, w, **kw)
    assert np.linalg.norm(z - full) > 1e-3 * np.linalg.norm(full)


@pytest.mark.parametrize("name", CASES)
def test_band_limited_gradients_by_finite_differences(name):
    d, x, w, b, kw = case(name)
    tconv, fwd, bwd, conv = fns(d)
    z, ctx = fwd(x, w, b, **kw, compress_rate=0.5)
    dz = randn(*z.shape, seed=6)
    dx, dw, db = bwd(dz, ctx)
    # dx: the band-limited correlation of dz (the map's adjoint), at the same band
    np.testing.assert_allclose(dx, conv(dz, w, **corr_kwargs(kw), band=ctx.band),
                               rtol=0, atol=1e-12 * np.abs(dx).max())
    rng = np.random.default_rng(7)
    for i, a in enumerate((x, w, b)):
        e = rng.standard_normal(a.shape)
        h = 1e-6
        args = [x, w, b]

        def loss(s):
            args[i] = a + s * e
            return np.vdot(dz, tconv(*args, **kw, compress_rate=0.5))

        fd = (loss(h) - loss(-h)) / (2 * h)
        got = np.vdot((dx, dw, db)[i], e)
        assert abs(fd - got) <= 1e-7 * max(abs(fd), 1.0), (i, fd, got)


def test_ctx_references_the_input_and_the_band_is_reusable():
    d, x, w, b, kw = case("2d-s2-p1-op1")
    _, fwd, _, _ = fns(d)
    for rate in (0.0, 0.5, 0.75):
        z, ctx = fwd(x, w, b, **kw, compress_rate=rate)
        assert ctx.x is x and ctx.w is w and ctx.nbytes == 0      # nothing allocated
        assert ctx.out_shape == z.shape
        again, _ = fwd(x, w, b, **kw, band=ctx.band)                 # the same band, given
        np.testing.assert_array_equal(again, z)


@pytest.mark.parametrize("name", ["1d-s3-d2-g2", "2d-s2-p1-op1"])
def test_chunked_batches_equal_one_batch_to_rounding(name):
    d, x, w, b, kw = case(name, np.float32)
    _, fwd, bwd, _ = fns(d)
    z, ctx = fwd(x, w, b, **kw, compress_rate=0.5)
    zc, ctxc = fwd(x, w, b, **kw, compress_rate=0.5, max_workspace_bytes=1)   # one per chunk
    dz = randn(*z.shape, seed=8, dtype=np.float32)
    # float32 sums of a few dozen terms in another order: a few eps of the largest value
    for got, want in zip((zc,) + bwd(dz, ctxc), (z,) + bwd(dz, ctx)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("route", ["blocks", "whole", "chunks"])
@pytest.mark.parametrize("name", ["1d-s3-d2-g2", "2d-s2-p1-op1"])
def test_backward_computes_only_the_gradients_asked_for(backend, monkeypatch, name, route):
    """need_dx / need_dw: the one not asked for is None, the other independent of the
    code under test: the spatial reference at rate 0; at rate 0.5 the map's linearity in
    each argument, <dx, e> = <dz, T(e, w)> and <dw, e> = <dz, T(x, e)> at the same band;
    on the filters' spectrum per block and whole, and in batch chunks."""
    if route == "whole":
        monkeypatch.setattr(blconv.spectral, "FILTER_MATRIX_MAX", 0)
    extra = dict(max_workspace_bytes=1) if route == "chunks" else {}
    d, x, w, b, kw = case(name)
    tconv, fwd, bwd, _ = fns(d)
    a, rng = backend.asarray, np.random.default_rng(13)
    for rate in (0.0, 0.5):
        z, ctx = fwd(a(x), a(w), a(b), **kw, **extra, compress_rate=rate)
        dz = rng.standard_normal(tuple(z.shape))
        dx, no_dw, db = bwd(a(dz), ctx, need_dw=False)
        no_dx, dw, db2 = bwd(a(dz), ctx, need_dx=False)
        assert no_dw is None and no_dx is None
        dx, dw = blconv.to_numpy(dx), blconv.to_numpy(dw)
        for got in (db, db2):
            np.testing.assert_allclose(blconv.to_numpy(got), dz.sum(axis=(0,) + tuple(
                range(2, 2 + d))), rtol=0, atol=1e-12 * np.abs(dz).sum())
        if rate == 0:
            want_dx = reference.correlate(dz, w, **corr_kwargs(kw))
            want_dw = reference.correlate_backward(x, dz, w, **corr_kwargs(kw))[1]
            for got, want in ((dx, want_dx), (dw, want_dw)):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
            continue
        for got, args in ((dx, lambda e: (e, w)), (dw, lambda e: (x, e))):
            e = rng.standard_normal(got.shape)
            t = tconv(*args(e), **kw, band=ctx.band)
            assert abs(np.vdot(got, e) - np.vdot(dz, t)) <= 1e-12 * np.linalg.norm(
                dz) * np.linalg.norm(t)
        assert bwd(a(dz), ctx, need_dx=False, need_dw=False)[:2] == (None, None)


@pytest.mark.parametrize("flag", ["need_dx", "need_dw"])
def test_backward_need_flags_must_be_bools(flag):
    z, ctx = blconv.conv_transpose1d_forward(np.ones((1, 1, 6)), np.ones((1, 1, 2)))
    with pytest.raises(TypeError, match=f"conv_transpose1d_backward: {flag} must be True or "
                                        f"False, got 1"):
        blconv.conv_transpose1d_backward(np.ones_like(z), ctx, **{flag: 1})


@pytest.mark.parametrize("name", ["1d-s2-p1-op1", "2d-mixed-g2"])
def test_float32_stays_float32_and_agrees_with_float64(name):
    d, x, w, b, kw = case(name)
    _, fwd, bwd, _ = fns(d)
    z64, ctx64 = fwd(x, w, b, **kw, compress_rate=0.5)
    f32 = [a.astype(np.float32) for a in (x, w, b)]
    z32, ctx32 = fwd(*f32, **kw, compress_rate=0.5)
    assert z32.dtype == np.float32
    dz = randn(*z64.shape, seed=9)
    g32 = bwd(dz.astype(np.float32), ctx32)
    for got, want in zip((z32,) + g32, (z64,) + bwd(dz, ctx64)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_pow2_transform_size_keeps_the_adjoint():
    d, x, w, _, kw = case("2d-s2-p1-op1")
    z, ctx = blconv.conv_transpose2d_forward(x, w, **kw, compress_rate=0.5, fft_size="pow2")
    assert all(n & (n - 1) == 0 for n in ctx.band.fft_shape)
    r = randn(*z.shape, seed=10)
    lhs = np.vdot(blconv.conv2d(r, w, **corr_kwargs(kw), compress_rate=0.5, fft_size="pow2"),
                  x)
    assert abs(lhs - np.vdot(z, r)) <= 1e-12 * np.linalg.norm(z) * np.linalg.norm(r)


def test_bad_arguments_name_the_function_and_argument():
    x, w = np.ones((2, 4, 5)), np.ones((4, 3, 3))
    f = blconv.conv_transpose1d
    with pytest.raises(ValueError, match=r"conv_transpose1d: output_padding must be smaller "
                                         r"than stride"):
        f(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="conv_transpose1d: padding must be an int"):
        f(x, w, padding="same")
    with pytest.raises(ValueError, match=r"conv_transpose1d: x.shape\[1\] \(C_in=4\) must "
                                         r"equal w.shape\[0\] \(3\)"):
        f(x, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="divisible by groups"):
        f(x, w, groups=3)
    with pytest.raises(ValueError, match=r"conv_transpose1d: b must have shape \(C_out,\) = "
                                         r"\(3,\)"):
        f(x, w, np.ones(4))
    with pytest.raises(ValueError, match="conv_transpose1d: the output would have size"):
        f(x, w, padding=5)
    with pytest.raises(ValueError, match=r"conv_transpose1d: compress_rate must be in \[0, 1\)"):
        f(x, w, compress_rate=1.0)
    with pytest.raises(TypeError, match="conv_transpose1d"):
        f(x.astype(np.float32), w)                                  # mixed dtypes
    with pytest.raises(ValueError, match="conv_transpose2d: x must be 4-D"):
        blconv.conv_transpose2d(x, w)
    z, ctx = blconv.conv_transpose1d_forward(x, w, compress_rate=0.5)
    with pytest.raises(ValueError, match=r"conv_transpose1d_backward: dz must have the "
                                         r"forward output's shape \(2, 3, 7\)"):
        blconv.conv_transpose1d_backward(np.ones((2, 3, 6)), ctx)
    with pytest.raises(TypeError, match="conv_transpose1d_backward: dz must have the "
                                        "forward's dtype float64"):
        blconv.conv_transpose1d_backward(z.astype(np.float32), ctx)
    with pytest.raises(TypeError, match="conv_transpose2d_backward: ctx must be the "
                                        "ConvTransposeContext"):
        blconv.conv_transpose2d_backward(z, ctx)
    _, cctx = blconv.conv1d_forward(z, w)
    with pytest.raises(TypeError, match="ctx must be the ConvTransposeContext"):
        blconv.conv_transpose1d_backward(z, cctx)


@pytest.mark.parametrize("whole", [False, True], ids=["blocks", "whole"])
@pytest.mark.parametrize("route", ["matrix", "fft"])
@pytest.mark.parametrize("name", ["1d-s3-d2-g2", "2d-s2-p1-op1"])
def test_every_route_gives_the_reference_and_the_adjoint(name, route, whole, monkeypatch):
    """The transform route (speed only) and the filters' spectrum made whole (CuPy's way,
    and NumPy's past FILTER_MATRIX_MAX) or per block of frequencies."""
    if whole:
        monkeypatch.setattr(blconv.spectral, "FILTER_MATRIX_MAX", 0)
    d, x, w, b, kw = case(name)
    tconv, fwd, bwd, conv = fns(d)
    with blconv.transform(route):
        z0 = tconv(x, w, **kw)
        z, ctx = fwd(x, w, **kw, compress_rate=0.5)
        r = randn(*z.shape, seed=11)
        dx, dw, _ = bwd(r, ctx)
        y = conv(r, w, **corr_kwargs(kw), compress_rate=0.5)
    want = reference.correlate_backward(x, np.zeros(z0.shape), w, **corr_kwargs(kw))[0]
    np.testing.assert_allclose(z0, want, rtol=0, atol=1e-12 * np.abs(want).max())
    assert abs(np.vdot(y, x) - np.vdot(z, r)) <= 1e-12 * np.linalg.norm(z) * np.linalg.norm(r)
    np.testing.assert_allclose(dx, y, rtol=0, atol=1e-12 * np.abs(y).max())
    # dw against the default route's (checked by finite differences above)
    with blconv.transform("auto"):
        monkeypatch.undo()
        dw_ref = bwd(r, fwd(x, w, **kw, compress_rate=0.5)[1])[1]
    np.testing.assert_allclose(dw, dw_ref, rtol=0, atol=1e-11 * np.abs(dw_ref).max())


@pytest.mark.parametrize("name", ["1d-s2-p1-op1", "2d-mixed-g2"])
def test_other_namespaces_give_numpy_results_on_their_device(backend, name):
    """The array-API path (CuPy's: one batched product, no NumPy calls), run on the CPU
    with array-api-strict arrays on a non-default device."""
    d, x, w, b, kw = case(name)
    _, fwd, bwd, _ = fns(d)
    z, ctx = fwd(x, w, b, **kw, compress_rate=0.5)
    dz = randn(*z.shape, seed=12)
    zb, ctxb = fwd(*(backend.asarray(a) for a in (x, w, b)), **kw, compress_rate=0.5)
    assert ctxb.band == ctx.band
    got = (zb,) + bwd(backend.asarray(dz), ctxb)
    for g, want in zip(got, (z,) + bwd(dz, ctx)):
        assert type(g) is type(zb) and getattr(g, "device", None) == getattr(zb, "device", None)
        np.testing.assert_allclose(blconv.to_numpy(g), want, rtol=0,
                                   atol=1e-12 * np.abs(want).max())
