"""The filter transforms of :mod:`blconv.spectral` against independent full-size FFTs.

``filter_forward`` and ``filter_inverse`` take filters to and from their retained
spectrum through one small DFT-matrix GEMM (or, past ``FILTER_MATRIX_MAX``, through
the input's transform).  Here both are checked against float64 ``numpy.fft`` on the
filter placed, by hand, at its positions in a zero array of the FFT size.
"""
import numpy as np
import pytest

from blconv import _backend, spectral
from blconv.band import Band
from blconv.settings import Settings

OPTS = Settings()                      # the defaults: the route does not change results

CASES = [  # fft shape, kept, filter size, start (= -pad), step (= dilation), groups
    ((20,), (7,), (3,), (-1,), (1,), 1),
    ((432,), (109,), (5,), (-2,), (1,), 2),
    ((10, 12), (6, 4), (3, 3), (-1, -2), (2, 1), 2),
    ((34, 34), (34, 18), (3, 3), (-1, -1), (1, 1), 1),
    ((9, 16), (5, 9), (2, 4), (0, -3), (3, 2), 3),
]


def _placed(w, n, start, step):
    """``w`` (..., *k) scattered at positions ``start + step * i`` (mod n) of zeros."""
    out = np.zeros(w.shape[:-len(n)] + tuple(n))
    idx = np.ix_(*[(s + st * np.arange(k)) % m for s, st, k, m in
                   zip(start, step, w.shape[-len(n):], n)])
    np.add.at(out, (...,) + idx, w)
    return out


def _retained(full, band):
    """The band's coefficients of a one-sided spectrum (..., *n[:-1], n[-1]//2+1), F-major."""
    idx = np.ix_(*[band.indices(a) for a in range(len(band.fft_shape))])
    kept = full[(...,) + idx]
    return np.moveaxis(kept.reshape(kept.shape[:-len(band.fft_shape)] + (-1,)), -1, 0)


@pytest.fixture(params=["matrix", "transform"])
def branch(request, monkeypatch):
    if request.param == "transform":
        monkeypatch.setattr(spectral, "FILTER_MATRIX_MAX", 0)
    return request.param


