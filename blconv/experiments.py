"""Experiments: train at several compress rates, test at several, over seeds.

A sweep is a list of independent :class:`Run` s.  Each run trains one model at
one training compress rate (or energy) and seed, then evaluates it at every test
compress rate — the paper's "band-limited inference" experiment.  Every run is a
pure function of its configuration (seeded by it, never by order or worker), so
runs can execute anywhere and in any order: :func:`sweep` runs them here, or on a
Dask cluster (:mod:`blconv.dist`), writing each run's result as its own file
``runs/<config hash>.json`` so that a sweep run again does only what is missing.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import hashlib
import json
import math
import os
import socket
import time
import traceback as _traceback
from dataclasses import dataclass

import numpy as np

from .data import DATASETS, list_datasets, load_dataset, normalisation, resolve_datasets
from .dist import SweepResult, collect, read_run, run_path, run_sweep, write_run

__all__ = ["Run", "DATASETS", "load_dataset", "list_datasets", "resolve_datasets",
           "make_runs", "execute", "run_one", "sweep", "SweepResult", "collect",
           "read_run", "write_run", "run_path", "write_results", "write_plots", "summarize",
           "normalisation", "describe_training_data",
           "format_table", "COLUMNS", "PUBLISHED_FCN", "FORMAT", "RECIPES"]

#: Version of the per-run file layout (``runs/<hash>.json``); files of another are redone.
FORMAT = 1

#: Test accuracy (%) of FCN (Wang et al., 2017) in Fawaz et al., "Deep learning for time
#: series classification: a review", DMKD 2019, Table 4: mean (std) of 10 runs.
PUBLISHED_FCN = {"ArrowHead": (84.3, 1.5), "GunPoint": (100.0, 0.0),
                 "ItalyPowerDemand": (96.1, 0.3), "OSULeaf": (97.7, 0.9)}

@dataclass(frozen=True)
class Run:
    """One training run and its evaluations.

    Attributes
    ----------
    dataset : str
        A name from :data:`blconv.data.DATASETS`, or any UCR dataset under ``ucr_dir``.
    model : str
        ``"fcn1d"``, ``"cnn2d"`` or ``"resnet"``; ``"auto"`` picks ``fcn1d`` for
        series and ``cnn2d`` for images.
    train_compress_rate, train_preserve_energy
        The band-limiting policy during training (see :func:`blconv.conv2d`).
    test_rates : tuple of float
        Compress rates to evaluate the trained model at.
    optimizer : {"sgd", "adam"}
        The training recipe (see :func:`prepare`): ``"sgd"``, SGD with momentum
        and weight decay under a cosine schedule; ``"adam"``, the published FCN
        recipe (Wang et al., 2017): Adam, no weight decay, the lr halved after
        50 epochs without a lower training loss, down to 1e-4.
    lr, momentum, weight_decay
        ``None`` (the default) takes the recipe's: lr 0.01, momentum 0.9,
        weight decay 5e-4 for ``"sgd"``; lr 1e-3, weight decay 0 for
        ``"adam"`` (which has no momentum: it must stay ``None``).
    seed, epochs, batch_size, width, device, ucr_dir
        As the options of ``blconv train``.

    Numbers are normalised on construction (``0`` and ``0.0`` are one run; a list
    of test rates becomes a tuple), so equal configurations have equal
    :attr:`config_hash`.

    Examples
    --------
    >>> from blconv.experiments import Run
    >>> run = Run(dataset="ItalyPowerDemand", train_compress_rate=0, test_rates=[0, 0.5])
    >>> run.test_rates, run == Run.from_dict(run.to_dict())
    ((0.0, 0.5), True)
    >>> len(run.config_hash), run.config_hash == Run(dataset="ItalyPowerDemand",
    ...     test_rates=(0.0, 0.5)).config_hash
    (64, True)
    """
    dataset: str = "GunPoint"
    model: str = "auto"
    train_compress_rate: float = 0.0
    train_preserve_energy: float | None = None
    seed: int = 0
    epochs: int = 100
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    test_rates: tuple = (0.0,)
    width: int | None = None
    device: str = "cpu"
    ucr_dir: str | None = None

    def __post_init__(self):
        if self.optimizer not in RECIPES:
            raise ValueError(f"Run: optimizer must be one of {tuple(RECIPES)}, got "
                             f"{self.optimizer!r}")
        if self.optimizer == "adam" and self.momentum is not None:
            raise ValueError(f"Run: momentum applies to optimizer='sgd' only, got "
                             f"momentum={self.momentum!r} with optimizer='adam'")
        for name, default in RECIPES[self.optimizer].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        for name, kind in _FIELD_TYPES.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if name == "test_rates":
                items = (value,) if isinstance(value, (int, float)) else value
                value = tuple(_number(name, v, float) for v in items)
            else:
                value = _number(name, value, kind)
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The configuration as plain JSON types (``test_rates`` a list)."""
        d = dataclasses.asdict(self)
        d["test_rates"] = list(self.test_rates)
        return d

    @classmethod
    def from_dict(cls, d) -> "Run":
        """The run of a :meth:`to_dict` mapping; unknown keys raise ``TypeError``."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"Run.from_dict: unknown fields {sorted(unknown)}")
        return cls(**d)

    @property
    def config_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict`: the run's name on disk.

        Canonical: keys sorted, no spaces, floats as Python's shortest round-trip
        ``repr`` — the same text, so the same hash, in every process and on every
        platform.  Every field counts, ``device`` and ``ucr_dir`` included.
        """
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


