"""Results of a sweep: per-run files, the records they hold, tables and plots.

Each run's record (:func:`blconv.runs.run_one`) is stored as its own file
``out_dir/runs/<config hash>.json``, written atomically (:func:`write_run`), so a
sweep interrupted at any point keeps every finished run and a sweep run again
does only what is missing (:func:`read_run`).  :func:`collect` rebuilds the
sweep's records from those files; :func:`write_results` writes them as
``results.json``, ``results.csv`` (:data:`COLUMNS`) and plots;
:func:`summarize` and :func:`format_table` give the mean and spread over seeds.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os

import numpy as np

from .runs import FORMAT

__all__ = ["SweepResult", "COLUMNS", "PUBLISHED_FCN", "atomic_write", "run_path", "write_run",
           "read_run", "collect", "split_records", "write_results", "write_plots", "summarize",
           "format_table", "format_failures"]

COLUMNS = ["dataset", "model", "seed", "train_compress_rate", "train_preserve_energy",
           "test_compress_rate", "test_accuracy", "test_loss", "effective_rate",
           "train_accuracy", "train_loss", "epochs", "optimizer", "train_seconds",
           "calibrated_accuracy", "calibrated_loss", "calibrated_effective_rate"]

#: Test accuracy (%) of FCN (Wang et al., 2017) in Fawaz et al., "Deep learning for time
#: series classification: a review", DMKD 2019, Table 4: mean (std) of 10 runs.
PUBLISHED_FCN = {"ArrowHead": (84.3, 1.5), "GunPoint": (100.0, 0.0),
                 "ItalyPowerDemand": (96.1, 0.3), "OSULeaf": (97.7, 0.9)}


class SweepResult(list):
    """The records of a sweep's done runs (a list), with what became of its runs.

    :func:`blconv.experiments.sweep` returns one; it is the list of records it
    always returned, in grid order, one per run and test rate.

    Attributes
    ----------
    failures : list of dict
        The per-run records (:func:`blconv.runs.run_one`) of the runs that failed.
    executed, skipped : int
        Runs executed by this call, and runs found done in ``out_dir``.
    out_dir : str or None
    """

    def __init__(self, records=(), *, failures=(), executed: int = 0, skipped: int = 0,
                 out_dir=None):
        super().__init__(records)
        self.failures = list(failures)
        self.executed, self.skipped, self.out_dir = executed, skipped, out_dir


# --- per-run files ---------------------------------------------------------------------
def atomic_write(path: str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, sync it, rename it over ``path``.

    A reader of ``path`` sees the old file or the whole new one, never a part; the
    temporary file is removed when the write fails.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def run_path(out_dir, run) -> str:
    """``out_dir/runs/<run.config_hash>.json``."""
    return os.path.join(os.fspath(out_dir), "runs", f"{run.config_hash}.json")


def checkpoint_dir(out_dir, run_hash: str) -> str:
    """``out_dir/checkpoints/<run_hash>``: where a sweep's run saves its training as it goes."""
    return os.path.join(os.fspath(out_dir), "checkpoints", run_hash)


def write_run(out_dir, record: dict) -> str:
    """Write a :func:`blconv.runs.run_one` record atomically; returns its path.

    The record goes to ``out_dir/runs/<hash>.json`` through :func:`atomic_write`: a
    reader sees the old file or the whole new one, never a part.
    """
    folder = os.path.join(os.fspath(out_dir), "runs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{record['hash']}.json")
    atomic_write(path, json.dumps(record, indent=1))
    return path


def read_run(out_dir, run) -> dict | None:
    """The record in ``run``'s file, or ``None``: no file, unreadable, or another format/run."""
    record = _read_record(run_path(out_dir, run))
    if record is None or record.get("hash") != run.config_hash:
        return None
    return record


def _read_record(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):   # missing, or not JSON: redo the run
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    return record


def collect(out_dir, runs=None) -> tuple[list[dict], list[dict]]:
    """``(records, failures)`` rebuilt from the per-run files of ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        A directory written by :func:`blconv.experiments.sweep`.
    runs : list of Run, optional
        Read these runs' files, in this order (those without a file are left
        out); default every file in ``out_dir/runs``, ordered by dataset, model,
        training policy and seed.

    Returns
    -------
    records : list of dict
        The :func:`blconv.runs.execute` records of the done runs.
    failures : list of dict
        The per-run records of the failed runs (:func:`blconv.runs.run_one`).
    """
    if runs is not None:
        found = [read_run(out_dir, run) for run in runs]
    else:
        folder = os.path.join(os.fspath(out_dir), "runs")
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        found = [_read_record(os.path.join(folder, n)) for n in names if n.endswith(".json")]
        found = sorted((r for r in found if r is not None), key=_config_order)
    return split_records([r for r in found if r is not None])


def _config_order(record):
    c = record["config"]
    energy = c.get("train_preserve_energy")
    return (c["dataset"], c["model"], energy is not None, energy or 0.0,
            c["train_compress_rate"], c["seed"], record["hash"])


