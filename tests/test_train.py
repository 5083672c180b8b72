"""blconv.train: fit, evaluate, the checkpoints fit writes, exact resume, NaN guard, callbacks.

The checkpoint files themselves (layout, refusals, record, restore) are tested in
tests/test_checkpoint.py."""
import importlib.util
import json
import os

import numpy as np
import pytest

import blconv
import blconv.train
from blconv.data import Dataset, make_frequency_task
from blconv.models import conv_layers, set_compression
from blconv.nn import Conv1d, GlobalAvgPool, Linear, Sequential, cross_entropy
from blconv.optim import SGD, Adam, CosineLR, ReduceLROnPlateau, StepLR
from blconv.checkpoint import describe_data
from blconv.train import (FORMAT_VERSION, History, NonFiniteLossError, evaluate, fit, load,
                          load_checkpoint, save)
from helpers import assert_same_arrays, snapshot, tiny


@pytest.fixture(scope="module")
def task():
    return make_frequency_task("low", n_samples=64, n_test=48, length=64, seed=0)


# --- fit ------------------------------------------------------------------------------------
def test_fit_learns_the_low_frequency_task(task):
    train, test = task
    model = tiny(channels=(8, 8, 8))
    before = evaluate(model, test)
    h = fit(model, train, test, epochs=6, batch_size=16, seed=0, progress=False,
            optimizer=SGD(model, lr=0.1, momentum=0.9))
    after = evaluate(model, test)
    assert h.loss[-1] < 0.6 * h.loss[0]
    assert h.accuracy[-1] >= 0.9 and after["accuracy"] >= 0.9 > before["accuracy"] + 0.2
    assert after["loss"] < before["loss"]
    assert h.val_accuracy[-1] == after["accuracy"] and h.val_loss[-1] == after["loss"]


def test_history_is_complete_and_json_serialisable(task):
    train, test = task
    model = tiny(compress_rate=[0.0, 0.5, 0.5])
    opt = SGD(model, lr=0.2)
    h = fit(model, train, test, epochs=3, batch_size=32, seed=1, progress=False,
            optimizer=opt, scheduler=StepLR(opt, step_size=1, gamma=0.5))
    d = json.loads(json.dumps(h.to_dict()))
    assert History.from_dict(d) == h
    assert all(len(v) == 3 for v in d.values())
    assert h.lr == [0.2, 0.1, 0.05]
    assert all(0.0 <= a <= 1.0 for a in h.accuracy + h.val_accuracy)
    assert all(t > 0 for t in h.epoch_seconds)
    assert h.effective_rate[-1][0] == 0.0 and min(h.effective_rate[-1][1:]) >= 0.45
    with pytest.raises(ValueError, match="History.from_dict: keys must be"):
        History.from_dict({"loss": []})


class SpyPlateau(ReduceLROnPlateau):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []

    def step(self, metric):
        self.seen.append(metric)
        super().step(metric)


@pytest.mark.parametrize("with_val, monitor", [(True, None), (False, None), (True, "loss")],
                         ids=["val", "no-val", "val-monitor-loss"])
def test_plateau_steps_on_val_loss_else_train_loss(task, with_val, monitor):
    train, test = task
    model = tiny()
    opt = SGD(model, lr=0.1)
    sched = SpyPlateau(opt, patience=0)
    h = fit(model, train, test if with_val else None, epochs=3, batch_size=32, seed=0,
            progress=False, optimizer=opt, scheduler=sched, monitor=monitor)
    assert sched.seen == (h.val_loss if with_val and monitor is None else h.loss)
    assert len(sched.seen) == 3 and h.val_loss[0] != h.loss[0]


def test_monitor_errors(task):
    train, test = task
    model = tiny()
    opt = SGD(model, lr=0.1)
    kw = dict(epochs=1, batch_size=32, seed=0, progress=False, optimizer=opt)
    with pytest.raises(ValueError, match=r"^fit: monitor must be 'loss' \(val is None\), "
                                         r"got 'val_loss'$"):
        fit(model, train, monitor="val_loss", **kw)
    with pytest.raises(ValueError, match=r"^fit: monitor must be 'loss' or 'val_loss', "
                                         r"got 'accuracy'$"):
        fit(model, train, test, monitor="accuracy", **kw)


