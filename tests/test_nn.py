"""Layers of blconv.nn: gradients by central differences, known answers, dtypes, errors."""
import math

import numpy as np
import pytest
import scipy.special

import blconv
from blconv.nn import (
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool1d,
    MaxPool2d,
    Module,
    ReLU,
    Residual,
    Sequential,
    accuracy,
    cross_entropy,
    to_device,
)

from helpers import numgrad, randn

F64 = "float64"


# --- central differences ----------------------------------------------------------------
def check_layer(layer, x, *, seed=0, rtol=1e-6, atol=1e-8):
    """Backward of ``sum(layer(x) * r)`` against central differences in x and every param."""
    r = np.random.default_rng(seed).standard_normal(layer(x).shape)

    def f():
        return float(np.sum(layer(x) * r))

    layer(x)
    dx = layer.backward(r)
    grads = {k: np.array(v) for k, v in layer.grads.items()}
    assert sorted(grads) == sorted(layer.params)
    np.testing.assert_allclose(dx, numgrad(f, x), rtol=rtol, atol=atol, err_msg="dx")
    for k, p in layer.params.items():
        np.testing.assert_allclose(grads[k], numgrad(f, p), rtol=rtol, atol=atol, err_msg=k)


def distinct(shape, seed=0):
    """Values 0.1 apart in random order: no ties for max pooling, kinks far from +-eps."""
    n = math.prod(shape)
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.1 - 0.05 * n


def randomize(layer, seed=1):
    """Replace params (BatchNorm's ones and zeros included) by random values."""
    rng = np.random.default_rng(seed)
    for d, k in [(d, k) for _, d, k in layer._slots("_params")]:
        d[k] = 0.5 + rng.random(d[k].shape)
    return layer


# --- gradient checks, one layer at a time ------------------------------------------------
LAYER_CASES = {
    "linear": (lambda: Linear(5, 3, dtype=F64, rng=0), (4, 5)),
    "linear-nobias": (lambda: Linear(5, 3, bias=False, dtype=F64, rng=0), (4, 5)),
    "relu": (ReLU, (3, 4, 5)),
    "flatten": (Flatten, (2, 3, 2, 2)),
    "gap1d": (GlobalAvgPool, (2, 3, 5)),
    "gap2d": (GlobalAvgPool, (2, 3, 4, 3)),
    "maxpool1d-k2": (lambda: MaxPool1d(2), (2, 3, 7)),
    "maxpool1d-k3s2-overlap": (lambda: MaxPool1d(3, stride=2), (2, 2, 9)),
    "maxpool2d-k2": (lambda: MaxPool2d(2), (2, 2, 4, 6)),
    "maxpool2d-k3s1-overlap": (lambda: MaxPool2d(3, stride=1), (1, 2, 5, 5)),
    "maxpool2d-k(2,3)s(1,2)": (lambda: MaxPool2d((2, 3), stride=(1, 2)), (1, 2, 4, 7)),
    "avgpool1d-k3s2-overlap": (lambda: AvgPool1d(3, stride=2), (2, 2, 9)),
    "avgpool2d-k2": (lambda: AvgPool2d(2), (2, 2, 5, 4)),
    "avgpool2d-k3s1-overlap": (lambda: AvgPool2d(3, stride=1), (1, 2, 5, 5)),
    "bn1d-NC": (lambda: randomize(BatchNorm1d(3, dtype=F64)), (5, 3)),
    "bn1d-NCL": (lambda: randomize(BatchNorm1d(3, dtype=F64)), (2, 3, 4)),
    "bn2d": (lambda: randomize(BatchNorm2d(2, dtype=F64)), (3, 2, 3, 3)),
    "conv1d-rate0": (lambda: Conv1d(2, 3, 3, padding=1, dtype=F64, rng=0), (2, 2, 9)),
    "conv1d-rate0.4-stride2-dil2-groups": (
        lambda: Conv1d(4, 2, 3, stride=2, dilation=2, groups=2, compress_rate=0.4,
                       dtype=F64, rng=0), (2, 4, 11)),
    "conv1d-same-nobias": (lambda: Conv1d(2, 2, 4, padding="same", bias=False,
                                          compress_rate=0.2, dtype=F64, rng=0), (1, 2, 8)),
    "conv2d-rate0": (lambda: Conv2d(2, 3, 3, padding=1, dtype=F64, rng=0), (2, 2, 5, 5)),
    "conv2d-rate0.5-stride2": (lambda: Conv2d(2, 3, 3, stride=2, padding=1, compress_rate=0.5,
                                              dtype=F64, rng=0), (2, 2, 6, 6)),
    "conv2d-rate0.3-k(3,2)-valid": (lambda: Conv2d(3, 2, (3, 2), padding="valid",
                                                   compress_rate=0.3, dtype=F64, rng=0),
                                    (1, 3, 6, 5)),
    "residual-identity": (lambda: Residual(Sequential(Linear(4, 4, dtype=F64, rng=0), ReLU(),
                                                      Linear(4, 4, dtype=F64, rng=1))), (3, 4)),
    "residual-projection": (lambda: Residual(
        Sequential(Conv2d(2, 3, 3, stride=2, padding=1, compress_rate=0.3, dtype=F64, rng=0),
                   randomize(BatchNorm2d(3, dtype=F64)), ReLU()),
        Sequential(Conv2d(2, 3, 1, stride=2, dtype=F64, rng=1),
                   randomize(BatchNorm2d(3, dtype=F64), seed=2))), (2, 2, 6, 6)),
}