_FIELD_TYPES = {"dataset": str, "model": str, "train_compress_rate": float,
                "train_preserve_energy": float, "seed": int, "epochs": int, "batch_size": int,
                "optimizer": str, "lr": float, "momentum": float, "weight_decay": float,
                "test_rates": tuple, "width": int, "device": str, "ucr_dir": str}
_OPTIONAL = {"train_preserve_energy", "width", "ucr_dir", "momentum"}

#: The training recipes of :class:`Run`: the defaults of its ``None`` fields.
RECIPES = {"sgd": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
           "adam": {"lr": 1e-3, "weight_decay": 0.0}}


def _number(name: str, value, kind):
    """``value`` as ``kind`` (float, int or str) without silent truncation or bools."""
    if kind is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise TypeError(f"Run: {name} must be a str, got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Run: {name} must be a number, got {value!r}")
    if kind is int:
        if int(value) != value:
            raise ValueError(f"Run: {name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def describe_training_data(name: str, train) -> dict:
    """The training record's data entry for dataset ``name`` loaded by :func:`load_dataset`.

    :func:`blconv.checkpoint.describe_data` of ``train`` under the name it is
    loaded by, with its :func:`normalisation`: what ``blconv train`` stores in
    its checkpoints, and ``blconv eval`` reads to find the dataset again.

    Examples
    --------
    >>> from blconv.experiments import describe_training_data, load_dataset
    >>> train, _ = load_dataset("freq-low")
    >>> info = describe_training_data("freq-low", train)
    >>> info["name"], train.name, info["n_classes"], info["shape"]
    ('freq-low', 'frequency-low', 2, [128])
    """
    from .checkpoint import describe_data
    return describe_data(train, name=name, normalisation=normalisation(name))


def _model_for(run: Run, train):
    from . import models
    name = run.model
    is_image = train.x.ndim == 4
    if name == "auto":
        name = "cnn2d" if is_image else "fcn1d"
    kw = dict(compress_rate=run.train_compress_rate, preserve_energy=run.train_preserve_energy,
              seed=run.seed)
    if run.width is not None:
        kw["width" if name != "fcn1d" else "channels"] = (
            run.width if name != "fcn1d" else (run.width, 2 * run.width, run.width))
    n_classes = int(train.y.max()) + 1
    builders = {"fcn1d": models.fcn1d, "cnn2d": models.cnn2d, "resnet": models.resnet}
    if name not in builders:
        raise ValueError(f"Run: unknown model {name!r}; known: auto, {', '.join(builders)}")
    if (name == "fcn1d") == is_image:
        raise ValueError(f"Run: model {name!r} does not fit dataset {run.dataset!r} "
                         f"(x has shape {train.x.shape[1:]} per sample)")
    return name, builders[name](train.x.shape[1], n_classes, **kw)


def prepare(run: Run):
    """What a run trains with: ``(train, test, model_name, model, optimizer, scheduler)``.

    float32 data and the model on ``run.device``; for ``run.optimizer == "sgd"``,
    SGD with momentum and weight decay and a cosine schedule over ``run.epochs``;
    for ``"adam"``, Adam and ``ReduceLROnPlateau(factor=0.5, patience=50,
    min_lr=1e-4)`` on the training loss, the FCN's published recipe (Wang et al.,
    2017; Fawaz et al., 2019).
    """
    from . import optim
    tr, te = load_dataset(run.dataset, ucr_dir=run.ucr_dir, seed=run.seed)
    tr = tr.replace(x=tr.x.astype(np.float32))
    te = te.replace(x=te.x.astype(np.float32))
    model_name, model = _model_for(run, tr)
    if run.device != "cpu":
        from .nn import to_device
        model = to_device(model, run.device)
    if run.optimizer == "adam":
        opt = optim.Adam(model, lr=run.lr, weight_decay=run.weight_decay)
        sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=50, min_lr=min(1e-4, run.lr))
    else:
        opt = optim.SGD(model, lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay)
        sched = optim.CosineLR(opt, t_max=run.epochs)
    return tr, te, model_name, model, opt, sched


