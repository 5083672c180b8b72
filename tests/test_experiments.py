"""Sweeps without Dask: config hashes, per-run files, resuming, failures, summaries, UCR dirs."""
import dataclasses
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import blconv
from blconv import experiments as E
from blconv import runs as R
from blconv.cli import main

from helpers import assert_runs_close

TINY = dict(dataset="ItalyPowerDemand", width=4, epochs=1, batch_size=32)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def grid(**kw):
    """4 tiny runs (2 train rates x 2 seeds), each tested at 2 rates."""
    common = dict(width=4, epochs=1, batch_size=32, test_rates=(0.0, 0.5)) | kw
    return E.make_runs("ItalyPowerDemand", (0.0, 0.5), (0, 1), **common)


def results(records):
    """Everything but the wall time."""
    return [{k: v for k, v in r.items() if k != "train_seconds"} for r in records]


@pytest.fixture
def count_executions(monkeypatch):
    """The runs executed, in order; ``fail_at[0] = k`` makes the k-th (from 1) interrupt."""
    calls, fail_at, real = [], [None], R.execute

    def counting(run, **kw):
        calls.append(run)
        if len(calls) == fail_at[0]:
            raise KeyboardInterrupt
        return real(run, **kw)
    monkeypatch.setattr(R, "execute", counting)
    return calls, fail_at


# --- config hash ------------------------------------------------------------------------
def test_hash_is_sha256_of_the_canonical_json():
    canonical = ('{"batch_size":8,"dataset":"GunPoint","device":"cpu","epochs":100,"lr":0.01,'
                 '"model":"auto","momentum":0.9,"optimizer":"sgd","seed":0,"test_rates":[0.0],'
                 '"train_compress_rate":0.0,"train_preserve_energy":null,"ucr_dir":null,'
                 '"weight_decay":0.0005,"width":null}')
    assert E.Run().config_hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_hash_is_stable_across_processes():
    code = ("from blconv.experiments import Run; print(Run(dataset='ItalyPowerDemand', "
            "train_preserve_energy=0.9, test_rates=(0, 0.5), width=4).config_hash)")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    here = E.Run(dataset="ItalyPowerDemand", train_preserve_energy=0.9, test_rates=(0.0, 0.5),
                 width=4)
    assert out == here.config_hash


CHANGED = {"dataset": "ArrowHead", "model": "fcn1d", "train_compress_rate": 0.5,
           "train_preserve_energy": 0.9, "seed": 1, "epochs": 99, "batch_size": 16,
           "optimizer": "adam", "lr": 0.02, "momentum": 0.8, "weight_decay": 0.0,
           "test_rates": (0.0, 0.5),
           "width": 4, "device": "gpu", "ucr_dir": "/data/UCRArchive_2018"}


def test_every_field_is_covered_below():
    assert set(CHANGED) == {f.name for f in dataclasses.fields(E.Run)}


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_hash_changes_with_every_field(field):
    base = E.Run()
    kw = {field: CHANGED[field], **({"momentum": None} if field == "optimizer" else {})}
    assert E.Run(**kw).config_hash != base.config_hash
    assert dataclasses.replace(base).config_hash == base.config_hash


@pytest.mark.parametrize("a, b", [
    (dict(train_compress_rate=0), dict(train_compress_rate=0.0)),
    (dict(test_rates=[0, 0.5]), dict(test_rates=(0.0, 0.5))),
    (dict(test_rates=0.5), dict(test_rates=(0.5,))),
    (dict(seed=np.int64(3), lr=np.float32(0.5)), dict(seed=3, lr=0.5)),
    (dict(), dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4)),
    (dict(optimizer="adam"), dict(optimizer="adam", lr=1e-3, weight_decay=0)),
], ids=["int-rate", "list-rates", "scalar-rate", "numpy-scalars", "sgd-recipe", "adam-recipe"])
def test_equal_configs_have_equal_hashes(a, b):
    assert E.Run(**a) == E.Run(**b) and E.Run(**a).config_hash == E.Run(**b).config_hash