@pytest.mark.parametrize("case", list(LAYER_CASES), ids=list(LAYER_CASES))
def test_backward_matches_central_differences(case):
    make, shape = LAYER_CASES[case]
    check_layer(make(), distinct(shape) if "pool" in case else randn(*shape))


def test_batchnorm_eval_backward_matches_central_differences():
    bn = randomize(BatchNorm2d(3, dtype=F64))
    bn.buffers["running_mean"] = randn(3, seed=5)
    bn.buffers["running_var"] = 0.5 + np.random.default_rng(6).random(3)
    check_layer(bn.eval(), randn(2, 3, 2, 2))


def test_dropout_backward_uses_the_forward_mask():
    layer = Dropout(0.5, rng=3)
    x = randn(4, 50)
    y = layer(x)
    mask = y / x
    dy = randn(4, 50, seed=1)
    np.testing.assert_array_equal(layer.backward(dy), dy * mask)


def small_model(rate):
    return Sequential(
        Conv2d(2, 4, 3, padding=1, compress_rate=rate, dtype=F64, rng=0),
        randomize(BatchNorm2d(4, dtype=F64), seed=1),
        ReLU(),
        MaxPool2d(2),
        Residual(Sequential(Conv2d(4, 4, 3, padding=1, compress_rate=rate, dtype=F64, rng=2),
                            randomize(BatchNorm2d(4, dtype=F64), seed=3), ReLU())),
        Flatten(),
        Linear(4 * 3 * 3, 5, dtype=F64, rng=4),
    )


@pytest.mark.parametrize("rate", [0.0, 0.5], ids=["rate0", "rate0.5"])
def test_whole_model_through_cross_entropy(rate):
    model = small_model(rate)
    x, y = randn(3, 2, 6, 6), np.array([0, 4, 2])

    def f():
        return float(cross_entropy(model(x), y)[0])

    _, dlogits = cross_entropy(model(x), y)
    dx = model.backward(dlogits)
    grads = {k: np.array(v) for k, v in model.grads.items()}
    assert len(grads) == 10 and "4.body.0.w" in grads
    np.testing.assert_allclose(dx, numgrad(f, x), rtol=1e-5, atol=1e-9)
    for k, p in model.params.items():
        np.testing.assert_allclose(grads[k], numgrad(f, p), rtol=1e-5, atol=1e-9, err_msg=k)