class Recording:
    """A scheduler of no blconv class: fit steps it with the monitored value all the same."""

    def __init__(self):
        self.seen = []

    def step(self, metric):
        self.seen.append(metric)

    def state_dict(self):
        return {}


def test_any_scheduler_steps_with_the_epochs_monitored_value(task):
    train, test = task
    model = tiny()
    sched = Recording()
    h = fit(model, train, test, epochs=2, batch_size=32, seed=0, progress=False,
            optimizer=SGD(model, lr=0.1), scheduler=sched, monitor="loss")
    assert sched.seen == h.loss


def test_scheduler_and_optimizer_protocol_errors(task):
    train, _ = task
    model = tiny()
    opt = SGD(model, lr=0.1)

    class NoMetric(Recording):
        def step(self):
            pass

    kw = dict(epochs=1, batch_size=32, seed=0, progress=False)
    with pytest.raises(TypeError, match=r"^fit: scheduler.step must take the epoch's metric, "
                                        r"step\(metric\), as blconv.optim's schedulers do; "
                                        r"NoMetric.step has the signature \(\)$"):
        fit(model, train, optimizer=opt, scheduler=NoMetric(), **kw)

    class Bare:                               # no to(): cannot follow the model to a device
        lr = 0.1

        def step(self):
            pass

        def state_dict(self):
            return {}

    with pytest.raises(TypeError, match=r"^fit: optimizer must have step, state_dict, lr, to "):
        fit(model, train, optimizer=Bare(), device="cpu", **kw)
    assert len(fit(model, train, optimizer=Bare(), **kw)) == 1


def test_fit_moves_the_optimizer_buffers_with_the_model(task):
    train, _ = task
    model = tiny()

    class Spy(SGD):
        moved = []

        def to(self, *args, **kwargs):
            self.moved.append(args)
            return super().to(*args, **kwargs)

    opt = Spy(model, lr=0.1, momentum=0.9)
    fit(model, train, epochs=1, batch_size=32, seed=0, progress=False, optimizer=opt)
    assert opt.moved == []
    fit(model, train, epochs=1, batch_size=32, seed=0, progress=False, optimizer=opt,
        device="cpu")
    assert opt.moved == [("cpu",)] and opt.momentum_buffers


def test_shuffle_order_is_the_documented_one(monkeypatch):
    # each example's class is its index; with batch_size = 1 the label sequence is the order
    n = 10
    ds = Dataset(np.zeros((n, 1, 8)), np.arange(n), tuple(str(i) for i in range(n)))
    model = Sequential(Conv1d(1, n, 1, rng=0), GlobalAvgPool(), Linear(n, n, rng=0))
    seen = []

    def spy(logits, y):
        seen.append(int(y[0]))
        return cross_entropy(logits, y)

    monkeypatch.setattr(blconv.train, "cross_entropy", spy)
    fit(model, ds, epochs=2, batch_size=1, seed=5, progress=False, optimizer=SGD(model, lr=0.01))
    expected = [int(i) for e in range(2) for i in np.random.default_rng([5, e]).permutation(n)]
    assert seen == expected


def test_fit_with_progress_bar_runs(task, capsys):
    train, _ = task
    model = tiny()
    h = fit(model, train, epochs=1, batch_size=32, seed=0, optimizer=SGD(model, lr=0.1))
    assert len(h) == 1
    assert "fit" in capsys.readouterr().err


def test_fit_argument_errors(task, tmp_path):
    train, _ = task
    model = tiny()
    opt = SGD(model, lr=0.1)
    with pytest.raises(ValueError, match="fit: resume=True needs checkpoint_dir"):
        fit(model, train, epochs=1, batch_size=8, optimizer=opt, seed=0, resume=True)
    with pytest.raises(ValueError, match="fit: device must be None, 'cpu' or 'gpu', got 'tpu'"):
        fit(model, train, epochs=1, batch_size=8, optimizer=opt, seed=0, device="tpu")
    with pytest.raises(ValueError, match="fit: epochs must be >= 1, got 0"):
        fit(model, train, epochs=0, batch_size=8, optimizer=opt, seed=0)
    with pytest.raises(TypeError, match="fit: train must be a blconv.data.Dataset, got tuple"):
        fit(model, (train.x, train.y), epochs=1, batch_size=8, optimizer=opt, seed=0)
    with pytest.raises(TypeError, match="fit: optimizer must have step, state_dict, lr"):
        fit(model, train, epochs=1, batch_size=8, optimizer=object(), seed=0)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_fit_on_gpu_without_cupy_says_so(task):
    train, _ = task
    model = tiny()
    with pytest.raises(RuntimeError, match="fit: device='gpu' needs CuPy"):
        fit(model, train, epochs=1, batch_size=8, optimizer=SGD(model, lr=0.1), seed=0,
            device="gpu")


