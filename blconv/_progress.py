"""What a sweep shows while it runs: epochs done over all runs, and a line per finished run.

:class:`SweepProgress` counts progress in epochs (runs x epochs), so that elapsed
time and an ETA show from the first epoch on, and writes one line per run as it
ends (dataset, training rate or energy, seed, accuracy, time).  It is fed by
:func:`blconv.train.fit` callbacks: :class:`LocalEpochs` in this process,
:class:`WorkerEpochs` on Dask workers, where each worker logs its runs' epoch
counts as Dask events that this process subscribes to (:meth:`SweepProgress.topic`).

Two displays: a ``tqdm.auto`` bar (a widget in notebooks, a bar on terminals)
whose last line stays, the run lines printed above it; or plain lines (the
output is not a terminal, or asked for): the run lines, and a summary line at
most every ``every`` seconds while epochs advance, and one at the end.
"""
from __future__ import annotations

import sys
import threading
import time

__all__ = ["SweepProgress", "LocalEpochs", "WorkerEpochs", "MODES", "format_run_line"]

MODES = ("auto", "bar", "lines")


def _in_notebook() -> bool:
    """Whether ``tqdm.auto`` draws widgets here (a Jupyter kernel)."""
    from tqdm.auto import tqdm
    return any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)


def _clock(seconds: float) -> str:
    """``1:02`` or ``1:02:03``."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _policy(config: dict) -> str:
    energy = config.get("train_preserve_energy")
    return f"energy {energy:g}" if energy is not None else f"rate {config['train_compress_rate']:g}"


def format_run_line(record: dict, index: int, total: int) -> str:
    """``[2/3] GunPoint rate 0.5 seed 0: accuracy 93.3% at test rate 0.5, 41.2 s``.

    The accuracy is the one at the run's own band (the test rate equal to the
    training rate, or the training energy), else at its first test rate.

    Examples
    --------
    >>> from blconv._progress import format_run_line
    >>> config = {"dataset": "GunPoint", "train_compress_rate": 0.5, "seed": 0,
    ...           "train_preserve_energy": None}
    >>> record = {"config": config, "status": "done", "seconds": 41.23, "records": [
    ...     {"test_compress_rate": 0.0, "test_accuracy": 0.96},
    ...     {"test_compress_rate": 0.5, "test_accuracy": 0.9333}]}
    >>> format_run_line(record, 2, 3)
    '[2/3] GunPoint rate 0.5 seed 0: accuracy 93.3% at test rate 0.5, 41.2 s'
    """
    c = record["config"]
    head = f"[{index}/{total}] {c['dataset']} {_policy(c)} seed {c['seed']}"
    seconds = f"{record['seconds']:.1f} s"
    if record["status"] != "done":
        error = (record.get("error") or "").splitlines()[0] if record.get("error") else "?"
        if len(error) > 120:
            error = error[:117] + "..."
        return f"{head}: FAILED after {seconds}: {error}"
    rows = record["records"]
    own = [r for r in rows if r["test_compress_rate"] == c["train_compress_rate"]]
    row = own[0] if own else rows[0]
    where = (f"energy {c['train_preserve_energy']:g}"
             if own and c.get("train_preserve_energy") is not None
             else f"test rate {row['test_compress_rate']:g}")
    return f"{head}: accuracy {100 * row['test_accuracy']:.1f}% at {where}, {seconds}"


class SweepProgress:
    """Progress of a sweep in epochs, and a line per finished run.

    Parameters
    ----------
    runs : list of Run
        The runs to execute now.
    done : list of Run, default ()
        Runs of the same sweep found done (a resumed sweep): counted as done.
    mode : {"auto", "bar", "lines"}, default "auto"
        ``"auto"``: a bar in notebooks and when ``file`` is a terminal, plain
        lines otherwise.
    file : file object, optional
        Where to write (default ``sys.stdout`` at the time of construction).
    every : float, default 30
        In ``"lines"`` mode, the least seconds between two summary lines.
    """

    def __init__(self, runs, *, done=(), mode: str = "auto", file=None, every: float = 30.0):
        if mode not in MODES:
            raise ValueError(f"SweepProgress: mode must be one of {MODES}, got {mode!r}")
        self.file = sys.stdout if file is None else file
        if mode == "auto":
            tty = getattr(self.file, "isatty", None)
            mode = "bar" if _in_notebook() or (tty is not None and tty()) else "lines"
        self.mode, self.every = mode, float(every)
        self.epochs_of = {run.config_hash: run.epochs for run in runs}
        self.total_runs = len(runs) + len(done)
        self.total = sum(self.epochs_of.values()) + sum(run.epochs for run in done)
        self.finished_runs, self.failed, self.running = len(done), 0, 0
        self.n = sum(run.epochs for run in done)
        self._before = self.n        # epochs done before this sweep: not in its pace (ETA)
        self._count = dict.fromkeys(self.epochs_of, 0)
        self._pending: dict[str, int] = {}          # from the Dask event thread
        self._pending_resumed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._last_line = self._t0
        self._line_n = self.n
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.total, initial=self.n, desc="epochs", unit="epoch",
                            file=self.file, leave=True, dynamic_ncols=True)
            self._postfix()

    # --- what the runs report -------------------------------------------------------------
    def epochs(self, run_hash: str, count: int) -> None:
        """Run ``run_hash`` has completed ``count`` epochs (cumulative; never goes back)."""
        if run_hash not in self._count:
            return
        count = min(int(count), self.epochs_of[run_hash])
        delta = count - self._count[run_hash]
        if delta > 0:
            self._count[run_hash] = count
            self._advance(delta)

    def resumed(self, run_hash: str, count: int) -> None:
        """Run ``run_hash`` continues from a checkpoint of ``count`` epochs: they count as
        done, but were not done by this sweep, so the ETA's pace leaves them out."""
        if run_hash not in self._count or self._count[run_hash] > 0:
            return
        count = min(int(count), self.epochs_of[run_hash])
        if count > 0:
            self._count[run_hash] = count
            self._before += count
            self.n += count
            self._line_n += count
            if self.bar is not None:          # moved without update(): not in tqdm's rate
                self.bar.initial += count
                self.bar.n += count
                self.bar.last_print_n += count
                self.bar.refresh()

    def event(self, event) -> None:
        """A Dask event ``(time, {"run": hash, "epochs": count})`` (or ``"resumed": count``
        instead of ``"epochs"``); safe from any thread."""
        try:
            msg = event[1]
            run_hash = str(msg["run"])
            resumed = "resumed" in msg
            count = int(msg["resumed"] if resumed else msg["epochs"])
        except (TypeError, KeyError, IndexError, ValueError):
            return
        with self._lock:
            pending = self._pending_resumed if resumed else self._pending
            pending[run_hash] = max(count, pending.get(run_hash, 0))

    def poll(self, running: int | None = None) -> None:
        """Take in the epochs reported by events; refresh the display."""
        with self._lock:
            pending, self._pending = self._pending, {}
            resumed, self._pending_resumed = self._pending_resumed, {}
        for run_hash, count in resumed.items():
            self.resumed(run_hash, count)
        for run_hash, count in pending.items():
            self.epochs(run_hash, count)
        if running is not None and running != self.running:
            self.running = running
            if self.bar is not None:
                self._postfix()
        self._maybe_line()

    def finished(self, record: dict) -> None:
        """A run ended (done or failed): its epochs all count, and its line is written."""
        run_hash = record["hash"]
        if run_hash in self._count:
            self.epochs(run_hash, self.epochs_of[run_hash])
        self.finished_runs += 1
        self.failed += record["status"] != "done"
        self._write(format_run_line(record, self.finished_runs, self.total_runs))
        if self.bar is not None:
            self._postfix()

    def close(self) -> None:
        """The final line: the bar's (kept), or a summary line."""
        self.running = 0
        if self.bar is not None:
            self._postfix()
            self.bar.close()
            self.bar = None
        elif self.mode == "lines":
            self._write(self._summary("done" if self.finished_runs == self.total_runs
                                      else "stopped"))

    def topic(self) -> str:
        """A Dask event topic unique to this object."""
        return f"blconv-progress-{id(self):x}-{int(self._t0 * 1e6) % 10 ** 9}"

    # --- display --------------------------------------------------------------------------
    def _advance(self, delta: int) -> None:
        self.n += delta
        if self.bar is not None:
            self.bar.update(delta)

    def _postfix(self) -> None:
        parts = [f"runs {self.finished_runs}/{self.total_runs}"]
        if self.running:
            parts.append(f"running {self.running}")
        if self.failed:
            parts.append(f"failed {self.failed}")
        self.bar.set_postfix_str(", ".join(parts), refresh=True)

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.file)
        else:
            print(line, file=self.file, flush=True)

    def _maybe_line(self) -> None:
        if self.mode != "lines" or self.n == self._line_n:
            return
        now = time.perf_counter()
        if now - self._last_line >= self.every:
            self._last_line, self._line_n = now, self.n
            self._write(self._summary("progress"))

    def _summary(self, what: str) -> str:
        elapsed = time.perf_counter() - self._t0
        pct = 100 * self.n / self.total if self.total else 100.0
        line = (f"{what}: {self.n}/{self.total} epochs ({pct:.0f}%), runs "
                f"{self.finished_runs}/{self.total_runs}")
        if self.failed:
            line += f" ({self.failed} failed)"
        if what == "progress" and self.running:
            line += f", {self.running} running"
        line += f", elapsed {_clock(elapsed)}"
        done_now = self.n - self._before
        if what == "progress" and done_now > 0 and self.n < self.total:
            line += f", ETA {_clock(elapsed * (self.total - self.n) / done_now)}"
        return line