# --- known answers -------------------------------------------------------------------------
def test_pool1d_known_answers():
    x = np.array([[[1.0, 5.0, 2.0, 4.0, 3.0, 0.0, 9.0]]])       # the 9 fills no whole window
    np.testing.assert_array_equal(MaxPool1d(2)(x), [[[5.0, 4.0, 3.0]]])
    np.testing.assert_allclose(AvgPool1d(2)(x), [[[3.0, 3.0, 1.5]]])
    np.testing.assert_allclose(AvgPool1d(3, stride=2)(x), [[[8 / 3, 3.0, 4.0]]])
    pool = MaxPool1d(2)
    pool(x)
    np.testing.assert_array_equal(pool.backward(np.array([[[1.0, 2.0, 3.0]]])),
                                  [[[0, 1, 0, 2, 3, 0, 0]]])
    # overlapping windows sharing their maximum: both gradients reach it
    pool = MaxPool1d(3, stride=1)
    np.testing.assert_array_equal(pool(np.array([[[1.0, 9.0, 2.0, 3.0]]])), [[[9.0, 9.0]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[1.0, 10.0]]])), [[[0, 11, 0, 0]]])
    # ties: the first maximum of a window takes the gradient (as PyTorch's CPU kernel)
    pool = MaxPool1d(3)
    pool(np.array([[[7.0, 7.0, 7.0]]]))
    np.testing.assert_array_equal(pool.backward(np.array([[[1.0]]])), [[[1, 0, 0]]])
    pool = AvgPool1d(3, stride=2)
    pool(x)
    np.testing.assert_allclose(pool.backward(np.array([[[3.0, 6.0, 9.0]]])),
                               [[[1, 1, 3, 2, 5, 3, 3]]])


def test_pool2d_known_answers():
    x = np.array([[4, 1, 0, 2],
                  [3, 8, 6, 5],
                  [7, 2, 9, 1],
                  [0, 3, 4, 6]], dtype=np.float32)[None, None]
    np.testing.assert_array_equal(MaxPool2d(2)(x), [[[[8, 6], [7, 9]]]])
    np.testing.assert_array_equal(AvgPool2d(2)(x), [[[[4, 3.25], [3, 5]]]])
    np.testing.assert_array_equal(MaxPool2d(3, stride=1)(x), [[[[9, 9], [9, 9]]]])
    np.testing.assert_array_equal(MaxPool2d((1, 4))(x), [[[[4], [8], [9], [6]]]])
    pool = MaxPool2d(2)
    pool(x)
    dx = pool.backward(np.array([[[[1, 2], [3, 4]]]], dtype=np.float32))
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0, 0], [0, 1, 2, 0], [3, 0, 4, 0],
                                             [0, 0, 0, 0]])
    pool = MaxPool2d(3, stride=1)
    pool(x)
    dx = pool.backward(np.ones((1, 1, 2, 2), dtype=np.float32))
    assert dx[0, 0, 2, 2] == 4 and dx.sum() == 4


def test_global_avg_pool_and_flatten_known_answers():
    x = np.arange(12.0).reshape(1, 3, 2, 2)
    np.testing.assert_array_equal(GlobalAvgPool()(x), [[1.5, 5.5, 9.5]])
    gap = GlobalAvgPool()
    gap(x)
    np.testing.assert_array_equal(gap.backward(np.array([[4.0, 8.0, 0.0]]))[0, :, 0, 0],
                                  [1.0, 2.0, 0.0])
    fl = Flatten()
    np.testing.assert_array_equal(fl(x), x.reshape(1, 12))
    assert fl.backward(np.ones((1, 12))).shape == (1, 3, 2, 2)


def test_linear_matches_matmul():
    layer = Linear(6, 4, rng=7)
    w, b = layer.params["w"], layer.params["b"]
    x = randn(5, 6).astype(np.float32)
    np.testing.assert_allclose(layer(x), x @ w.T + b, rtol=1e-6)
    dy = randn(5, 4, seed=1).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy @ w, rtol=1e-6)
    np.testing.assert_allclose(layer.grads["w"], dy.T @ x, rtol=1e-5)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(0), rtol=1e-5)


def test_relu_known_answer():
    r = ReLU()
    np.testing.assert_array_equal(r(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(r.backward(np.array([5.0, 5.0, 5.0])), [0.0, 0.0, 5.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_non_finite_values(dtype):
    """NaN inputs propagate and infinities clip as in PyTorch; the gradient is dy where
    x > 0 and zero elsewhere, also where dy is NaN or infinite there."""
    inf, nan = np.inf, np.nan
    r = ReLU()
    y = r(np.array([-inf, -1.0, -0.0, nan, 2.0, inf], dtype=dtype))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, nan, 2.0, inf])
    assert not np.signbit(y[2])
    dx = r.backward(np.array([nan, inf, -inf, nan, -3.0, nan], dtype=dtype))
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 0.0, -3.0, nan])
    r(np.array([-1.0, 1.0], dtype=dtype))
    np.testing.assert_array_equal(r.backward(np.array([4.0, -4.0], dtype=dtype)), [0.0, -4.0])


