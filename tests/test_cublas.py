"""The arguments blconv._cublas passes to cuBLAS, executed by a NumPy model of the call.

``cublasGemmStridedBatchedEx`` reads column-major matrices at ``pointer + batch *
stride`` with leading dimensions ``ld``; the model below does exactly that on a flat
NumPy buffer.  For every layout the correlation multiplies (row-major, transposed
views, padded rows, broadcast batches) the planned call must reproduce ``a @ b``.
The call itself runs on a GPU only (tests/test_gpu_parity.py).
"""
import numpy as np
import pytest

from blconv import _cublas


def _offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) \
        // base.itemsize


def _stored(flat, off, rows, cols, ld):
    """The column-major ``(rows, cols)`` matrix at ``flat[off]`` with leading dimension ld."""
    idx = off + np.arange(rows)[:, None] + ld * np.arange(cols)[None, :]
    return flat[idx]


def _model(call, base, a, b):
    """What cuBLAS computes for ``call``, reading ``a`` and ``b`` from ``base``'s memory."""
    flat = base.reshape(-1)
    out = np.empty(call.batch * call.stride_c, dtype=base.dtype)
    for i in range(call.batch):
        f0 = _offset(b, base) + i * call.stride_first
        s0 = _offset(a, base) + i * call.stride_second
        first = (_stored(flat, f0, call.m, call.k, call.ld_first) if call.op_first == 0
                 else _stored(flat, f0, call.k, call.m, call.ld_first).T)
        second = (_stored(flat, s0, call.k, call.n, call.ld_second) if call.op_second == 0
                  else _stored(flat, s0, call.n, call.k, call.ld_second).T)
        c = first @ second                                   # (m, n) column-major
        out[i * call.stride_c: i * call.stride_c + call.m * call.n] = c.T.reshape(-1)
    return out.reshape(call.batch_shape + (call.n, call.m))


