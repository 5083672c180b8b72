"""CuPy against NumPy: the same seeded inputs give the same numbers on the GPU.

Covers conv1d/conv2d and the transposed convolutions, forward and backward, over a grid
of geometries, policies, dtypes and transform routes; every layer of :mod:`blconv.nn`
(forward, backward, gradients, buffers); a few SGD steps of each model of
:mod:`blconv.models`; the :mod:`blconv.viz` functions fed CuPy arrays; and the absence of device-to-host
round trips in a rate-mode forward and backward.

Every test is marked ``gpu``: ``conftest.py`` skips them, with the reason, where CuPy or
a CUDA device is missing.  The tolerances are in ``TOL`` below and nowhere else.
"""
import contextlib
import warnings

import numpy as np
import pytest

import blconv
import blconv._backend
from blconv import nn
from blconv.models import cnn2d, fcn1d, resnet
from blconv.nn import cross_entropy, to_device
from blconv.optim import SGD

pytestmark = pytest.mark.gpu

# Norm-wise relative tolerance of a CuPy result against NumPy's, per dtype:
# "op" for one call, "train" for losses and weights after a few SGD steps.
TOL = {np.float32: {"op": 2e-5, "train": 1e-4},
       np.float64: {"op": 1e-11, "train": 1e-9}}
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def host(a):
    return blconv.to_numpy(a)


def check(got, want, dtype, kind="op", what=""):
    """``got`` (CuPy) equals ``want`` (NumPy) to ``TOL[dtype][kind]``, norm-wise."""
    assert type(got).__module__.startswith("cupy"), f"{what}: {type(got)} is not on the GPU"
    got, want = np.asarray(host(got), np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300)
    assert err <= TOL[dtype][kind], f"{what}: relative error {err:.2e}"


# --- conv1d / conv2d ------------------------------------------------------------------------
GRID = {
    "1d": (1, dict(stride=1, padding=0)),
    "1d-s2p3d2g2": (1, dict(stride=2, padding=3, dilation=2, groups=2)),
    "1d-same": (1, dict(padding="same")),
    "2d-p1": (2, dict(padding=1)),
    "2d-mixed-g4": (2, dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2), groups=4)),
    "2d-same-d2": (2, dict(padding="same", dilation=2)),
}
POLICIES = {"exact": dict(), "rate": dict(compress_rate=0.5),
            "energy": dict(preserve_energy=0.9), "rate-chunked":
                dict(compress_rate=0.3, max_workspace_bytes=1)}


