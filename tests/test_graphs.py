"""CUDA graphs (blconv._graphs): what a graph replays is what the call asked for.

On the CPU a stand-in for CuPy's capture keeps the function of the first call of a
signature and, at every call, runs *that* function on its own input buffers, as a
replayed graph runs the first call's kernels.  A signature that left out anything the
operations depend on (rate, padding, stride, groups, bias, dtype) would replay a stale
function and give a wrong answer, which the tests compare, to rounding, against the
call without graphs.  The GPU tests at the end run the real capture.
"""
import warnings

import numpy as np
import pytest

import blconv
from blconv import _graphs


class FakeGraphs:
    """Capture and replay with NumPy: the captured function runs again at every replay
    on the graph's input buffers, writing into its output buffers."""

    def __init__(self, fail=None):
        self.fail, self.captures = fail, 0

    def where(self):
        return ("cpu", 0)

    def capturing(self):
        return False

    def buffers(self, arrays):
        return tuple(None if a is None else a.copy() for a in arrays)

    def capture(self, fn, inputs):
        self.captures += 1
        if self.fail is not None:
            raise self.fail
        return _graphs._Entry(fn, inputs, None, sum(a.nbytes for a in inputs if a is not None))

    def replay(self, entry, arrays):
        for buf, a in zip(entry.inputs, arrays):
            if buf is not None:
                buf[...] = a
        out = entry.graph(*entry.inputs)
        if entry.outputs is None:
            entry.outputs = tuple(None if o is None else np.empty_like(o) for o in out)
        for buf, o in zip(entry.outputs, out):
            if buf is not None:
                buf[...] = o
        return tuple(None if o is None else o.copy() for o in entry.outputs)


@pytest.fixture
def fake(monkeypatch):
    backend = FakeGraphs()
    monkeypatch.setattr(_graphs, "_graphs_for", lambda xp: backend)
    blconv.clear_caches()
    yield backend
    blconv.clear_caches()


CALLS = [  # (d, x shape, w shape, keyword arguments, with a bias)
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, compress_rate=0.5), True),
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1), True),                   # the rate
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, compress_rate=0.5), False),  # bias
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=2, compress_rate=0.5), True),   # padding
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, stride=2, compress_rate=0.5), True),
    (2, (3, 4, 9, 9), (6, 2, 3, 3), dict(padding=1, groups=2, compress_rate=0.5), True),
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, dilation=2, compress_rate=0.5), True),
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, compress_rate=0.5, fft_size=12), True),
    (2, (5, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, compress_rate=0.5), True),   # batch
    (1, (3, 4, 30), (6, 4, 5), dict(padding=2, compress_rate=0.25), True),
]


def _run(d, x, w, b, kw, dy=None):
    fwd = blconv.conv1d_forward if d == 1 else blconv.conv2d_forward
    bwd = blconv.conv1d_backward if d == 1 else blconv.conv2d_backward
    y, ctx = fwd(x, w, b, **kw)
    dy = np.ones_like(y) if dy is None else dy
    return (y, ctx.x_hat) + tuple(g for g in bwd(dy, ctx) if g is not None)


def _close(got, want, what=""):
    """Equal to rounding, norm-wise.  The replay runs the first call's operations on the
    graph's own buffers: BLAS may round differently at other addresses on some machines,
    never by more than a few units in the last place of these short sums (inner sizes up
    to 81); a replay with stale parameters is wrong in every digit."""
    for g, v in zip(got, want):
        g, v = np.asarray(g, np.complex128), np.asarray(v, np.complex128)
        tol = 1e-12 if np.asarray(want[0]).dtype == np.float64 else 1e-5
        assert g.shape == v.shape, what
        assert np.linalg.norm(g - v) <= tol * np.linalg.norm(v), what


