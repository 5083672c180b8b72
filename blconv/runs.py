"""Runs: one configuration, its training recipe, and the record of its execution.

A sweep (:func:`blconv.experiments.sweep`) is a list of independent :class:`Run` s.
Each run trains one model at one training compress rate (or energy) and seed,
then evaluates it at every test compress rate — the paper's "band-limited
inference" experiment.  A run is a pure function of its configuration (seeded by
it, never by order or worker): :func:`execute` trains and tests it,
:func:`run_one` does so catching its errors and returns the per-run record that
:mod:`blconv.results` stores as ``runs/<config hash>.json`` (:func:`make_record`
builds it; :data:`FORMAT` is its version).  :func:`make_runs` builds the usual grid
of runs; :func:`thread_limits` sets the BLAS and FFT threads they use.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import socket
import time
import traceback as _traceback
from dataclasses import dataclass

import numpy as np

from .data import load_dataset, normalisation, resolve_datasets

__all__ = ["Run", "RECIPES", "FORMAT", "prepare", "execute", "run_one", "make_record",
           "make_runs", "thread_limits", "describe_training_data"]

#: Version of the per-run record (``runs/<hash>.json``); files of another are redone.
FORMAT = 1
#: Seconds between a sweep run's checkpoints (see :func:`execute`): a run killed
#: mid-training loses at most this much of its work.
CHECKPOINT_INTERVAL = 60.0


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
    of test rates becomes a tuple), and ``ucr_dir`` becomes an absolute path
    (``~`` expanded, ``.`` and ``..`` resolved against the current directory,
    symbolic links kept: no file system access), so equal configurations have
    equal :attr:`config_hash`: ``ucr_dir="./UCR"`` run from ``/data`` is
    ``ucr_dir="/data/UCR"``.

    Examples
    --------
    >>> from blconv.runs import Run
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
            if name == "ucr_dir":
                # one run whichever way the folder is named: ./UCR, ~/UCR, /abs/UCR
                value = os.path.abspath(os.path.expanduser(value))
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
        platform.  Every field counts, ``device`` and ``ucr_dir`` (absolute, as
        stored) included.
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


def execute(run: Run, *, progress: bool = False, callbacks=(), checkpoint_dir=None) -> list[dict]:
    """Train one run and evaluate it at each test rate; one record per test rate.

    ``callbacks`` are passed to :func:`blconv.train.fit` (a sweep's progress
    counts epochs through one); they cannot change the result.

    With ``checkpoint_dir``, the training is saved there (at most every
    :data:`CHECKPOINT_INTERVAL` seconds, and at its end) and resumed from it
    when a checkpoint is already there, so that a run interrupted mid-training
    continues from its last save; the records are those of an uninterrupted run
    (:func:`blconv.train.fit`'s resume is exact).  ``train_seconds`` is the time
    of the training's epochs, summed from the history (so, for a resumed run,
    over every stretch of it).

    A run trained with ``preserve_energy`` is tested, at its own test rate
    (``test_compress_rate`` equal to ``train_compress_rate``, 0), with the band
    of each test batch (256 examples) in ``test_accuracy``, ``test_loss`` and
    ``effective_rate``, and, in the same record, with the bands calibrated on
    the training set (:func:`blconv.nn.calibrate`, each batch alike) in
    ``calibrated_accuracy``, ``calibrated_loss`` and
    ``calibrated_effective_rate``.  Other records have no such fields (nor do
    those of files written before they existed).
    """
    from . import train as T
    tr, te, model_name, model, opt, sched = prepare(run)
    saving = {} if checkpoint_dir is None else {
        "checkpoint_dir": checkpoint_dir, "resume": True,
        "checkpoint_interval": CHECKPOINT_INTERVAL,
        "data_info": describe_training_data(run.dataset, tr)}
    hist = T.fit(model, tr, epochs=run.epochs, batch_size=run.batch_size, optimizer=opt,
                 scheduler=sched, seed=run.seed, progress=progress, monitor="loss",
                 callbacks=callbacks, **saving)
    seconds = float(sum(hist.epoch_seconds))                 # every stretch of a resumed run
    calibrated = None
    if run.train_preserve_energy is not None:
        from .nn import calibrate
        per_batch = T.evaluate(model, te, preserve_energy=run.train_preserve_energy)
        calibrate(model, tr)
        ev = T.evaluate(model, te)
        calibrated = {"calibrated_accuracy": float(ev["accuracy"]),
                      "calibrated_loss": float(ev["loss"]),
                      "calibrated_effective_rate": float(ev["effective_rate"])}
    records = []
    for rate in run.test_rates:
        own = run.train_preserve_energy is not None and rate == run.train_compress_rate
        ev = per_batch if own else T.evaluate(model, te, compress_rate=rate)
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
        if own:
            records[-1].update(calibrated)
    return records


def run_one(run: Run, *, threads: int | None = None, callbacks=(), checkpoint_dir=None) -> dict:
    """Execute ``run``, catching its errors: the record that a sweep writes for it.

    Parameters
    ----------
    run : Run
    threads : int, optional
        Set this process's BLAS threads (through ``threadpoolctl``) and FFT
        threads (:func:`blconv.set_fft_workers`) to this,
        and leave them so (Dask workers use 1).  The results do not depend
        on it (see Notes of :func:`blconv.experiments.sweep`).
    callbacks : list, optional
        :func:`blconv.train.fit` callbacks that watch the training (progress
        reports); they must not stop it or change it.
    checkpoint_dir : str or os.PathLike, optional
        Save the training there and resume from it (see :func:`execute`).

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
        rounding otherwise (see Notes of :func:`blconv.experiments.sweep`).
    """
    started = time.time()
    if threads is not None:
        _set_threads(threads)
    try:
        records = execute(run, callbacks=callbacks, checkpoint_dir=checkpoint_dir)
    except Exception as e:  # recorded, never raised: one bad run must not stop a sweep
        return make_record(run, status="failed", error=f"{type(e).__name__}: {e}",
                           traceback=_traceback.format_exc(), started=started)
    return make_record(run, status="done", records=records, started=started)


def make_record(run: Run, *, status: str, started: float, records=(), error=None,
                traceback=None) -> dict:
    """The per-run record of ``run`` (see :func:`run_one` for its fields).

    Parameters
    ----------
    run : Run
    status : {"done", "failed"}
    started : float
        When the run started (``time.time()``); it finishes now.
    records : list of dict
        :func:`execute`'s records (done runs).
    error, traceback : str, optional
        ``"Type: message"`` and the formatted traceback (failed runs).
    """
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
def thread_limits(n: int | None):
    """BLAS and FFT threads at ``n`` inside, restored on exit (``None``: unchanged).

    A speed setting: results agree to float32 rounding across thread counts (see
    Notes of :func:`blconv.experiments.sweep`).
    """
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

    ``datasets`` goes through :func:`blconv.data.resolve_datasets` (``"all"``, ``"A,B"``);
    ``test_rates`` defaults to ``rates``; ``common`` holds the other :class:`Run`
    fields.  The defaults are the default sweep's (``python -m blconv``).

    Examples
    --------
    >>> from blconv.runs import make_runs
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


def describe_training_data(name: str, train) -> dict:
    """The training record's data entry for dataset ``name``, as ``blconv train`` stores it.

    :func:`blconv.checkpoint.describe_data` of ``train`` (loaded by
    :func:`blconv.data.load_dataset`) under the name it is loaded by, with its
    :func:`blconv.data.normalisation`: what ``blconv train`` stores in its
    checkpoints, and ``blconv eval`` reads to find the dataset again.

    Examples
    --------
    >>> from blconv.data import load_dataset
    >>> from blconv.runs import describe_training_data
    >>> train, _ = load_dataset("freq-low")
    >>> info = describe_training_data("freq-low", train)
    >>> info["name"], train.name, info["n_classes"], info["shape"]
    ('freq-low', 'frequency-low', 2, [128])
    """
    from .checkpoint import describe_data
    return describe_data(train, name=name, normalisation=normalisation(name))