@DTYPES
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", GRID)
def test_conv_forward_and_backward(cp, route, case, policy, dtype):
    d, geom = GRID[case]
    rng = np.random.default_rng(0)
    size = (21,) if d == 1 else (11, 13)
    x = rng.standard_normal((3, 8) + size).astype(dtype)
    w = rng.standard_normal((8, 8 // geom.get("groups", 1)) + (3,) * d).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    fwd = blconv.conv1d_forward if d == 1 else blconv.conv2d_forward
    bwd = blconv.conv1d_backward if d == 1 else blconv.conv2d_backward
    kw = {**geom, **POLICIES[policy]}
    y, ctx = fwd(x, w, b, **kw)
    yg, ctxg = fwd(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)
    assert ctxg.band == ctx.band and yg.dtype == y.dtype
    assert ctxg.x_hat.dtype == ctx.x_hat.dtype
    check(yg, y, dtype, what="y")
    dy = rng.standard_normal(y.shape).astype(dtype)
    for name, g, gg in zip(("dx", "dw", "db"), bwd(dy, ctx), bwd(cp.asarray(dy), ctxg)):
        assert gg.dtype == g.dtype, name
        check(gg, g, dtype, what=name)


TRANSPOSED = {
    "1d-s2-op1-g2": (1, dict(stride=2, padding=1, output_padding=1, groups=2)),
    "2d-s2-p1": (2, dict(stride=2, padding=1)),
    "2d-mixed-d2": (2, dict(stride=(1, 2), padding=(2, 0), dilation=2)),
}


@DTYPES
@pytest.mark.parametrize("policy", ["exact", "rate", "rate-chunked"])
@pytest.mark.parametrize("case", TRANSPOSED)
def test_conv_transpose_forward_and_backward(cp, route, case, policy, dtype):
    d, geom = TRANSPOSED[case]
    rng = np.random.default_rng(1)
    size = (11,) if d == 1 else (7, 9)
    g = geom.get("groups", 1)
    x = rng.standard_normal((3, 8) + size).astype(dtype)
    w = rng.standard_normal((8, 6 // g) + (3,) * d).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    fwd = getattr(blconv, f"conv_transpose{d}d_forward")
    bwd = getattr(blconv, f"conv_transpose{d}d_backward")
    kw = {**geom, **POLICIES[policy]}
    z, ctx = fwd(x, w, b, **kw)
    zg, ctxg = fwd(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)
    assert ctxg.band == ctx.band and zg.dtype == z.dtype
    check(zg, z, dtype, what="z")
    dz = rng.standard_normal(z.shape).astype(dtype)
    for name, g_, gg in zip(("dx", "dw", "db"), bwd(dz, ctx), bwd(cp.asarray(dz), ctxg)):
        assert gg.dtype == g_.dtype, name
        check(gg, g_, dtype, what=name)


# --- every layer ----------------------------------------------------------------------------
LAYERS = {
    # name: (factory(dtype), input shape)
    "Conv1d": (lambda dt: nn.Conv1d(4, 6, 3, padding=1, compress_rate=0.3, dtype=dt, rng=0),
               (3, 4, 16)),
    "Conv2d-g2-s2": (lambda dt: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2,
                                          compress_rate=0.5, dtype=dt, rng=0), (3, 4, 10, 10)),
    "Conv2d-energy": (lambda dt: nn.Conv2d(4, 6, 3, padding="same", preserve_energy=0.9,
                                           bias=False, dtype=dt, rng=0), (3, 4, 9, 9)),
    "Linear": (lambda dt: nn.Linear(12, 5, dtype=dt, rng=0), (3, 12)),
    "ReLU": (lambda dt: nn.ReLU(), (3, 4, 5)),
    "Flatten": (lambda dt: nn.Flatten(), (3, 2, 3, 3)),
    "Dropout": (lambda dt: nn.Dropout(0.3, rng=0), (3, 8)),
    "GlobalAvgPool": (lambda dt: nn.GlobalAvgPool(), (3, 4, 5, 5)),
    "BatchNorm1d": (lambda dt: nn.BatchNorm1d(4, dtype=dt), (3, 4, 7)),
    "BatchNorm1d-eval": (lambda dt: nn.BatchNorm1d(4, dtype=dt).eval(), (3, 4, 7)),
    "BatchNorm2d": (lambda dt: nn.BatchNorm2d(4, dtype=dt), (3, 4, 5, 5)),
    "MaxPool1d": (lambda dt: nn.MaxPool1d(2), (3, 4, 9)),
    "MaxPool2d": (lambda dt: nn.MaxPool2d(2, stride=1), (3, 4, 6, 6)),
    "AvgPool1d": (lambda dt: nn.AvgPool1d(3, stride=2), (3, 4, 9)),
    "AvgPool2d": (lambda dt: nn.AvgPool2d(2), (3, 4, 6, 6)),
    # no bias before the batch norm: its gradient is zero up to rounding, which a
    # norm-wise relative comparison cannot judge (as in the models' residual blocks)
    "Residual": (lambda dt: nn.Residual(
        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, compress_rate=0.25, bias=False, dtype=dt,
                                rng=1),
                      nn.BatchNorm2d(4, dtype=dt), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 4, 1, dtype=dt, rng=2))), (3, 4, 6, 6)),
}