def _elements(x):
    return [s // x.itemsize for s in x.strides]


def _check(base, a, b):
    call = _cublas.plan(a.shape, _elements(a), b.shape, _elements(b))
    assert call is not None
    got = _model(call, base, a, b)
    want = a @ b
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    return call


@pytest.fixture
def base():
    rng = np.random.default_rng(0)
    return rng.standard_normal(40_000) + 1j * rng.standard_normal(40_000)


def _take(base, start, shape):
    return base[start: start + int(np.prod(shape))].reshape(shape)


@pytest.mark.parametrize("m, k, n", [(3, 4, 5), (1, 4, 5), (3, 1, 5), (3, 4, 1), (1, 1, 1)])
def test_batched_row_major_operands(base, m, k, n):
    a = _take(base, 7, (6, 2, m, k))
    b = _take(base, 3000, (6, 2, k, n))
    call = _check(base, a, b)
    assert (call.op_first, call.op_second) == (0, 0) or 1 in (m, k, n)


def test_the_dft_matrix_broadcast_on_either_side(base):
    e = _take(base, 11, (5, 4))                  # (F, P): one matrix for the whole batch
    z = _take(base, 500, (3, 4, 7))
    call = _check(base, e, z)
    assert call.stride_second == 0
    x = _take(base, 900, (3, 6, 4))              # rows @ (S, 2K)
    call = _check(base, x, _take(base, 2000, (4, 9)))
    assert call.stride_first == 0


def test_a_broadcast_batch_of_ones_keeps_numpy_s_result_shape(base):
    a = _take(base, 0, (1, 1, 3, 4))
    b = _take(base, 100, (5, 4, 2))
    assert _check(base, a, b).batch_shape == (1, 5)


@pytest.mark.parametrize("side", ["a", "b", "both"])
def test_transposed_views_are_read_in_place(base, side):
    # the backward's products: matrix_transpose(x_hat) @ cdy and cdy @ matrix_transpose(w)
    a = _take(base, 5, (4, 2, 6, 3))
    b = _take(base, 1000, (4, 2, 3, 5))
    if side in ("a", "both"):
        a = np.swapaxes(_take(base, 5, (4, 2, 3, 6)), -1, -2)
    if side in ("b", "both"):
        b = np.swapaxes(_take(base, 1000, (4, 2, 5, 3)), -1, -2)
    call = _check(base, a, b)
    assert call.op_second == (side in ("a", "both"))
    assert call.op_first == (side in ("b", "both"))


def test_rows_padded_beyond_their_length(base):
    wide = _take(base, 0, (3, 5, 10))
    a = wide[..., :4]                            # ld 10 > k 4
    b = _take(base, 5000, (3, 4, 6))
    call = _check(base, a, b)
    assert call.ld_second == 10
    call = _check(base, _take(base, 0, (3, 8, 5))[:, ::2, :], _take(base, 5000, (3, 5, 6)))
    assert call.ld_second == 10


@pytest.mark.parametrize("make", [
    lambda base: (np.transpose(_take(base, 0, (2, 3, 4, 5)), (1, 0, 2, 3)),
                  _take(base, 900, (3, 2, 5, 6))),            # batch axes out of order
    lambda base: (_take(base, 0, (2, 3, 10))[:, :, ::2], _take(base, 900, (2, 5, 4))),
    lambda base: (_take(base, 0, (2, 3, 5)), _take(base, 900, (3, 5, 4))),   # 2 vs 3
])
def test_layouts_that_need_a_copy_are_declined(base, make):
    a, b = make(base)
    assert _cublas.plan(a.shape, _elements(a), b.shape, _elements(b)) is None


def test_operands_that_do_not_multiply_are_an_error():
    with pytest.raises(ValueError, match="do not multiply"):
        _cublas.plan((2, 3), (3, 1), (4, 5), (5, 1))


# --- the call itself, with stand-ins for CuPy and cuBLAS -------------------------------------
class _DeviceArray(np.ndarray):
    """A NumPy array that shows its address as CuPy's ``a.data.ptr``."""

    @property
    def data(self):
        from types import SimpleNamespace
        return SimpleNamespace(ptr=self.__array_interface__["data"][0])


def _memory(ptr, count, dtype):
    import ctypes
    size = np.dtype(dtype).itemsize
    return np.frombuffer((ctypes.c_char * (count * size)).from_address(ptr), dtype)


def _fake_cublas(calls):
    """``cublasGemmStridedBatchedEx`` computed on the host from the pointers it is given."""
    dtypes = {v: k for k, v in _cublas.DATA_TYPE.items()}

    def gemm(handle, op_a, op_b, m, n, k, alpha, a, a_type, lda, sa, b, b_type, ldb, sb,
             beta, c, c_type, ldc, sc, batch, compute, algo):
        dtype = np.dtype(dtypes[a_type])
        calls.append(dict(types=(a_type, b_type, c_type), compute=compute, algo=algo,
                          alpha=_memory(alpha, 1, dtype)[0], beta=_memory(beta, 1, dtype)[0]))

        def matrix(ptr, op, rows, cols, ld):        # op(X) of shape (rows, cols)
            r, cl = (rows, cols) if op == 0 else (cols, rows)
            flat = _memory(ptr, ld * (cl - 1) + r, dtype)
            x = flat[np.arange(r)[:, None] + ld * np.arange(cl)[None, :]]
            return x if op == 0 else x.T

        size = dtype.itemsize
        for i in range(batch):
            first = matrix(a + i * sa * size, op_a, m, k, lda)
            second = matrix(b + i * sb * size, op_b, k, n, ldb)
            out = _memory(c + i * sc * size, ldc * (n - 1) + m, dtype)
            out[np.arange(m)[:, None] + ldc * np.arange(n)[None, :]] = first @ second
        return 0
    return gemm


@pytest.fixture
def stand_ins(monkeypatch):
    import sys
    from types import ModuleType, SimpleNamespace
    cupy = ModuleType("cupy")
    cupy.empty = lambda shape, dtype: np.empty(shape, dtype).view(_DeviceArray)
    cupy.cuda = SimpleNamespace(
        get_current_stream=lambda: SimpleNamespace(ptr=0),
        Device=lambda: SimpleNamespace(id=0),
        device=SimpleNamespace(get_cublas_handle=lambda: 1))
    libs = ModuleType("cupy_backends.cuda.libs.cublas")
    libs.setStream = lambda handle, stream: None
    for name, mod in (("cupy", cupy), ("cupy_backends", ModuleType("cupy_backends")),
                      ("cupy_backends.cuda", ModuleType("cupy_backends.cuda")),
                      ("cupy_backends.cuda.libs", ModuleType("cupy_backends.cuda.libs")),
                      ("cupy_backends.cuda.libs.cublas", libs)):
        monkeypatch.setitem(sys.modules, name, mod)
    sys.modules["cupy_backends.cuda.libs"].cublas = libs
    calls = []
    monkeypatch.setattr(_cublas, "_gemm_ex", lambda: _fake_cublas(calls))
    monkeypatch.setattr(_cublas, "_HANDLES", {})
    return calls


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("tf32", [False, True])
def test_matmul_hands_cublas_the_operands_scalars_and_types(stand_ins, dtype, tf32):
    rng = np.random.default_rng(1)

    def rand(*shape):
        a = rng.standard_normal(shape) + (1j * rng.standard_normal(shape)
                                          if dtype.startswith("complex") else 0)
        return a.astype(dtype).view(_DeviceArray)

    cases = [(rand(7, 3, 4), rand(7, 4, 5)), (rand(5, 4), rand(3, 4, 6)),
             (np.swapaxes(rand(2, 3, 4, 6), -1, -2), rand(2, 3, 4, 5)),
             (rand(3, 5, 10)[..., :4], np.swapaxes(rand(3, 6, 4), -1, -2))]
    for a, b in cases:
        got = _cublas.matmul(a, b, tf32=tf32)
        want = np.asarray(a) @ np.asarray(b)
        assert got.shape == want.shape
        single = dtype in ("float32", "complex64")
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5 if single else 1e-12)
    code = _cublas.DATA_TYPE[dtype]
    double = dtype in ("float64", "complex128")
    for call in stand_ins:
        assert call["types"] == (code, code, code) and call["algo"] == -1
        assert call["alpha"] == 1 and call["beta"] == 0
        assert call["compute"] == (_cublas.COMPUTE_64F if double else
                                   _cublas.COMPUTE_32F_FAST_TF32 if tf32 else
                                   _cublas.COMPUTE_32F)


