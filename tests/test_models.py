"""blconv.models: shapes, per-layer rates, specs, set_compression, whole-model gradients."""
import functools
import json

import numpy as np
import pytest

from blconv.models import BUILDERS, build, cnn2d, conv_layers, fcn1d, resnet, set_compression
from blconv.nn import (BatchNorm2d, Conv1d, Conv2d, Dropout, Linear, ReLU, Residual, Sequential,
                       cross_entropy)

import helpers
from helpers import numgrad


randn = functools.partial(helpers.randn, dtype=np.float32)


# --- shapes and structure ---------------------------------------------------------------------
@pytest.mark.parametrize("make, x_shape, n_convs", [
    (lambda: fcn1d(1, 3, channels=(4, 6, 4)), (2, 1, 30), 3),
    (lambda: fcn1d(3, 5, channels=(4, 4), kernels=(7, 2)), (2, 3, 17), 2),
    (lambda: cnn2d(1, 10, width=4), (2, 1, 8, 8), 2),
    (lambda: cnn2d(3, 10, width=4), (2, 3, 32, 32), 2),
    (lambda: resnet(3, 10, width=4, blocks=(1, 1)), (2, 3, 8, 8), 6),
    (lambda: resnet(1, 4, width=2, blocks=(2, 2, 2)), (2, 1, 16, 16), 15),
], ids=["fcn1d", "fcn1d-2blocks", "cnn2d-8x8", "cnn2d-32x32", "resnet-2stages", "resnet-3stages"])
def test_output_shape_dtype_and_conv_count(make, x_shape, n_convs):
    model = make()
    y = model(randn(*x_shape))
    assert y.shape == (x_shape[0], model.spec["kwargs"]["n_classes"])
    assert y.dtype == np.float32
    assert len(conv_layers(model)) == n_convs
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x_shape


def test_float64_models_keep_their_dtype():
    for model, shape in ((fcn1d(1, 2, channels=(2, 2, 2), dtype="float64"), (1, 1, 12)),
                         (resnet(1, 2, width=2, blocks=(1, 1), dtype=np.float64), (2, 1, 8, 8))):
        assert {str(p.dtype) for p in model.params.values()} == {"float64"}
        assert model(randn(*shape, dtype=np.float64)).dtype == np.float64


def test_fcn1d_layout_follows_wang_et_al():
    model = fcn1d(2, 3)
    convs = conv_layers(model)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (2, 128, (8,), "same"), (128, 256, (5,), "same"), (256, 128, (3,), "same")]
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv1d", "BatchNorm1d", "ReLU"] * 3 + ["GlobalAvgPool", "Linear"]
    assert model[-1].in_features == 128


def test_resnet_blocks_projections_and_post_sum_relu():
    model = resnet(3, 10, width=4, blocks=(2, 1))
    blocks = [m for m in model if isinstance(m, Residual)]
    assert len(blocks) == 3
    for i, m in enumerate(model.layers):
        if isinstance(m, Residual):
            assert isinstance(model[i + 1], ReLU)           # ReLU after the sum
    # identity shortcuts in stage 1; stage 2 starts with a strided 1x1 projection + BN
    assert blocks[0].projection is None and blocks[1].projection is None
    proj = blocks[2].projection
    assert isinstance(proj[0], Conv2d) and proj[0].kernel_size == (1, 1)
    assert proj[0].stride == (2, 2) and isinstance(proj[1], BatchNorm2d)
    assert blocks[2].body[0].stride == (2, 2)
    # spatial size halves in stage 2: probe the input of the pooling layer
    x = randn(2, 3, 8, 8)
    for layer in model.layers[:-2]:
        x = layer(x)
    assert x.shape == (2, 8, 4, 4)


def test_dropout_goes_before_the_head():
    model = cnn2d(1, 10, width=2, dropout=0.25)
    assert isinstance(model[-2], Dropout) and model[-2].p == 0.25
    assert isinstance(model[-1], Linear)
    assert not any(isinstance(m, Dropout) for m in cnn2d(1, 10, width=2).modules())