@pytest.mark.parametrize("kw, error, match", [
    (dict(seed=1.5), ValueError, "Run: seed must be a whole number, got 1.5"),
    (dict(epochs="10"), TypeError, "Run: epochs must be a number, got '10'"),
    (dict(train_compress_rate=True), TypeError, "train_compress_rate must be a number"),
    (dict(dataset=3), TypeError, "Run: dataset must be a str, got int"),
    (dict(optimizer="rmsprop"), ValueError,
     r"Run: optimizer must be one of \('sgd', 'adam'\), got 'rmsprop'"),
    (dict(optimizer="adam", momentum=0.9), ValueError,
     "Run: momentum applies to optimizer='sgd' only, got momentum=0.9 with optimizer='adam'"),
])
def test_bad_run_fields(kw, error, match):
    with pytest.raises(error, match=match):
        E.Run(**kw)


def test_ucr_dir_is_stored_absolute_so_relative_and_absolute_are_one_run(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    here = E.Run(ucr_dir=str(tmp_path / "UCR"))
    for same in ("./UCR", "UCR", "UCR/", "sub/../UCR", "~/UCR", pathlib.Path("UCR")):
        run = E.Run(ucr_dir=same)
        assert run.ucr_dir == str(tmp_path / "UCR") and run.config_hash == here.config_hash
    # the stored config (and so the hash) is the canonical JSON of the absolute path
    canonical = json.dumps(here.to_dict(), sort_keys=True, separators=(",", ":"))
    assert f'"ucr_dir":{json.dumps(str(tmp_path / "UCR"))}' in canonical
    assert here.config_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert E.Run(ucr_dir="./Other").config_hash != here.config_hash
    assert E.Run.from_dict(here.to_dict()) == here


def test_run_round_trips_through_json():
    run = E.Run(train_preserve_energy=0.9, test_rates=(0.0, 0.25), width=8, ucr_dir="/x")
    assert E.Run.from_dict(json.loads(json.dumps(run.to_dict()))) == run
    with pytest.raises(TypeError, match=r"unknown fields \['colour'\]"):
        E.Run.from_dict(run.to_dict() | {"colour": 1})


# --- per-run files ----------------------------------------------------------------------
def test_per_run_file_is_written_atomically(tmp_path, monkeypatch):
    run = E.Run(**TINY)
    first = E.run_one(run)
    path = E.write_run(tmp_path, first)
    assert path == E.run_path(tmp_path, run) == str(tmp_path / "runs" / f"{run.config_hash}.json")
    assert E.read_run(tmp_path, run) == first
    assert os.listdir(tmp_path / "runs") == [f"{run.config_hash}.json"]   # no temporary left

    def crash(src, dst):
        raise OSError("disk pulled out")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        E.write_run(tmp_path, first | {"status": "failed"})
    assert E.read_run(tmp_path, run) == first            # the old file, whole
    assert os.listdir(tmp_path / "runs") == [f"{run.config_hash}.json"]


def test_record_fields(tmp_path):
    run = E.Run(**TINY, test_rates=(0.0, 0.5))
    rec = E.run_one(run)
    assert rec["format"] == E.FORMAT and rec["hash"] == run.config_hash
    assert rec["status"] == "done" and rec["error"] is None and rec["traceback"] is None
    assert E.Run.from_dict(rec["config"]) == run
    assert [r["test_compress_rate"] for r in rec["records"]] == [0.0, 0.5]
    assert rec["pid"] == os.getpid() and rec["seconds"] >= 0
    assert json.loads(json.dumps(rec)) == rec


def test_an_energy_run_records_per_batch_and_calibrated_accuracy(tmp_path):
    from blconv import train as T
    from blconv.nn import calibrate
    run = E.Run(**TINY, train_preserve_energy=0.8, test_rates=(0.0, 0.5))
    rec = E.run_one(run)
    own, other = rec["records"]
    assert "calibrated_accuracy" not in other
    # what the fields mean, from the same (deterministic) training done here
    tr, te, _, model, opt, sched = R.prepare(run)
    T.fit(model, tr, epochs=run.epochs, batch_size=run.batch_size, optimizer=opt,
          scheduler=sched, seed=run.seed, progress=False, monitor="loss")
    per_batch = T.evaluate(model, te, preserve_energy=0.8)
    assert (own["test_accuracy"], own["effective_rate"]) == (per_batch["accuracy"],
                                                             per_batch["effective_rate"])
    bands = calibrate(model, tr.x)
    calibrated = T.evaluate(model, te, batch_size=1)            # any batch size: one band
    assert own["calibrated_accuracy"] == calibrated["accuracy"]
    assert own["calibrated_loss"] == pytest.approx(calibrated["loss"], rel=1e-6)
    assert own["calibrated_effective_rate"] == pytest.approx(
        np.mean([b.effective_rate for b in bands]))
    assert other["test_accuracy"] == T.evaluate(model, te, compress_rate=0.5)["accuracy"]
    # a per-run file written before these fields existed is still read, not redone
    old = rec | {"records": [{k: v for k, v in r.items() if not k.startswith("calibrated_")}
                             for r in rec["records"]]}
    E.write_run(tmp_path, old)
    assert E.read_run(tmp_path, run) == old


@pytest.mark.parametrize("content", ['{"format": 1, "hash": "', "not json", '{"format": 0}'],
                         ids=["torn", "garbage", "old-format"])
def test_unreadable_run_file_is_redone(tmp_path, content, count_executions):
    calls, _ = count_executions
    run = E.Run(**TINY)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f"{run.config_hash}.json").write_text(content)
    assert E.read_run(tmp_path, run) is None
    result = E.sweep([run], out_dir=tmp_path, progress=False)
    assert calls == [run] and result.executed == 1 and len(result) == 1
    assert E.read_run(tmp_path, run)["status"] == "done"


