"""Property-based tests: random geometries, rates and energies against independent oracles.

Hypothesis draws 1D and 2D problems with sizes 1 to 13 (primes and 1 included, non-square,
kernels as large as the padded input), stride, integer / per-axis / ``"same"``
padding, dilation, groups, FFT size and dtype.  Oracles: the spatial
:mod:`blconv.reference` at ``compress_rate=0``; at ``c > 0`` the independent masked
float64 computation of ``helpers`` and the adjoint identities; for the band, full
two-sided FFTs of the explicitly padded input with ``helpers.two_sided_mask``.  The
transposed convolution of each problem (where the padding is not ``"same"``) is checked
against the reference's input gradient at rate 0, and as the adjoint of the band-limited
correlation at other rates.

Runs are reproducible: ``derandomize=True`` (examples derive from the test itself, not
from a clock) and no example database.
"""
import warnings

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import blconv
from blconv import reference
from blconv._validation import conv_geometry

from helpers import masked_correlation, two_sided_mask

FWD = {1: blconv.conv1d_forward, 2: blconv.conv2d_forward}
BWD = {1: blconv.conv1d_backward, 2: blconv.conv2d_backward}
# error bounds, relative to the magnitudes involved (see _close)
TOL = {np.float32: 1e-5, np.float64: 1e-10}
ADJOINT_TOL = 1e-9

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
SIZES = [1, 2, 3, 4, 5, 7, 8, 11, 13]


# --- strategies -----------------------------------------------------------------------------
@st.composite
def problems(draw, dtypes=(np.float32, np.float64)):
    """A random valid correlation: shapes, geometry keywords, dtype and a data seed."""
    d = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    same = draw(st.integers(0, 2)) == 0
    whole = draw(st.integers(0, 3)) == 0          # the kernel covers the padded input
    length, kernel, dilation, stride, pad = [], [], [], [], []
    for _ in range(d):
        n = draw(st.sampled_from(SIZES if d == 1 else SIZES[:7]))
        dl = draw(st.sampled_from([1, 1, 2, 3]))
        p = 0 if same else draw(st.integers(0, 3))
        # "same" pads by the effective kernel, so any kernel fits; keep it near the input
        k_max = n + 2 if same else (n + 2 * p - 1) // dl + 1
        length.append(n)
        dilation.append(dl)
        pad.append(p)
        kernel.append(k_max if whole else draw(st.integers(1, k_max)))
        stride.append(1 if same else draw(st.integers(1, 3)))
    if same:
        padding = "same"
    elif len(set(pad)) == 1 and draw(st.booleans()):
        padding = pad[0]
    else:
        padding = tuple(pad)
    geom = dict(stride=tuple(stride) if len(set(stride)) > 1 else stride[0], padding=padding,
                dilation=dilation[0] if len(set(dilation)) == 1 and draw(st.booleans())
                else tuple(dilation), groups=groups)
    fft = draw(st.sampled_from(["fast", "pow2", "bigger", "smallest"]))
    if fft == "bigger":             # an explicit size: the padded length plus 0..5
        padded = [n + 2 * p if not same else n + (k - 1) * dl
                  for n, p, k, dl in zip(length, pad, kernel, dilation)]
        fft = tuple(q + draw(st.integers(0, 5)) for q in padded)
    elif fft == "smallest":         # the smallest size blconv accepts, on either route
        fft = conv_geometry("props", tuple(length), tuple(kernel), **{
            k: v for k, v in geom.items() if k != "groups"}).min_size
    return dict(d=d, x_shape=(draw(st.integers(1, 3)), c_in) + tuple(length),
                w_shape=(c_out, c_in // groups) + tuple(kernel), geom=geom, fft_size=fft,
                dtype=draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2**16)))


def _edge(d, x_shape, w_shape, dtype=np.float64, **geom):
    geom = dict(dict(stride=1, padding=0, dilation=1, groups=1), **geom)
    return dict(d=d, x_shape=x_shape, w_shape=w_shape, geom=geom, fft_size="fast",
                dtype=dtype, seed=0)


# always tried first: FFT size 1 (everything 1-sized), and a kernel equal to the padded input
EDGES = [_edge(1, (1, 1, 1), (1, 1, 1)),
         _edge(2, (2, 2, 1, 1), (2, 2, 1, 1), np.float32),
         _edge(2, (1, 3, 1, 7), (3, 1, 1, 9), padding=(0, 1), groups=3),
         _edge(1, (2, 2, 13), (2, 1, 7), padding=1, dilation=2, groups=2)]