def split_records(found) -> tuple[list[dict], list[dict]]:
    """``(records, failures)`` of a list of per-run records (:func:`blconv.runs.run_one`).

    ``records`` holds the done runs' :func:`blconv.runs.execute` records, one per
    test rate, in order; ``failures`` the failed runs' per-run records.
    """
    records = [rec for r in found if r["status"] == "done" for rec in r["records"]]
    return records, [r for r in found if r["status"] != "done"]


# --- tables and plots ------------------------------------------------------------------
def write_plots(records, out_dir) -> list[str]:
    """Accuracy-vs-compression and train x test heatmap PNGs (needs the ``plot`` extra).

    The figures are :class:`matplotlib.figure.Figure` objects drawn and saved
    directly, outside pyplot: the user's matplotlib backend and open figures are
    left as they were.

    Returns the paths written; an empty list when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []

    from . import viz
    paths = []
    fig = Figure(figsize=(6, 4))
    viz.plot_compression_accuracy(records, ax=fig.subplots())
    paths.append(os.path.join(out_dir, "accuracy_vs_compression.png"))
    fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    for ds in sorted({r["dataset"] for r in records}):
        sub = [r for r in records if r["dataset"] == ds]
        if len({r["test_compress_rate"] for r in sub}) < 2:
            continue
        fig = Figure(figsize=(5, 4))
        viz.plot_train_test_heatmap(sub, ax=fig.subplots(), dataset=ds)
        paths.append(os.path.join(out_dir, f"heatmap_{ds}.png"))
        fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    return paths


def write_results(records, out_dir, *, failures=None) -> None:
    """``results.json`` (a list of records), ``results.csv`` (same columns) and the plots.

    With ``failures`` (a list, maybe empty) also ``failures.json``.
    """
    os.makedirs(out_dir, exist_ok=True)
    if failures is not None:
        atomic_write(os.path.join(out_dir, "failures.json"),
                     json.dumps(list(failures), indent=1))
    atomic_write(os.path.join(out_dir, "results.json"), json.dumps(records, indent=1))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(records)
    atomic_write(os.path.join(out_dir, "results.csv"), buf.getvalue())
    if records:
        write_plots(records, out_dir)


def summarize(records) -> list[dict]:
    """Mean and standard deviation of test accuracy over seeds, per (dataset, model,
    train policy, test rate).

    ``accuracy_std`` is the *sample* standard deviation over seeds (``ddof=1``, as
    papers report a spread over runs), ``nan`` for a single seed, which has none.
    """
    groups: dict = {}
    for r in records:
        key = (r["dataset"], r["model"], r["train_compress_rate"], r["train_preserve_energy"],
               r["test_compress_rate"])
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        acc = np.array([r["test_accuracy"] for r in rs])
        out.append(dict(zip(("dataset", "model", "train_compress_rate", "train_preserve_energy",
                             "test_compress_rate"), key),
                        accuracy_mean=float(acc.mean()),
                        accuracy_std=float(acc.std(ddof=1)) if acc.size > 1 else math.nan,
                        seeds=len(rs), effective_rate=float(np.mean([r["effective_rate"]
                                                                     for r in rs]))))
    return out


def format_failures(failures) -> str:
    """One indented line per failed run: dataset, training policy, seed and the error.

    Examples
    --------
    >>> from blconv.results import format_failures
    >>> from blconv.runs import Run, run_one
    >>> record = run_one(Run(dataset="NoSuchSet", seed=2))
    >>> print(format_failures([record]))  # doctest: +ELLIPSIS
      NoSuchSet rate 0 seed 2: ValueError: load_dataset: unknown dataset 'NoSuchSet': ...
    """
    lines = []
    for f in failures:
        c = f["config"]
        policy = (f"energy {c['train_preserve_energy']:g}"
                  if c["train_preserve_energy"] is not None
                  else f"rate {c['train_compress_rate']:g}")
        lines.append(f"  {c['dataset']} {policy} seed {c['seed']}: {f['error']}")
    return "\n".join(lines)


def format_table(records) -> str:
    """A plain-text table of :func:`summarize` (accuracy in %).

    ``±`` is the sample standard deviation over seeds (``ddof=1``); a row of one
    seed shows the mean alone.
    """
    rows = summarize(records)
    head = (f"{'dataset':<18}{'model':<7}{'train':>8}{'test':>7}{'eff.':>7}"
            f"{'accuracy % ± SD':>17}{'seeds':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        train = (f"E={r['train_preserve_energy']:g}" if r["train_preserve_energy"] is not None
                 else f"{r['train_compress_rate']:.2f}")
        lines.append(f"{r['dataset']:<18}{r['model']:<7}{train:>8}"
                     f"{r['test_compress_rate']:>7.2f}{r['effective_rate']:>7.2f}"
                     f"{100 * r['accuracy_mean']:>11.1f}"
                     + (f" ±{100 * r['accuracy_std']:>4.1f}" if r["seeds"] > 1 else " " * 6)
                     + f"{r['seeds']:>7}")
    if any(r["seeds"] > 1 for r in rows):
        lines.append("± : sample standard deviation over seeds (ddof=1)")
    return "\n".join(lines)