# --- resuming ---------------------------------------------------------------------------
def test_done_runs_are_skipped(tmp_path, count_executions):
    calls, _ = count_executions
    runs = grid()
    part = E.sweep(runs[:2], out_dir=tmp_path, progress=False)
    assert (part.executed, part.skipped, len(part)) == (2, 0, 4)
    full = E.sweep(runs, out_dir=tmp_path, progress=False)
    assert calls == runs and (full.executed, full.skipped) == (2, 2)
    assert results(full) == results(part) + results(full[4:]) and len(full) == 8
    again = E.sweep(runs, out_dir=tmp_path, progress=False)
    assert len(calls) == 4 and (again.executed, again.skipped) == (0, 4) and again == full


def test_interrupted_sweep_resumes_to_the_uninterrupted_result(tmp_path, count_executions):
    calls, fail_at = count_executions
    runs = grid()
    fail_at[0] = 3
    with pytest.raises(KeyboardInterrupt):
        E.sweep(runs, out_dir=tmp_path / "a", progress=False)
    assert sorted(os.listdir(tmp_path / "a" / "runs")) == sorted(
        f"{r.config_hash}.json" for r in runs[:2])
    assert not (tmp_path / "a" / "results.json").exists()
    fail_at[0] = None
    resumed = E.sweep(runs, out_dir=tmp_path / "a", progress=False)
    assert calls[3:] == runs[2:] and (resumed.executed, resumed.skipped) == (2, 2)
    straight = E.sweep(runs, out_dir=tmp_path / "b", progress=False)
    assert results(resumed) == results(straight)
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results(saved) == results(straight)


def test_a_run_interrupted_mid_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """Interrupted at epoch 2 of 4, the sweep's next call trains epochs 3 and 4 only, to the
    records of an uninterrupted run; the checkpoint is removed once the run is done."""
    monkeypatch.setattr(R, "CHECKPOINT_INTERVAL", 0.0)   # save every epoch
    seen, stop_at, real, times = [], [2], R.execute, []

    class Watch:
        def on_epoch_end(self, epoch, row):
            seen.append(epoch)
            times.append(row["epoch_seconds"])
            if epoch == stop_at[0]:
                raise KeyboardInterrupt

    def watched(run, **kw):
        return real(run, **kw | {"callbacks": [Watch()]})
    monkeypatch.setattr(R, "execute", watched)
    run = E.Run(**TINY | {"epochs": 4}, test_rates=(0.0, 0.5))
    with pytest.raises(KeyboardInterrupt):
        E.sweep([run], out_dir=tmp_path / "a", progress=False)
    saved = tmp_path / "a" / "checkpoints" / run.config_hash / "last.npz"
    assert seen == [1, 2] and blconv.train.load_checkpoint(saved).state["epoch"] == 2
    stop_at[0] = None
    resumed = E.sweep([run], out_dir=tmp_path / "a", progress=False)
    assert seen == [1, 2, 3, 4] and resumed.executed == 1
    # the training's time: the epochs of both stretches
    assert {r["train_seconds"] for r in resumed} == {round(sum(times), 3)}
    assert not saved.parent.exists() and os.listdir(tmp_path / "a" / "checkpoints") == []
    straight = E.sweep([run], out_dir=tmp_path / "b", progress=False)
    assert seen == [1, 2, 3, 4, 1, 2, 3, 4]
    assert results(resumed) == results(straight)