@pytest.mark.gpu
def test_fit_on_gpu_matches_numpy_and_checkpoints_load_on_the_host(task, tmp_path):
    train, test = task
    runs = []
    for device in ("cpu", "gpu"):
        model = tiny(compress_rate=0.25, dtype="float64")
        opt = SGD(model, lr=0.1, momentum=0.9)
        h = fit(model, train, test, epochs=2, batch_size=16, seed=0, progress=False,
                optimizer=opt, device=device, checkpoint_dir=tmp_path / device)
        runs.append((h, model))
    (h_cpu, m_cpu), (h_gpu, m_gpu) = runs
    assert type(m_gpu.params["0.w"]).__module__.startswith("cupy")
    np.testing.assert_allclose(h_gpu.loss, h_cpu.loss, rtol=1e-6)
    host = load(tmp_path / "gpu" / "last.npz")
    assert type(host.params["0.w"]) is np.ndarray
    assert_same_arrays(snapshot(host), {k: blconv.to_numpy(v) for k, v in
                                        {**m_gpu.params, **m_gpu.buffers}.items()})
    np.testing.assert_allclose(host.params["0.w"], m_cpu.params["0.w"], rtol=1e-6, atol=1e-9)


# --- evaluate --------------------------------------------------------------------------------
def test_evaluate_matches_a_direct_computation(task):
    _, test = task
    model = tiny(compress_rate=0.25)
    model.train()
    r = evaluate(model, test, batch_size=7)       # 48 = 6 * 7 + 6: uneven batches
    model.eval()
    logits = model(test.x.astype(np.float32))
    loss, _ = cross_entropy(logits, test.y)
    model.train()
    # batches of 7 against one of 48: GEMMs of other sizes sum in another order, so the
    # float32 logits agree to rounding, and a sample whose logits tie may fall either way
    assert r["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert abs(r["accuracy"] - np.mean(np.argmax(logits, axis=1) == test.y)) <= 1 / len(test.y)
    per_layer = [c.last_band.effective_rate for c in conv_layers(model)]
    assert r["effective_rate_per_layer"] == pytest.approx(per_layer, rel=1e-12)
    assert r["effective_rate"] == pytest.approx(np.mean(per_layer), rel=1e-12)


def test_evaluate_at_another_rate_leaves_the_model_unchanged(task):
    train, test = task
    model = tiny(compress_rate=[0.0, 0.25, 0.25], dropout=0.1)
    fit(model, train, epochs=1, batch_size=16, seed=0, progress=False,
        optimizer=SGD(model, lr=0.1))
    model.train()
    model[3].eval()                                    # a mixed-mode model
    modes = [m.training for m in model.modules()]
    settings = set_compression(model)
    bands = [c.last_band for c in conv_layers(model)]
    arrays = snapshot(model)
    own = evaluate(model, test)
    other = evaluate(model, test, compress_rate=0.75)
    assert min(other["effective_rate_per_layer"]) >= 0.7 and other["effective_rate"] >= 0.7
    assert own["effective_rate_per_layer"][0] == 0.0
    assert other["loss"] != own["loss"]
    energy = evaluate(model, test, preserve_energy=0.5)
    assert 0.0 < max(energy["effective_rate_per_layer"]) < 1.0
    assert set_compression(model) == settings
    assert [m.training for m in model.modules()] == modes
    assert [c.last_band for c in conv_layers(model)] == bands
    assert_same_arrays(snapshot(model), arrays)
    assert evaluate(model, test) == own
    # an error midway restores the settings too
    bad = test.replace(x=np.zeros((4, 1, 2, 2)), y=test.y[:4])
    with pytest.raises(ValueError):
        evaluate(model, bad, compress_rate=0.5)
    assert set_compression(model) == settings and [m.training for m in model.modules()] == modes


def test_evaluate_argument_errors(task):
    _, test = task
    with pytest.raises(ValueError, match="evaluate: data must hold at least one example"):
        evaluate(tiny(), test.subset([]))
    with pytest.raises(ValueError, match=r"set_compression: compress_rate .* \(3\), got a list "
                                         r"of 2"):
        evaluate(tiny(), test, compress_rate=[0.5, 0.5])


# --- checkpoints -----------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, task):
    _, test = task
    model = tiny(compress_rate=[0.0, 0.5, 0.25], dropout=0.3, dtype="float64", seed=3)
    opt = SGD(model, lr=0.05, momentum=0.9)
    fit(model, test, epochs=1, batch_size=16, seed=0, progress=False, optimizer=opt)
    set_compression(model, compress_rate=[0.1, 0.2, 0.3])      # differs from the spec now
    model.eval()
    path = tmp_path / "m.npz"
    save(model, path, optimizer=opt, state={"note": "hello", "epoch": 1})
    back = load(path)
    assert back.params["0.w"].dtype == np.float64 and not back.training
    assert set_compression(back) == set_compression(model)
    assert_same_arrays(snapshot(back), snapshot(model))
    x = test.x[:5]
    np.testing.assert_array_equal(back(x), model(x))
    back.train(), model.train()                               # dropout masks continue alike
    np.testing.assert_array_equal(back(x), model(x))
    ck = load_checkpoint(path)
    assert ck.state == {"note": "hello", "epoch": 1} and ck.version == FORMAT_VERSION
    assert ck.classes == {"optimizer": "SGD", "scheduler": None} and ck.scheduler is None
    assert_same_arrays(ck.optimizer["momentum_buffers"], opt.momentum_buffers)
    assert ck.spec == model.spec


# --- the training record ----------------------------------------------------------------------
def test_fit_checkpoints_record_the_training_data(task, tmp_path):
    train, _ = task
    model = tiny()
    fit(model, train, epochs=1, batch_size=32, seed=0, progress=False,
        optimizer=SGD(model, lr=0.1), checkpoint_dir=tmp_path / "a")
    data = load_checkpoint(tmp_path / "a" / "last.npz").record["data"]
    assert (data["name"], data["n_classes"], data["in_channels"], data["shape"]) == (
        "frequency-low", 2, 1, [64])
    info = describe_data(train, name="freq-low", normalisation={"method": "none"})
    fit(model, train, epochs=1, batch_size=32, seed=0, progress=False,
        optimizer=SGD(model, lr=0.1), checkpoint_dir=tmp_path / "b", data_info=info)
    assert load_checkpoint(tmp_path / "b" / "last.npz").record["data"] == info


# --- evaluate refuses labels the model has no class for --------------------------------------
def test_evaluate_refuses_labels_outside_the_models_classes():
    x = np.zeros((4, 1, 16), np.float32)
    three = Dataset(x, np.array([0, 1, 2, 1]), ("a", "b", "c"), "three")
    with pytest.raises(ValueError, match=r"evaluate: the labels of data 'three' must lie in "
                                         r"0\.\.1 \(the model has 2 classes\), got labels "
                                         r"0\.\.2 \(3 classes\)"):
        evaluate(tiny(), three)
    negative = Dataset(x, np.array([0, 1, 1, 0]), ("a", "b"))
    negative.y[0] = -1                                # a Dataset checks y only when built
    with pytest.raises(ValueError, match=r"evaluate: the labels of data must lie in 0\.\.1 "
                                         r"\(the model has 2 classes\), got labels -1\.\.1"):
        evaluate(tiny(), negative)
    fits = Dataset(x, np.array([0, 1, 1, 0]), ("a", "b", "c"))      # labels within the model's
    assert 0.0 <= evaluate(tiny(), fits)["accuracy"] <= 1.0


# --- resume ----------------------------------------------------------------------------------
def _run(train, val, epochs, ckdir=None, resume=False, scramble=False, optimizer="sgd"):
    model = tiny(dropout=0.3, compress_rate=[0.0, 0.25, 0.5], seed=4)
    if scramble:                     # state that only a correct resume overwrites
        for p in model.params.values():
            p *= 2.0
        model[-2].rng.random(100)
    if optimizer == "sgd":
        opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-3)
        sched = CosineLR(opt, t_max=4)
    else:                            # the published FCN recipe; patience 0 so the lr moves
        opt = Adam(model, lr=0.01, weight_decay=1e-3)
        sched = ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.5)
    h = fit(model, train, val, epochs=epochs, batch_size=16, seed=11, progress=False,
            optimizer=opt, scheduler=sched, checkpoint_dir=ckdir, resume=resume)
    return model, opt, h