# --- compress rates -------------------------------------------------------------------------
def test_per_layer_rates_reach_the_layers_and_the_bands():
    model = fcn1d(1, 2, channels=(4, 4, 4), compress_rate=[0.0, 0.25, 0.75])
    assert [c.compress_rate for c in conv_layers(model)] == [0.0, 0.25, 0.75]
    model(randn(2, 1, 40))
    eff = [c.last_band.effective_rate for c in conv_layers(model)]
    assert eff[0] == 0.0 and 0.2 <= eff[1] < eff[2] and eff[2] >= 0.7


def test_one_rate_for_all_and_energy_list():
    model = cnn2d(1, 10, width=2, compress_rate=0.5)
    assert [c.compress_rate for c in conv_layers(model)] == [0.5, 0.5]
    model = cnn2d(1, 10, width=2, preserve_energy=[None, 0.9])
    assert [(c.compress_rate, c.preserve_energy) for c in conv_layers(model)] == [
        (0.0, None), (0.0, 0.9)]
    model(randn(2, 1, 8, 8))


@pytest.mark.parametrize("make, n", [
    (lambda r: fcn1d(1, 2, channels=(2, 2, 2), compress_rate=r), 3),
    (lambda r: cnn2d(1, 2, width=2, compress_rate=r), 2),
    (lambda r: resnet(1, 2, width=2, blocks=(1, 1), compress_rate=r), 6),
], ids=["fcn1d", "cnn2d", "resnet"])
def test_rate_list_of_wrong_length_is_refused(make, n):
    name = make(0.0).spec["builder"]
    with pytest.raises(ValueError, match=rf"{name}: compress_rate must be one value or a list "
                                         rf"with one entry per conv layer \({n}\), got a list "
                                         rf"of {n + 1}"):
        make([0.1] * (n + 1))


def test_bad_rates_and_arguments_are_refused():
    with pytest.raises(ValueError, match=r"fcn1d \(conv layer 1\): compress_rate must be in "
                                         r"\[0, 1\), got 50"):
        fcn1d(1, 2, channels=(2, 2, 2), compress_rate=[0, 50, 0])
    with pytest.raises(ValueError, match="either preserve_energy or compress_rate"):
        fcn1d(1, 2, channels=(2, 2, 2), compress_rate=0.5, preserve_energy=0.9)
    with pytest.raises(ValueError, match=r"fcn1d: kernels must have one entry per entry of "
                                         r"channels \(3\), got 2"):
        fcn1d(1, 2, kernels=(3, 3))
    with pytest.raises(ValueError, match=r"cnn2d: dropout must be a number in \[0, 1\)"):
        cnn2d(1, 2, dropout=1.0)
    with pytest.raises(TypeError, match="resnet: dtype must be 'float32' or 'float64'"):
        resnet(1, 2, dtype="int32")
    with pytest.raises(ValueError, match=r"resnet: blocks\[1\] must be >= 1, got 0"):
        resnet(1, 2, blocks=(1, 0))
    with pytest.raises(TypeError, match="fcn1d: seed must be an int"):
        fcn1d(1, 2, seed=1.5)


# --- specs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, x_shape", [
    (lambda: fcn1d(2, 3, channels=(3, 5, 3), kernels=(5, 3, 3), compress_rate=[0, 0.5, 0.25],
                   dropout=0.2, seed=7), (2, 2, 24)),
    (lambda: cnn2d(1, 4, width=3, preserve_energy=0.95, dtype="float64", seed=3), (2, 1, 8, 8)),
    (lambda: resnet(3, 4, width=2, blocks=(1, 2), fft_size="pow2", seed=1), (2, 3, 8, 8)),
], ids=["fcn1d", "cnn2d", "resnet"])
def test_spec_survives_json_and_rebuilds_the_same_model(make, x_shape):
    model = make()
    spec = json.loads(json.dumps(model.spec))
    assert spec == model.spec
    again = build(spec)
    assert again.spec == model.spec
    assert sorted(again.params) == sorted(model.params)
    for k, p in model.params.items():
        np.testing.assert_array_equal(again.params[k], p)
    assert set_compression(again) == set_compression(model)
    model.eval(), again.eval()
    x = randn(*x_shape, dtype=model.params["0.w"].dtype)
    np.testing.assert_array_equal(again(x), model(x))


