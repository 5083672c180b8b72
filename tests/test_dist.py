"""Sweeps on a real Dask cluster of 2 worker processes on loopback (skipped without Dask)."""
import json
import logging
import os
import signal
import threading
import time

import pytest

distributed = pytest.importorskip("distributed", reason="Dask is the optional 'dist' extra: "
                                  'pip install "blconv[dist]"')

from blconv import dist, experiments as E, runs as R  # noqa: E402
from blconv.cli import main  # noqa: E402


def grid(epochs=2, **kw):
    """4 tiny runs (2 train rates x 2 seeds), each tested at 2 rates."""
    return E.make_runs("ItalyPowerDemand", (0.0, 0.5), (0, 1), test_rates=(0.0, 0.5), width=4,
                       epochs=epochs, batch_size=32, **kw)


def results(records):
    """Everything but the wall time."""
    return [{k: v for k, v in r.items() if k != "train_seconds"} for r in records]


@pytest.fixture(scope="module")
def client():
    with dist.local_cluster(2, dashboard_address=None, silence_logs=50) as c:
        c.wait_for_workers(2, timeout=300)
        yield c


@pytest.fixture(scope="module")
def here():
    """The grid's records computed in this process with 1 BLAS/FFT thread, as on a worker.

    Same machine, same libraries, same thread count: the same arithmetic, so the
    workers' records must equal these exactly.  (Across thread counts the sums may be
    reordered: tests/test_experiments.py compares those to float32 rounding.)
    """
    with R.thread_limits(1):
        return E.sweep(grid(), progress=False)


def test_cluster_gives_the_in_process_results(client, here, tmp_path):
    result = E.sweep(grid(), client, out_dir=tmp_path, progress=False)
    assert results(result) == results(here)                  # exact: accuracies and losses
    assert (result.executed, result.skipped, result.failures) == (4, 0, [])
    pids = {json.loads(open(E.run_path(tmp_path, r)).read())["pid"] for r in grid()}
    assert os.getpid() not in pids                           # they did run on the workers


def test_workers_start_without_dasks_malloc_trim(client):
    env = client.run(lambda: [os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_",
                                                          "OPENBLAS_NUM_THREADS")])
    assert list(env.values()) == [[None, "1"]] * 2


def test_resumed_sweep_skips_finished_runs(client, here, tmp_path):
    runs = grid()
    E.sweep(runs[:2], client, out_dir=tmp_path, progress=False)    # "interrupted" after 2
    stamps = {r: os.stat(E.run_path(tmp_path, r)).st_mtime_ns for r in runs[:2]}
    full = E.sweep(runs, client, out_dir=tmp_path, progress=False)
    assert (full.executed, full.skipped) == (2, 2)
    assert stamps == {r: os.stat(E.run_path(tmp_path, r)).st_mtime_ns for r in runs[:2]}
    assert results(full) == results(here)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert results(saved) == results(here)


def test_failing_run_is_recorded_and_the_others_finish(client, here, tmp_path):
    bad = E.Run(dataset="NoSuchSet", width=4, epochs=2, batch_size=32)
    result = E.sweep([bad] + grid(), client, out_dir=tmp_path, progress=False)
    assert results(result) == results(here)
    (failure,) = result.failures
    assert failure["error"].startswith("ValueError: load_dataset: unknown dataset 'NoSuchSet'")
    assert "load_dataset" in failure["traceback"] and failure["pid"] != os.getpid()
    assert json.loads((tmp_path / "failures.json").read_text()) == [failure]