@pytest.mark.parametrize("interval, stop_at, saved", [
    (0.0, None, [1, 2, 3, 4]),       # every epoch
    (1e9, None, [4]),                # never due: the last epoch only
    (1e9, 2, [2]),                   # stopped by a callback: the epoch it stopped at
])
def test_checkpoint_interval_saves_when_due_and_at_the_end(task, tmp_path, monkeypatch,
                                                           interval, stop_at, saved):
    import blconv.train as T
    train, _ = task
    epochs, real = [], T.save

    def counting(model, path, **kw):
        epochs.append(kw["state"]["epoch"])
        return real(model, path, **kw)
    monkeypatch.setattr(T, "save", counting)

    class Stop:
        def on_epoch_end(self, epoch, row):
            return epoch == stop_at
    model = tiny()
    opt = SGD(model, lr=0.1)
    fit(model, train, epochs=4, batch_size=16, seed=0, progress=False, optimizer=opt,
        checkpoint_dir=tmp_path, checkpoint_interval=interval, callbacks=[Stop()])
    assert epochs == saved
    assert load_checkpoint(tmp_path / "last.npz").state["epoch"] == saved[-1]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "60", True, None])
def test_checkpoint_interval_errors(task, tmp_path, bad):
    train, _ = task
    model = tiny()
    with pytest.raises(ValueError, match=r"fit: checkpoint_interval must be a finite number "
                                         r"of seconds >= 0, got "):
        fit(model, train, epochs=1, batch_size=8, optimizer=SGD(model, lr=0.1), seed=0,
            progress=False, checkpoint_dir=tmp_path, checkpoint_interval=bad)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_interrupted_and_resumed_run_ends_with_identical_weights(task, tmp_path, optimizer):
    train, test = task
    ref, ref_opt, ref_h = _run(train, test, 4, optimizer=optimizer)
    _run(train, test, 2, ckdir=tmp_path, optimizer=optimizer)
    assert load_checkpoint(tmp_path / "last.npz").state["epoch"] == 2
    model, opt, h = _run(train, test, 4, ckdir=tmp_path, resume=True, scramble=True,
                         optimizer=optimizer)
    assert_same_arrays(snapshot(model), snapshot(ref))
    for buffers in type(opt)._BUFFERS:
        assert_same_arrays(getattr(opt, buffers), getattr(ref_opt, buffers))
    assert opt.state_dict().keys() == ref_opt.state_dict().keys()
    assert opt.lr == ref_opt.lr
    if optimizer == "adam":
        assert opt.step_count == ref_opt.step_count == 4 * len(train) // 16
        assert len(set(h.lr)) > 1                  # the plateau schedule did act
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "effective_rate"):
        assert getattr(h, name) == getattr(ref_h, name), name
    # without the checkpoint's state the same call gives other weights
    other, _, _ = _run(train, test, 4, scramble=True, optimizer=optimizer)
    assert not np.array_equal(other.params["0.w"], ref.params["0.w"])