@DTYPES
@pytest.mark.parametrize("name", LAYERS)
def test_layer_forward_backward_grads_and_buffers(cp, name, dtype):
    make, shape = LAYERS[name]
    ref, layer = make(dtype), to_device(make(dtype), "gpu")
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    y = ref(x)
    yg = layer(cp.asarray(x))
    check(yg, y, dtype, what="y")
    dy = rng.standard_normal(y.shape).astype(dtype)
    check(layer.backward(cp.asarray(dy)), ref.backward(dy), dtype, what="dx")
    assert sorted(layer.grads) == sorted(ref.grads)
    for key, g in ref.grads.items():
        check(layer.grads[key], g, dtype, what=f"grad {key}")
    for key, a in ref.buffers.items():
        check(layer.buffers[key], a, dtype, what=f"buffer {key}")


@DTYPES
def test_cross_entropy_and_accuracy(cp, dtype):
    rng = np.random.default_rng(2)
    logits = (5 * rng.standard_normal((7, 4))).astype(dtype)
    y = rng.integers(0, 4, 7)
    loss, dlogits = cross_entropy(logits, y)
    loss_g, dlogits_g = cross_entropy(cp.asarray(logits), cp.asarray(y))
    check(loss_g, loss, dtype, what="loss")
    check(dlogits_g, dlogits, dtype, what="dlogits")
    assert nn.accuracy(cp.asarray(logits), cp.asarray(y)) == nn.accuracy(logits, y)


# --- models: a few SGD steps ----------------------------------------------------------------
MODELS = {
    "fcn1d": (lambda dt: fcn1d(2, 3, channels=(4, 6, 4), compress_rate=[0.0, 0.3, 0.5],
                               dropout=0.2, dtype=dt), (6, 2, 40)),
    "cnn2d": (lambda dt: cnn2d(1, 3, width=4, compress_rate=0.4, dtype=dt), (6, 1, 8, 8)),
    "cnn2d-energy": (lambda dt: cnn2d(1, 3, width=4, preserve_energy=0.95, dtype=dt),
                     (6, 1, 8, 8)),
    "resnet": (lambda dt: resnet(3, 3, width=4, blocks=(1, 1), compress_rate=0.25, dtype=dt),
               (6, 3, 8, 8)),
}


@DTYPES
@pytest.mark.parametrize("name", MODELS)
def test_a_few_training_steps_match_numpy(cp, name, dtype):
    make, shape = MODELS[name]
    runs = {}
    for where in ("cpu", "gpu"):
        model = to_device(make(dtype), where)
        opt = SGD(model, lr=0.05, momentum=0.9, weight_decay=1e-4)
        xp = cp if where == "gpu" else np
        losses = []
        for step in range(3):
            batch = np.random.default_rng([3, step])
            x = xp.asarray(batch.standard_normal(shape).astype(dtype))
            y = xp.asarray(batch.integers(0, 3, shape[0]))
            loss, dlogits = cross_entropy(model.forward(x), y)
            model.backward(dlogits)
            opt.step()
            losses.append(loss)
        runs[where] = (model, losses)
    (ref, ref_losses), (model, losses) = runs["cpu"], runs["gpu"]
    for step, (lg, ln) in enumerate(zip(losses, ref_losses)):
        check(lg, ln, dtype, "train", what=f"loss of step {step}")
    for key, p in {**ref.params, **ref.buffers}.items():
        check({**model.params, **model.buffers}[key], p, dtype, "train", what=key)


# --- viz on CuPy arrays ---------------------------------------------------------------------
@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    yield pyplot
    pyplot.close("all")


def _drawn(obj):
    import matplotlib.figure

    """Every line's y data and every image's values of an Axes or Figure, flattened."""
    axes = obj.axes if isinstance(obj, matplotlib.figure.Figure) else [obj]
    parts = [np.ravel(line.get_ydata()) for ax in axes for line in ax.lines]
    parts += [np.ravel(np.ma.filled(im.get_array(), np.nan)) for ax in axes for im in ax.images]
    return np.concatenate(parts)