def edges(test):
    for p in EDGES:
        test = example(p=p)(test)
    return test


def _data(p, scale=1.0):
    rng = np.random.default_rng(p["seed"])
    x = (scale * rng.standard_normal(p["x_shape"])).astype(p["dtype"])
    w = rng.standard_normal(p["w_shape"]).astype(p["dtype"])
    b = rng.standard_normal(p["w_shape"][0]).astype(p["dtype"])
    return rng, x, w, b


def _close(got, want, bound, spread, dtype):
    """``|got - want| <= tol * (|bound| + spread)`` in the 2-norm.

    ``bound`` is the map applied to absolute values, ``spread`` the product of the
    operands' norms: FFT rounding is a fraction of the magnitudes summed anywhere in the
    signal, not of the result, which may cancel to zero (or be all padding).  Any real
    error is a fraction of ``|y|`` itself.
    """
    got = np.asarray(blconv.to_numpy(got), dtype=np.float64)
    err = np.linalg.norm(got - want)
    scale = np.linalg.norm(bound) + spread
    assert err <= TOL[dtype] * max(scale, 1e-300), (err, scale)


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# --- compress_rate = 0: the spatial reference -----------------------------------------------
@SETTINGS
@given(p=problems())
@edges
def test_zero_rate_equals_the_spatial_reference(route, p):
    rng, x, w, b = _data(p)
    g = p["geom"]
    y, ctx = FWD[p["d"]](x, w, b, **g, fft_size=p["fft_size"])
    assert y.dtype == x.dtype and ctx.band.effective_rate == 0.0
    x64, w64, b64 = _f64(x, w, b)
    ref = reference.correlate(x64, w64, b64, **g)
    assert y.shape == ref.shape
    n = np.linalg.norm
    _close(y, ref, reference.correlate(abs(x64), abs(w64), abs(b64), **g), n(x) * n(w),
           p["dtype"])
    dy = rng.standard_normal(y.shape).astype(p["dtype"])
    dx, dw, db = BWD[p["d"]](dy, ctx)
    rdx, rdw, rdb = reference.correlate_backward(*_f64(dy, x, w), **g)
    adx, adw, adb = reference.correlate_backward(*_f64(abs(dy), abs(x), abs(w)), **g)
    for got, want, bound, spread in ((dx, rdx, adx, n(dy) * n(w)), (dw, rdw, adw, n(dy) * n(x)),
                                     (db, rdb, adb, 0.0)):
        assert got.dtype == x.dtype
        _close(got, want, bound, spread, p["dtype"])


# --- compress_rate > 0: masked float64 oracle and the adjoint identities -------------------
@SETTINGS
@given(p=problems(dtypes=(np.float64,)), rate=st.floats(0.01, 0.95))
def test_positive_rate_matches_masked_oracle_and_is_its_own_adjoint(route, p, rate):
    rng, x, w, _ = _data(p)
    g, d, fs = p["geom"], p["d"], p["fft_size"]
    y, ctx = FWD[d](x, w, **g, compress_rate=rate, fft_size=fs)
    band = ctx.band
    assert band == blconv.band_for(x.shape, w.shape, padding=g["padding"],
                                   dilation=g["dilation"], compress_rate=rate, fft_size=fs)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = BWD[d](dy, ctx)
    assert db is None
    ry, rdx, rdw = masked_correlation(x, w, fft_shape=band.fft_shape, keep=band.keep, dy=dy, **g)
    n = np.linalg.norm
    for got, want, spread in ((y, ry, n(x) * n(w)), (dx, rdx, n(dy) * n(w)),
                              (dw, rdw, n(dy) * n(x))):
        assert n(got - want) <= TOL[np.float64] * (n(want) + spread)
    # <dy, J_x v> = <J_x^T dy, v> and <dy, J_w u> = <J_w^T dy, u>: the map is bilinear
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    jx = FWD[d](vx, w, **g, compress_rate=rate, fft_size=fs)[0]
    jw = FWD[d](x, vw, **g, compress_rate=rate, fft_size=fs)[0]
    for jv, grad, v in ((jx, dx, vx), (jw, dw, vw)):
        lhs, rhs = np.vdot(dy, jv), np.vdot(grad, v)
        scale = (np.linalg.norm(dy) * np.linalg.norm(jv) + np.linalg.norm(grad) *
                 np.linalg.norm(v))
        assert abs(lhs - rhs) <= ADJOINT_TOL * scale, (lhs, rhs)