def test_resume_without_a_checkpoint_starts_fresh_and_a_finished_run_stops(task, tmp_path):
    train, _ = task
    ref, _, _ = _run(train, None, 2)
    model, _, h = _run(train, None, 2, ckdir=tmp_path, resume=True)
    assert_same_arrays(snapshot(model), snapshot(ref))
    done, _, h2 = _run(train, None, 2, ckdir=tmp_path, resume=True, scramble=True)
    assert h2.loss == h.loss                                   # nothing trained, state loaded
    assert_same_arrays(snapshot(done), snapshot(ref))


def test_resume_refuses_another_seed_or_optimizer(task, tmp_path):
    train, _ = task
    _run(train, None, 1, ckdir=tmp_path)
    model = tiny(dropout=0.3, compress_rate=[0.0, 0.25, 0.5], seed=4)
    before = snapshot(model)
    opt = SGD(model, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"fit: seed=12 differs from the seed of checkpoint "
                                         r".*last.npz \(11\)"):
        fit(model, train, epochs=2, batch_size=16, seed=12, progress=False, optimizer=opt,
            scheduler=CosineLR(opt, t_max=4), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="fit: scheduler is StepLR but checkpoint .* holds "
                                         "the state of CosineLR"):
        fit(model, train, epochs=2, batch_size=16, seed=11, progress=False, optimizer=opt,
            scheduler=StepLR(opt, 1), checkpoint_dir=tmp_path, resume=True)
    other = tiny(dropout=0.3, seed=4)
    with pytest.raises(ValueError, match="fit: checkpoint .* was written for another model"):
        fit(other, train, epochs=2, batch_size=16, seed=11, progress=False, optimizer=opt,
            scheduler=CosineLR(opt, t_max=4), checkpoint_dir=tmp_path, resume=True)
    assert_same_arrays(snapshot(model), before)               # refused before loading anything
    assert opt.lr == 0.1 and opt.momentum_buffers == {}