def execute(run: Run, *, progress: bool = False) -> list[dict]:
    """Train one run and evaluate it at each test rate; one record per test rate."""
    from . import train as T
    tr, te, model_name, model, opt, sched = prepare(run)
    t0 = time.perf_counter()
    hist = T.fit(model, tr, epochs=run.epochs, batch_size=run.batch_size, optimizer=opt,
                 scheduler=sched, seed=run.seed, progress=progress, monitor="loss")
    seconds = time.perf_counter() - t0
    records = []
    for rate in run.test_rates:
        if run.train_preserve_energy is not None and rate == run.train_compress_rate:
            ev = T.evaluate(model, te, preserve_energy=run.train_preserve_energy)
        else:
            ev = T.evaluate(model, te, compress_rate=rate)
        records.append({
            "dataset": run.dataset, "model": model_name, "seed": run.seed,
            "train_compress_rate": run.train_compress_rate,
            "train_preserve_energy": run.train_preserve_energy,
            "test_compress_rate": float(rate), "test_accuracy": float(ev["accuracy"]),
            "test_loss": float(ev["loss"]), "effective_rate": float(ev["effective_rate"]),
            "train_accuracy": float(hist.accuracy[-1]), "train_loss": float(hist.loss[-1]),
            "epochs": run.epochs, "optimizer": run.optimizer,
            "train_seconds": round(seconds, 3),
        })
    return records


def run_one(run: Run, *, threads: int | None = None) -> dict:
    """Execute ``run``, catching its errors: the record that :func:`sweep` writes for it.

    Parameters
    ----------
    run : Run
    threads : int, optional
        Set this process's BLAS threads (through ``threadpoolctl``) and FFT
        threads (:func:`blconv.set_fft_workers`) to this,
        and leave them so (Dask workers use 1).  The results do not depend
        on it (see Notes of :func:`sweep`).

    Returns
    -------
    dict
        The per-run record (JSON types): ``format`` (:data:`FORMAT`), ``hash``
        (:attr:`Run.config_hash`), ``status`` (``"done"`` or ``"failed"``),
        ``config`` (:meth:`Run.to_dict`), ``records`` (:func:`execute`'s, one per
        test rate; empty when failed), ``error`` (``"Type: message"``) and
        ``traceback`` (``None`` when done), ``seconds``, ``started`` and
        ``finished`` (UTC, ISO 8601), ``host``, ``pid`` and ``blconv`` (version).
        The records are identical for identical arithmetic (same machine,
        libraries, thread count and speed settings) and equal to float32
        rounding otherwise (see Notes of :func:`sweep`).
    """
    started = time.time()
    if threads is not None:
        _set_threads(threads)
    try:
        records = execute(run)
    except Exception as e:  # recorded, never raised: one bad run must not stop a sweep
        return _record(run, status="failed", error=f"{type(e).__name__}: {e}",
                       traceback=_traceback.format_exc(), started=started)
    return _record(run, status="done", records=records, started=started)