def test_cli_on_a_running_scheduler(client, here, tmp_path, capsys):
    address = client.scheduler.address
    assert main(["sweep", "--scheduler", address, "--datasets", "ItalyPowerDemand",
                 "--rates", "0", "0.5", "--test-rates", "0", "0.5", "--seeds", "0", "1",
                 "--epochs", "2", "--width", "4", "--batch-size", "32", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    assert f"Dask scheduler {address}: 2 workers, 2 threads" in capsys.readouterr().out
    records = json.loads((tmp_path / "results.json").read_text())
    key = lambda r: (r["train_compress_rate"], r["seed"], r["test_compress_rate"])
    assert results(sorted(records, key=key)) == results(sorted(here, key=key))


def test_run_survives_a_killed_worker(client, tmp_path):
    runs = grid(epochs=150)                   # ~1 s each: the kill lands mid-run
    ours = {f"blconv-run-{r.config_hash[:16]}": r for r in runs}     # + "-<token>"
    killed = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            busy = {w: [ours[k[:-9]] for k in ks if k[:-9] in ours]
                    for w, ks in client.processing().items()}
            busy = {w: ks for w, ks in busy.items() if ks}
            if busy:
                worker, ks = next(iter(busy.items()))
                time.sleep(0.1)                             # let it start training
                pid = client.run(os.getpid, workers=[worker])[worker]
                killed.update(pid=pid, runs=ks)
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        result = E.sweep(runs, client, out_dir=tmp_path, progress=False)
    finally:
        killer.join()
        # the nanny restarts it: seconds on an idle machine, a minute or more on a loaded
        # one (a 60 s wait timed out once, the tests at low priority beside a training run)
        client.wait_for_workers(2, timeout=300)
    assert killed, "no run was ever seen running"
    assert result.failures == [] and len(result) == 2 * len(runs)
    for lost in killed["runs"]:                             # running or queued there
        redone = E.read_run(tmp_path, lost)
        assert redone["status"] == "done" and redone["pid"] != killed["pid"]
    with R.thread_limits(1):                               # a worker's thread count
        again = E.run_one(lost)["records"]
    assert results(redone["records"]) == results(again)


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_sweep_starts_and_closes_its_own_cluster(tmp_path, caplog):
    run = E.Run(dataset="ItalyPowerDemand", width=4, epochs=1, batch_size=32)
    with caplog.at_level(logging.INFO, logger="blconv"):
        result = E.sweep([run], workers=1, out_dir=tmp_path)
    # said through the "blconv" logger, not printed: the library leaves output to the caller
    (said,) = [r for r in caplog.records if r.name.startswith("blconv")]
    assert said.levelno == logging.INFO
    assert "sweep: local cluster: Dask scheduler tcp://127.0.0.1:" in said.getMessage()
    assert "1 workers, 1 threads; dashboard http://" in said.getMessage()
    assert len(result) == 1 and result.failures == []


# --- progress from the workers ------------------------------------------------------------------
def test_workers_report_each_epoch_as_an_event(client):
    from blconv._progress import WorkerEpochs
    run = grid(epochs=3)[0]
    got = []
    topic = "blconv-test-progress"
    client.subscribe_topic(topic, got.append)
    try:
        cb = WorkerEpochs(topic, run.config_hash, run.epochs, every=0.0)   # every epoch
        record = client.submit(R.run_one, run, threads=1, callbacks=[cb], pure=False).result()
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.unsubscribe_topic(topic)
    assert record["status"] == "done"
    assert [(m["run"], m["epochs"]) for _, m in got] == [(run.config_hash, k) for k in (1, 2, 3)]


def test_worker_progress_outside_a_worker_never_fails_the_run():
    from blconv._progress import WorkerEpochs
    cb = WorkerEpochs("topic", "hash", 2)
    cb.on_epoch_end(1, {})                     # no worker here: stops reporting, quietly
    assert cb._last is False


def test_a_sweep_on_the_cluster_prints_a_line_per_run(client, tmp_path, capsys):
    result = E.sweep(grid(), client, out_dir=tmp_path, progress="lines")
    out = capsys.readouterr().out.splitlines()
    assert len(result) == 8
    lines = [line for line in out if line.startswith("[")]
    assert sorted(line[:5] for line in lines) == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert all("ItalyPowerDemand rate " in line and "% at test rate " in line for line in lines)
    assert out[-1].startswith("done: 8/8 epochs (100%), runs 4/4, elapsed ")
