"""FFT sizes and bands for shapes worked out by hand."""
import contextlib
import math

import numpy as np
import pytest

import blconv
from blconv.band import Band, energy_keep

from helpers import two_sided_mask


@pytest.mark.parametrize("n, expected", [(1, 1), (7, 8), (11, 12), (34, 36), (97, 100),
                                         (157, 160), (1001, 1024)])
def test_next_fast_len(n, expected):
    assert blconv.next_fast_len(n) == expected


@pytest.mark.parametrize("x_shape, w_shape, kw, fft_shape, keep, retained, total", [
    # 32x32, pad 1, k 3 -> smallest exact size max(32 + 1, 3, 32) = 33 (P = 34), a
    # matrix-route axis: n = 33; half 17; floor(17 * sqrt(0.5)) = 12 -> 23 rows x 12 cols
    ((32, 64, 32, 32), (64, 64, 3, 3), dict(padding=1, compress_rate=0.5),
     (33, 33), (12, 12), 23 * 12, 33 * 17),
    ((1, 1, 32, 32), (1, 1, 3, 3), dict(padding=1), (33, 33), (17, 17), 33 * 17, 33 * 17),
    # 1D 'same', k 8: pads 3 and 4 -> max(150 + 4, 8, 150) = 154 (P = 157); half 78
    ((1, 1, 150), (1, 1, 8), dict(padding="same"), (154,), (78,), 78, 78),
    # an FFT-route axis (> 256): L = 427, k = 5 'same' -> 429 -> 5-smooth 432; half 217
    ((1, 1, 427), (1, 1, 5), dict(padding="same", compress_rate=0.5), (432,), (108,), 108, 217),
    # 1D: L = 10 -> n = 10, half 6, c = 0.5 -> 3 of 6
    ((1, 1, 10), (1, 1, 1), dict(compress_rate=0.5), (10,), (3,), 3, 6),
    # n = (8, 9) explicitly, c = 0.75: halves 5 and 5, scale 0.5 -> k = (2, 2): 3 rows x 2 cols
    ((1, 1, 8, 9), (1, 1, 1, 1), dict(compress_rate=0.75, fft_size=(8, 9)), (8, 9), (2, 2), 6, 40),
    # odd n = 9 fully kept: 2k - 1 = 9 rows
    ((1, 1, 9, 4), (1, 1, 1, 1), dict(), (9, 4), (5, 3), 27, 27),
    # pow2, 2D: P = 34, out1 = 32 -> next_pow2(34 + 32 - 1) = 128
    ((1, 1, 32, 32), (1, 1, 3, 3), dict(padding=1, fft_size="pow2"), (128, 128), (65, 65),
     128 * 65, 128 * 65),
    # pow2, 1D 'same' k = 8: P = 157, out1 = 150 -> next_pow2(157 + 2 * 149) = 512
    ((1, 1, 150), (1, 1, 8), dict(padding="same", fft_size="pow2"), (512,), (257,), 257, 257),
    # the "fast" threshold: 256 is kept exactly (half 129, floor(129 * 0.75) = 96) ...
    ((1, 1, 256), (1, 1, 1), dict(compress_rate=0.25), (256,), (96,), 96, 129),
    # ... 257 is rounded up: 258..269 all have a prime factor > 5, 270 = 2 * 3^3 * 5;
    # half 136, floor(136 * 0.25) = 34
    ((1, 1, 257), (1, 1, 1), dict(compress_rate=0.75), (270,), (34,), 34, 136),
    # dilation 2, k 3 -> k_eff 5, no padding: max(20, 5, 16) = 20 and max(30, 5, 26) = 30;
    # halves 11 and 16, scale sqrt(0.5): floor(7.78) = 7, floor(11.31) = 11 -> 13 x 11
    ((2, 3, 20, 30), (4, 3, 3, 3), dict(dilation=2, compress_rate=0.5), (20, 30), (7, 11),
     13 * 11, 20 * 16),
], ids=["resnet-c0.5", "full", "same-1d", "fft-axis-c0.5", "1d-c0.5", "explicit-c0.75",
        "odd-full", "pow2-2d", "pow2-1d", "fast-256", "fast-257", "dilated-2d"])
@pytest.mark.parametrize("setting", [
    None, ("matrix", 256), ("fft", 256), ("auto", 1), ("auto", 64), ("auto", 100_000)],
    ids=["default", "matrix", "fft", "auto-1", "auto-64", "auto-100000"])
def test_band_for_known_shapes(x_shape, w_shape, kw, fft_shape, keep, retained, total,
                               setting):
    """The band is a function of the call's arguments: no route or threshold changes it."""
    route = (contextlib.nullcontext() if setting is None
             else blconv.transform(setting[0], matrix_max_n=setting[1]))
    with route:
        band = blconv.band_for(x_shape, w_shape, **kw)
    assert band.fft_shape == fft_shape
    assert band.keep == keep
    assert (band.retained, band.total) == (retained, total)
    assert math.isclose(band.effective_rate, 1 - retained / total)


def test_mask_matches_two_sided_definition():
    band = Band.from_keep((8, 10), (3, 4))
    full = two_sided_mask((8, 10), (3, 4))
    np.testing.assert_array_equal(band.mask(), full[:, :6])
    assert band.mask().sum() == band.retained


@pytest.mark.parametrize("fft_shape", [(12,), (7, 9), (16, 10)])
def test_effective_rate_monotone_in_compress_rate(fft_shape):
    x_shape = (1, 1) + fft_shape
    w_shape = (1, 1) + (1,) * len(fft_shape)
    rates = [blconv.band_for(x_shape, w_shape, compress_rate=c).effective_rate
             for c in np.linspace(0, 0.99, 60)]
    assert all(b >= a for a, b in zip(rates, rates[1:]))


def test_energy_keep_nested_family():
    # energy at a single position: the band must grow until it covers it, and no further
    n = (16, 16)
    for u, v in [(0, 0), (3, 1), (15, 2), (8, 8)]:
        e = np.zeros((16, 9))
        e[u, v] = 1.0
        keep = energy_keep(e, n, 1.0)
        assert keep == (9, 9)                                  # E = 1: the full band
        keep = energy_keep(e, n, 0.5)
        assert (min(u, 16 - u) < keep[0]) and (v < keep[1])
        j = max(keep[0], keep[1]) - 1                          # one step smaller misses it
        if j >= 1:
            smaller = (max(1, j), max(1, j))
            assert not ((min(u, 16 - u) < smaller[0]) and (v < smaller[1]))


def test_energy_keep_all_zero_is_smallest_band():
    assert energy_keep(np.zeros((10, 6)), (10, 10), 0.9) == (1, 1)
