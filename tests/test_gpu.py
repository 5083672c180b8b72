"""CuPy against NumPy on the same random inputs (skipped without CuPy and a CUDA device).

Tolerances per dtype live here, in one place.
"""
import numpy as np
import pytest

import blconv

pytestmark = pytest.mark.gpu
TOL = {np.float32: 2e-5, np.float64: 1e-11}


def _rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("route", ["matrix", "fft"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("d, kw", [
    (1, dict(stride=2, padding=3, dilation=2, groups=2, compress_rate=0.3)),
    (1, dict(padding="same", preserve_energy=0.9)),
    (2, dict(stride=1, padding=1, compress_rate=0.5)),
    (2, dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2), groups=4, compress_rate=0.0)),
], ids=["1d-rate", "1d-energy", "2d-rate", "2d-groups"])
def test_cupy_matches_numpy(d, kw, dtype, route):
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8) + (23,) * d).astype(dtype)
    w = rng.standard_normal((8, 8 // kw.get("groups", 1)) + (3,) * d).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    fwd = blconv.conv1d_forward if d == 1 else blconv.conv2d_forward
    bwd = blconv.conv1d_backward if d == 1 else blconv.conv2d_backward
    with blconv.transform(route):
        y, ctx = fwd(x, w, b, **kw)
        yg, ctxg = fwd(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)
        assert isinstance(yg, cp.ndarray) and yg.dtype == y.dtype and ctxg.band == ctx.band
        dy = rng.standard_normal(y.shape).astype(dtype)
        grads = bwd(dy, ctx)
        grads_g = bwd(cp.asarray(dy), ctxg)
    assert _rel(cp.asnumpy(yg), y) <= TOL[dtype]
    for g, gg in zip(grads, grads_g):
        assert isinstance(gg, cp.ndarray) and gg.dtype == g.dtype
        assert _rel(cp.asnumpy(gg), g) <= TOL[dtype]