class LocalEpochs:
    """A :func:`blconv.train.fit` callback telling a :class:`SweepProgress` of each epoch."""

    def __init__(self, progress: SweepProgress, run_hash: str):
        self.progress, self.run_hash = progress, run_hash

    def on_train_begin(self, info: dict) -> None:
        self.progress.resumed(self.run_hash, len(info["history"]))

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        self.progress.epochs(self.run_hash, epoch)
        self.progress.poll()


class WorkerEpochs:
    """A :func:`blconv.train.fit` callback, on a Dask worker, logging epoch counts as events.

    Sends ``{"run": hash, "epochs": count}`` to ``topic`` at most every ``every``
    seconds, and at the last epoch (and ``{"run": hash, "resumed": count}`` first when
    the run continues from a checkpoint).  Counts are cumulative, so a lost or late
    event costs nothing but a slower bar.  Progress never fails a run: without a
    worker (run in a plain process) or on any error it stops reporting.
    """

    def __init__(self, topic: str, run_hash: str, epochs: int, every: float = 0.5):
        self.topic, self.run_hash, self.epochs, self.every = topic, run_hash, epochs, every
        self._last = None

    def __getstate__(self):
        return {"topic": self.topic, "run_hash": self.run_hash, "epochs": self.epochs,
                "every": self.every}

    def __setstate__(self, state):
        self.__init__(**state)

    def on_train_begin(self, info: dict) -> None:
        if len(info["history"]):              # resumed from a checkpoint
            self._log({"run": self.run_hash, "resumed": len(info["history"])})

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        now = time.monotonic()
        if self._last is False or (self._last is not None and now - self._last < self.every
                                   and epoch < self.epochs):
            return
        if self._log({"run": self.run_hash, "epochs": int(epoch)}):
            self._last = now

    def _log(self, msg: dict) -> bool:
        if self._last is False:
            return False
        try:
            from distributed import get_worker
            get_worker().log_event(self.topic, msg)
            return True
        except Exception:         # noqa: BLE001 -- no worker, no scheduler: no progress
            self._last = False
            return False