def test_viz_accepts_cupy_arrays(cp, plt):
    from blconv import viz
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((3, 2, 40)), rng.standard_normal((3, 2, 12, 10))
    band = blconv.band_for(x2.shape, (4, 2, 3, 3), padding=1, compress_rate=0.5)
    for a in (x1, x2):
        rate, frac, bands = viz.energy_curve(a)
        rate_g, frac_g, bands_g = viz.energy_curve(cp.asarray(a))
        assert bands_g == bands
        np.testing.assert_allclose(rate_g, rate, rtol=TOL[np.float64]["op"])
        np.testing.assert_allclose(frac_g, frac, rtol=TOL[np.float64]["op"])
        for plot in (lambda v: viz.plot_spectrum(v), lambda v: viz.plot_energy(v)):
            np.testing.assert_allclose(_drawn(plot(cp.asarray(a))), _drawn(plot(a)),
                                       rtol=TOL[np.float64]["op"])
    np.testing.assert_allclose(_drawn(viz.plot_spectrum(cp.asarray(x2), band=band)),
                               _drawn(viz.plot_spectrum(x2, band=band)),
                               rtol=TOL[np.float64]["op"])
    layer = nn.Conv2d(2, 4, 3, padding=1, rng=0)
    on_gpu = to_device(nn.Conv2d(2, 4, 3, padding=1, rng=0), "gpu")
    np.testing.assert_allclose(_drawn(viz.plot_filter_spectra(on_gpu)),
                               _drawn(viz.plot_filter_spectra(layer)),
                               rtol=TOL[np.float32]["op"])


# --- no host round trip in the hot path -----------------------------------------------------
@contextlib.contextmanager
def _no_device_to_host(cp, monkeypatch):
    """Fail on any device-to-host copy: CuPy's synchronisation guard where it still exists
    (deprecated since CuPy 10), and in any case ``cupy.asnumpy`` / ``blconv.to_numpy``."""
    def refuse(*a, **k):
        raise AssertionError("device-to-host transfer in the hot path")

    with monkeypatch.context() as m:
        m.setattr(cp, "asnumpy", refuse)
        m.setattr(blconv._backend, "to_numpy", refuse)
        guard = contextlib.nullcontext()
        import cupyx
        if hasattr(cupyx, "allow_synchronize"):
            guard = cupyx.allow_synchronize(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the deprecation notice of the guard
            with guard:
                yield


@pytest.mark.parametrize("d", [1, 2])
def test_rate_mode_conv_forward_and_backward_stay_on_the_device(cp, monkeypatch, route, d):
    rng = np.random.default_rng(5)
    x = cp.asarray(rng.standard_normal((4, 3) + (20,) * d).astype(np.float32))
    w = cp.asarray(rng.standard_normal((5, 3) + (3,) * d).astype(np.float32))
    b = cp.asarray(rng.standard_normal(5).astype(np.float32))
    fwd = blconv.conv1d_forward if d == 1 else blconv.conv2d_forward
    bwd = blconv.conv1d_backward if d == 1 else blconv.conv2d_backward
    kw = dict(stride=2, padding=1, compress_rate=0.5)
    y, ctx = fwd(x, w, b, **kw)                  # warm-up: DFT matrices cached on the device
    dy = cp.ones_like(y)
    bwd(dy, ctx)
    with _no_device_to_host(cp, monkeypatch):
        y, ctx = fwd(x, w, b, **kw)
        dx, dw, db = bwd(dy, ctx)
    assert all(isinstance(a, cp.ndarray) for a in (y, dx, dw, db))


def test_rate_mode_model_forward_and_backward_stay_on_the_device(cp, monkeypatch, route):
    model = to_device(cnn2d(3, 4, width=4, compress_rate=0.5), "gpu")
    x = cp.asarray(np.random.default_rng(6).standard_normal((4, 3, 8, 8)).astype(np.float32))
    model.backward(cp.ones_like(model.forward(x)))           # warm-up
    with _no_device_to_host(cp, monkeypatch):
        logits = model.forward(x)
        dx = model.backward(cp.ones_like(logits))
    assert isinstance(dx, cp.ndarray)
