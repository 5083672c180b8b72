"""Experiments: train at several compress rates, test at several, over seeds.

A sweep is a list of independent :class:`Run` s.  Each run trains one model at
one training compress rate (or energy) and seed, then evaluates it at every test
compress rate — the paper's "band-limited inference" experiment.  Every run is a
pure function of its configuration (seeded by it, never by order), so runs can
execute anywhere and in any order.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Run", "DATASETS", "load_dataset", "make_runs", "execute", "sweep",
           "write_results", "summarize", "format_table", "PUBLISHED_FCN"]

#: Test accuracy (%) of FCN (Wang et al., 2017) in Fawaz et al., "Deep learning for time
#: series classification: a review", DMKD 2019, Table 4: mean (std) of 10 runs.
PUBLISHED_FCN = {"ArrowHead": (84.3, 1.5), "GunPoint": (100.0, 0.0),
                 "ItalyPowerDemand": (96.1, 0.3), "OSULeaf": (97.7, 0.9)}

DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "OSULeaf", "digits",
            "freq-low", "freq-high")


@dataclass(frozen=True)
class Run:
    """One training run and its evaluations.

    Attributes
    ----------
    dataset : str
        A name from :data:`DATASETS`, or any UCR dataset under ``ucr_dir``.
    model : str
        ``"fcn1d"``, ``"cnn2d"`` or ``"resnet"``; ``"auto"`` picks ``fcn1d`` for
        series and ``cnn2d`` for images.
    train_compress_rate, train_preserve_energy
        The band-limiting policy during training (see :func:`blconv.conv2d`).
    test_rates : tuple of float
        Compress rates to evaluate the trained model at.
    """
    dataset: str = "GunPoint"
    model: str = "auto"
    train_compress_rate: float = 0.0
    train_preserve_energy: float | None = None
    seed: int = 0
    epochs: int = 100
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    test_rates: tuple = (0.0,)
    width: int | None = None
    device: str = "cpu"
    ucr_dir: str | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["test_rates"] = list(self.test_rates)
        return d


def load_dataset(name: str, *, ucr_dir: str | None = None, seed: int = 0):
    """``(train, test)`` NumPy datasets for a name of :data:`DATASETS` or a UCR dataset.

    UCR series are z-normalised per series (as the archive is); digits are scaled
    to [0, 1] and split 75/25 with a fixed seed; the frequency tasks are generated.
    """
    from . import data
    if name == "digits":
        ds = data.load_digits()
        ds = ds.replace(x=ds.x / 16.0)
        train, test = data.train_test_split(ds, test_fraction=0.25, seed=0)
        return train, test
    if name in ("freq-low", "freq-high"):
        return data.make_frequency_task(name.split("-")[1], n_samples=256, length=128,
                                        seed=1000 + seed)
    if ucr_dir is None and name not in data.list_ucr():
        raise ValueError(f"load_dataset: unknown dataset {name!r}; known: "
                         f"{', '.join(DATASETS)}, or any UCR dataset with --ucr-dir")
    train, test = data.load_ucr(name, path=ucr_dir)
    return data.znorm(train), data.znorm(test)


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


def execute(run: Run, *, progress: bool = False) -> list[dict]:
    """Train one run and evaluate it at each test rate; one record per test rate."""
    from . import optim, train as T
    tr, te = load_dataset(run.dataset, ucr_dir=run.ucr_dir, seed=run.seed)
    tr = tr.replace(x=tr.x.astype(np.float32))
    te = te.replace(x=te.x.astype(np.float32))
    model_name, model = _model_for(run, tr)
    if run.device != "cpu":
        from .nn import to_device
        model = to_device(model, run.device)
    opt = optim.SGD(model, lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay)
    sched = optim.CosineLR(opt, t_max=run.epochs)
    t0 = time.perf_counter()
    hist = T.fit(model, tr, epochs=run.epochs, batch_size=run.batch_size, optimizer=opt,
                 scheduler=sched, seed=run.seed, progress=progress)
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
            "epochs": run.epochs, "train_seconds": round(seconds, 3),
        })
    return records


def make_runs(datasets, rates, seeds, *, test_rates=None, energies=(), **common) -> list[Run]:
    """The grid datasets x (rates, then energies) x seeds, each tested at ``test_rates``."""
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


def sweep(runs, *, out_dir=None, progress: bool = True) -> list[dict]:
    """Execute ``runs`` in this process; write ``results.json``/``.csv`` into ``out_dir``."""
    from tqdm.auto import tqdm
    records = []
    for run in tqdm(list(runs), desc="runs", disable=not progress, leave=False):
        records.extend(execute(run))
    if out_dir is not None:
        write_results(records, out_dir)
    return records


COLUMNS = ["dataset", "model", "seed", "train_compress_rate", "train_preserve_energy",
           "test_compress_rate", "test_accuracy", "test_loss", "effective_rate",
           "train_accuracy", "train_loss", "epochs", "train_seconds"]


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_plots(records, out_dir) -> list[str]:
    """Accuracy-vs-compression and train x test heatmap PNGs (needs the ``plot`` extra).

    Returns the paths written; an empty list when matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import viz
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    viz.plot_compression_accuracy(records, ax=ax)
    paths.append(os.path.join(out_dir, "accuracy_vs_compression.png"))
    fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    for ds in sorted({r["dataset"] for r in records}):
        sub = [r for r in records if r["dataset"] == ds]
        if len({r["test_compress_rate"] for r in sub}) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5, 4))
        viz.plot_train_test_heatmap(sub, ax=ax, dataset=ds)
        paths.append(os.path.join(out_dir, f"heatmap_{ds}.png"))
        fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
        plt.close(fig)
    return paths


def write_results(records, out_dir) -> None:
    """``results.json`` (a list of records), ``results.csv`` (same columns) and the plots."""
    import io
    os.makedirs(out_dir, exist_ok=True)
    _atomic_write(os.path.join(out_dir, "results.json"), json.dumps(records, indent=1))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(records)
    _atomic_write(os.path.join(out_dir, "results.csv"), buf.getvalue())
    write_plots(records, out_dir)


def summarize(records) -> list[dict]:
    """Mean and std of test accuracy over seeds per (dataset, train policy, test rate)."""
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
                        accuracy_mean=float(acc.mean()), accuracy_std=float(acc.std()),
                        seeds=len(rs), effective_rate=float(np.mean([r["effective_rate"]
                                                                     for r in rs]))))
    return out


def format_table(records) -> str:
    """A plain-text table of :func:`summarize` (accuracy in %)."""
    rows = summarize(records)
    head = (f"{'dataset':<18}{'model':<7}{'train':>8}{'test':>7}{'eff.':>7}"
            f"{'accuracy %':>13}{'seeds':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        train = (f"E={r['train_preserve_energy']:g}" if r["train_preserve_energy"] is not None
                 else f"{r['train_compress_rate']:.2f}")
        lines.append(f"{r['dataset']:<18}{r['model']:<7}{train:>8}"
                     f"{r['test_compress_rate']:>7.2f}{r['effective_rate']:>7.2f}"
                     f"{100 * r['accuracy_mean']:>8.1f} ±{100 * r['accuracy_std']:>4.1f}"
                     f"{r['seeds']:>7}")
    return "\n".join(lines)