def test_seed_changes_the_weights():
    a, b = fcn1d(1, 2, channels=(2, 2, 2), seed=0), fcn1d(1, 2, channels=(2, 2, 2), seed=1)
    assert not np.array_equal(a.params["0.w"], b.params["0.w"])


def test_build_refuses_unknown_builders_and_bad_specs():
    with pytest.raises(ValueError, match="build: unknown builder 'vgg'; known builders: cnn2d, "
                                         "fcn1d, resnet"):
        build({"builder": "vgg", "kwargs": {}})
    with pytest.raises(ValueError, match="build: spec must be a dict"):
        build({"builder": "fcn1d"})
    assert sorted(BUILDERS) == ["cnn2d", "fcn1d", "resnet"]


# --- set_compression ------------------------------------------------------------------------
def test_set_compression_sets_returns_and_restores():
    model = resnet(1, 2, width=2, blocks=(1, 1), compress_rate=0.25)
    n = len(conv_layers(model))
    before = set_compression(model)
    assert before == {"compress_rate": [0.25] * n, "preserve_energy": [None] * n}
    rates = [0.1 * i for i in range(n)]
    assert set_compression(model, compress_rate=rates) == before
    assert [c.compress_rate for c in conv_layers(model)] == pytest.approx(rates)
    # energy alone resets the rates to 0; a rate alone resets the energies to None
    set_compression(model, preserve_energy=0.9)
    assert set_compression(model) == {"compress_rate": [0.0] * n, "preserve_energy": [0.9] * n}
    set_compression(model, compress_rate=0.5)
    assert set_compression(model) == {"compress_rate": [0.5] * n, "preserve_energy": [None] * n}
    set_compression(model, **before)
    assert set_compression(model) == before


def test_set_compression_changes_nothing_on_error():
    model = fcn1d(1, 2, channels=(2, 2, 2), compress_rate=[0.1, 0.2, 0.3])
    before = set_compression(model)
    with pytest.raises(ValueError, match=r"set_compression \(conv layer 2\): compress_rate"):
        set_compression(model, compress_rate=[0.5, 0.5, 1.5])
    with pytest.raises(ValueError, match=r"set_compression: preserve_energy .* \(3\), got a "
                                         r"list of 1"):
        set_compression(model, preserve_energy=[0.9])
    assert set_compression(model) == before
    with pytest.raises(TypeError, match="conv_layers: model must be a blconv.nn.Module"):
        set_compression("model", compress_rate=0.5)


def test_conv_layers_of_a_hand_built_model():
    model = Sequential(Conv1d(1, 2, 3, rng=0), Residual(Sequential(Conv1d(2, 2, 1, rng=1))))
    assert [c.kernel_size for c in conv_layers(model)] == [(3,), (1,)]


# --- whole-model gradients against central differences (float64) --------------------------
@pytest.mark.parametrize("rate", [0.0, 0.5], ids=["rate0", "rate0.5"])
@pytest.mark.parametrize("make, x_shape, keys", [
    (lambda r: fcn1d(2, 3, channels=(4, 6, 4), compress_rate=r, dtype="float64", seed=0),
     (3, 2, 16), ["0.w", "0.b", "3.w", "4.w", "7.b", "6.w", "10.w", "10.b"]),
    (lambda r: cnn2d(1, 3, width=4, compress_rate=r, dtype="float64", seed=0),
     (3, 1, 8, 8), ["0.w", "1.w", "1.b", "4.w", "5.w", "8.w", "8.b"]),
], ids=["fcn1d", "cnn2d"])
def test_model_gradient_matches_central_differences(make, x_shape, keys, rate):
    model = make(rate)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    y = np.array([0, 2, 1])

    def loss():
        return float(cross_entropy(model(x), y)[0])

    _, dlogits = cross_entropy(model(x), y)
    model.backward(dlogits)
    grads = {k: np.array(g) for k, g in model.grads.items()}
    params = model.params
    for k in keys:
        p = params[k]
        for flat in rng.choice(p.size, size=min(4, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            num = numgrad(loss, p, idx)
            assert grads[k][idx] == pytest.approx(num, rel=1e-5, abs=1e-8), (k, idx)
    if rate:
        assert all(c.last_band.effective_rate >= 0.4 for c in conv_layers(model))