def _record(run: Run, *, status: str, started: float, records=(), error=None,
            traceback=None) -> dict:
    from . import __version__
    now = time.time()
    return {"format": FORMAT, "hash": run.config_hash, "status": status,
            "config": run.to_dict(), "records": list(records), "error": error,
            "traceback": traceback, "seconds": round(now - started, 3),
            "started": _utc(started), "finished": _utc(now), "host": socket.gethostname(),
            "pid": os.getpid(), "blconv": __version__}


def _utc(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="seconds")


def _set_threads(n: int) -> None:
    from threadpoolctl import threadpool_limits

    from . import settings
    settings.set_fft_workers(n)
    threadpool_limits(limits=n)


@contextlib.contextmanager
def _thread_limits(n: int | None):
    """BLAS and FFT threads at ``n`` inside, restored on exit (``None``: unchanged)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    from . import settings
    with settings.fft_workers(n), threadpool_limits(limits=n):
        yield


def make_runs(datasets=("GunPoint",), rates=(0.0, 0.5, 0.75), seeds=(0,), *, test_rates=None,
              energies=(), **common) -> list[Run]:
    """The grid datasets x (rates, then energies) x seeds, each tested at ``test_rates``.

    ``datasets`` goes through :func:`resolve_datasets` (``"all"``, ``"A,B"``);
    ``test_rates`` defaults to ``rates``; ``common`` holds the other :class:`Run`
    fields.  The defaults are the default sweep's (``python -m blconv``).

    Examples
    --------
    >>> from blconv.experiments import make_runs
    >>> runs = make_runs("GunPoint,ArrowHead", [0, 0.5], [0, 1], epochs=10)
    >>> len(runs), runs[1].seed, runs[2].train_compress_rate, runs[0].test_rates
    (8, 1, 0.5, (0.0, 0.5))
    """
    datasets = resolve_datasets(datasets, ucr_dir=common.get("ucr_dir"))
    test_rates = tuple(float(r) for r in (test_rates if test_rates is not None else rates))
    runs = []
    for ds in datasets:
        for rate in rates:
            for seed in seeds:
                runs.append(Run(dataset=ds, train_compress_rate=float(rate), seed=int(seed),
                                test_rates=test_rates, **common))
        for e in energies:
            for seed in seeds:
                runs.append(Run(dataset=ds, train_preserve_energy=float(e), seed=int(seed),
                                test_rates=test_rates, **common))
    return runs


def sweep(spec=None, client=None, *, workers: int | None = None, out_dir=None,
          threads: int | None = None, retries: int = 2, progress: bool = True,
          **grid) -> SweepResult:
    """Execute a sweep's runs, here or on a Dask cluster; skip those already done in ``out_dir``.

    Parameters
    ----------
    spec : list of Run (or of Run mappings), Run, or mapping, optional
        The runs, or the keyword arguments of :func:`make_runs`.  Without it,
        ``grid`` (the same keywords) builds the runs: ``sweep(datasets="all",
        rates=[0, 0.5], seeds=[0, 1], epochs=50)``; with neither, the default
        sweep.  Duplicate runs are executed once.
    client : distributed.Client or str, optional
        Run on this Dask cluster (a scheduler address connects to it).
    workers : int, optional
        Run on a new local Dask cluster of this many processes (one thread
        each), closed at the end.  With neither ``client`` nor ``workers`` the
        runs execute one after the other in this process.
    out_dir : str or os.PathLike, optional
        Each run's record is written, atomically, to ``out_dir/runs/<hash>.json``
        as it ends (see :func:`run_one` for the fields); runs whose file says
        ``done`` are not executed again (failed ones are).  At the end
        ``results.json``, ``results.csv``, the plots and ``failures.json`` are
        rebuilt from the per-run files of ``spec``'s runs.
    threads : int, optional
        BLAS and FFT threads of each run (default: this process's settings
        when running here, 1 on Dask workers).
    retries : int, default 2
        Dask's ``retries=`` for a task whose machinery errors (the run's own
        errors are recorded, not retried; a run whose worker dies is given to
        another worker by the scheduler).
    progress : bool, default True
        A bar of runs done / running / failed on stderr.  (The dashboard
        address of the local cluster that ``workers`` starts is logged at
        ``INFO`` level to the ``blconv`` logger, whatever ``progress`` says.)
    **grid
        Keywords of :func:`make_runs`, when ``spec`` is not given.

    Returns
    -------
    SweepResult
        The records of the done runs, in ``spec`` order (one per run and test
        rate), with ``failures``, ``executed`` and ``skipped``.

    Raises
    ------
    TypeError
        Both ``spec`` and ``grid``; both ``client`` and ``workers``; a ``spec``
        item that is not a run.
    ImportError
        ``client`` or ``workers`` without Dask (the ``dist`` extra).

    Notes
    -----
    A run's result depends on its configuration alone: its seed drives the
    weights, the shuffles and the dropout.  Its records are identical
    (bit for bit) wherever the arithmetic is: the same machine, libraries,
    BLAS/FFT thread count and speed settings, on any worker, in any order,
    resumed or not.  Across thread counts, batch chunkings
    (:func:`blconv.max_workspace_bytes`) or CPU kernels the sums are reordered,
    and the float fields agree to float32 rounding (losses to about 1e-4
    relative on short runs; an accuracy may move by a sample whose logits tie).
    See the cluster guide in the documentation.

    An interrupted sweep (Ctrl-C, a crash, a cancelled job) keeps every
    finished run's file; calling it again with the same ``out_dir`` executes
    only the rest.

    Examples
    --------
    >>> from blconv.experiments import Run, sweep
    >>> runs = [Run(dataset="ItalyPowerDemand", width=4, epochs=1, batch_size=32,
    ...             train_compress_rate=rate, test_rates=(0.0, 0.5)) for rate in (0.0, 0.5)]
    >>> result = sweep(runs, progress=False)        # sweep(runs, workers=2) on Dask
    >>> len(result), result.executed, result.failures
    (4, 2, [])
    """
    runs = _as_runs("sweep", spec, grid)
    if client is not None and workers is not None:
        raise TypeError("sweep: pass client or workers, not both")
    return run_sweep(runs, client=client, workers=workers, out_dir=out_dir, threads=threads,
                     retries=retries, progress=progress)


def _as_runs(fn: str, spec, grid) -> list[Run]:
    """``spec`` (or ``grid``) as distinct runs, first occurrence first."""
    from collections.abc import Iterable, Mapping
    if spec is not None and grid:
        raise TypeError(f"{fn}: pass spec or grid keywords ({', '.join(sorted(grid))}), "
                        f"not both")
    if spec is None:
        spec = grid
    if isinstance(spec, Mapping):
        items = make_runs(**spec)
    elif isinstance(spec, Run):
        items = [spec]
    elif isinstance(spec, Iterable) and not isinstance(spec, str):
        items = list(spec)
    else:
        raise TypeError(f"{fn}: spec must be a list of Run, a Run or a mapping of make_runs "
                        f"keywords, got {type(spec).__name__}")
    runs: dict[str, Run] = {}
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            item = Run.from_dict(item)
        if not isinstance(item, Run):
            raise TypeError(f"{fn}: spec[{i}] must be a Run or a mapping of Run fields, "
                            f"got {type(item).__name__}")
        runs.setdefault(item.config_hash, item)
    return list(runs.values())


COLUMNS = ["dataset", "model", "seed", "train_compress_rate", "train_preserve_energy",
           "test_compress_rate", "test_accuracy", "test_loss", "effective_rate",
           "train_accuracy", "train_loss", "epochs", "optimizer", "train_seconds"]


def _atomic_write(path: str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, sync it, rename it over ``path``."""
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
    import io
    os.makedirs(out_dir, exist_ok=True)
    if failures is not None:
        _atomic_write(os.path.join(out_dir, "failures.json"),
                      json.dumps(list(failures), indent=1))
    _atomic_write(os.path.join(out_dir, "results.json"), json.dumps(records, indent=1))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(records)
    _atomic_write(os.path.join(out_dir, "results.csv"), buf.getvalue())
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


def _format_failures(failures) -> str:
    """One indented line per failed run: dataset, training policy, seed and the error.

    Examples
    --------
    >>> from blconv.experiments import Run, _format_failures, run_one
    >>> record = run_one(Run(dataset="NoSuchSet", seed=2))
    >>> print(_format_failures([record]))  # doctest: +ELLIPSIS
      NoSuchSet rate 0 seed 2: ValueError: load_dataset: unknown dataset 'NoSuchSet'; ...
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
