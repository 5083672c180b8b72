"""Extreme inputs: large images and long signals in float32, values spanning twelve orders of
magnitude, NaN and infinity, all-zero batches.  The figures are in docs/robustness.md
(``python scripts/measure_robustness.py`` prints them)."""
import warnings

import numpy as np
import pytest
import scipy.signal

import blconv
from blconv import reference

from helpers import rel

FWD = {1: blconv.conv1d_forward, 2: blconv.conv2d_forward}
BWD = {1: blconv.conv1d_backward, 2: blconv.conv2d_backward}
F32_VS_F64 = 1e-5          # float32 against float64: the documented bound (docs/robustness.md)


def _max_rel(a, b):
    return np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b))


def _f32_against_f64(d, x, w, b, **kw):
    """float32 output and gradients against float64 ones, norm-wise and elementwise."""
    y64, ctx64 = FWD[d](x, w, b, **kw)
    dy = np.random.default_rng(9).standard_normal(y64.shape)
    g64 = BWD[d](dy, ctx64)
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    y32, ctx32 = FWD[d](*f32[:3], **kw)
    g32 = BWD[d](f32[3], ctx32)
    assert ctx32.band == ctx64.band
    for got, want in zip((y32,) + g32, (y64,) + g64):
        assert got.dtype == np.float32
        assert rel(got, want) <= F32_VS_F64 and _max_rel(got, want) <= F32_VS_F64
    return y64


# --- scale ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k, rate", [(3, 0.0), (3, 0.5), (15, 0.0)],
                         ids=["3x3", "3x3-c0.5", "15x15"])
def test_float32_on_512x512_images(route, k, rate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 512, 512))
    w = rng.standard_normal((2, 2, k, k))
    b = rng.standard_normal(2)
    y64 = _f32_against_f64(2, x, w, b, padding="same", compress_rate=rate)
    if rate == 0:                  # the float64 baseline itself, against SciPy's correlation
        ref = np.stack([sum(scipy.signal.correlate(x[0, c], w[o, c], mode="same")
                            for c in range(2)) + b[o] for o in range(2)])[None]
        assert rel(y64, ref) <= 1e-12


@pytest.mark.parametrize("kw", [dict(), dict(padding="same", compress_rate=0.5)],
                         ids=["valid", "same-c0.5"])
def test_float32_on_a_million_samples_with_a_1001_tap_kernel(kw):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 10**6))
    w = rng.standard_normal((1, 1, 1001))
    y64 = _f32_against_f64(1, x, w, np.zeros(1), **kw)
    if not kw:
        assert rel(y64[0, 0], np.correlate(x[0, 0], w[0, 0], mode="valid")) <= 1e-12


# --- dynamic range --------------------------------------------------------------------------
L, K = 1024, 9