def test_matmul_declines_mixed_dtypes_and_layouts_it_cannot_read(stand_ins):
    a = np.ones((3, 4), np.float32).view(_DeviceArray)
    assert _cublas.matmul(a, np.ones((4, 2), np.float64).view(_DeviceArray)) is None
    b = np.ones((4, 10), np.float32)[:, ::2].view(_DeviceArray)       # column stride 2
    assert _cublas.matmul(a, b) is None
    assert stand_ins == []


# --- a whole correlation on CuPy's code path, every product through the cuBLAS call --------
CONV_CASES = [
    (1, (3, 4, 30), (6, 4, 5), dict(padding=2, compress_rate=0.5)),
    (1, (2, 4, 40), (6, 2, 3), dict(stride=2, groups=2, dilation=2)),
    (2, (3, 4, 9, 9), (6, 4, 3, 3), dict(padding=1, compress_rate=0.5)),
    (2, (2, 4, 10, 8), (6, 2, 3, 3), dict(stride=(2, 1), padding=(0, 2), groups=2)),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_correlation_on_cupy_s_code_path_through_direct_products(stand_ins, monkeypatch,
                                                                   case, dtype):
    # NumPy arrays taken down the CuPy branches (no NumPy-only blocks, fused transforms or
    # threads; complex views as CuPy has them), inside direct_gemm: every product of the
    # forward and backward is one planned cuBLAS call, computed by the host model above
    import blconv
    from blconv import _backend as B
    d, xs, ws, kw = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    fwd = blconv.conv1d_forward if d == 1 else blconv.conv2d_forward
    bwd = blconv.conv1d_backward if d == 1 else blconv.conv2d_backward
    y, ctx = fwd(x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    want = (y,) + bwd(dy, ctx)

    products = []
    real = _cublas.matmul

    def direct(a, b, tf32=False):
        products.append((a.shape, b.shape))
        return real(a.view(_DeviceArray), b.view(_DeviceArray), tf32=tf32)

    monkeypatch.setattr(_cublas, "matmul", direct)
    monkeypatch.setattr(B, "is_numpy", lambda xp: False)
    monkeypatch.setattr(B, "is_cupy", lambda xp: True)
    blconv.clear_caches()
    with B.direct_gemm():
        y, ctx = fwd(x, w, b, **kw)
        got = (y,) + bwd(dy, ctx)
    blconv.clear_caches()
    assert len(products) >= 8 and len(stand_ins) == len(products)   # none fell back to @
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for g, v in zip(got, want):
        assert np.linalg.norm(np.asarray(g) - v) <= tol * np.linalg.norm(v)