# --- non-finite losses -------------------------------------------------------------------------
@pytest.mark.parametrize("relu", [False, True], ids=["loss", "gradient"])
def test_nan_input_names_epoch_and_batch(task, relu):
    train, _ = task
    # put a NaN in the example that epoch 1 (e = 0) visits 20th: batch 2 of 4 at batch_size 16
    order = np.random.default_rng([3, 0]).permutation(len(train))
    x = train.x.copy()
    x[order[19], 0, 5] = np.nan
    if relu:        # NaN passes through BatchNorm and ReLU to the loss, as in PyTorch
        model = tiny()
        what = r"non-finite loss \(nan\)"
    else:
        model = Sequential(Conv1d(1, 3, 5, rng=0), GlobalAvgPool(), Linear(3, 2, rng=1))
        what = r"non-finite loss \(nan\)"
    before = snapshot(model)
    with pytest.raises(NonFiniteLossError, match=rf"fit: {what} at epoch 1 of 3, batch 2 of "
                                                 rf"4$") as info:
        fit(model, train.replace(x=x), epochs=3, batch_size=16, seed=3, progress=False,
            optimizer=SGD(model, lr=0.1))
    assert (info.value.epoch, info.value.batch) == (1, 2)
    assert isinstance(info.value, FloatingPointError)
    after = {k: np.array(p) for k, p in model.params.items()}
    assert all(np.isfinite(p).all() for p in after.values())      # the bad step was not taken
    assert not np.array_equal(after["0.w"], before["0.w"])         # batch 1's step was


def test_non_finite_loss_keeps_the_last_good_checkpoint(task, tmp_path):
    train, _ = task
    model, _, _ = _run(train, None, 2, ckdir=tmp_path)
    good = snapshot(model)
    poisoned = train.replace(x=np.full_like(train.x, np.nan))
    with pytest.raises(FloatingPointError, match=r"epoch 3 of 4, batch 1 of 4; .*last.npz "
                                                 r"still holds epoch 2"):
        _run(poisoned, None, 4, ckdir=tmp_path, resume=True)
    ck = load_checkpoint(tmp_path / "last.npz")
    assert ck.state["epoch"] == 2
    assert_same_arrays(snapshot(ck.model), good)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_training_raises(task, tmp_path):
    train, _ = task
    model = tiny()
    with pytest.raises(NonFiniteLossError, match=r"fit: .* at epoch \d+ of 5, batch \d of 4"):
        fit(model, train, epochs=5, batch_size=16, seed=0, progress=False,
            optimizer=SGD(model, lr=1e30, momentum=0.9), checkpoint_dir=tmp_path)
    assert not os.path.exists(tmp_path / "last.npz")


# --- callbacks -------------------------------------------------------------------------------
ROW_KEYS = ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
            "effective_rate"]


class Recorder:
    """Records every call of the callback protocol; stops at ``stop_at`` (epoch or "begin")."""

    def __init__(self, stop_at=None):
        self.calls, self.rows, self.stop_at = [], [], stop_at

    def on_train_begin(self, info):
        self.calls.append("begin")
        self.info = info
        return self.stop_at == "begin"

    def on_epoch_end(self, epoch, row):
        self.calls.append(epoch)
        self.rows.append(dict(row))
        row["loss"] = -1.0                        # a callback cannot change the history
        return epoch == self.stop_at

    def on_train_end(self, history):
        self.calls.append("end")
        self.history = history


