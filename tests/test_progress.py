"""What a sweep shows while it runs: epochs over all runs, a line per finished run."""
import io
import re

import pytest

from blconv import _progress as P
from blconv import experiments as E


def runs(n=3, epochs=4):
    return [E.Run(dataset="ItalyPowerDemand", seed=s, epochs=epochs, width=4, batch_size=32)
            for s in range(n)]


def record(run, status="done", accuracy=0.5, seconds=1.25):
    rows = [{"test_compress_rate": r, "test_accuracy": accuracy} for r in run.test_rates]
    return {"hash": run.config_hash, "config": run.to_dict(), "status": status,
            "records": rows if status == "done" else [], "seconds": seconds,
            "error": None if status == "done" else "ValueError: bad\nmore"}


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_auto_is_a_bar_on_a_terminal_and_lines_otherwise():
    assert P.SweepProgress(runs(), file=io.StringIO()).mode == "lines"
    p = P.SweepProgress(runs(), file=Terminal())
    assert p.mode == "bar"
    p.close()
    with pytest.raises(ValueError, match="mode must be one of"):
        P.SweepProgress(runs(), mode="fancy")


def test_lines_count_epochs_over_all_runs():
    rs, out = runs(), io.StringIO()
    p = P.SweepProgress(rs[1:], done=rs[:1], mode="lines", file=out, every=0)
    assert (p.n, p.total, p.finished_runs, p.total_runs) == (4, 12, 1, 3)
    p.epochs(rs[1].config_hash, 1)
    p.poll(running=1)
    p.epochs(rs[1].config_hash, 3)
    p.epochs(rs[1].config_hash, 2)                        # counts never go back
    p.poll()
    assert p.n == 7
    p.finished(record(rs[1]))
    p.finished(record(rs[2], status="failed", seconds=0.5))    # counts as its epochs, failed
    p.close()
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"progress: 5/12 epochs \(42%\), runs 1/3, 1 running, elapsed 0:00, "
                        r"ETA \d+:\d\d", lines[0])
    assert lines[1].startswith("progress: 7/12 epochs (58%), runs 1/3, 1 running")
    assert lines[2] == ("[2/3] ItalyPowerDemand rate 0 seed 1: accuracy 50.0% at test rate 0, "
                        "1.2 s")
    assert lines[3] == "[3/3] ItalyPowerDemand rate 0 seed 2: FAILED after 0.5 s: ValueError: bad"
    assert lines[4] == "done: 12/12 epochs (100%), runs 3/3 (1 failed), elapsed 0:00"
    assert len(lines) == 5


def test_lines_summaries_wait_for_every_seconds():
    rs, out = runs(1), io.StringIO()
    p = P.SweepProgress(rs, mode="lines", file=out, every=3600)
    p.epochs(rs[0].config_hash, 2)
    p.poll()
    assert out.getvalue() == ""


def test_bar_keeps_its_final_line_and_prints_run_lines_above():
    rs, out = runs(2, epochs=3), Terminal()
    p = P.SweepProgress(rs, mode="bar", file=out)
    for k in range(1, 4):
        p.epochs(rs[0].config_hash, k)
    p.finished(record(rs[0], accuracy=0.875))
    p.finished(record(rs[1]))
    p.close()
    screen = out.getvalue()
    assert "[1/2] ItalyPowerDemand rate 0 seed 0: accuracy 87.5% at test rate 0, 1.2 s\n" in screen
    last = screen.rstrip("\n").split("\r")[-1]
    assert last.startswith("epochs: 100%") and "6/6 [" in last and "runs 2/2" in last
    assert screen.endswith("\n")                           # left on the screen


def test_dask_events_are_taken_in_when_polled():
    rs, out = runs(1), io.StringIO()
    p = P.SweepProgress(rs, mode="lines", file=out, every=0)
    p.event((0.0, {"run": rs[0].config_hash, "epochs": 2, "worker": "tcp://w"}))
    p.event((0.0, {"run": rs[0].config_hash, "epochs": 1}))       # late: ignored
    p.event((0.0, "garbage"))
    p.event((0.0, {"run": "unknown", "epochs": 3}))
    assert p.n == 0
    p.poll()
    assert p.n == 2


def test_epochs_of_a_resumed_run_count_as_done_but_not_in_the_pace(monkeypatch):
    """A run resumed at epoch 90 of 100 that then does one epoch in 10 s has 9 left: 90 s,
    not the 1 s that 91 epochs in 10 s would say."""
    clock = [1000.0]
    monkeypatch.setattr(P.time, "perf_counter", lambda: clock[0])
    rs, out = runs(1, epochs=100), io.StringIO()
    p = P.SweepProgress(rs, mode="lines", file=out, every=0)
    p.event((0.0, {"run": rs[0].config_hash, "resumed": 90}))
    p.poll(running=1)
    assert p.n == 90 and out.getvalue() == ""               # no line for the resumed epochs
    clock[0] += 10.0
    p.event((0.0, {"run": rs[0].config_hash, "epochs": 91}))
    p.poll()
    assert out.getvalue().splitlines() == [
        "progress: 91/100 epochs (91%), runs 0/1, 1 running, elapsed 0:10, ETA 1:30"]
    p.resumed(rs[0].config_hash, 95)                          # only before the first count
    assert p.n == 91


def test_a_resumed_run_in_this_process_tells_the_progress():
    rs = runs(1, epochs=10)
    p = P.SweepProgress(rs, mode="lines", file=io.StringIO(), every=3600)
    P.LocalEpochs(p, rs[0].config_hash).on_train_begin({"history": [{}] * 4})   # 4 epochs
    assert (p.n, p._before) == (4, 4)


def test_format_run_line_for_energy_runs():
    run = E.Run(train_preserve_energy=0.9, test_rates=(0.0, 0.5), seed=3)
    rec = record(run, accuracy=0.9)
    assert P.format_run_line(rec, 1, 1) == ("[1/1] GunPoint energy 0.9 seed 3: accuracy 90.0% "
                                            "at energy 0.9, 1.2 s")


def test_a_sweep_here_reports_every_epoch_and_every_run(monkeypatch, capsys):
    seen = []
    real = P.SweepProgress.epochs

    def spy(self, run_hash, count):
        seen.append((run_hash, count))
        return real(self, run_hash, count)
    monkeypatch.setattr(P.SweepProgress, "epochs", spy)
    rs = runs(2, epochs=3)
    E.sweep(rs, progress="lines")
    per_epoch = [(h, c) for h, c in seen]
    for run in rs:               # each epoch through fit's callbacks, in order, then the end
        assert [c for h, c in per_epoch if h == run.config_hash][:3] == [1, 2, 3]
    out = capsys.readouterr().out.splitlines()
    assert [line[:34] for line in out[:2]] == ["[1/2] ItalyPowerDemand rate 0 seed",
                                               "[2/2] ItalyPowerDemand rate 0 seed"]
    assert out[-1].startswith("done: 6/6 epochs (100%), runs 2/2, elapsed ")
    E.sweep(runs(1, epochs=1), progress=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="sweep: progress must be True, False, 'bar' or "
                                         "'lines', got 'loud'"):
        E.sweep(runs(1, epochs=1), progress="loud")