def _inputs(d, xs, ws, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w = (rng.standard_normal(s).astype(dtype) for s in (xs, ws))
    return x, w, (rng.standard_normal(ws[0]).astype(dtype) if bias else None)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_call_replays_its_own_graph(fake, dtype):
    # each signature twice with new values (capture, then replay), interleaved with the others
    for rnd in range(3):
        for i, (d, xs, ws, kw, bias) in enumerate(CALLS):
            x, w, b = _inputs(d, xs, ws, bias, dtype, seed=10 * rnd + i)
            with blconv.cuda_graphs(True):
                got = _run(d, x, w, b, kw)
            want = _run(d, x, w, b, kw)
            assert len(got) == len(want)
            _close(got, want, f"call {i}, round {rnd}")
    # a forward and a backward for each call that takes the per-frequency route (on NumPy
    # the 1D call takes the taps route), each replayed in the second and third rounds
    entries = _graphs._CACHE.values()
    assert fake.captures == len(entries) == 2 * (len(CALLS) - 1)
    assert all(e.replays == 2 for e in entries)


def test_the_settings_are_part_of_the_signature(fake):
    # another Settings object gets its own graph: here the same (matrix) route, named
    # explicitly; the FFT route is not captured at all (see the test below)
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _inputs(d, xs, ws, bias, np.float64, 0)
    with blconv.cuda_graphs(True):
        _run(d, x, w, b, kw)
        assert fake.captures == 2
        with blconv.transform("matrix"):
            got = _run(d, x, w, b, kw)
        assert fake.captures == 4
    with blconv.transform("matrix"):
        want = _run(d, x, w, b, kw)
    _close(got, want)


def test_results_are_not_the_graph_s_buffers(fake):
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _inputs(d, xs, ws, bias, np.float64, 1)
    with blconv.cuda_graphs(True):
        _run(d, x, w, b, kw)
        first = _run(d, x, w, b, kw)
        kept = [a.copy() for a in first]
        for a in first:
            a[...] = 0                                   # the caller owns what it got
        second = _run(d, x, w, b, kw)
    _close(second, kept)


def test_calls_off_the_graph_route_run_as_they_are(fake):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 9, 9))
    w = rng.standard_normal((6, 4, 3, 3))
    with blconv.cuda_graphs(True):
        blconv.conv2d_forward(x, w, padding=1, preserve_energy=0.9)       # a data-chosen band
        blconv.conv2d_forward(x, w, padding=1, compress_rate=0.5,
                              max_workspace_bytes=1)                        # batch chunks
        with blconv.transform("fft"):
            blconv.conv2d_forward(x, w, padding=1, compress_rate=0.5)       # the FFT route
        blconv.conv2d_forward(x, w[:, :, :1, :1], compress_rate=0.5)       # 1x1 filters
    assert fake.captures == 0 and len(_graphs._CACHE) == 0


def test_graphs_are_off_by_default_and_never_used_on_numpy(monkeypatch):
    blconv.clear_caches()
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _inputs(d, xs, ws, bias, np.float64, 3)
    _run(d, x, w, b, kw)
    assert blconv.settings.current().cuda_graphs is False
    with blconv.cuda_graphs(True):
        _run(d, x, w, b, kw)                             # the real backend: NumPy has none
    assert len(_graphs._CACHE) == 0