def test_batchnorm_running_stats_after_two_batches():
    bn = BatchNorm2d(3, dtype=F64)
    b1, b2 = randn(4, 3, 2, 5, seed=1) * 2 + 1, randn(6, 3, 3, 2, seed=2) - 3
    y1 = bn(b1)
    bn(b2)
    ax = (0, 2, 3)
    np.testing.assert_allclose(bn.buffers["running_mean"],
                               0.9 * (0.1 * b1.mean(ax)) + 0.1 * b2.mean(ax), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"],
                               0.9 * (0.9 + 0.1 * b1.var(ax, ddof=1)) + 0.1 * b2.var(ax, ddof=1),
                               rtol=1e-12)
    # training normalises with the biased variance of the batch
    ref = (b1 - b1.mean((0, 2, 3), keepdims=True)) / np.sqrt(b1.var((0, 2, 3), keepdims=True)
                                                            + 1e-5)
    np.testing.assert_allclose(y1, ref, rtol=1e-10, atol=1e-12)


def test_batchnorm1d_running_stats_and_eval_uses_them():
    bn = BatchNorm1d(2, momentum=0.5, dtype=F64)
    x = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    bn(x)
    np.testing.assert_allclose(bn.buffers["running_mean"], [1.5, 15.0])
    np.testing.assert_allclose(bn.buffers["running_var"], [0.5 + 0.5 * 4.0, 0.5 + 0.5 * 700.0])
    bn.params["w"][...] = [2.0, 3.0]
    bn.params["b"][...] = [0.5, -1.0]
    bn.eval()
    x2 = randn(4, 2, seed=3)
    rm, rv = bn.buffers["running_mean"].copy(), bn.buffers["running_var"].copy()
    ref = (x2 - rm) / np.sqrt(rv + 1e-5) * [2.0, 3.0] + [0.5, -1.0]
    np.testing.assert_allclose(bn(x2), ref, rtol=1e-12)
    np.testing.assert_array_equal(bn.buffers["running_mean"], rm)    # eval leaves them alone
    # a single row normalises in eval mode but is an error in training
    assert bn(x2[:1]).shape == (1, 2)
    with pytest.raises(ValueError, match="BatchNorm1d: training needs more than 1 value"):
        bn.train()(x2[:1])


def test_dropout_scaling_reproducibility_and_eval_identity():
    x = np.ones((200, 100), dtype=np.float32)
    y = Dropout(0.25, rng=0)(x)
    assert y.dtype == np.float32
    assert set(np.unique(y).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01
    np.testing.assert_array_equal(y, Dropout(0.25, rng=0)(x))              # same seed
    assert not np.array_equal(y, Dropout(0.25, rng=1)(x))
    d = Dropout(0.25, rng=0).eval()
    assert d(x) is x and d.backward(x) is x
    np.testing.assert_array_equal(Dropout(1.0, rng=0)(x), 0 * x)
    np.testing.assert_array_equal(Dropout(0.0, rng=0)(x), x)


def test_cross_entropy_matches_logsumexp_formula():
    logits = randn(6, 4) * 3
    y = np.array([0, 3, 1, 1, 2, 3])
    loss, dlogits = cross_entropy(logits, y)
    ref = np.mean(scipy.special.logsumexp(logits, axis=1) - logits[np.arange(6), y])
    assert loss.shape == () and loss.dtype == np.float64
    np.testing.assert_allclose(float(loss), ref, rtol=1e-13)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(dlogits, (scipy.special.softmax(logits, axis=1) - onehot) / 6,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dlogits, numgrad(lambda: float(cross_entropy(logits, y)[0]),
                                                logits), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [2e4, 2e4 - 1, -3e4]], dtype=dtype)
    y = np.array([1, 0])
    loss, dlogits = cross_entropy(logits, y)
    assert loss.dtype == dtype and dlogits.dtype == dtype
    ref = np.mean(scipy.special.logsumexp(logits.astype(np.float64), axis=1)
                  - logits.astype(np.float64)[[0, 1], y])
    np.testing.assert_allclose(float(loss), ref, rtol=1e-6)
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(dlogits[0], [0.5, -0.5, 0.0], atol=1e-7)


