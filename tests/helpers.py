"""Independent float64 computations used as test oracles (not the code under test), and the
small models and array comparisons of the training and checkpoint tests."""
import numpy as np

import blconv


def randn(*shape, seed=0, dtype=np.float64):
    """Seeded standard normal values of ``shape``, as ``dtype``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def numgrad(f, a, idx=None, eps=1e-6):
    """d f / d a by central differences, perturbing ``a`` (a float64 NumPy array) in place
    and restoring it: the whole gradient, or its entry ``idx`` alone."""
    def one(i):
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        return (fp - fm) / (2 * eps)
    if idx is not None:
        return one(idx)
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        g[i] = one(i)
    return g


def rel(a, b):
    a, b = np.asarray(blconv.to_numpy(a), dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(b)
    return np.linalg.norm(a - b) / (den if den > 0 else 1.0)


def two_sided_mask(fft_shape, keep):
    """|u_a| < k_a on every axis of the full two-sided grid (signed frequency)."""
    m = np.ones(fft_shape, dtype=bool)
    for a, (n, k) in enumerate(zip(fft_shape, keep)):
        u = np.arange(n)
        u = np.minimum(u, n - u)
        shape = [1] * len(fft_shape)
        shape[a] = -1
        m &= (u < k).reshape(shape)
    return m


def masked_correlation(x, w, *, fft_shape, keep, stride, padding, dilation, groups, dy=None):
    """Band-limited correlation from full-size two-sided FFTs and a 0/1 mask, in float64.

    Embeds the explicitly padded input circularly in an ``n``-sized array (``x`` at
    ``0..L-1``, its left padding wrapped to the end, so any ``n`` down to the smallest
    exact size works), places the dilated filter at ``0..k_eff-1`` shifted by the same
    amount, multiplies the full spectra with the mask and reads the outputs: no
    pruning, no one-sided layout, no GEMM.  Returns ``y`` and, when ``dy`` is given,
    ``(dx, dw)`` from the same masked spectra.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    d = x.ndim - 2
    from blconv.reference import pads
    pad = pads(x.shape[2:], w.shape[2:], padding, dilation)
    dil = (dilation,) * d if np.isscalar(dilation) else tuple(dilation)
    st = (stride,) * d if np.isscalar(stride) else tuple(stride)
    P = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pad)]
    keff = [(k - 1) * dl + 1 for k, dl in zip(w.shape[2:], dil)]
    out1 = [p - ke + 1 for p, ke in zip(P, keff)]
    axes = tuple(range(2, 2 + d))
    # x at 0..L-1; a tap at j*dl - lo and an output at i*st (all mod n): the padded
    # correlation shifted by -lo, which the mask (a function of |frequency|) commutes with
    xfull = np.zeros(x.shape[:2] + tuple(fft_shape))
    xfull[(Ellipsis,) + tuple(slice(0, n) for n in x.shape[2:])] = x
    wfull = np.zeros(w.shape[:2] + tuple(fft_shape))
    idx = np.ix_(*[(np.arange(k) * dl - lo) % n for k, dl, (lo, _), n
                   in zip(w.shape[2:], dil, pad, fft_shape)])
    np.add.at(wfull, (Ellipsis,) + idx, w)
    M = two_sided_mask(fft_shape, keep)
    X = np.fft.fftn(xfull, axes=axes) * M
    W = np.fft.fftn(wfull, axes=axes) * M
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    G = groups
    Xg = X.reshape((N, G, Cg) + tuple(fft_shape))
    Wg = W.reshape((G, O // G, Cg) + tuple(fft_shape))
    Y = np.einsum("ngc...,goc...->ngo...", Xg, np.conj(Wg)).reshape((N, O) + tuple(fft_shape))
    y1 = np.real(np.fft.ifftn(Y, axes=axes))
    outs = np.ix_(*[np.arange(0, o, s) % n for o, s, n in zip(out1, st, fft_shape)])
    y = y1[(Ellipsis,) + outs]
    if dy is None:
        return y
    dy1 = np.zeros((N, O) + tuple(fft_shape))
    np.add.at(dy1, (Ellipsis,) + outs, dy)
    DY = np.fft.fftn(dy1, axes=axes) * M
    DYg = DY.reshape((N, G, O // G) + tuple(fft_shape))
    DX = np.einsum("ngo...,goc...->ngc...", DYg, Wg).reshape((N, C) + tuple(fft_shape))
    dxfull = np.real(np.fft.ifftn(DX, axes=axes))
    dx = dxfull[(Ellipsis,) + tuple(slice(0, n) for n in x.shape[2:])]
    DW = np.einsum("ngc...,ngo...->goc...", Xg, np.conj(DYg)).reshape((O, Cg) + tuple(fft_shape))
    dwfull = np.real(np.fft.ifftn(DW, axes=axes))
    dw = dwfull[(Ellipsis,) + idx]
    return y, dx, dw


# --- comparing two runs ------------------------------------------------------------------
#: Relative tolerance for the float fields (losses) of two runs of one configuration whose
#: arithmetic differs in summation order only: another BLAS/FFT thread count, another
#: batch chunking (``max_workspace_bytes``), another CPU kernel.  A float32 dot product of
#: length K is exact to about K * 2**-24 relative in either order (K is at most ~2,000 in
#: the tests' models: C_in * k), so two orders differ by up to ~1e-4 in the worst case and
#: by ~sqrt(K) * 2**-24 ~ 3e-6 typically; a short training run carries that through its
#: steps without amplifying it past the worst case.
RUN_RTOL = 1e-4


def assert_runs_close(a, b, *, n_train, n_test):
    """Records of two runs of one configuration, equal to float32 rounding.

    Everything but the wall time must be equal, except: losses within ``RUN_RTOL``
    relative, and accuracies within one sample (a sample whose logits tie to
    rounding may fall either way).
    """
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            if k == "train_seconds":
                continue
            if k.endswith("_loss"):
                np.testing.assert_allclose(ra[k], rb[k], rtol=RUN_RTOL, atol=0, err_msg=k)
            elif k.endswith("_accuracy"):
                n = n_test if k.startswith("test") else n_train
                assert abs(ra[k] - rb[k]) <= 1 / n + 1e-12, (k, ra[k], rb[k])
            else:
                assert ra[k] == rb[k], (k, ra[k], rb[k])


# --- training and checkpoints ---------------------------------------------------------------
def tiny(**kw):
    from blconv.models import fcn1d
    kw.setdefault("channels", (4, 4, 4))
    return fcn1d(1, 2, **kw)


def snapshot(model):
    return {k: np.array(v) for k, v in {**model.params, **model.buffers}.items()}


def assert_same_arrays(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
