"""blconv.nn.calibrate: a band chosen once from a whole data set, and batch independence."""
import json

import numpy as np
import pytest

import blconv
from blconv.band import energy_family, energy_keep
from blconv.checkpoint import load_checkpoint, save
from blconv.data import Dataset
from blconv.models import conv_layers, fcn1d, set_compression
from blconv.nn import Conv1d, Conv2d, Linear, ReLU, Sequential, calibrate
from blconv.train import evaluate, load

from helpers import two_sided_mask


def _low_and_one_high(n=6, length=48, seed=0):
    """``n`` slow sines plus a little noise, and one fast one (energy near Nyquist) last."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    low = np.sin(2 * np.pi * 2 * t / length + rng.uniform(0, 6, (n - 1, 1, 1)))
    high = np.sin(2 * np.pi * 0.45 * t + 0.3)[None, None, :] * 3.0
    x = np.concatenate([low, high]) + 0.01 * rng.standard_normal((n, 1, length))
    return x


def _one_layer(d=1, energy=0.9, dtype="float64"):
    conv = (Conv1d if d == 1 else Conv2d)(1, 3, 5, padding=2, preserve_energy=energy,
                                         dtype=dtype, rng=0)
    return Sequential(conv)


def _rows_alone(model, x):
    return np.concatenate([model(x[i:i + 1]) for i in range(len(x))])


# --- the problem: per-batch bands -----------------------------------------------------------------
def test_per_batch_energy_makes_a_prediction_depend_on_the_batch():
    """One high-frequency sample widens the band of the whole batch: the slow samples are
    computed differently alone and in its company."""
    x = _low_and_one_high()
    model = _one_layer().eval()
    y_alone = model(x[:1])
    band_alone = model[0].last_band
    y_batch = model(x)
    band_batch = model[0].last_band
    assert band_batch.keep[0] > 2 * band_alone.keep[0]
    assert np.max(np.abs(y_batch[:1] - y_alone)) > 1e-2
    assert np.max(np.abs(model(x[:3]) - _rows_alone(model, x[:3]))) < 1e-1   # slow ones agree...
    assert not np.allclose(model(x), _rows_alone(model, x), atol=1e-6)      # ...not with the fast


# --- after calibration: one band for every sample -----------------------------------------------
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_calibrated_predictions_do_not_depend_on_the_batch(dtype, tol):
    x = _low_and_one_high(n=7)
    model = fcn1d(1, 3, channels=(4, 6, 4), preserve_energy=0.9, dtype=dtype, seed=1).eval()
    x = x.astype(dtype)
    before = np.max(np.abs(model(x) - _rows_alone(model, x)))
    assert before > 1e-3
    bands = calibrate(model, x)
    assert [c.frozen_band for c in conv_layers(model)] == bands
    whole = model(x)
    scale = np.max(np.abs(whole))
    for size in (1, 3, len(x)):
        parts = np.concatenate([model(x[i:i + size]) for i in range(0, len(x), size)])
        np.testing.assert_allclose(parts, whole, rtol=tol, atol=tol * scale)
    assert all(c.last_band == b for c, b in zip(conv_layers(model), bands))


def test_a_frozen_layer_equals_the_core_with_that_band():
    x = _low_and_one_high()
    model = _one_layer()
    (band,) = calibrate(model, x[:3], preserve_energy=0.95)
    conv = model[0]
    np.testing.assert_array_equal(
        model(x), blconv.conv1d(x, conv.params["w"], conv.params["b"], padding=2, band=band))


# --- the band chosen: against an independent aggregate ------------------------------------------
def _smallest_family_band(power, fft_shape, energy):
    """The first band of the family whose two-sided energy fraction reaches ``energy``, from
    the full two-sided power spectrum (no one-sided weights involved)."""
    total = power.sum()
    for keep in energy_family(fft_shape):
        if power[two_sided_mask(fft_shape, keep)].sum() >= energy * total * (1 - 1e-12):
            return keep
    raise AssertionError("no band of the family holds the energy")


@pytest.mark.parametrize("energy", [0.8, 0.9, 0.99])
@pytest.mark.parametrize("d", [1, 2])
def test_the_band_holds_the_energy_of_the_whole_set(d, energy):
    rng = np.random.default_rng(3)
    size = (40,) if d == 1 else (12, 10)
    x = rng.standard_normal((5, 1) + size)
    for axis in range(2, 2 + d):                        # random walks: mostly low frequencies
        x = np.cumsum(x, axis=axis)
    x = x - x.mean(axis=tuple(range(2, 2 + d)), keepdims=True)
    x = x + 2 * np.abs(x).mean()                        # and a DC large enough to weigh
    model = _one_layer(d, energy=energy)
    batches = [x[:2], x[2:3], x[3:]]                    # uneven batches: the sum is over all
    (band,) = calibrate(model, batches)
    n = blconv.band_for(x.shape, (3, 1) + (5,) * d, padding=2).fft_shape
    assert band.fft_shape == n
    # one-sided Parseval-weighted float64 energy, computed here
    spectrum = np.fft.rfftn(x, s=n, axes=tuple(range(2, 2 + d)))
    weights = np.full(n[-1] // 2 + 1, 2.0)
    weights[0] = 1.0
    if n[-1] % 2 == 0:
        weights[-1] = 1.0
    aggregate = (np.abs(spectrum) ** 2).sum(axis=(0, 1)) * weights
    assert band.keep == energy_keep(aggregate, n, energy)
    # and the same band from the two-sided spectrum, by search
    power = (np.abs(np.fft.fftn(x, s=n, axes=tuple(range(2, 2 + d)))) ** 2).sum(axis=(0, 1))
    assert band.keep == _smallest_family_band(power, n, energy)
    assert band.keep != energy_family(n)[-1]             # the test means something


def test_layers_are_measured_in_order_each_on_the_frozen_output_of_the_last():
    x = _low_and_one_high(n=5, length=32)
    first = Conv1d(1, 2, 3, padding=1, preserve_energy=0.8, dtype="float64", rng=0)
    second = Conv1d(2, 2, 3, padding=1, preserve_energy=0.8, dtype="float64", rng=1)
    model = Sequential(first, ReLU(), second)
    band1, band2 = calibrate(model, x)
    h = np.maximum(blconv.conv1d(x, first.params["w"], first.params["b"], padding=1,
                                 band=band1), 0)
    n = band2.fft_shape
    power = (np.abs(np.fft.fft(h, n=n[0], axis=2)) ** 2).sum(axis=(0, 1))
    assert band2.keep == _smallest_family_band(power, n, 0.8)


def test_one_energy_for_all_or_each_layer_its_own():
    x = _low_and_one_high(length=32)
    model = fcn1d(1, 2, channels=(2, 2, 2), preserve_energy=[0.5, 0.9, 0.99], dtype="float64")
    calibrate(model, x)
    assert [c.preserve_energy for c in conv_layers(model)] == [0.5, 0.9, 0.99]
    model = fcn1d(1, 2, channels=(2, 2, 2), compress_rate=0.5, dtype="float64")
    calibrate(model, x, preserve_energy=0.7)
    assert [(c.compress_rate, c.preserve_energy) for c in conv_layers(model)] == [(0.0, 0.7)] * 3


def test_data_as_dataset_array_or_batches_gives_one_band():
    x = _low_and_one_high(n=9, length=32).astype(np.float32)
    ds = Dataset(x, np.zeros(9, dtype=np.int64), ("a",), "toy")
    got = []
    for data, kw in ((ds, dict(batch_size=4)), (x, dict(batch_size=2)), ([x[:5], x[5:]], {}),
                     (tuple(x[i:i + 1] for i in range(9)), {})):
        model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9, seed=0)
        got.append([b.keep for b in calibrate(model, data, **kw)])
    assert got[1:] == got[:1] * 3


def test_calibration_leaves_mode_caches_and_buffers_alone():
    x = _low_and_one_high(length=32).astype(np.float32)
    model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9)
    model(x[:2])                                     # a training-mode forward: caches, last_band
    buffers = {k: np.array(v) for k, v in model.buffers.items()}
    last = [c.last_band for c in conv_layers(model)]
    calibrate(model, x)
    assert model.training and all(m.training for m in model.modules())
    assert [c.last_band for c in conv_layers(model)] == last
    assert all(np.array_equal(v, model.buffers[k]) for k, v in buffers.items())
    assert all(c._energy_hook is None for c in conv_layers(model))


# --- unfreezing, other policies, evaluation ------------------------------------------------------
def test_unfreeze_and_set_compression():
    x = _low_and_one_high()
    model = _one_layer()
    calibrate(model, x[:3])
    conv = model[0]
    frozen = conv.frozen_band
    previous = set_compression(model, compress_rate=0.5)     # a new policy drops the band
    assert conv.frozen_band is None and conv(x).shape[0] == len(x)
    assert conv.last_band.effective_rate >= 0.5
    assert previous["frozen_band"] == [{"fft_shape": list(frozen.fft_shape),
                                        "keep": list(frozen.keep)}]
    set_compression(model, **previous)
    assert conv.frozen_band == frozen and conv.preserve_energy == 0.9
    conv.frozen_band = None                                   # per-batch energy again
    model(x)
    assert conv.last_band.keep[0] > frozen.keep[0]


def test_evaluate_at_another_rate_keeps_the_frozen_band():
    x = _low_and_one_high(length=32).astype(np.float32)
    ds = Dataset(x, np.array([0, 1, 0, 1, 0, 1]), ("a", "b"), "toy")
    model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9)
    bands = calibrate(model, ds)
    r = evaluate(model, ds, compress_rate=0.75)
    assert r["effective_rate"] >= 0.75
    assert [c.frozen_band for c in conv_layers(model)] == bands
    frozen_rate = np.mean([b.effective_rate for b in bands])
    assert evaluate(model, ds, batch_size=1)["effective_rate"] == pytest.approx(frozen_rate)


def test_an_input_of_another_size_is_refused_by_a_frozen_layer():
    model = _one_layer()
    calibrate(model, _low_and_one_high(length=48))
    with pytest.raises(ValueError, match=r"Conv1d: the frozen band was chosen on the FFT grid "
                                         r"\(50,\), but an input of spatial shape \(40,\) gives "
                                         r"\(42,\); calibrate again"):
        model(np.ones((1, 1, 40)))


# --- checkpoints ---------------------------------------------------------------------------------
def test_frozen_bands_survive_a_checkpoint(tmp_path):
    x = _low_and_one_high(length=32).astype(np.float32)
    model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9).eval()
    bands = calibrate(model, x)
    path = tmp_path / "m.npz"
    save(model, path)
    back = load(path)
    assert [c.frozen_band for c in conv_layers(back)] == bands
    assert repr(back) == repr(model) and "frozen band keep=" in repr(back)
    np.testing.assert_array_equal(back(x), model(x))
    record = load_checkpoint(path).record
    assert [layer["frozen_band"] for layer in record["layers"]] == [
        {"fft_shape": list(b.fft_shape), "keep": list(b.keep)} for b in bands]


def test_a_checkpoint_without_frozen_bands_still_loads(tmp_path):
    model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9)
    new, old = tmp_path / "new.npz", tmp_path / "old.npz"
    save(model, new)
    with np.load(new, allow_pickle=False) as z:
        arrays = dict(z)
    meta = json.loads(arrays["__meta__"].tobytes().decode("utf-8"))
    assert "frozen_band" not in meta["compression"]
    for layer in meta["record"]["layers"]:                     # as written before calibration
        del layer["frozen_band"]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(old, **arrays)
    back = load(old)
    assert all(c.frozen_band is None and c.preserve_energy == 0.9 for c in conv_layers(back))


# --- bad arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize("make, kwargs, err, match", [
    (lambda: "model", {}, TypeError, r"calibrate: model must be a blconv.nn.Module, got str"),
    (lambda: Sequential(Linear(2, 2)), {}, ValueError,
     r"calibrate: model has no Conv1d or Conv2d layer"),
    (lambda: fcn1d(1, 2, channels=(2, 2, 2)), {}, ValueError,
     r"calibrate: preserve_energy=None takes each conv layer's own, but layer '0' has none "
     r"\(compress_rate=0.0\); pass preserve_energy=E"),
    (lambda: fcn1d(1, 2, channels=(2, 2, 2)), dict(preserve_energy=1.5), ValueError,
     r"calibrate: preserve_energy must be in \(0, 1\], got 1.5"),
    (lambda: fcn1d(1, 2, channels=(2, 2, 2)), dict(preserve_energy="0.9"), TypeError,
     r"calibrate: preserve_energy must be None or a real number"),
    (lambda: fcn1d(1, 2, channels=(2, 2, 2)), dict(preserve_energy=0.9, batch_size=0),
     ValueError, r"calibrate: batch_size must be >= 1, got 0"),
], ids=["model", "no-conv", "no-energy", "energy-range", "energy-type", "batch-size"])
def test_bad_arguments(make, kwargs, err, match):
    with pytest.raises(err, match=match):
        calibrate(make(), np.ones((2, 1, 16), np.float32), **kwargs)


@pytest.mark.parametrize("data, err, match", [
    ((np.ones((1, 1, 16)) for _ in range(2)), TypeError,
     r"calibrate: data must be a blconv.data.Dataset, an array \(N, C_in, \*spatial\) or a "
     r"list of such arrays \(batches\), got generator"),
    (np.ones((0, 1, 16)), ValueError, r"calibrate: data must hold at least one example, got 0"),
    (np.ones((4, 16)), ValueError, r"calibrate: data must be \(N, C_in, \*spatial\) inputs, got "
                                   r"an array of shape \(4, 16\)"),
    ([np.ones((1, 1, 16)), "x"], TypeError, r"calibrate: data\[1\] must be an array"),
    ([np.ones((2, 1, 16)), np.ones((2, 1, 20))], ValueError,
     r"calibrate: every calibration input must give conv layer '0' the same FFT grid; an input "
     r"of spatial shape \(20,\) gives \(24,\), an earlier one \(20,\)"),
], ids=["generator", "empty", "not-nchw", "not-array", "sizes"])
def test_bad_data_changes_nothing(data, err, match):
    model = fcn1d(1, 2, channels=(2, 2, 2), preserve_energy=0.9)
    calibrate(model, np.ones((2, 1, 16)))
    before = [c.frozen_band for c in conv_layers(model)]
    with pytest.raises(err, match=match):
        calibrate(model, data, preserve_energy=0.5)
    assert [c.frozen_band for c in conv_layers(model)] == before
    assert [c.preserve_energy for c in conv_layers(model)] == [0.9] * 3


@pytest.mark.parametrize("band, err, match", [
    ("(3,)", TypeError, r"Conv1d: frozen_band must be a blconv.Band or None, got str"),
    (blconv.Band.from_keep((8, 8), (2, 2)), ValueError,
     r"Conv1d: frozen_band must have 1 fft_shape and keep entries"),
    (blconv.Band.from_keep((8,), (6,)), ValueError,
     r"Conv1d: frozen_band.keep must lie in 1..n // 2 \+ 1 per axis, got keep=\(6,\)"),
], ids=["type", "axes", "keep"])
def test_bad_frozen_band(band, err, match):
    conv = Conv1d(1, 1, 3)
    with pytest.raises(err, match=match):
        conv.frozen_band = band
    assert conv.frozen_band is None


def test_set_compression_refuses_bad_frozen_bands_and_changes_nothing():
    model = fcn1d(1, 2, channels=(2, 2, 2))
    with pytest.raises(ValueError, match=r"set_compression \(conv layer 1\): frozen_band must "
                                         r"have one entry per spatial axis \(1\)"):
        set_compression(model, frozen_band=[None, {"fft_shape": [8, 8], "keep": [2, 2]}, None])
    with pytest.raises(ValueError, match=r"set_compression \(conv layer 0\): frozen_band must "
                                         r"be None, a blconv.Band or"):
        set_compression(model, frozen_band=[{"keep": [2]}, None, None])
    assert all(c.frozen_band is None for c in conv_layers(model))


# --- other namespaces, training ------------------------------------------------------------------
def test_array_api_strict_calibrates_as_numpy_does():
    xs = pytest.importorskip("array_api_strict")
    from blconv.nn import to_device
    x = _low_and_one_high(n=5, length=32)
    ref = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9, dtype="float64", seed=2)
    model = to_device(fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9, dtype="float64",
                            seed=2), xs, xs.Device("device1"))
    assert [b.keep for b in calibrate(model, x)] == [b.keep for b in calibrate(ref, x)]
    x_dev = xs.asarray(x, device=xs.Device("device1"))
    got = blconv.to_numpy(model.eval()(x_dev))
    np.testing.assert_allclose(got, ref.eval()(x), rtol=1e-10, atol=1e-12)
    alone = np.concatenate([blconv.to_numpy(model(x_dev[i:i + 1, ...])) for i in range(5)])
    np.testing.assert_allclose(alone, got, rtol=1e-10, atol=1e-12)


def test_a_resumed_run_with_the_calibrate_callback_ends_as_an_uninterrupted_one(tmp_path):
    from blconv.optim import SGD
    from blconv.train import Calibrate, fit
    x = _low_and_one_high(n=12, length=32).astype(np.float32)
    train = Dataset(x, np.arange(12) % 2, ("a", "b"), "toy")

    def run(epochs, ckpt, resume=False, model=None):
        model = model or fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.95, seed=3)
        fit(model, train, epochs=epochs, batch_size=5, optimizer=SGD(model, lr=0.05),
            seed=0, progress=False, checkpoint_dir=ckpt, resume=resume,
            callbacks=[Calibrate(model, train)])
        return model

    whole = run(3, tmp_path / "a")
    two = run(2, tmp_path / "b")
    # the checkpoint of epoch 2 holds the bands epoch 2 trained with (frozen after epoch 1):
    # not those the callback froze after epoch 2, which epoch 3 trains with
    saved = [c.frozen_band for c in conv_layers(load(tmp_path / "b" / "last.npz"))]
    assert saved != [c.frozen_band for c in conv_layers(two)]
    resumed = run(3, tmp_path / "b", resume=True)
    assert [c.frozen_band for c in conv_layers(resumed)] == \
        [c.frozen_band for c in conv_layers(whole)]
    for k, v in whole.params.items():
        np.testing.assert_array_equal(resumed.params[k], v, err_msg=k)