def _two_scales(rng):
    """One signal: its first half of order 1e6, its second half of order 1e-6."""
    x = rng.standard_normal((1, 1, L))
    x[..., :L // 2] *= 1e6
    x[..., L // 2:] *= 1e-6
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_small_values_next_to_large_ones_lose_relative_precision(route, dtype):
    """FFT correlation spreads rounding error of the size of the largest values over every
    output: the small half keeps ``eps * max|y|`` absolute accuracy, not relative."""
    rng = np.random.default_rng(1)
    x, w = _two_scales(rng), rng.standard_normal((1, 1, K))
    ref = reference.correlate(x, w)
    y = blconv.conv1d(x.astype(dtype), w.astype(dtype)).astype(np.float64)
    big, small = slice(0, L // 2 - K + 1), slice(L // 2, None)
    eps = np.finfo(dtype).eps
    assert rel(y[..., big], ref[..., big]) <= 100 * eps
    assert np.abs(y[..., small] - ref[..., small]).max() <= 100 * eps * np.abs(ref).max()
    # measured (docs/robustness.md): ~1e-4..1e-3 in float64; float32 loses every digit
    assert rel(y[..., small], ref[..., small]) > (1e4 * eps if dtype == np.float64 else 1.0)
    # the remedy for such data: exact spatial correlation is local
    assert rel(ref[..., small], reference.correlate(x[..., L // 2:], w)) <= 1e-15


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_magnitudes_in_separate_samples_or_groups_do_not_mix(route, dtype):
    """Samples, and channel groups, are transformed and multiplied separately: rescaling per
    sample / per channel (or splitting such data into groups) keeps full relative accuracy."""
    rng = np.random.default_rng(2)
    tol = 100 * np.finfo(dtype).eps
    x = rng.standard_normal((2, 1, L)) * np.array([1e6, 1e-6])[:, None, None]
    w = rng.standard_normal((1, 1, K))
    y, ref = blconv.conv1d(x.astype(dtype), w.astype(dtype)), reference.correlate(x, w)
    assert rel(y[0], ref[0]) <= tol and rel(y[1], ref[1]) <= tol
    x = rng.standard_normal((1, 2, L)) * np.array([1e6, 1e-6])[None, :, None]
    w = rng.standard_normal((2, 1, K))
    y = blconv.conv1d(x.astype(dtype), w.astype(dtype), groups=2)
    ref = reference.correlate(x, w, groups=2)
    assert rel(y[:, 0], ref[:, 0]) <= tol and rel(y[:, 1], ref[:, 1]) <= tol


# --- NaN and infinity -----------------------------------------------------------------------
POLICIES = {"exact": dict(), "rate": dict(compress_rate=0.5), "energy": dict(preserve_energy=0.9)}


def _poisoned(d, bad, seed=0):
    """Two samples, 4 -> 6 channels in 2 groups; one non-finite value in sample 0, channel 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4) + (12,) * d)
    w = rng.standard_normal((6, 2) + (3,) * d)
    b = rng.standard_normal(6)
    x[(0, 0) + (5,) * d] = bad
    return rng, x, w, b


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("d", [1, 2])
def test_non_finite_input_reaches_its_whole_sample_and_group_only(route, d, bad, policy):
    rng, x, w, b = _poisoned(d, bad)
    with warnings.catch_warnings():
        # NaN passes silently; NumPy reports inf * 0 as "invalid value encountered"
        warnings.simplefilter("error" if np.isnan(bad) else "ignore", RuntimeWarning)
        y, ctx = FWD[d](x, w, b, padding=1, groups=2, **POLICIES[policy])
        dx, dw, db = BWD[d](rng.standard_normal(y.shape), ctx)
    # every output of sample 0 in group 0 (channels 0-2), not only the neighbours; NaN, as
    # inf - inf and inf * 0 arise in the transforms
    assert np.isnan(y[0, :3]).all()
    assert np.isfinite(y[0, 3:]).all() and np.isfinite(y[1]).all()
    if policy != "energy":         # the band depends on the shapes only: sample 1 is untouched
        alone = FWD[d](x[1:], w, b, padding=1, groups=2, **POLICIES[policy])[0]
        np.testing.assert_allclose(y[1:], alone, rtol=1e-12, atol=1e-12)
    # dx depends on w and dy only; dw[o, c] correlates input channel c with dy[:, o], summed
    # over the batch: the taps of group 0's filters on input channel 0 are lost, no others
    assert np.isfinite(dx).all() and np.isfinite(db).all()
    assert np.isnan(dw[:3, 0]).all()
    assert np.isfinite(dw[:3, 1]).all() and np.isfinite(dw[3:]).all()


@pytest.mark.parametrize("d", [1, 2])
def test_non_finite_output_gradient_reaches_its_sample_and_group_only(route, d):
    rng, x, w, b = _poisoned(d, 0.0)
    y, ctx = FWD[d](x, w, b, padding=1, groups=2, compress_rate=0.3)
    dy = rng.standard_normal(y.shape)
    dy[(1, 4) + (2,) * d] = np.nan                      # sample 1, output channel 4: group 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        dx, dw, db = BWD[d](dy, ctx)
    # dx of sample 1 in group 1's input channels; dw of output channel 4, every tap
    assert np.isnan(dx[1, 2:]).all() and np.isfinite(dx[1, :2]).all()
    assert np.isfinite(dx[0]).all()
    assert np.isnan(dw[4]).all() and np.isfinite(np.delete(dw, 4, axis=0)).all()
    assert np.isnan(db[4]) and np.isfinite(np.delete(db, 4)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_energy_band_with_a_non_finite_sample_keeps_what_the_finite_ones_need(bad):
    _, x, w, b = _poisoned(1, bad)
    need = blconv.conv1d_forward(x[1:], w, b, padding=1, groups=2, preserve_energy=0.9)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, ctx = blconv.conv1d_forward(x, w, b, padding=1, groups=2, preserve_energy=0.9)
    assert ctx.band.retained >= need.band.retained


@pytest.mark.parametrize("scale", [1e-25, 1e20])
def test_energy_band_in_float32_does_not_depend_on_the_scale(scale):
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((2, 2, 64)), axis=-1)          # a low-pass signal
    w = rng.standard_normal((2, 2, 3)).astype(np.float32)
    _, ctx = blconv.conv1d_forward(x.astype(np.float32), w, preserve_energy=0.9)
    _, scaled = blconv.conv1d_forward((scale * x).astype(np.float32), w, preserve_energy=0.9)
    assert scaled.band == ctx.band


# --- all zeros ------------------------------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_all_zero_batch_in_energy_mode_keeps_the_smallest_band(route, d, dtype, chunked):
    x = np.zeros((3, 2) + (10,) * d, dtype)
    w = np.ones((4, 2) + (3,) * d, dtype)
    b = np.arange(4, dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y, ctx = FWD[d](x, w, b, padding=1, preserve_energy=0.5,
                        max_workspace_bytes=1 if chunked else None)
        dx, dw, db = BWD[d](np.ones_like(y), ctx)
    assert ctx.band.keep == (1,) * d
    np.testing.assert_array_equal(y, np.broadcast_to(b.reshape((4,) + (1,) * d), y.shape))
    assert not np.any(dw) and np.isfinite(dx).all() and dx.dtype == dtype