# --- the transposed convolution: the adjoint of the correlation ---------------------------
def _transposed(p):
    """The transposed convolution whose output has the correlation problem ``p``'s input
    shape: its input has the correlation's output shape, and ``output_padding`` picks
    that input size among those the stride maps to the same output."""
    g = p["geom"]
    geom = conv_geometry("props", p["x_shape"][2:], p["w_shape"][2:], **{
        k: v for k, v in g.items() if k != "groups"})
    op = tuple((o1 - 1) % s for o1, s in zip(geom.out1, geom.stride))
    return (p["x_shape"][:1] + p["w_shape"][:1] + geom.out), dict(g, output_padding=op)


TFWD = {1: blconv.conv_transpose1d_forward, 2: blconv.conv_transpose2d_forward}
TBWD = {1: blconv.conv_transpose1d_backward, 2: blconv.conv_transpose2d_backward}
NOT_SAME = problems().filter(lambda p: p["geom"]["padding"] != "same")


@SETTINGS
@given(p=NOT_SAME)
def test_transposed_zero_rate_equals_the_spatial_reference(route, p):
    rng, z, w, _ = _data(p)                   # z: the transposed convolution's output shape
    x_shape, tg = _transposed(p)
    g, n = p["geom"], np.linalg.norm
    x = rng.standard_normal(x_shape).astype(p["dtype"])
    out, ctx = TFWD[p["d"]](x, w, **tg, fft_size=p["fft_size"])
    assert out.shape == z.shape and out.dtype == x.dtype
    zeros = np.zeros(z.shape)
    ref = reference.correlate_backward(*_f64(x, zeros, w), **g)[0]
    bound = reference.correlate_backward(*_f64(abs(x), zeros, abs(w)), **g)[0]
    _close(out, ref, bound, n(x) * n(w), p["dtype"])
    dz = rng.standard_normal(z.shape).astype(p["dtype"])
    dx, dw, _ = TBWD[p["d"]](dz, ctx)
    _close(dx, reference.correlate(*_f64(dz, w), **g),
           reference.correlate(*_f64(abs(dz), abs(w)), **g), n(dz) * n(w), p["dtype"])
    _close(dw, reference.correlate_backward(*_f64(x, dz, w), **g)[1],
           reference.correlate_backward(*_f64(abs(x), abs(dz), abs(w)), **g)[1],
           n(dz) * n(x), p["dtype"])


@SETTINGS
@given(p=NOT_SAME.filter(lambda p: p["dtype"] == np.float64), rate=st.floats(0.01, 0.95))
def test_transposed_is_the_adjoint_of_the_band_limited_correlation(route, p, rate):
    rng, z, w, _ = _data(p)
    x_shape, tg = _transposed(p)
    g, d, fs = p["geom"], p["d"], p["fft_size"]
    x = rng.standard_normal(x_shape)
    out, ctx = TFWD[d](x, w, **tg, compress_rate=rate, fft_size=fs)
    y, cctx = FWD[d](z, w, **g, compress_rate=rate, fft_size=fs)
    assert ctx.band == cctx.band

    def agree(lhs, rhs, a, b, c, e):
        assert abs(lhs - rhs) <= ADJOINT_TOL * (np.linalg.norm(a) * np.linalg.norm(b) +
                                                np.linalg.norm(c) * np.linalg.norm(e))

    agree(np.vdot(y, x), np.vdot(out, z), y, x, out, z)            # <A z, x> = <A^T x, z>
    dz = rng.standard_normal(out.shape)
    dx, dw, _ = TBWD[d](dz, ctx)
    # the map is bilinear in (x, w): its gradients pair with directions exactly
    vw = rng.standard_normal(w.shape)
    jw = TFWD[d](x, vw, **tg, compress_rate=rate, fft_size=fs)[0]
    agree(np.vdot(dz, jw), np.vdot(dw, vw), dz, jw, dw, vw)
    vx = rng.standard_normal(x.shape)
    jx = TFWD[d](vx, w, **tg, compress_rate=rate, fft_size=fs)[0]
    agree(np.vdot(dz, jx), np.vdot(dx, vx), dz, jx, dx, vx)