def test_callbacks_see_every_epochs_row(task):
    train, test = task
    model = tiny()
    opt = SGD(model, lr=0.2)
    rec, only_end = Recorder(), type("OnlyEnd", (), {"on_epoch_end": lambda s, e, r: None})()
    h = fit(model, train, test, epochs=3, batch_size=32, seed=1, progress=False,
            optimizer=opt, scheduler=StepLR(opt, step_size=1, gamma=0.5),
            callbacks=(rec, only_end))
    assert rec.calls == ["begin", 1, 2, 3, "end"] and rec.history is h
    assert rec.info["epochs"] == 3 and rec.info["batches_per_epoch"] == 2
    assert rec.info["validation"] is True and len(rec.info["history"]) == 0
    assert [list(r) for r in rec.rows] == [ROW_KEYS] * 3
    assert [r["lr"] for r in rec.rows] == [0.2, 0.1, 0.05]
    assert rec.rows[-1]["val_loss"] == evaluate(model, test)["loss"]
    assert [r["loss"] for r in rec.rows] == h.loss and -1.0 not in h.loss
    assert rec.rows == [h.row(i) for i in range(3)]


def test_a_callback_stops_training_after_every_callback_was_told(task):
    train, _ = task
    model = tiny()
    first, second = Recorder(stop_at=2), Recorder()
    h = fit(model, train, epochs=5, batch_size=32, seed=0, progress=True,
            optimizer=SGD(model, lr=0.1), callbacks=[first, second])
    assert len(h) == 2 and second.calls == ["begin", 1, 2, "end"]
    never = Recorder(stop_at="begin")
    before = snapshot(model)
    h = fit(model, train, epochs=5, batch_size=32, seed=0, progress=False,
            optimizer=SGD(model, lr=0.1), callbacks=[never])
    assert len(h) == 0 and never.calls == ["begin", "end"]
    assert_same_arrays(snapshot(model), before)


def test_on_train_end_is_called_when_fit_raises(task):
    train, _ = task
    model = tiny()

    class Poison(Recorder):                       # a NaN weight fails the first batch of epoch 2
        def on_epoch_end(self, epoch, row):
            model.params["0.w"][...] = np.nan
            return super().on_epoch_end(epoch, row)

    rec = Poison()
    with pytest.raises(NonFiniteLossError, match="at epoch 2 of 3, batch 1 of 4"):
        fit(model, train, epochs=3, batch_size=16, seed=3, progress=False,
            optimizer=SGD(model, lr=0.1), callbacks=[rec])
    assert rec.calls == ["begin", 1, "end"] and len(rec.history) == 1


def _read_csv(path):
    import csv
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    return lines[0], lines[1:]


def _assert_csv_equals(path, h):
    header, lines = _read_csv(path)
    assert header == ["epoch"] + ROW_KEYS
    assert [int(line[0]) for line in lines] == list(range(1, len(h) + 1))
    for name, column in zip(ROW_KEYS, zip(*(line[1:] for line in lines))):
        if name == "effective_rate":
            back = [json.loads(c) for c in column]
        else:
            back = [None if c == "" else float(c) for c in column]
        assert back == getattr(h, name), name


def test_csv_logger_writes_the_history_line_by_line(task, tmp_path):
    train, test = task
    path = tmp_path / "log.csv"
    seen = []

    class Reader:                                # runs after the logger: its line is there
        def on_epoch_end(self, epoch, row):
            seen.append(len(_read_csv(path)[1]))

    for val in (test, None):
        model = tiny(compress_rate=[0.0, 0.25, 0.5])
        seen.clear()
        h = fit(model, train, val, epochs=3, batch_size=32, seed=0, progress=False,
                optimizer=SGD(model, lr=0.1), callbacks=[blconv.train.CSVLogger(path), Reader()])
        assert seen == [1, 2, 3]
        _assert_csv_equals(path, h)
    with pytest.raises(TypeError, match=r"^CSVLogger: path must be a str or os.PathLike, "
                                        r"got int$"):
        blconv.train.CSVLogger(3)