def test_a_failed_capture_warns_once_and_runs_without_the_graph(monkeypatch):
    backend = FakeGraphs(fail=NotImplementedError("cuBLAS refused during capture"))
    monkeypatch.setattr(_graphs, "_graphs_for", lambda xp: backend)
    monkeypatch.setattr(_graphs, "_WARNED", [False])
    blconv.clear_caches()
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _inputs(d, xs, ws, bias, np.float64, 4)
    want = _run(d, x, w, b, kw)
    with blconv.cuda_graphs(True):
        with pytest.warns(RuntimeWarning, match="cuBLAS refused during capture"):
            got = _run(d, x, w, b, kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # once per process, not per call
            again = _run(d, x, w, b, kw)
    _close(got, want)
    _close(again, want)
    assert backend.captures == 2                         # the forward and the backward, once
    blconv.clear_caches()


def test_the_cache_keeps_the_most_recent_graphs_within_its_bytes():
    from blconv._cache import ByteCache
    cache = ByteCache(100)
    for i in range(5):
        assert cache.put(i, f"graph {i}", 40)
    assert len(cache) == 2 and cache.nbytes == 80
    assert cache.get(0) is None and cache.get(4) == "graph 4"
    cache.get(3)
    cache.put(5, "graph 5", 40)                          # 4 was used least recently
    assert cache.get(4) is None and cache.get(3) == "graph 3"
    cache.put(3, "graph 3 again", 10)                    # a key replaced, its bytes too
    assert cache.nbytes == 50 and cache.get(3) == "graph 3 again"
    assert not cache.put(6, "too large", 101) and cache.get(6) is None
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_a_graph_larger_than_the_cache_runs_without_graphs_from_then_on(fake, monkeypatch):
    from blconv._cache import ByteCache
    monkeypatch.setattr(_graphs, "_CACHE", ByteCache(1))
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _inputs(d, xs, ws, bias, np.float64, 5)
    want = _run(d, x, w, b, kw)
    with blconv.cuda_graphs(True):
        for _ in range(2):
            _close(_run(d, x, w, b, kw), want)
    assert fake.captures == 2                            # once each, not at every call
    assert _graphs._CACHE.values() == [_graphs._FAILED] * 2


def test_the_setting_takes_a_bool():
    with pytest.raises(TypeError, match="cuda_graphs: enabled must be True or False, got 1"):
        blconv.cuda_graphs(1)
    with pytest.raises(TypeError, match="set_cuda_graphs"):
        blconv.set_cuda_graphs("yes")


# --- on a GPU: the real capture ------------------------------------------------------------
@pytest.fixture
def cp():
    return pytest.importorskip("cupy")


def _gpu_inputs(cp, d, xs, ws, bias, dtype, seed):
    return tuple(None if a is None else cp.asarray(a)
                 for a in _inputs(d, xs, ws, bias, dtype, seed))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_replays_match_the_captured_call_bit_for_bit(cp, dtype):
    # the graphs of a stream share their intermediates: replays of every signature,
    # interleaved after all were captured, must still give each its own first result
    blconv.clear_caches()
    inputs = [_gpu_inputs(cp, d, xs, ws, bias, dtype, i)
              for i, (d, xs, ws, kw, bias) in enumerate(CALLS)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)            # a failed capture fails here
        with blconv.cuda_graphs(True):
            first = [_run(c[0], *a, c[3]) for c, a in zip(CALLS, inputs)]     # captured
            replays = [[_run(c[0], *a, c[3]) for c, a in zip(CALLS, inputs)]
                       for _ in range(2)]
    tol = 2e-5 if dtype == np.float32 else 1e-11
    for i, (c, a) in enumerate(zip(CALLS, inputs)):
        for rep in replays:
            for f, r in zip(first[i], rep[i]):
                np.testing.assert_array_equal(cp.asnumpy(f), cp.asnumpy(r))
        eager = _run(c[0], *a, c[3])                              # cuBLAS directly vs matmul
        for f, e in zip(first[i], eager):
            f, e = cp.asnumpy(f).astype(np.complex128), cp.asnumpy(e).astype(np.complex128)
            assert np.linalg.norm(f - e) <= tol * np.linalg.norm(e)
    entries = [v for v in _graphs._CACHE.values() if v is not _graphs._FAILED]
    assert len(entries) == 2 * len(CALLS) and all(e.replays == 2 for e in entries)
    blconv.clear_caches()


@pytest.mark.gpu
def test_gpu_replays_on_another_stream_get_their_own_graph(cp):
    blconv.clear_caches()
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _gpu_inputs(cp, d, xs, ws, bias, np.float32, 7)
    with blconv.cuda_graphs(True):
        want = _run(d, x, w, b, kw)
        stream = cp.cuda.Stream(non_blocking=True)
        with stream:
            got = _run(d, x, w, b, kw)
            got = _run(d, x, w, b, kw)
        stream.synchronize()
    _close([cp.asnumpy(g) for g in got], [cp.asnumpy(v) for v in want])   # another graph
    assert len(_graphs._CACHE) == 4
    blconv.clear_caches()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_gpu_direct_cublas_products_equal_matmul(cp, dtype):
    from blconv import _cublas
    rng = np.random.default_rng(8)

    def rand(*shape):
        a = rng.standard_normal(shape) + (1j * rng.standard_normal(shape)
                                          if dtype.startswith("complex") else 0)
        return cp.asarray(a.astype(dtype))

    cases = [(rand(7, 3, 4), rand(7, 4, 5)), (rand(5, 4), rand(3, 4, 6)),
             (rand(3, 6, 4), rand(4, 9)), (cp.swapaxes(rand(2, 3, 4, 6), -1, -2), rand(2, 3, 4, 5)),
             (rand(2, 3, 6, 4), cp.swapaxes(rand(2, 3, 5, 4), -1, -2)),
             (rand(3, 5, 10)[..., :4], rand(3, 4, 6))]
    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    for a, b in cases:
        got = _cublas.matmul(a, b)
        assert got is not None
        want = cp.matmul(a, b)
        assert got.shape == want.shape
        assert float(cp.linalg.norm(got - want)) <= tol * float(cp.linalg.norm(want))


@pytest.mark.gpu
def test_gpu_a_replay_allocates_only_its_outputs(cp):
    # everything else of the call lives in the graph's own pool: one launch, no transients
    from cupy.cuda import memory_hook

    class Count(memory_hook.MemoryHook):
        name = "BlconvReplayCount"

        def __init__(self):
            self.sizes = []

        def malloc_postprocess(self, **kw):
            self.sizes.append(kw["mem_size"])

    blconv.clear_caches()
    d, xs, ws, kw, bias = CALLS[0]
    x, w, b = _gpu_inputs(cp, d, xs, ws, bias, np.float32, 9)
    with blconv.cuda_graphs(True):
        y, ctx = blconv.conv2d_forward(x, w, b, **kw)              # captured
        dy = cp.ones_like(y)
        blconv.conv2d_backward(dy, ctx)
        hook = Count()
        with hook:
            y, ctx = blconv.conv2d_forward(x, w, b, **kw)
            grads = blconv.conv2d_backward(dy, ctx)
    assert len(hook.sizes) == 2 + 3, hook.sizes                     # y, x_hat; dx, dw, db
    assert all(isinstance(g, cp.ndarray) for g in grads)
    blconv.clear_caches()


@pytest.mark.gpu
def test_gpu_tf32_errors_against_float64_follow_tf32_s_roundoff(cp):
    # TF32 keeps 10 mantissa bits (unit roundoff u = 2**-11).  A forward chains five
    # products (two transforms, the channel product, two inverse transforms) with inner
    # sizes up to 32 (spatial) and 16 (channels); norm-wise errors grow like sqrt(k) u
    # per product: at most about (4 sqrt(32) + sqrt(16)) u = 0.013.  float32 alone is
    # 2**13 times finer, so TF32's error must also be well above float32's.
    rng = np.random.default_rng(12)
    x = rng.standard_normal((8, 16, 32, 32))
    w = rng.standard_normal((16, 16, 3, 3)) / 12
    y64, ctx = blconv.conv2d_forward(x, w, padding=1, compress_rate=0.5)
    dy = rng.standard_normal(y64.shape)
    want = (y64,) + blconv.conv2d_backward(dy, ctx)[:2]
    errs = {}
    for tf32 in (False, True):
        xs, ws, dys = (cp.asarray(a.astype(np.float32)) for a in (x, w, dy))
        with blconv.tf32(tf32):
            y, c = blconv.conv2d_forward(xs, ws, padding=1, compress_rate=0.5)
            got = (y,) + blconv.conv2d_backward(dys, c)[:2]
        errs[tf32] = [np.linalg.norm(cp.asnumpy(g) - v) / np.linalg.norm(v)
                      for g, v in zip(got, want)]
    assert max(errs[False]) <= 2e-5, errs
    assert max(errs[True]) <= 0.013, errs
    assert min(errs[True]) >= 10 * max(errs[False]), errs           # TF32 is in effect