# --- finite in, finite out ------------------------------------------------------------------
@SETTINGS
@given(p=problems(), policy=st.one_of(
    st.builds(lambda c: dict(compress_rate=c), st.floats(0.0, 0.99)),
    st.builds(lambda e: dict(preserve_energy=e), st.floats(0.01, 1.0))),
    decade=st.integers(-3, 3), chunk=st.booleans())
@example(p=EDGES[0], policy=dict(compress_rate=0.5), decade=0, chunk=False)
@example(p=EDGES[1], policy=dict(preserve_energy=0.5), decade=0, chunk=True)
def test_finite_inputs_give_finite_outputs_and_gradients(p, policy, decade, chunk):
    """Any rate or energy, magnitudes 1e-3 .. 1e3, whole batch or chunked: no NaN, no
    infinity, no floating-point warning (blconv's RuntimeWarnings are errors under pytest)."""
    rng, x, w, b = _data(p, scale=10.0 ** decade)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, ctx = FWD[p["d"]](x, w, b, **p["geom"], **policy, fft_size=p["fft_size"],
                             max_workspace_bytes=1 if chunk else None)
        grads = BWD[p["d"]](rng.standard_normal(y.shape).astype(p["dtype"]), ctx)
    for a in (y,) + grads:
        assert a.dtype == x.dtype and np.isfinite(a).all()


# --- the band: rate and energy ---------------------------------------------------------------
@SETTINGS
@given(p=problems(), rates=st.lists(st.floats(0.0, 0.999), min_size=2, max_size=6))
def test_effective_rate_is_monotone_in_compress_rate(p, rates):
    g, fs = p["geom"], p["fft_size"]
    bands = [blconv.band_for(p["x_shape"], p["w_shape"], padding=g["padding"],
                             dilation=g["dilation"], compress_rate=c, fft_size=fs)
             for c in [0.0] + sorted(rates)]
    assert bands[0].retained == bands[0].total and bands[0].effective_rate == 0.0
    for small, large in zip(bands, bands[1:]):
        assert all(a >= b >= 1 for a, b in zip(small.keep, large.keep))
        assert small.retained >= large.retained
        assert small.effective_rate <= large.effective_rate < 1.0
    for band in bands:                      # the counts agree with the mask they describe
        assert band.mask().sum() == band.retained and band.mask().size == band.total


def _kept_fraction(x, band):
    """Energy of the input inside the band, from a full two-sided FFT (zero-filled to the
    band's size: where the padding zeros go does not change |X|)."""
    d = x.ndim - 2
    power = np.sum(np.abs(np.fft.fftn(np.asarray(x, np.float64), s=band.fft_shape,
                                      axes=tuple(range(2, 2 + d)))) ** 2, axis=(0, 1))
    return power[two_sided_mask(band.fft_shape, band.keep)].sum() / power.sum()


def _family(fft_shape):
    """The nested bands energy mode chooses from (blconv.band.energy_keep's docstring)."""
    halves = [n // 2 + 1 for n in fft_shape]
    H = max(halves)
    return [tuple(max(1, -(-j * h // H)) for h in halves) for j in range(1, H + 1)]


@SETTINGS
@given(p=problems(), energies=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=4),
       smooth=st.integers(0, 3), decade=st.integers(-3, 3))
def test_energy_mode_keeps_the_smallest_band_holding_the_asked_energy(p, energies, smooth,
                                                                      decade):
    _, x, w, _ = _data(p, scale=10.0 ** decade)
    for _ in range(smooth):            # low-pass the noise: energy moves to low frequencies
        x = (x + np.roll(x, 1, axis=-1)) / 2
    g = p["geom"]
    tol = TOL[p["dtype"]]
    previous = None
    for e in sorted(energies):
        y, ctx = FWD[p["d"]](x, w, **g, preserve_energy=e, fft_size=p["fft_size"])
        band = ctx.band
        family = _family(band.fft_shape)
        assert band.keep in family
        assert _kept_fraction(x, band) >= e - tol
        j = family.index(band.keep)
        if j > 0:                      # the next smaller band of the family holds too little
            smaller = blconv.Band.from_keep(band.fft_shape, family[j - 1])
            assert _kept_fraction(x, smaller) < e + tol
        if previous is not None:       # more energy asked, never a smaller band
            assert band.retained >= previous
        previous = band.retained