def test_accuracy_known_answer():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(logits, np.array([1, 0, 0, 0])) == 0.75


# --- initialisation, dtypes, containers, state ---------------------------------------------
def test_init_is_pytorch_default_uniform_and_seeded():
    conv = Conv2d(8, 16, 3, groups=2, rng=0)
    bound = 1 / math.sqrt(8 // 2 * 9)
    w = conv.params["w"]
    assert w.shape == (16, 4, 3, 3) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(conv.params["b"]).max() <= bound
    lin = Linear(400, 300, rng=1)
    w = lin.params["w"].astype(np.float64)
    np.testing.assert_allclose(w.var(), (1 / 400) / 3, rtol=0.02)    # var of U(-a, a) = a^2/3
    assert abs(w.mean()) < 1e-3
    np.testing.assert_array_equal(Linear(3, 2, rng=5).params["w"], Linear(3, 2, rng=5).params["w"])
    gen = np.random.default_rng(5)
    assert not np.array_equal(Linear(3, 2, rng=gen).params["w"], Linear(3, 2, rng=gen).params["w"])


def test_float32_in_float32_everywhere():
    model = Sequential(Conv1d(2, 4, 3, padding=1, compress_rate=0.3, rng=0), BatchNorm1d(4),
                       ReLU(), Dropout(0.2, rng=0), MaxPool1d(2), AvgPool1d(2),
                       Residual(Conv1d(4, 4, 1, rng=1)), GlobalAvgPool(), Linear(4, 3, rng=2))
    x = randn(3, 2, 8).astype(np.float32)
    logits = model(x)
    loss, dlogits = cross_entropy(logits, np.array([0, 1, 2]))
    dx = model.backward(dlogits)
    assert {a.dtype for a in (logits, loss, dlogits, dx)} == {np.dtype(np.float32)}
    for d in (model.params, model.grads, model.buffers):
        assert {a.dtype for a in d.values()} == {np.dtype(np.float32)}
    with pytest.raises(TypeError, match=r"Linear: x.dtype must equal the parameters' dtype"):
        Linear(2, 2, rng=0)(np.ones((1, 2)))


def test_sequential_keys_modes_iteration_and_repr():
    block = Residual(Sequential(Conv2d(4, 4, 3, padding=1, rng=0), BatchNorm2d(4), ReLU()),
                     projection=BatchNorm2d(4))
    model = Sequential(Conv2d(3, 4, 3, rng=1), BatchNorm2d(4), ReLU(), block, Flatten())
    assert sorted(model.params) == ["0.b", "0.w", "1.b", "1.w", "3.body.0.b", "3.body.0.w",
                                    "3.body.1.b", "3.body.1.w", "3.projection.b",
                                    "3.projection.w"]
    assert sorted(model.grads) == sorted(model.params)
    assert "3.body.1.running_mean" in model.buffers and len(model.buffers) == 6
    assert model.params["3.body.1.w"] is block.body[1].params["w"]
    assert len(model) == 5 and list(model)[2] is model[2] and len(model[1:3]) == 2
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert block.body[1].training
    text = repr(model)
    assert text.startswith("Sequential(\n  (0): Conv2d(3, 4, kernel_size=(3, 3), compress_rate=")
    assert "(3): Residual(\n    (body): Sequential(" in text and "(projection): BatchNorm2d(4" in text


def test_state_dict_roundtrip_and_zero_grad():
    a, b = randomize(small_model(0.3), seed=9), small_model(0.3)
    x = randn(2, 2, 6, 6)
    a(x)                                        # moves a's running statistics
    b.load_state_dict(a.state_dict())
    for key in a.params:
        np.testing.assert_array_equal(b.params[key], a.params[key])
        assert b.params[key] is not a.params[key]
    for key in a.buffers:
        np.testing.assert_array_equal(b.buffers[key], a.buffers[key])
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x), b(x))
    a.backward(np.ones((2, 5)))
    a.zero_grad()
    assert all(not np.any(g) for g in a.grads.values())
    bad = a.state_dict()
    del bad["params"]["0.w"]
    with pytest.raises(ValueError, match=r"Sequential.load_state_dict: params keys differ; "
                                         r"missing \['0.w'\]"):
        b.load_state_dict(bad)
    bad = a.state_dict()
    bad["buffers"]["1.running_var"] = np.ones(5)
    with pytest.raises(ValueError, match=r"buffers\['1.running_var'\] must have shape \(4,\)"):
        b.load_state_dict(bad)