@pytest.mark.parametrize("n, keep, k, start, step, groups", CASES)
def test_filter_forward_is_the_conjugated_band_of_the_padded_filter(branch, n, keep, k, start,
                                                                    step, groups):
    rng = np.random.default_rng(0)
    o, cg = 2 * groups, 3
    w = rng.standard_normal((o, cg) + k)
    band = Band.from_keep(n, keep)
    got = spectral.filter_forward(w, band, start=start, step=step, groups=groups, xp=np, opts=OPTS)
    spec = _retained(np.fft.rfftn(_placed(w, n, start, step), axes=range(2, 2 + len(n))),
                     band)                                                  # (F, O, C/G)
    want = np.conj(spec).reshape(band.retained, groups, o // groups, cg).transpose(0, 1, 3, 2)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


@pytest.mark.parametrize("n, keep, k, start, step, groups", CASES)
def test_filter_inverse_reads_the_real_inverse_at_the_filter_positions(branch, n, keep, k,
                                                                       start, step, groups):
    rng = np.random.default_rng(1)
    o, cg = 2 * groups, 3
    band = Band.from_keep(n, keep)
    f = band.retained
    z = rng.standard_normal((f, groups, cg, o // groups)) \
        + 1j * rng.standard_normal((f, groups, cg, o // groups))
    got = spectral.filter_inverse(z, band, start=start, step=step, count=k, xp=np, opts=OPTS)
    # zero-filled one-sided spectrum, irfftn, then read at the positions
    spec = np.zeros((o, cg) + tuple(n[:-1]) + (n[-1] // 2 + 1,), complex)
    idx = np.ix_(*[band.indices(a) for a in range(len(n))])
    zz = z.transpose(1, 3, 2, 0).reshape((o, cg) + tuple(len(i) for i in
                                                         (band.indices(a) for a in range(len(n)))))
    spec[(...,) + idx] = zz
    full = np.fft.irfftn(spec, s=n, axes=range(2, 2 + len(n)))
    pos = np.ix_(*[(s + st * np.arange(c)) % m for s, st, c, m in zip(start, step, k, n)])
    want = full[(...,) + pos]
    assert got.shape == want.shape == (o, cg) + k
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


def test_filters_are_never_padded_to_the_fft_size(monkeypatch):
    """Within the matrix bound no FFT runs on the filters, whatever the axis length."""
    def refuse(*a, **kw):
        raise AssertionError("FFT called on a filter")
    for name in ("rfft", "irfft", "fft", "ifft"):
        monkeypatch.setattr(_backend, name, refuse)
    band = Band.from_keep((4096,), (1025,))
    w = np.ones((4, 2, 7), np.float32)
    z = spectral.filter_forward(w, band, start=(-3,), step=(1,), groups=1, xp=np, opts=OPTS)
    assert z.dtype == np.complex64 and z.shape == (1025, 1, 2, 4)
    assert spectral.filter_inverse(z, band, start=(-3,), step=(1,), count=(7,),
                                   xp=np, opts=OPTS).shape == (4, 2, 7)


@pytest.mark.parametrize("shape, src, dst, perm", [
    ((5, 3, 4, 6), 0, 2, (2, 3, 0, 1)),     # forward 2D: (B1, B2, S1, K) -> (S1, K, B1, B2)
    ((4, 6, 5, 3), 2, 0, (2, 3, 0, 1)),     # inverse 2D: (S1, K, B1, B2) -> (B1, B2, S1, K)
    ((5, 3, 7), 0, 1, (2, 0, 1)),           # forward 1D
    ((7, 5, 3), 1, 0, (1, 2, 0)),           # inverse 1D
])
@pytest.mark.parametrize("slab", [1, 64, 1 << 30])   # bytes: one index per slab, some, all
def test_slab_copies_equal_the_transpose(monkeypatch, shape, src, dst, perm, slab):
    monkeypatch.setattr(spectral, "_SLAB_BYTES", slab)
    a = np.random.default_rng(2).standard_normal(shape).astype(np.complex64)
    got = spectral._moved(a, src, dst, perm, xp=np)
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.transpose(a, perm))


def test_matrix_cache_is_bounded_in_bytes_and_can_be_cleared(monkeypatch):
    import blconv
    from blconv._cache import ByteCache
    one = 6 * 10 * 8                                   # a (F=6, P=10) complex64 matrix
    cache = ByteCache(2 * one + one // 2)
    monkeypatch.setattr(spectral, "_MATRICES", cache)
    w = np.ones((1, 1, 10), np.float32)
    for n in range(10, 16):                            # six distinct such matrices
        band = Band.from_keep((n,), (6,))
        spectral.filter_forward(w, band, start=(0,), step=(1,), groups=1, xp=np, opts=OPTS)
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert sorted(k[0] for k in cache._items) == [(14,), (15,)]   # the most recent two
    blconv.clear_caches()
    assert len(cache) == 0 and cache.nbytes == 0


def test_clear_caches_keeps_results():
    import blconv
    x = np.random.default_rng(0).standard_normal((2, 3, 20))
    w = np.random.default_rng(1).standard_normal((4, 3, 5))
    before = blconv.conv1d(x, w, padding=2, compress_rate=0.5)
    blconv.clear_caches()
    assert len(spectral._MATRICES) == 0
    np.testing.assert_array_equal(blconv.conv1d(x, w, padding=2, compress_rate=0.5), before)


@pytest.mark.parametrize("n, block, nthreads", [(0, 3, 2), (1, 3, 2), (10, 3, 1), (10, 3, 2),
                                                (10, 3, 8), (10, 20, 4), (12, 1, 5)])
def test_thread_split_covers_the_range_once_in_whole_blocks(n, block, nthreads):
    from blconv import _threads
    runs = _threads.parallel(lambda i0, i1: (i0, i1), n, nthreads, block)
    assert runs[0][0] == 0 and runs[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
    assert all(i0 % block == 0 for i0, _ in runs) and len(runs) <= max(1, nthreads)


def test_own_threads_only_over_a_one_thread_blas():
    from threadpoolctl import threadpool_limits
    from blconv import _threads
    from blconv.settings import Settings
    with threadpool_limits(1):
        assert _threads.count(Settings(fft_workers=3), xp=np) == 3
        assert _threads.count(Settings(fft_workers=1), xp=np) == 1
    with threadpool_limits(2):
        if _threads.blas_threads() < 2:
            pytest.skip("this BLAS runs one thread at most")
        assert _threads.count(Settings(fft_workers=3), xp=np) == 1
