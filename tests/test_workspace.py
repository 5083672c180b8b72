"""max_workspace_bytes: the batch runs piecewise with the same results, in less memory."""
import tracemalloc

import numpy as np
import pytest

import blconv
from blconv import spectral

FWD = {1: blconv.conv1d_forward, 2: blconv.conv2d_forward}
BWD = {1: blconv.conv1d_backward, 2: blconv.conv2d_backward}


@pytest.mark.parametrize("policy", [dict(compress_rate=0.4), dict(preserve_energy=0.9)],
                         ids=["rate", "energy"])
@pytest.mark.parametrize("d, kw", [(1, dict(stride=2, padding=3, groups=2)),
                                   (2, dict(stride=(1, 2), padding=1, dilation=2))],
                         ids=["1d", "2d"])
def test_chunked_equals_whole(backend, d, kw, policy, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4) + (15,) * d)
    w = rng.standard_normal((6, 4 // kw.get("groups", 1)) + (3,) * d)
    b = rng.standard_normal(6)
    a = backend.asarray
    y, ctx = FWD[d](a(x), a(w), a(b), **kw, **policy)
    dy = rng.standard_normal(tuple(y.shape))
    grads = BWD[d](a(dy), ctx)
    calls = []
    real_forward = spectral.forward
    monkeypatch.setattr(spectral, "forward",
                        lambda arr, *ar, **k: calls.append(arr.shape[0]) or real_forward(arr, *ar, **k))
    yc, ctxc = FWD[d](a(x), a(w), a(b), **kw, **policy, max_workspace_bytes=1)
    gc = BWD[d](a(dy), ctxc)
    assert ctxc.band == ctx.band
    # one sample per chunk: the backward transforms dy 7 times, the rate forward x too
    assert calls.count(1) == (2 * 7 if "compress_rate" in policy else 7)
    # equal to rounding: BLAS blocks a GEMM differently for a different number of rows
    for got, want in zip((yc,) + tuple(gc), (y,) + tuple(grads)):
        np.testing.assert_allclose(blconv.to_numpy(got), blconv.to_numpy(want), rtol=1e-12,
                                   atol=1e-12)


def test_chunking_lowers_peak_memory():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)

    def peak(**kw):
        blconv.conv2d_forward(x, w, padding=1, **kw)
        tracemalloc.start()
        y, ctx = blconv.conv2d_forward(x, w, padding=1, **kw)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p - y.nbytes - ctx.nbytes      # transient memory beyond what is returned
    assert peak(max_workspace_bytes=2**20) < 0.5 * peak()


@pytest.mark.parametrize("bad", [0, -5, 1.5, "1MB", True])
def test_bad_workspace(bad):
    with pytest.raises(ValueError, match=r"conv2d: max_workspace_bytes must be None or an int "
                                         r">= 1, got"):
        blconv.conv2d(np.ones((2, 1, 5, 5)), np.ones((1, 1, 3, 3)), max_workspace_bytes=bad)