def test_load_state_dict_checks_everything_before_replacing_anything():
    a, b = randomize(small_model(0.3), seed=9), small_model(0.3)
    before = {k: np.array(v) for k, v in b.params.items()}
    bad = a.state_dict()
    bad["buffers"]["1.running_var"] = np.ones(5)       # params fine, a buffer wrong
    with pytest.raises(ValueError, match=r"buffers\['1.running_var'\] must have shape"):
        b.load_state_dict(bad)
    for k, v in b.params.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_named_modules_names_match_the_keys_of_params():
    model = small_model(0.3)
    names = [name for name, _ in model.named_modules()]
    assert names[:2] == ["", "0"] and "4.body.0" in names
    owners = {key.rpartition(".")[0] for key in model.params}
    assert owners <= set(names)
    assert dict(model.named_modules())["4.body.0"] is model[4].body[0]


def _dropout_model(seed):
    return Sequential(Linear(4, 4, dtype=F64, rng=0), Dropout(0.5, rng=seed),
                      Residual(Sequential(Dropout(0.25, rng=seed + 1))))


def test_dropout_generators_travel_in_the_state_dict():
    x = np.ones((3, 4))
    a = _dropout_model(1)
    a(x)                                                   # advance a's generators
    state = a.state_dict()
    assert sorted(state["rng"]) == ["1", "2.body.0"]
    assert state["rng"]["1"] == a[1].rng.bit_generator.state
    b = _dropout_model(7)
    b.load_state_dict(state)
    np.testing.assert_array_equal(b(x), a(x))              # the same masks from here on
    np.testing.assert_array_equal(b(x), a(x))
    assert "rng" not in Sequential(Linear(2, 2, rng=0)).state_dict()


def test_a_generator_of_another_kind_is_restored_as_saved():
    x = np.ones((2, 6))
    src = Dropout(0.5, rng=np.random.Generator(np.random.MT19937(3)))
    dst = Dropout(0.5, rng=0)                              # PCG64
    dst.load_state_dict(src.state_dict())
    assert type(dst.rng.bit_generator).__name__ == "MT19937"
    np.testing.assert_array_equal(dst(x), src(x))


@pytest.mark.parametrize("rng, match", [
    ({"0": {"bit_generator": "PCG64"}}, r"rng\['0'\] matches no layer with a generator"),
    ({"9": {"bit_generator": "PCG64"}}, r"rng\['9'\] matches no layer with a generator"),
    ({"1": {"bit_generator": "Evil"}}, r"rng\['1'\] has unknown bit generator 'Evil'"),
    ({"1": "PCG64"}, r"rng\['1'\] has unknown bit generator None"),
], ids=["not-dropout", "no-such-layer", "unknown-kind", "not-a-state"])
def test_bad_generator_states_are_refused_before_anything_changes(rng, match):
    model = _dropout_model(1)
    before = model[1].rng.bit_generator.state
    state = {**_dropout_model(2).state_dict(), "rng": rng}
    with pytest.raises(ValueError, match=r"^Sequential.load_state_dict: " + match):
        model.load_state_dict(state)
    assert model[1].rng.bit_generator.state == before


def test_mode_restores_modes_caches_and_bands_even_after_an_error():
    model = small_model(0.3)
    model.train()
    model[1].eval()                                        # a mixed-mode model
    x = randn(2, 2, 6, 6)
    y = model(x)                                           # caches and bands of this forward
    modes = [m.training for m in model.modules()]
    bands = [model[0].last_band, model[4].body[0].last_band]
    with model.mode(training=False) as same:
        assert same is model and not any(m.training for m in model.modules())
        model[0].compress_rate = 0.75
        model(randn(3, 2, 6, 6))                           # another batch size: other caches
        assert model[0].last_band != bands[0]
        model[0].compress_rate = 0.3
    assert [m.training for m in model.modules()] == modes
    assert [model[0].last_band, model[4].body[0].last_band] == bands
    dx = model.backward(np.ones_like(y))                   # the saved caches are the originals
    assert dx.shape == x.shape
    model(x)
    with pytest.raises(RuntimeError, match="boom"), model.mode(training=True):
        model(randn(3, 2, 6, 6))
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == modes
    assert model.backward(np.ones_like(y)).shape == x.shape
    with pytest.raises(TypeError, match=r"^Sequential.mode: training must be True or False, "
                                        r"got 'eval'$"), model.mode("eval"):
        pass


