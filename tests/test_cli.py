"""The command line: tiny real runs end to end, and clear errors."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from blconv import experiments as E
from blconv.checkpoint import load_checkpoint, save
from blconv.cli import main
from blconv.models import cnn2d, fcn1d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--epochs", "1", "--width", "4", "--no-progress", "--batch-size", "32"]


def test_sweep_writes_records_pandas_can_read(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--datasets", "ItalyPowerDemand", "--rates", "0", "0.5",
                 "--test-rates", "0", "0.25", "0.5", "--seeds", "0", "1", "--out", str(out)]
                + TINY) == 0
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 2 * 2 * 3                   # train rates x seeds x test rates
    required = {"dataset", "model", "seed", "train_compress_rate", "test_compress_rate",
                "test_accuracy", "effective_rate", "epochs", "train_seconds"}
    assert all(required <= set(r) for r in records)
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in records)
    assert {(r["train_compress_rate"], r["test_compress_rate"]) for r in records} == {
        (a, b) for a in (0.0, 0.5) for b in (0.0, 0.25, 0.5)}
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records) and set(rows[0]) == set(E.COLUMNS)
    assert float(rows[0]["test_accuracy"]) == records[0]["test_accuracy"]
    assert (out / "accuracy_vs_compression.png").stat().st_size > 0
    assert (out / "heatmap_ItalyPowerDemand.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "ItalyPowerDemand" in printed and "accuracy %" in printed
    # --no-progress: plain lines, one per finished run, and a last summary line
    assert "\n[4/4] ItalyPowerDemand rate " in printed
    assert "\ndone: 4/4 epochs (100%), runs 4/4, elapsed " in printed


def test_train_with_the_adam_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "ItalyPowerDemand", "--optimizer", "adam", "--out",
                 str(out), "--epochs", "2", "--width", "4", "--no-progress",
                 "--batch-size", "32"]) == 0
    saved = json.loads((out / "history.json").read_text())
    assert (saved["run"]["optimizer"], saved["run"]["lr"], saved["run"]["weight_decay"],
            saved["run"]["momentum"]) == ("adam", 1e-3, 0.0, None)
    assert saved["history"]["lr"] == [1e-3, 1e-3]
    from blconv.train import load_checkpoint
    ck = load_checkpoint(out / "checkpoints" / "last.npz")
    assert ck.classes == {"optimizer": "Adam", "scheduler": "ReduceLROnPlateau"}
    assert ck.optimizer["step_count"] == 2 * 3          # 67 training series: batches 32, 32, 3
    assert ck.scheduler["patience"] == 50 and ck.scheduler["factor"] == 0.5
    capsys.readouterr()
    sweep = tmp_path / "sweep"
    assert main(["sweep", "--datasets", "ItalyPowerDemand", "--rates", "0", "--optimizer",
                 "adam", "--lr", "0.003", "--out", str(sweep)] + TINY) == 0
    (record,) = json.loads((sweep / "results.json").read_text())
    assert record["optimizer"] == "adam"
    (name,) = (sweep / "runs").iterdir()
    assert json.loads(name.read_text())["config"]["lr"] == 0.003


def test_train_then_eval_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "ItalyPowerDemand", "--compress-rate", "0.5",
                 "--out", str(out)] + TINY) == 0
    hist = json.loads((out / "history.json").read_text())
    assert hist["run"]["train_compress_rate"] == 0.5 and len(hist["history"]["loss"]) == 1
    for ck in (out / "model.npz", out / "checkpoints" / "last.npz"):
        data = load_checkpoint(ck).record["data"]
        assert (data["name"], data["n_classes"], data["in_channels"], data["shape"],
                data["normalisation"]) == ("ItalyPowerDemand", 2, 1, [24], {
                    "method": "znorm", "per": "series", "ddof": 1})
    capsys.readouterr()
    # no --dataset: the checkpoint's own
    assert main(["eval", str(out / "model.npz"), "--test-rates", "0", "0.5"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert lines[0] == "ItalyPowerDemand: test split, 1029 examples" and printed.err == ""
    assert len(lines) == 4 and lines[2].split()[0] == "0.00" and lines[3].split()[0] == "0.50"
    assert f"{100 * hist['test']['accuracy']:.1f}" == lines[3].split()[2]


@pytest.mark.parametrize("each_epoch", [False, True], ids=["at-the-end", "each-epoch"])
def test_train_with_preserve_energy_saves_a_calibrated_model(tmp_path, capsys, each_epoch):
    from blconv.models import conv_layers
    from blconv.nn import calibrate
    from blconv.train import evaluate
    out = tmp_path / "run"
    extra = ["--calibrate-each-epoch", "--epochs", "2"] if each_epoch else []
    assert main(["train", "--dataset", "ItalyPowerDemand", "--preserve-energy", "0.8",
                 "--out", str(out)] + TINY + extra) == 0
    printed = capsys.readouterr().out
    assert "with the bands calibrated on the training set" in printed
    assert "with per-batch bands" in printed
    model = load_checkpoint(out / "model.npz").model
    bands = [c.frozen_band for c in conv_layers(model)]
    assert all(b is not None for b in bands) and "frozen band keep=" in repr(model)
    # the bands are those of the trained weights on the whole training set
    trained = load_checkpoint(out / "checkpoints" / "last.npz").model
    # the training checkpoint of the last epoch holds the bands it trained with: frozen after
    # the epoch before with --calibrate-each-epoch, none (per-batch) without
    during = [c.frozen_band for c in conv_layers(trained)]
    hist = json.loads((out / "history.json").read_text())
    if each_epoch:
        assert all(b is not None for b in during)
        assert hist["history"]["effective_rate"][-1] == [b.effective_rate for b in during]
    else:
        assert during == [None] * 3
    train, test = E.load_dataset("ItalyPowerDemand")
    x = train.x.astype(np.float32)
    assert [b.keep for b in calibrate(trained, x)] == [b.keep for b in bands]
    ev = evaluate(model, test.replace(x=test.x.astype(np.float32)))
    assert hist["test"]["accuracy"] == ev["accuracy"]
    assert hist["test"]["effective_rate"] == pytest.approx(
        np.mean([b.effective_rate for b in bands]))
    assert 0 <= hist["test_per_batch"]["accuracy"] <= 1


def test_calibrate_each_epoch_needs_preserve_energy(tmp_path, capsys):
    assert main(["train", "--dataset", "ItalyPowerDemand", "--calibrate-each-epoch",
                 "--out", str(tmp_path / "run")] + TINY) == 2
    assert "--calibrate-each-epoch needs --preserve-energy" in capsys.readouterr().err


# --- eval and what a checkpoint was trained on --------------------------------------------------
def _saved(path, model, dataset):
    """``model`` saved as ``blconv train`` saves it after training on ``dataset``."""
    train, _ = E.load_dataset(dataset)
    save(model, path, data_info=E.describe_training_data(dataset, train))
    return str(path)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    arrow = _saved(root / "arrowhead.npz", fcn1d(1, 3, channels=(2, 2, 2)), "ArrowHead")
    digits = _saved(root / "digits.npz", cnn2d(1, 10, width=2), "digits")
    gunpoint = _saved(root / "gunpoint.npz", fcn1d(1, 2, channels=(2, 2, 2)), "GunPoint")
    old = root / "old.npz"                                  # as a blconv before the record
    with np.load(arrow, allow_pickle=False) as z:
        arrays = dict(z)
    meta = json.loads(arrays["__meta__"].tobytes().decode("utf-8"))
    del meta["record"]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(old, **arrays)
    bare = root / "bare.npz"
    save(fcn1d(1, 2, channels=(2, 2, 2)), bare)             # saved without data_info
    return {"ArrowHead": arrow, "digits": digits, "GunPoint": gunpoint, "old": str(old),
            "bare": str(bare)}


@pytest.mark.parametrize("trained, dataset, message", [
    ("ArrowHead", "GunPoint", "the checkpoint was trained on ArrowHead (3 classes, 1 channel, "
                              "length 251); GunPoint has 2 classes"),
    ("ArrowHead", "digits", "the checkpoint was trained on ArrowHead (3 classes, 1 channel, "
                            "length 251); digits has 10 classes and 2-D inputs (8x8)"),
    ("digits", "OSULeaf", "the checkpoint was trained on digits (10 classes, 1 channel, 8x8); "
                          "OSULeaf has 6 classes and 1-D inputs (length 427)"),
    ("GunPoint", "freq-low", None),
], ids=["classes", "1d-model-2d-data", "2d-model-1d-data", "same-classes-other-length"])
def test_eval_refuses_a_dataset_the_model_was_not_built_for(checkpoints, capsys, trained,
                                                           dataset, message):
    code = main(["eval", checkpoints[trained], "--dataset", dataset, "--test-rates", "0"])
    printed = capsys.readouterr()
    if message is None:           # same classes, channels and dimensionality: runs, with a note
        assert code == 0 and printed.out.startswith("freq-low: test split, 256 examples\n")
        assert printed.err == ("blconv eval: note: the checkpoint was trained on GunPoint "
                               "(2 classes, 1 channel, length 150); evaluating on freq-low "
                               "(2 classes, 1 channel, length 128)\n")
    else:
        assert code == 2 and printed.out == ""
        assert printed.err == f"blconv eval: error: {message}\n"


def test_eval_defaults_to_the_dataset_of_the_checkpoint(checkpoints, capsys):
    assert main(["eval", checkpoints["digits"], "--test-rates", "0"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("digits: test split, 451 examples\n") and printed.err == ""


def test_eval_exits_2_in_a_real_process(checkpoints):
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-m", "blconv", "eval", checkpoints["ArrowHead"],
                           "--dataset", "GunPoint"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "blconv eval: error: the checkpoint was trained on ArrowHead" in done.stderr


def test_eval_of_a_checkpoint_without_the_record(checkpoints, capsys):
    old = checkpoints["old"]
    assert main(["eval", old]) == 2                        # no record: no dataset to guess
    assert capsys.readouterr().err == (
        f"blconv eval: error: {old} has no training record (written by an older blconv), "
        f"so it does not say what it was trained on: pass --dataset NAME\n")
    assert main(["eval", old, "--dataset", "ArrowHead", "--test-rates", "0"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("ArrowHead: test split, 175 examples\n")
    assert printed.err == (f"blconv eval: note: {old} has no training record (written by an "
                           f"older blconv): ArrowHead was checked against the model's layers "
                           f"only\n")
    assert main(["eval", old, "--dataset", "GunPoint"]) == 2     # the layers still decide
    assert capsys.readouterr().err == (
        f"blconv eval: error: the checkpoint's model has 3 classes, 1 channel, 1-D inputs "
        f"({old} has no training record); GunPoint has 2 classes\n")
    bare = checkpoints["bare"]
    assert main(["eval", bare]) == 2
    assert capsys.readouterr().err == (
        f"blconv eval: error: {bare} records no training data (saved without data_info), so "
        f"it does not say what it was trained on: pass --dataset NAME\n")


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--datasets", "NoSuchSet"], "unknown dataset 'NoSuchSet'"),
    (["train", "--dataset", "digits", "--model", "fcn1d"], "model 'fcn1d' does not fit"),
    (["eval", "/nonexistent/model.npz"], "checkpoint not found: /nonexistent/model.npz"),
])
def test_clear_errors(argv, message, capsys, tmp_path):
    try:
        code = main(argv + ["--out", str(tmp_path)] + TINY if argv[0] != "eval" else argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert message in (err + str(code))


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--rates", "50"], "compress rate must be in [0, 1), got 50 (a fraction, not a percent)"),
    (["train", "--preserve-energy", "1.5"], "energy must be in (0, 1], got 1.5"),
    (["train", "--model", "vgg"], "invalid choice: 'vgg'"),
    (["sweep", "--epochs", "0"], "must be >= 1, got 0"),
    (["sweep", "--lr", "0"], "must be > 0 and finite, got 0"),
    (["train", "--weight-decay=-1e-4"], "must be >= 0 and finite, got -1e-4"),
    (["train", "--lr", "fast"], "not a number: 'fast'"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
])
def test_bad_options_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    for cmd in ("sweep", "train", "eval", "demo"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "--" in text and "usage:" in text


def test_version_prints_the_package_version(capsys):
    import blconv
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"blconv {blconv.__version__}\n"


@pytest.mark.parametrize("command", [[], ["sweep"], ["train"], ["eval"], ["demo"], ["bench"]],
                         ids=lambda c: c[0] if c else "blconv")
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as e:
        main(command + ["--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0 and "usage: blconv" in text
    for markup in ("``", ":func:", ":mod:", ":class:", ":meth:"):
        assert markup not in text, f"reStructuredText {markup!r} in {command} --help"


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--epochs", "x"], "argument --epochs: expected a positive integer, got 'x'"),
    (["train", "--batch-size", "1.5"],
     "argument --batch-size: expected a positive integer, got '1.5'"),
    (["sweep", "--threads", "many"], "argument --threads: expected a positive integer, got 'many'"),
    (["demo", "--channels", "x"], "argument --channels: expected a positive integer, got 'x'"),
    (["sweep", "--energies", "most"], "argument --energies: not a number: 'most' (expected an "
                                      "energy fraction in (0, 1])"),
    (["train", "--compress-rate", "half"], "argument --compress-rate: not a number: 'half' "
                                           "(expected a compress rate in [0, 1))"),
    (["train", "--weight-decay", "none"], "argument --weight-decay: not a number: 'none' "
                                          "(expected a finite number >= 0)"),
])
def test_parser_errors_name_no_private_function(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err
    assert "invalid _" not in err and " value: " not in err


# --- the data home ------------------------------------------------------------------------------
def _tiny_ucr(root, name):
    (root / name).mkdir(parents=True)
    for part in ("TRAIN", "TEST"):
        rows = [f"{1 + i % 2}\t" + "\t".join(str(float(i + j)) for j in range(6))
                for i in range(4)]
        (root / name / f"{name}_{part}.tsv").write_text("\n".join(rows) + "\n")


def test_data_list_shows_the_home_and_what_is_on_disk(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"data home: {tmp_path} ($BLCONV_DATA)\n")
    for name in E.DATASETS:
        assert f"\n  {name} " in out
    assert "GunPoint          shipped (UCR)" in out
    assert f"UCR archive: none at {tmp_path / 'UCR'}: download the archive from https://" in out
    assert f"cached generated datasets in {tmp_path / 'generated'}: none" in out
    _tiny_ucr(tmp_path / "UCR", "Beta")
    _tiny_ucr(tmp_path / "UCR", "Alpha")
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "mnist1d.npz").write_bytes(b"x" * 2000)
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert (f"UCR archive at {tmp_path / 'UCR'} (the default --ucr-dir): 2 datasets\n"
            f"  Alpha Beta\n") in out
    assert f"mnist1d           generated, cached: {tmp_path / 'generated' / 'mnist1d.npz'}" in out
    assert "mnist1d.npz (0.0 MB)" in out


def test_ucr_dir_defaults_to_the_data_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path / "home"))
    out = tmp_path / "sweep"                     # no UCR folder in the data home: no default
    assert main(["sweep", "--datasets", "ItalyPowerDemand", "--rates", "0", "--out", str(out)]
                + TINY) == 0
    (name,) = (out / "runs").iterdir()
    assert json.loads(name.read_text())["config"]["ucr_dir"] is None
    capsys.readouterr()
    _tiny_ucr(tmp_path / "home" / "UCR", "Tiny")
    out2 = tmp_path / "sweep2"
    assert main(["sweep", "--datasets", "all", "--rates", "0", "--out", str(out2)] + TINY) == 0
    (record,) = json.loads((out2 / "results.json").read_text())
    assert record["dataset"] == "Tiny"                   # 'all' is every dataset there
    (name,) = (out2 / "runs").iterdir()
    assert json.loads(name.read_text())["config"]["ucr_dir"] == str(tmp_path / "home" / "UCR")
    assert "[1/1] Tiny rate 0 seed 0: accuracy" in capsys.readouterr().out