def test_grid_keywords_and_duplicates(count_executions):
    calls, _ = count_executions
    run = E.Run(**TINY)
    assert len(E.sweep([run, run.to_dict(), run], progress=False)) == 1 and calls == [run]
    by_keywords = E.sweep(datasets="ItalyPowerDemand", rates=[0.5], seeds=[0], width=4,
                          epochs=1, batch_size=32, progress=False)
    by_mapping = E.sweep(dict(datasets=["ItalyPowerDemand"], rates=[0.5], seeds=[0], width=4,
                              epochs=1, batch_size=32), progress=False)
    assert results(by_keywords) == results(by_mapping) and len(by_keywords) == 1
    with pytest.raises(TypeError, match="pass spec or grid keywords"):
        E.sweep([run], epochs=3)
    with pytest.raises(TypeError, match=r"spec\[1\] must be a Run"):
        E.sweep([run, "GunPoint"])
    with pytest.raises(TypeError, match="pass client or workers, not both"):
        E.sweep([run], client="tcp://127.0.0.1:1", workers=2)


# --- failures and the summary ------------------------------------------------------------
def test_failed_run_is_recorded_and_the_others_finish(tmp_path):
    good, bad = E.Run(**TINY), E.Run(**TINY | {"dataset": "NoSuchSet"})
    result = E.sweep([bad, good], out_dir=tmp_path, progress=False)
    assert len(result) == 1 and result[0]["dataset"] == "ItalyPowerDemand"
    (failure,) = result.failures
    assert failure["status"] == "failed" and failure["config"]["dataset"] == "NoSuchSet"
    assert failure["error"].startswith("ValueError: load_dataset: unknown dataset 'NoSuchSet'")
    assert "Traceback (most recent call last)" in failure["traceback"]
    assert "load_dataset" in failure["traceback"]
    assert json.loads((tmp_path / "failures.json").read_text()) == [failure]
    assert E.read_run(tmp_path, bad) == failure
    again = E.sweep([bad, good], out_dir=tmp_path, progress=False)
    assert (again.executed, again.skipped) == (1, 1)      # failed runs are tried again


def test_summary_is_rebuilt_from_the_per_run_files(tmp_path):
    runs = grid()
    first = E.sweep(runs, out_dir=tmp_path, progress=False)
    path = E.run_path(tmp_path, runs[1])
    rec = json.loads(pathlib.Path(path).read_text())
    rec["records"][0]["test_accuracy"] = 0.123
    pathlib.Path(path).write_text(json.dumps(rec))
    for name in ("results.json", "results.csv", "accuracy_vs_compression.png"):
        (tmp_path / name).unlink()
    again = E.sweep(runs, out_dir=tmp_path, progress=False)
    assert again.executed == 0 and again[2]["test_accuracy"] == 0.123
    assert json.loads((tmp_path / "results.json").read_text()) == list(again)
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + 8
    assert (tmp_path / "accuracy_vs_compression.png").stat().st_size > 0
    assert json.loads((tmp_path / "failures.json").read_text()) == []
    records, failures = E.collect(tmp_path)          # every file, in config order
    assert results(records) == results(again) and failures == []
    assert results(first[:2]) == results(again[:2])