def test_csv_logger_and_early_stopping_resume_as_if_never_interrupted(task, tmp_path):
    train, _ = task

    def run(epochs, ckdir=None, resume=False, log=None):
        model = tiny(seed=4)
        stop = blconv.train.EarlyStopping("loss", patience=1, min_delta=1e-3)
        callbacks = [stop] + ([blconv.train.CSVLogger(log)] if log else [])
        h = fit(model, train, epochs=epochs, batch_size=16, seed=2, progress=False,
                optimizer=SGD(model, lr=1e-9), checkpoint_dir=ckdir, resume=resume,
                callbacks=callbacks)
        return h, stop

    # lr 1e-9: the loss stays within 1e-3 of epoch 1's, so epochs 2 and 3 do not improve
    ref, ref_stop = run(10)
    assert len(ref) == 3 and (ref_stop.best_epoch, ref_stop.stopped_epoch) == (1, 3)
    run(2, ckdir=tmp_path)
    h, stop = run(10, ckdir=tmp_path, resume=True, log=tmp_path / "log.csv")
    assert len(h) == 3 and stop.stopped_epoch == 3 and h.loss == ref.loss
    _assert_csv_equals(tmp_path / "log.csv", h)
    again, stop = run(10, ckdir=tmp_path, resume=True)       # stopped already: no epoch more
    assert len(again) == 3 and stop.stopped_epoch == 3


@pytest.mark.parametrize("mode, patience, min_delta, values, stopped, best", [
    ("min", 2, 0.0, [5, 4, 4, 4.5, 3.9, 4, 4, 4], 8, 3.9),
    ("min", 0, 0.0, [5, 4, 4], 3, 4),
    ("min", 1, 0.5, [5, 4.6, 4.7], 3, 5),
    ("max", 1, 0.0, [0.5, 0.7, 0.6, 0.8, 0.8, 0.75], 6, 0.8),
    ("min", 1, 0.0, [1.0, float("nan"), float("nan")], 3, 1.0),
    ("min", 3, 0.0, [3, 2, 1, 0.5, 0.4], None, 0.4),
], ids=["patience", "patience-0", "min-delta", "max", "nan", "never"])
def test_early_stopping_stops_at_the_documented_epoch(mode, patience, min_delta, values,
                                                      stopped, best):
    stop = blconv.train.EarlyStopping("val_accuracy" if mode == "max" else "val_loss",
                                      patience=patience, min_delta=min_delta, mode=mode)
    assert stop.on_train_begin({"validation": True, "history": History()}) is False
    said = [stop.on_epoch_end(e, {stop.monitor: v}) for e, v in enumerate(values, 1)]
    assert said == [False] * (len(values) - 1) + [stopped is not None]
    assert stop.stopped_epoch == stopped and stop.best == best


def test_early_stopping_in_fit_stops_at_the_right_epoch(task):
    train, test = task
    model = tiny()
    stop = blconv.train.EarlyStopping("val_accuracy", patience=0, mode="max", min_delta=2.0)
    h = fit(model, train, test, epochs=6, batch_size=32, seed=0, progress=False,
            optimizer=SGD(model, lr=0.1), callbacks=[stop])
    # an accuracy never gains 2.0: epoch 1 sets the best, epoch 2 is the first bad one
    assert len(h) == 2 and stop.stopped_epoch == 2 and stop.best == h.val_accuracy[0]


def test_callback_and_early_stopping_errors(task):
    train, _ = task
    model = tiny()
    kw = dict(epochs=1, batch_size=32, seed=0, progress=False, optimizer=SGD(model, lr=0.1))
    with pytest.raises(TypeError, match=r"^fit: callbacks\[1\] must have at least one of the "
                                        r"methods on_train_begin, on_epoch_end, on_train_end, "
                                        r"got object$"):
        fit(model, train, callbacks=[Recorder(), object()], **kw)
    with pytest.raises(TypeError, match=r"^fit: callbacks must be a list or tuple of callbacks "
                                        r".*got Recorder$"):
        fit(model, train, callbacks=Recorder(), **kw)
    with pytest.raises(ValueError, match=r"^EarlyStopping: monitor='val_loss' needs a "
                                         r"validation set"):
        fit(model, train, callbacks=[blconv.train.EarlyStopping()], **kw)
    for kwargs, error, match in [
            (dict(monitor="lr"), ValueError, r"monitor must be one of \['loss', 'accuracy'"),
            (dict(mode="up"), ValueError, r"mode must be 'min' or 'max', got 'up'"),
            (dict(patience=-1), ValueError, r"patience must be >= 0, got -1"),
            (dict(patience=1.5), TypeError, r"patience must be an int, got 1.5"),
            (dict(min_delta=-0.1), ValueError, r"min_delta must be a finite number >= 0"),
            (dict(min_delta=float("inf")), ValueError, r"min_delta must be a finite number")]:
        with pytest.raises(error, match=r"^EarlyStopping: " + match):
            blconv.train.EarlyStopping(**kwargs)