def test_conv_rate_is_settable_and_band_reported():
    conv = Conv2d(2, 3, 3, padding=1, rng=0)
    x = randn(1, 2, 16, 16).astype(np.float32)
    assert conv.last_band is None and conv.last_nbytes == 0
    conv(x)
    full_bytes = conv.last_nbytes
    assert conv.last_band.effective_rate == 0 and full_bytes > 0
    conv.compress_rate = 0.75
    y = conv(x)
    assert conv.last_band.effective_rate >= 0.7 and 0 < conv.last_nbytes < full_bytes / 2
    conv.backward(np.ones_like(y))
    assert conv.last_nbytes == 0
    conv.compress_rate, conv.preserve_energy = 0.0, 0.9
    conv(np.cumsum(np.cumsum(x, axis=2), axis=3))       # smooth: energy at low frequencies
    assert conv.last_band.effective_rate > 0
    conv.compress_rate = 1.5
    with pytest.raises(ValueError, match="compress_rate"):
        conv(x)


def test_array_api_strict_runs_the_same_code_path():
    xs = pytest.importorskip("array_api_strict")
    model = small_model(0.3)
    model.layers.insert(6, Dropout(0.3, rng=0))
    ref = small_model(0.3)
    ref.layers.insert(6, Dropout(0.3, rng=0))
    dev = xs.Device("device1")
    to_device(model, xs, dev)
    assert all(a.device == dev for a in model.params.values())
    x, y = randn(3, 2, 6, 6), np.array([0, 4, 2])
    loss_s, d_s = cross_entropy(model(xs.asarray(x, device=dev)), xs.asarray(y, device=dev))
    loss_n, d_n = cross_entropy(ref(x), y)
    np.testing.assert_allclose(float(loss_s), float(loss_n), rtol=1e-12)
    np.testing.assert_allclose(blconv.to_numpy(model.backward(d_s)), ref.backward(d_n),
                               rtol=1e-9, atol=1e-12)
    for key, g in ref.grads.items():
        np.testing.assert_allclose(blconv.to_numpy(model.grads[key]), g, rtol=1e-9, atol=1e-12)
    to_device(model, "cpu")
    assert all(isinstance(a, np.ndarray) for a in model.buffers.values())


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, exc, match", [
    (lambda: Conv2d(3, 4, 3, groups=2), ValueError,
     r"^Conv2d: in_channels \(3\) must be divisible by groups \(2\)$"),
    (lambda: Conv1d(2, 3, 3, groups=2), ValueError, r"Conv1d: out_channels \(3\) must be"),
    (lambda: Conv2d(2, 4, (3, 3, 3)), TypeError, "Conv2d: kernel_size must be an int or a tuple"),
    (lambda: Conv2d(2, 4, 3, padding="full"), ValueError, "Conv2d: padding must be"),
    (lambda: Conv2d(2, 4, 3, stride=0), ValueError, "Conv2d: stride must be >= 1"),
    (lambda: Conv2d(2, 4, 3, compress_rate=50), ValueError, "Conv2d: compress_rate must be in"),
    (lambda: Conv2d(2, 4, 3, dtype="int32"), TypeError,
     "Conv2d: dtype must be 'float32' or 'float64', got 'int32'"),
    (lambda: Linear(0, 3), ValueError, r"Linear: in_features must be >= 1, got 0"),
    (lambda: Linear(2.5, 3), TypeError, r"Linear: in_features must be an int, got 2.5"),
    (lambda: Linear(2, 3, rng="seed"), TypeError, "Linear: rng must be None, an int seed"),
    (lambda: BatchNorm2d(3, momentum=2), ValueError,
     r"BatchNorm2d: momentum must be a number in \[0, 1\], got 2"),
    (lambda: MaxPool2d(0), ValueError, "MaxPool2d: kernel_size must be >= 1"),
    (lambda: Dropout(1.5), ValueError, r"Dropout: p must be a number in \[0, 1\], got 1.5"),
    (lambda: Sequential(ReLU(), "relu"), TypeError, r"Sequential: layers\[1\] must be a"),
    (lambda: Residual(None), TypeError, "Residual: body must be a blconv.nn.Module"),
], ids=["conv-groups-in", "conv-groups-out", "conv-kernel", "conv-padding", "conv-stride",
        "conv-rate-percent", "dtype", "linear-zero", "linear-float", "rng", "bn-momentum",
        "pool-kernel", "dropout-p", "sequential-item", "residual-body"])
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("layer, x, exc, match", [
    (Linear(3, 2, rng=0), np.ones((2, 4), np.float32), ValueError,
     r"Linear: x.shape\[1\] must be in_features \(3\), got shape \(2, 4\)"),
    (Linear(3, 2, rng=0), np.ones(3, np.float32), ValueError, r"Linear: x must have shape"),
    (BatchNorm2d(3), np.ones((2, 4, 2, 2), np.float32), ValueError,
     r"BatchNorm2d: x.shape\[1\] must be 3, got shape \(2, 4, 2, 2\)"),
    (BatchNorm1d(3), np.ones((2, 3, 2, 2), np.float32), ValueError,
     r"BatchNorm1d: x must have shape \(N, C\) or \(N, C, L\)"),
    (MaxPool2d(3), np.ones((1, 1, 2, 5)), ValueError,
     r"MaxPool2d: input spatial size \(2, 5\) must be >= kernel_size \(3, 3\)"),
    (AvgPool1d(2), np.ones((1, 4)), ValueError, r"AvgPool1d: x must have shape \(N, C, L\)"),
    (Residual(Linear(3, 2, rng=0)), np.ones((2, 3), np.float32), ValueError,
     r"Residual: body output shape \(2, 2\) must equal the shortcut's \(2, 3\)"),
    (ReLU(), [1.0, 2.0], TypeError, "ReLU: x must be an array"),
], ids=["linear-features", "linear-ndim", "bn-channels", "bn-ndim", "pool-small", "pool-ndim",
        "residual-shape", "relu-list"])