def test_results_do_not_depend_on_threads_or_chunking():
    """1 or 2 BLAS/FFT threads, whole batches or chunks of a few samples: one result.

    The arithmetic differs in summation order only (a threaded GEMM may split its sums
    on some CPUs; a chunk is a GEMM with fewer rows), so the records agree to float32
    rounding (``helpers.RUN_RTOL``); the same setting twice is identical.
    """
    run = E.Run(dataset="ItalyPowerDemand", width=32, epochs=1, batch_size=32,
                train_compress_rate=0.5, test_rates=(0.0, 0.5))
    with R.thread_limits(1):
        one = E.run_one(run)["records"]
        again = E.run_one(run)["records"]
    with R.thread_limits(2):
        two = E.run_one(run)["records"]
    with R.thread_limits(2), blconv.max_workspace_bytes(1 << 16):
        chunked = E.run_one(run)["records"]
    assert results(one) == results(again)                    # identical arithmetic
    for other in (two, chunked):
        assert_runs_close(one, other, n_train=67, n_test=1029)


# --- datasets ---------------------------------------------------------------------------
def _write_ucr(root, name, n_train=12, n_test=8, length=16, ragged=False):
    rng = np.random.default_rng(len(name))
    (root / name).mkdir(parents=True)
    for part, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = []
        for i in range(n):
            x = rng.standard_normal(length) + (i % 2)
            vals = [f"{v:.4f}" for v in x]
            if ragged and i == 1:
                vals[-3:] = ["NaN"] * 3
            lines.append("\t".join([str(1 + i % 2)] + vals))
        (root / name / f"{name}_{part}.tsv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name", E.DATASETS)
def test_the_training_record_finds_the_dataset_again_and_states_its_normalisation(name):
    if name.startswith("mnist1d"):
        pytest.importorskip("mnist1d", reason='the optional mnist1d package: pip install '
                            '"blconv[mnist1d]"')
    train, test = E.load_dataset(name)
    info = E.describe_training_data(name, train)
    again, _ = E.load_dataset(info["name"])                 # what blconv eval loads by default
    np.testing.assert_array_equal(again.x, train.x)
    assert (info["n_classes"], info["in_channels"], info["shape"]) == (
        train.n_classes, train.x.shape[1], list(train.x.shape[2:]))
    norm, x = info["normalisation"], train.x
    if norm["method"] == "znorm":                           # each series: mean 0, sample std 1
        assert norm == {"method": "znorm", "per": "series", "ddof": 1}
        np.testing.assert_allclose(x.mean(axis=-1), 0, atol=1e-6)
        np.testing.assert_allclose(x.std(axis=-1, ddof=1), 1, rtol=1e-6)
    elif norm["method"] == "scale":                         # digits: counts 0..16 scaled
        from blconv.data import load_digits
        raw = np.unique(load_digits().x)
        np.testing.assert_array_equal(np.unique(x), raw * norm["factor"])
    elif name.startswith("mnist1d"):                        # as generated: all series together
        assert norm == {"method": "none", "generator": "standardise", "per": "dataset"}
        both = np.concatenate([x, test.x])
        np.testing.assert_allclose([both.mean(), both.std()], [0, 1], atol=1e-12)
    else:
        assert norm == {"method": "none"} and name.startswith("freq-")


def test_list_and_resolve_datasets(tmp_path):
    for name in ("Beta", "Alpha"):
        _write_ucr(tmp_path, name)
    (tmp_path / "NoTest").mkdir()
    (tmp_path / "NoTest" / "NoTest_TRAIN.tsv").write_text("1\t0.5\n")
    (tmp_path / "README.md").write_text("not a dataset")
    assert E.list_datasets(tmp_path) == ["Alpha", "Beta"]
    assert E.resolve_datasets("all", ucr_dir=tmp_path) == ["Alpha", "Beta"]
    assert E.resolve_datasets(["Beta,all"], ucr_dir=tmp_path) == ["Beta", "Alpha"]
    assert E.resolve_datasets("all") == ["ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf"]
    with pytest.raises(ValueError, match="unknown dataset 'Nope'"):
        E.resolve_datasets("GunPoint,Nope")
    with pytest.raises(ValueError, match="'all' found no UCR datasets"):
        E.resolve_datasets("all", ucr_dir=tmp_path / "NoTest")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        E.list_datasets(tmp_path / "missing")


