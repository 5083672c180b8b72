"""The FFT path against the spatial oracle (c = 0), an independent masked float64
computation (c > 0), and the adjoint identities of its backward."""
import numpy as np
import pytest

import blconv
from blconv import reference

from helpers import masked_correlation, rel

FWD = {1: blconv.conv1d_forward, 2: blconv.conv2d_forward}
BWD = {1: blconv.conv1d_backward, 2: blconv.conv2d_backward}
TOL = {np.float32: 1e-5, np.float64: 1e-10}


# every test runs through both exact transform routes (the conftest's ``route``)
pytestmark = pytest.mark.usefixtures("route")


def _case(d, size, kernel, c_in, c_out, groups, dtype, seed=0, n=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return rng, x, w, b


# (d, size, kernel): odd, even and non-square sizes
SHAPES = [(1, (13,), (3,)), (1, (16,), (4,)), (2, (7, 7), (3, 3)), (2, (8, 6), (3, 2)),
          (2, (9, 12), (2, 5))]
GEOMETRY = [dict(stride=1, padding=0, dilation=1), dict(stride=2, padding=1, dilation=1),
            dict(stride=3, padding=2, dilation=1), dict(stride=1, padding=2, dilation=2),
            dict(stride=2, padding=0, dilation=2), dict(stride=1, padding="same", dilation=1),
            dict(stride=1, padding="same", dilation=2)]
GEOM_IDS = ["s1p0", "s2p1", "s3p2", "s1p2d2", "s2p0d2", "same", "same-d2"]


def _check_exact(backend, d, size, kernel, geom, groups, dtype, c_in=4, c_out=6):
    _, x, w, b = _case(d, size, kernel, c_in, c_out, groups, dtype)
    kw = dict(geom, groups=groups)
    ref = reference.correlate(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                              **kw)
    y, ctx = FWD[d](backend.asarray(x), backend.asarray(w), backend.asarray(b), **kw)
    assert y.dtype == backend.asarray(x).dtype and tuple(y.shape) == ref.shape
    assert rel(y, ref) <= TOL[dtype]
    dy = np.random.default_rng(5).standard_normal(ref.shape).astype(dtype)
    dx, dw, db = BWD[d](backend.asarray(dy), ctx)
    rdx, rdw, rdb = reference.correlate_backward(dy.astype(np.float64), x.astype(np.float64),
                                                 w.astype(np.float64), **kw)
    for got, want in ((dx, rdx), (dw, rdw), (db, rdb)):
        assert got.dtype == y.dtype
        assert rel(got, want) <= TOL[dtype]


@pytest.mark.parametrize("geom", GEOMETRY, ids=GEOM_IDS)
@pytest.mark.parametrize("d, size, kernel", SHAPES, ids=lambda v: str(v))
def test_exact_at_zero_rate_geometry(backend, d, size, kernel, geom):
    _check_exact(backend, d, size, kernel, geom, 1, np.float64)


@pytest.mark.parametrize("groups", [1, 2, 4], ids=["g1", "g2", "depthwise"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("d, size, kernel", [SHAPES[1], SHAPES[3]], ids=["1d", "2d"])
@pytest.mark.parametrize("geom", [GEOMETRY[1], GEOMETRY[6]], ids=["s2p1", "same-d2"])
def test_exact_at_zero_rate_groups_dtypes(backend, d, size, kernel, geom, groups, dtype):
    _check_exact(backend, d, size, kernel, geom, groups, dtype, c_in=4, c_out=4 * (groups > 1) + 4)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("d, size, kernel, geom, groups", [
    (1, (20,), (5,), dict(stride=1, padding=2, dilation=1), 1),
    (1, (17,), (3,), dict(stride=2, padding=1, dilation=2), 2),
    (2, (10, 10), (3, 3), dict(stride=1, padding=1, dilation=1), 1),
    (2, (9, 12), (3, 2), dict(stride=(2, 3), padding=(2, 1), dilation=(1, 2)), 2),
    (2, (11, 8), (4, 4), dict(stride=1, padding="same", dilation=1), 1),
], ids=["1d", "1d-s2d2g2", "2d", "2d-mixed", "2d-same-even"])
@pytest.mark.parametrize("fft_size", ["fast", "pow2"])
def test_band_limited_matches_masked_float64(backend, d, size, kernel, geom, groups, rate, fft_size):
    rng, x, w, b = _case(d, size, kernel, 4, 4, groups, np.float64, seed=3)
    kw = dict(geom, groups=groups)
    y, ctx = FWD[d](backend.asarray(x), backend.asarray(w), **kw, compress_rate=rate,
                    fft_size=fft_size)
    band = ctx.band
    assert band == blconv.band_for(x.shape, w.shape, padding=geom["padding"],
                                   dilation=geom["dilation"], compress_rate=rate,
                                   fft_size=fft_size)
    assert band.effective_rate >= rate - 0.35                  # rounding to whole rows
    dy = rng.standard_normal(tuple(y.shape))
    ry, rdx, rdw = masked_correlation(x, w, fft_shape=band.fft_shape, keep=band.keep, dy=dy, **kw)
    assert rel(y, ry) <= 1e-10
    dx, dw, db = BWD[d](backend.asarray(dy), ctx)
    assert db is None
    assert rel(dx, rdx) <= 1e-10 and rel(dw, rdw) <= 1e-10


@pytest.mark.parametrize("rate", [0.3, 0.75])
@pytest.mark.parametrize("d, kw", [
    (1, dict(stride=2, padding=3, dilation=2, groups=2)),
    (2, dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=1)),
    (2, dict(stride=1, padding="same", dilation=1, groups=4)),
], ids=["1d", "2d", "2d-depthwise"])
def test_adjoint_identities(backend, d, kw, rate):
    """<dy, J_x v> = <J_x^T dy, v> and the same for w, in float64 (the map is linear)."""
    rng = np.random.default_rng(11)
    size = (19,) if d == 1 else (9, 10)
    x = rng.standard_normal((3, 4) + size)
    w = rng.standard_normal((8, 4 // kw["groups"]) + (3,) * d)
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    a = backend.asarray
    y, ctx = FWD[d](a(x), a(w), **kw, compress_rate=rate)
    dy = rng.standard_normal(tuple(y.shape))
    dx, dw, _ = BWD[d](a(dy), ctx)
    jx = blconv.to_numpy(FWD[d](a(vx), a(w), **kw, compress_rate=rate)[0])
    jw = blconv.to_numpy(FWD[d](a(x), a(vw), **kw, compress_rate=rate)[0])
    lhs_x, rhs_x = np.vdot(dy, jx), np.vdot(blconv.to_numpy(dx), vx)
    lhs_w, rhs_w = np.vdot(dy, jw), np.vdot(blconv.to_numpy(dw), vw)
    assert abs(lhs_x - rhs_x) <= 1e-10 * abs(lhs_x)
    assert abs(lhs_w - rhs_w) <= 1e-10 * abs(lhs_w)


# name: (d, x shape, w shape, kwargs, frequency blocks of one frequency); each is one route
NEED_ROUTES = {
    "freq-whole": (2, (3, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=1, groups=2),
                   False),
    "freq-blocks": (2, (3, 4, 9, 8), (6, 4, 3, 3), dict(padding="same"), True),
    "freq-chunked": (1, (5, 4, 40), (6, 4, 3), dict(padding=1, max_workspace_bytes=4096),
                     False),
    "taps": (1, (2, 3, 17), (4, 3, 3), dict(stride=2, dilation=2), False),
    "pointwise": (2, (3, 4, 8, 9), (6, 4, 1, 1), dict(stride=2, padding=1), False),
}


@pytest.mark.parametrize("name", NEED_ROUTES)
def test_backward_computes_only_the_gradients_asked_for(backend, monkeypatch, name):
    """need_dx / need_dw: the one not asked for is None, the other the independent masked
    float64 gradient, and the layout (route) is the one the case names."""
    from blconv import _channels
    d, xs, ws, kw, blocks = NEED_ROUTES[name]
    if blocks:
        monkeypatch.setattr(_channels, "_BLOCK_BYTES", 1)
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    a = backend.asarray
    y, ctx = FWD[d](a(x), a(w), a(rng.standard_normal(ws[0])), **kw, compress_rate=0.5)
    if isinstance(backend.asarray(x), np.ndarray):       # the taps route is NumPy's only
        assert ctx.layout == name.split("-")[0]
    dy = rng.standard_normal(tuple(y.shape))
    geom = dict(dict(stride=1, padding=0, dilation=1, groups=1), **kw)
    geom.pop("max_workspace_bytes", None)
    _, rdx, rdw = masked_correlation(x, w, fft_shape=ctx.band.fft_shape, keep=ctx.band.keep,
                                     dy=dy, **geom)
    dx, no_dw, db = BWD[d](a(dy), ctx, need_dw=False)
    no_dx, dw, db2 = BWD[d](a(dy), ctx, need_dx=False)
    assert no_dw is None and no_dx is None
    assert rel(blconv.to_numpy(dx), rdx) <= 1e-10 and rel(blconv.to_numpy(dw), rdw) <= 1e-10
    assert rel(blconv.to_numpy(db), dy.sum(axis=(0,) + tuple(range(2, 2 + d)))) <= 1e-12
    assert BWD[d](a(dy), ctx, need_dx=False, need_dw=False)[:2] == (None, None)


@pytest.mark.parametrize("flag", ["need_dx", "need_dw"])
def test_backward_need_flags_must_be_bools(flag):
    y, ctx = blconv.conv1d_forward(np.ones((1, 1, 6)), np.ones((1, 1, 2)))
    with pytest.raises(TypeError, match=f"conv1d_backward: {flag} must be True or False, "
                                        f"got 'no'"):
        blconv.conv1d_backward(np.ones_like(y), ctx, **{flag: "no"})


@pytest.mark.parametrize("d", [1, 2])
def test_bias_central_differences(d):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3) + (8,) * d)
    w = rng.standard_normal((5, 3) + (3,) * d)
    b = rng.standard_normal(5)
    y, ctx = FWD[d](x, w, b, padding=1, compress_rate=0.4)
    dy = rng.standard_normal(y.shape)
    _, _, db = BWD[d](dy, ctx)
    h = 1e-6
    for o in range(5):
        e = np.zeros(5)
        e[o] = h
        fd = (np.vdot(dy, FWD[d](x, w, b + e, padding=1, compress_rate=0.4)[0])
              - np.vdot(dy, FWD[d](x, w, b - e, padding=1, compress_rate=0.4)[0])) / (2 * h)
        assert abs(fd - db[o]) <= 1e-7 * max(1, abs(fd))


def test_float32_against_float64_at_rate():
    rng, x, w, b = _case(2, (16, 16), (3, 3), 8, 8, 1, np.float64)
    y64 = blconv.conv2d(x, w, b, padding=1, compress_rate=0.5)
    y32, ctx = blconv.conv2d_forward(x.astype(np.float32), w.astype(np.float32),
                                     b.astype(np.float32), padding=1, compress_rate=0.5)
    assert y32.dtype == np.float32 and ctx.x_hat.dtype == np.complex64
    assert rel(y32, y64) <= 1e-5


class TestEnergy:
    def _x(self, d=2):
        rng = np.random.default_rng(4)
        # a smooth signal plus a little noise: energy concentrated at low frequencies
        t = np.linspace(0, 1, 24)
        base = np.sin(2 * np.pi * 2 * t)
        x = base if d == 1 else np.add.outer(base, np.cos(2 * np.pi * t))
        return (x + 0.05 * rng.standard_normal((3, 2) + x.shape)), rng.standard_normal(
            (4, 2) + (3,) * d)

    @pytest.mark.parametrize("d", [1, 2])
    def test_full_energy_is_exact(self, backend, d):
        x, w = self._x(d)
        y, ctx = FWD[d](backend.asarray(x), backend.asarray(w), padding=1, preserve_energy=1.0)
        assert ctx.band.retained == ctx.band.total
        assert rel(y, reference.correlate(x, w, padding=1)) <= 1e-10

    @pytest.mark.parametrize("d", [1, 2])
    def test_smaller_energy_never_larger_band_and_keeps_enough(self, d):
        x, w = self._x(d)
        prev = None
        for e in [1.0, 0.999, 0.99, 0.95, 0.9, 0.7, 0.5, 0.2]:
            y, ctx = FWD[d](x, w, padding=1, preserve_energy=e)
            band = ctx.band
            if prev is not None:
                assert band.retained <= prev
            prev = band.retained
            # independent check: two-sided energy of the input inside the band (zero-filled
            # to the band's size; where the zeros go does not change |X|)
            X = np.fft.fftn(x, s=band.fft_shape, axes=tuple(range(2, 2 + d)))
            power = (np.abs(X) ** 2).sum(axis=(0, 1))
            from helpers import two_sided_mask
            kept = power[two_sided_mask(band.fft_shape, band.keep)].sum() / power.sum()
            assert kept >= e - 1e-12
            # and band-limited output equals the masked computation with that band
            ry = masked_correlation(x, w, fft_shape=band.fft_shape, keep=band.keep, stride=1,
                                    padding=1, dilation=1, groups=1)
            assert rel(y, ry) <= 1e-10
        assert prev < ctx.band.total

    def test_all_zero_batch_keeps_smallest_band(self):
        x = np.zeros((2, 3, 10, 10))
        w = np.ones((2, 3, 3, 3))
        with np.errstate(all="raise"):
            y, ctx = blconv.conv2d_forward(x, w, preserve_energy=0.5)
        assert ctx.band.keep == (1, 1)
        assert not np.any(y)


class TestContext:
    def test_holds_only_retained_spectra(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)
        w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
        sizes = {}
        for rate in (0.0, 0.5, 0.75):
            _, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=rate)
            assert ctx.x_hat.shape == (ctx.band.retained, 1, 4, 8)
            assert ctx.w is w                   # referenced; its spectrum is recomputed
            assert ctx.nbytes == 8 * ctx.band.retained * 4 * 8
            sizes[rate] = ctx.nbytes
        assert sizes[0.5] <= 0.55 * sizes[0.0]
        assert sizes[0.75] < sizes[0.5]


@pytest.mark.parametrize("d", [1, 2])
def test_empty_batch(backend, d):
    x = backend.asarray(np.zeros((0, 3) + (9,) * d))
    w = backend.asarray(np.ones((4, 3) + (3,) * d))
    b = backend.asarray(np.ones(4))
    y, ctx = FWD[d](x, w, b, padding=1, compress_rate=0.5)
    assert tuple(y.shape) == (0, 4) + (9,) * d
    dx, dw, db = BWD[d](backend.asarray(np.zeros((0, 4) + (9,) * d)), ctx)
    assert tuple(dx.shape) == (0, 3) + (9,) * d
    assert not np.any(blconv.to_numpy(dw)) and not np.any(blconv.to_numpy(db))


def test_numpy_in_gives_numpy_out():
    """NumPy inputs give a NumPy array (CuPy against NumPy: tests/test_gpu_parity.py)."""
    x = np.ones((1, 1, 5))
    y = blconv.conv1d(x, np.ones((1, 1, 2)))
    assert type(y) is np.ndarray


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("order", [">", "<"], ids=["big-endian", "little-endian"])
def test_any_byte_order_is_accepted(d, order):
    """float64 in either byte order (FITS, MATLAB and HDF5 readers hand out '>f8') is float64:
    the same values give the same answer, against the spatial reference."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3) + (9,) * d)
    w = rng.standard_normal((4, 3) + (3,) * d)
    b = rng.standard_normal(4)
    xo, wo, bo = (a.astype(order + "f8") for a in (x, w, b))
    y, ctx = FWD[d](xo, wo, bo, padding=1)
    assert y.dtype == np.float64 and y.dtype.isnative
    np.testing.assert_allclose(y, reference.correlate(x, w, b, padding=1), rtol=1e-10,
                               atol=1e-10)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = BWD[d](dy.astype(order + "f8"), ctx)
    want = BWD[d](dy, FWD[d](x, w, b, padding=1)[1])
    for g, r in zip((dx, dw, db), want):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


class TestGivenBand:
    """``band=``: an explicitly given band, against the masked float64 computation."""

    CASES = [
        (1, (20,), (5,), dict(stride=1, padding=2, dilation=1), 1),
        (1, (17,), (3,), dict(stride=2, padding=1, dilation=2), 2),
        (2, (10, 10), (3, 3), dict(stride=1, padding=1, dilation=1), 1),
        (2, (9, 12), (3, 2), dict(stride=(2, 3), padding=(2, 1), dilation=(1, 2)), 2),
    ]
    IDS = ["1d", "1d-s2d2g2", "2d", "2d-mixed"]

    @pytest.mark.parametrize("rate", [0.0, 0.4, 0.8])
    @pytest.mark.parametrize("d, size, kernel, geom, groups", CASES, ids=IDS)
    def test_band_for_equals_compress_rate_exactly(self, backend, d, size, kernel, geom,
                                                   groups, rate):
        _, x, w, b = _case(d, size, kernel, 4, 4, groups, np.float64, seed=7)
        kw = dict(geom, groups=groups)
        band = blconv.band_for(x.shape, w.shape, padding=geom["padding"],
                               dilation=geom["dilation"], compress_rate=rate)
        xs, ws, bs = backend.asarray(x), backend.asarray(w), backend.asarray(b)
        y_rate, ctx_rate = FWD[d](xs, ws, bs, **kw, compress_rate=rate)
        y_band, ctx_band = FWD[d](xs, ws, bs, **kw, band=band)
        assert ctx_band.band == band == ctx_rate.band
        np.testing.assert_array_equal(blconv.to_numpy(y_band), blconv.to_numpy(y_rate))
        dy = backend.asarray(np.random.default_rng(1).standard_normal(tuple(y_rate.shape)))
        for g_band, g_rate in zip(BWD[d](dy, ctx_band), BWD[d](dy, ctx_rate)):
            np.testing.assert_array_equal(blconv.to_numpy(g_band), blconv.to_numpy(g_rate))

    @pytest.mark.parametrize("extra, keep", [(0, "low"), (0, "uneven"), (5, "low"), (5, "full")])
    @pytest.mark.parametrize("d, size, kernel, geom, groups", CASES, ids=IDS)
    def test_any_band_matches_masked_float64(self, backend, d, size, kernel, geom, groups,
                                             extra, keep):
        """Keep counts no rate gives (one axis wide, the other narrow) and FFT sizes above
        the smallest exact one."""
        rng, x, w, _ = _case(d, size, kernel, 4, 4, groups, np.float64, seed=8)
        kw = dict(geom, groups=groups)
        smallest = blconv.band_for(x.shape, w.shape, padding=geom["padding"],
                                   dilation=geom["dilation"], fft_size="fast").fft_shape
        n = tuple(m + extra for m in smallest)
        halves = [m // 2 + 1 for m in n]
        k = {"low": [max(1, h // 3) for h in halves], "full": halves,
             "uneven": [h if a == 0 else max(1, h // 4) for a, h in enumerate(halves)]}[keep]
        band = blconv.Band.from_keep(n, k)
        y, ctx = FWD[d](backend.asarray(x), backend.asarray(w), **kw, band=band)
        assert ctx.band == band
        dy = rng.standard_normal(tuple(y.shape))
        ry, rdx, rdw = masked_correlation(x, w, fft_shape=n, keep=tuple(k), dy=dy, **kw)
        assert rel(y, ry) <= 1e-10
        dx, dw, _ = BWD[d](backend.asarray(dy), ctx)
        assert rel(dx, rdx) <= 1e-10 and rel(dw, rdw) <= 1e-10

    def test_a_full_band_is_exact(self):
        x, w = np.random.default_rng(2).standard_normal((2, 3, 11)), np.ones((2, 3, 4))
        band = blconv.Band.from_keep((16,), (9,))
        np.testing.assert_allclose(blconv.conv1d(x, w, padding=1, band=band),
                                   reference.correlate(x, w, padding=1), atol=1e-12)

    @pytest.mark.parametrize("kwargs, err, match", [
        (dict(band="(3,)"), TypeError, r"conv1d: band must be a blconv\.Band .*got str"),
        (dict(band=blconv.Band.from_keep((22,), (3,)), compress_rate=0.5), ValueError,
         r"conv1d: band excludes compress_rate > 0 and preserve_energy, got compress_rate=0.5"),
        (dict(band=blconv.Band.from_keep((22,), (3,)), preserve_energy=0.9), ValueError,
         r"preserve_energy=0.9"),
        (dict(band=blconv.Band.from_keep((21,), (3,))), ValueError,
         r"conv1d: band.fft_shape along spatial axis 0 must be >= 22, .* got 21"),
        (dict(band=blconv.Band.from_keep((22, 22), (3, 3))), ValueError,
         r"conv1d: band must have one fft_shape and keep entry per spatial axis \(1\), "
         r"got fft_shape=\(22, 22\)"),
        (dict(band=blconv.Band.from_keep((22,), (13,))), ValueError,
         r"conv1d: band.keep along spatial axis 0 must be in 1..12 \(fft size 22\), got 13"),
        (dict(band=blconv.Band.from_keep((22,), (0,))), ValueError, r"must be in 1..12"),
        (dict(band=blconv.Band.from_keep((22,), (3,)), fft_size=24), ValueError,
         r"conv1d: fft_size=24 gives the FFT shape \(24,\), but band.fft_shape is \(22,\)"),
    ], ids=["type", "with-rate", "with-energy", "too-small", "axes", "keep-high", "keep-zero",
            "fft-size"])
    def test_bad_band(self, kwargs, err, match):
        x, w = np.ones((1, 2, 20)), np.ones((3, 2, 5))
        with pytest.raises(err, match=match):
            blconv.conv1d(x, w, padding=2, **kwargs)

    def test_matching_fft_size_is_accepted(self):
        x, w = np.ones((1, 2, 20)), np.ones((3, 2, 5))
        band = blconv.Band.from_keep((24,), (4,))
        np.testing.assert_array_equal(blconv.conv1d(x, w, padding=2, band=band, fft_size=24),
                                      blconv.conv1d(x, w, padding=2, band=band))


@pytest.mark.parametrize("workers", [1, 2, 3], ids=["1thread", "2threads", "3threads"])
@pytest.mark.parametrize("d, size, kernel, geom, groups", [
    (1, (20,), (5,), dict(stride=1, padding="same", dilation=1), 1),
    (2, (9, 12), (3, 2), dict(stride=(2, 1), padding=(2, 1), dilation=(1, 2)), 2),
], ids=["1d", "2d-mixed"])
def test_frequency_blocks_and_threads_match_masked_float64(monkeypatch, d, size, kernel, geom,
                                                           groups, workers):
    """One frequency per block of the channel products and one sample per slab of the fused
    transforms, shared among threads (over a one-thread BLAS): still the independent
    masked float64 answer."""
    from threadpoolctl import threadpool_limits
    from blconv import _channels, spectral
    monkeypatch.setattr(_channels, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(spectral, "_FUSED_SLAB_BYTES", 1)
    rng, x, w, _ = _case(d, size, kernel, 4, 6, groups, np.float64, seed=7, n=5)
    kw = dict(geom, groups=groups)
    with threadpool_limits(1), blconv.fft_workers(workers):
        y, ctx = FWD[d](x, w, **kw, compress_rate=0.5)
        dy = rng.standard_normal(y.shape)
        dx, dw, _ = BWD[d](dy, ctx)
    ry, rdx, rdw = masked_correlation(x, w, fft_shape=ctx.band.fft_shape, keep=ctx.band.keep,
                                      dy=dy, **kw)
    assert rel(y, ry) <= 1e-10 and rel(dx, rdx) <= 1e-10 and rel(dw, rdw) <= 1e-10


def test_thread_count_changes_float32_results_by_rounding_only(monkeypatch):
    """Threads change only the order in which dw's per-block parts are summed: float32
    results agree across thread counts to a few units of rounding of that sum."""
    from threadpoolctl import threadpool_limits
    from blconv import _channels
    monkeypatch.setattr(_channels, "_BLOCK_BYTES", 1 << 12)
    rng, x, w, b = _case(2, (16, 16), (3, 3), 8, 8, 1, np.float32, seed=2, n=4)
    out = []
    for workers in (1, 2, 4):
        with threadpool_limits(1), blconv.fft_workers(workers):
            y, ctx = blconv.conv2d_forward(x, w, b, padding=1, compress_rate=0.3)
            out.append((y,) + BWD[2](np.ones_like(y), ctx))
    eps = np.finfo(np.float32).eps
    for other in out[1:]:
        for got, want in zip(other, out[0]):
            assert rel(got, want) <= 64 * eps


def test_concurrent_calls_share_the_thread_pool(monkeypatch):
    """Calls from several user threads, with different thread counts (the pool grows while
    others use it), give the answers of one-thread calls."""
    from concurrent.futures import ThreadPoolExecutor
    from threadpoolctl import threadpool_limits
    from blconv import _channels
    monkeypatch.setattr(_channels, "_BLOCK_BYTES", 1)
    cases = [_case(2, (10, 10), (3, 3), 4, 4, 1, np.float64, seed=s, n=3)[1:3] for s in range(6)]

    def one(i, workers):
        x, w = cases[i]
        with blconv.fft_workers(workers):
            y, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=0.4)
            return (y,) + BWD[2](np.ones_like(y), ctx)[:2]

    with threadpool_limits(1):
        want = [one(i, 1) for i in range(len(cases))]
        with ThreadPoolExecutor(3) as users:
            got = list(users.map(one, range(len(cases)), [2, 3, 4, 2, 5, 3]))
    for g, wnt in zip(got, want):
        for a, b in zip(g, wnt):
            assert rel(a, b) <= 1e-12