def test_forward_errors(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer(x)


def test_backward_needs_a_forward_each_time():
    layer = Linear(2, 2, rng=0)
    with pytest.raises(RuntimeError, match="Linear: backward needs a preceding forward"):
        layer.backward(np.ones((1, 2), np.float32))
    layer(np.ones((1, 2), np.float32))
    layer.backward(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="Linear: backward needs a preceding forward"):
        layer.backward(np.ones((1, 2), np.float32))


@pytest.mark.parametrize("logits, y, exc, match", [
    (np.zeros((4, 3)), np.zeros((4, 1), int), ValueError,
     r"^cross_entropy: y must have shape \(N,\) = \(4,\), got \(4, 1\)$"),
    (np.zeros((4, 3)), np.array([0, 1, 3, 2]), ValueError,
     r"cross_entropy: labels y must lie in \[0, 3\), got values from 0 to 3"),
    (np.zeros((4, 3)), np.zeros(4), TypeError, "cross_entropy: y must hold integer class labels"),
    (np.zeros(3), np.zeros(3, int), ValueError, r"cross_entropy: logits must have shape \(N, K\)"),
    (np.zeros((2, 3), int), np.zeros(2, int), TypeError,
     "cross_entropy: logits must be float32 or float64"),
], ids=["y-shape", "y-range", "y-float", "logits-1d", "logits-int"])
def test_cross_entropy_errors(logits, y, exc, match):
    with pytest.raises(exc, match=match):
        cross_entropy(logits, y)


def test_to_device_errors_and_module_base():
    with pytest.raises(ValueError, match="to_device: target must be 'cpu', 'gpu' or an array"):
        to_device(ReLU(), "tpu")
    with pytest.raises(NotImplementedError):
        Module()(np.ones(2))


def test_relu_propagates_nan():
    from blconv.nn import ReLU
    y = ReLU()(np.array([np.nan, -1.0, 2.0]))
    assert np.isnan(y[0]) and y[1] == 0.0 and y[2] == 2.0