def test_cli_sweeps_a_ucr_archive_and_lists_failures(tmp_path, capsys):
    archive = tmp_path / "UCRArchive"
    for name in ("Alpha", "Beta"):
        _write_ucr(archive, name)
    _write_ucr(archive, "Ragged", ragged=True)      # NaN padding: loads, resampled
    _write_ucr(archive, "Void")
    void = archive / "Void" / "Void_TRAIN.tsv"       # a series with no value at all
    lines = void.read_text().splitlines()
    lines[1] = "\t".join(["2"] + ["NaN"] * 16)
    void.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["sweep", "--ucr-dir", str(archive), "--datasets", "all", "--rates", "0",
            "--test-rates", "0", "0.5", "--out", str(out), "--epochs", "1", "--width", "4",
            "--batch-size", "8", "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "4 runs (Alpha, Beta, Ragged, Void;" in captured.out
    assert "1 of 4 runs failed" in captured.err
    assert "Void rate 0 seed 0: ValueError: load_ucr:" in captured.err
    assert "line 2: no value is present (all 16 missing)" in captured.err
    records = json.loads((out / "results.json").read_text())
    assert [(r["dataset"], r["test_compress_rate"]) for r in records] == [
        ("Alpha", 0.0), ("Alpha", 0.5), ("Beta", 0.0), ("Beta", 0.5), ("Ragged", 0.0),
        ("Ragged", 0.5)]
    assert [f["config"]["dataset"] for f in
            json.loads((out / "failures.json").read_text())] == ["Void"]
    assert main(argv) == 1                           # again: only the failed run is redone
    assert "6 records of 3 runs (1 run now, 3 already done)" in capsys.readouterr().out


def _acc_record(seed, acc, dataset="GunPoint", rate=0.0):
    return dict(dataset=dataset, model="fcn1d", seed=seed, train_compress_rate=rate,
                train_preserve_energy=None, test_compress_rate=rate, test_accuracy=acc,
                effective_rate=rate)


def test_summary_std_is_the_sample_std_over_seeds():
    # three seeds at 0.90, 0.80, 0.70: mean 0.80, squared deviations 0.02 in all;
    # sample variance 0.02 / 2 = 0.01 (the population variance would be 0.02 / 3)
    records = [_acc_record(s, a) for s, a in enumerate((0.90, 0.80, 0.70))]
    records.append(_acc_record(0, 0.5, dataset="ItalyPowerDemand"))
    rows = {r["dataset"]: r for r in E.summarize(records)}
    assert rows["GunPoint"]["accuracy_mean"] == pytest.approx(0.80)
    assert rows["GunPoint"]["accuracy_std"] == pytest.approx(0.10)
    assert np.isnan(rows["ItalyPowerDemand"]["accuracy_std"])     # one seed: no spread
    lines = E.format_table(records).splitlines()
    assert "accuracy % ± SD" in lines[0]
    gun = next(ln for ln in lines if ln.startswith("GunPoint"))
    italy = next(ln for ln in lines if ln.startswith("ItalyPowerDemand"))
    assert gun.split()[-3:] == ["80.0", "±10.0", "3"]
    assert "±" not in italy and italy.split()[-2:] == ["50.0", "1"]
    assert lines[-1] == "± : sample standard deviation over seeds (ddof=1)"


def test_write_plots_leaves_the_matplotlib_backend_alone(tmp_path):
    pytest.importorskip("matplotlib")
    code = f"""
import matplotlib
matplotlib.use("svg")      # a backend the user chose: write_plots must not switch it
import matplotlib.pyplot as plt
from blconv import experiments as E
recs = [dict(dataset="GunPoint", model="fcn1d", seed=s, train_compress_rate=c,
             train_preserve_energy=None, test_compress_rate=t, test_accuracy=0.9,
             effective_rate=c) for s in (0, 1) for c in (0.0, 0.5) for t in (0.0, 0.5)]
paths = E.write_plots(recs, {str(tmp_path)!r})
assert len(paths) == 2, paths
print(matplotlib.get_backend(), len(plt.get_fignums()))
"""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "0"]          # backend kept, no pyplot figure left
    assert (tmp_path / "accuracy_vs_compression.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "heatmap_GunPoint.png").stat().st_size > 0
