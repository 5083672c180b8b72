"""Experiment results: accuracy against compression, train x test heatmaps, accuracy under
input noise, from sweep records."""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ._common import axes_or_new, pyplot

__all__ = ["plot_compression_accuracy", "plot_train_test_heatmap", "plot_noise_robustness"]

_SWEEP_KEYS = ("dataset", "train_compress_rate", "test_compress_rate", "test_accuracy")


def _records(fn: str, results, required) -> list[dict]:
    """Sweep records as a list of dicts, each holding every key of ``required``."""
    if hasattr(results, "columns") and hasattr(results, "to_dict"):   # a pandas DataFrame
        results = results.to_dict("records")
    if isinstance(results, Mapping) or not hasattr(results, "__iter__"):
        raise TypeError(f"{fn}: results must be a list of dicts or a pandas DataFrame, "
                        f"got {type(results).__name__}")
    recs = list(results)
    if not recs:
        raise ValueError(f"{fn}: results is empty")
    for i, r in enumerate(recs):
        if not isinstance(r, Mapping):
            raise TypeError(f"{fn}: results[{i}] must be a dict, got {type(r).__name__}")
        for key in required:
            if key not in r:
                raise ValueError(f"{fn}: results[{i}] has no key {key!r} "
                                 f"(keys: {sorted(r)})")
    return recs


def _energy(r) -> float | None:
    """``train_preserve_energy`` of a record, ``None`` when absent, None or NaN (pandas)."""
    e = r.get("train_preserve_energy")
    return None if e is None or (isinstance(e, float) and math.isnan(e)) else float(e)


def _rate(r, key: str) -> float:
    return round(float(r[key]), 12)       # CSV round trips must not split groups


def _select(fn: str, recs, *, dataset=None, model=None, single: bool = False):
    """Records of ``dataset``/``model`` (str or list); with ``single``, exactly one of each."""
    for key, want in (("dataset", dataset), ("model", model)):
        have = sorted({str(r.get(key)) for r in recs})
        if want is not None:
            want = {want} if isinstance(want, str) else set(want)
            if not want <= set(have):
                raise ValueError(f"{fn}: {key} {sorted(want - set(have))} not in the "
                                 f"results (have {have})")
            recs = [r for r in recs if str(r.get(key)) in want]
        elif single and len(have) > 1:
            raise ValueError(f"{fn}: results hold several {key}s {have}; choose one with "
                             f"{key}=...")
    return recs


def _stats(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; ``nan`` for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else math.nan)


def _mean_line(ax, xs, groups, *, fmt: str, label: str, color: str, **kw):
    """A labelled line of the group means (the legend entry) with sample-std error bars
    beneath (none for a group of one)."""
    st = np.array([_stats(g) for g in groups]).reshape(-1, 2)
    x = np.asarray(xs, dtype=np.float64)
    # capsize 0: the bars are one LineCollection, so ax.lines holds only the mean lines
    ax.errorbar(x, st[:, 0], yerr=np.nan_to_num(st[:, 1]), fmt="none", ecolor=color,
                capsize=0, lw=1.5, alpha=0.7)
    ax.plot(x, st[:, 0], fmt, color=color, label=label, **kw)


def _label(r) -> str:
    return f"{r['dataset']} ({r['model']})" if r.get("model") is not None else str(r["dataset"])


def _policy(r) -> tuple[int, float]:
    """The training policy of a record: ``(0, train rate)``, or ``(1, E)`` for energy
    training; sorting puts the rates first, ascending."""
    e = _energy(r)
    return (0, _rate(r, "train_compress_rate")) if e is None else (1, e)


def _at_train_rate(fn: str, recs) -> list:
    """The records tested at their training rate (or with no ``test_compress_rate``)."""
    recs = [r for r in recs if "test_compress_rate" not in r
            or _rate(r, "test_compress_rate") == _rate(r, "train_compress_rate")]
    if not recs:
        raise ValueError(f"{fn}: no record has test_compress_rate == train_compress_rate")
    return recs


def plot_compression_accuracy(results, *, ax=None, dataset=None, model=None, reference=None):
    """Plot test accuracy against the training compress rate, one line per dataset.

    Only records tested at their training rate (``test_compress_rate ==
    train_compress_rate``) are used: the band-limited training *and* inference
    of the paper.  Runs trained with ``preserve_energy`` appear as separate
    square markers at their mean ``effective_rate``.

    Parameters
    ----------
    results : list of dict or pandas DataFrame
        Sweep records (:func:`blconv.experiments.sweep`) with keys ``dataset``,
        ``train_compress_rate``, ``test_compress_rate``, ``test_accuracy``
        (a fraction), and ``effective_rate`` for energy-trained runs; ``model``,
        ``seed`` and ``train_preserve_energy`` are read when present.
    ax : matplotlib Axes, optional
    dataset, model : str or list of str, optional
        Only these datasets / models.
    reference : dict, optional
        ``{label: {rate: accuracy_percent}}`` reference points, e.g.
        ``{"ResNet-18/CIFAR-10 (paper)": {0.0: 93.69, 0.5: 92.32}}``.

    Returns
    -------
    matplotlib Axes
        One error-bar line per (dataset, model), labelled ``"dataset (model)"``:
        x the train rates ascending, y the mean test accuracy in percent, error
        bars the sample standard deviation over seeds (``ddof=1``).

    Raises
    ------
    TypeError, ValueError
        For records that are not dicts, a missing key (named), no records at
        test rate == train rate, or a malformed ``reference``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_compression_accuracy
    >>> recs = [dict(dataset="GunPoint", model="fcn1d", seed=s, train_compress_rate=c,
    ...              train_preserve_energy=None, test_compress_rate=c,
    ...              test_accuracy=acc, effective_rate=c)
    ...         for s, c, acc in [(0, 0.0, 0.98), (1, 0.0, 1.0), (0, 0.5, 0.96), (1, 0.5, 0.94)]]
    >>> ax = plot_compression_accuracy(recs)
    >>> ax.lines[0].get_ydata().round(6).tolist()
    [99.0, 95.0]
    """
    fn = "plot_compression_accuracy"
    plt = pyplot(fn)
    recs = _select(fn, _records(fn, results, _SWEEP_KEYS), dataset=dataset, model=model)
    recs = _at_train_rate(fn, recs)
    if reference is not None and not (isinstance(reference, Mapping) and all(
            isinstance(v, Mapping) for v in reference.values())):
        raise TypeError(f"{fn}: reference must be a dict {{label: {{rate: accuracy %}}}}, "
                        f"got {reference!r}")
    ax = axes_or_new(plt, ax)
    lines: dict = {}
    for r in recs:
        lines.setdefault(_label(r), []).append(r)
    for i, (label, rs) in enumerate(lines.items()):
        _draw_accuracy_line(fn, ax, label, rs, color=f"C{i % 10}")
    for j, (label, pts) in enumerate((reference or {}).items()):
        keys = sorted(pts, key=float)
        ax.plot(np.array(keys, dtype=np.float64),
                np.array([pts[c] for c in keys], dtype=np.float64), marker="*", ms=11, ls="--",
                lw=0.8, color="k", alpha=0.8 - 0.25 * (j % 3), label=label)
    energy_runs = any(_energy(r) is not None for r in recs)
    ax.set_xlabel("train (= test) compress rate"
                  + ("; E = ...: mean effective rate" if energy_runs else ""))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against compression (mean ± sample SD over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def _draw_accuracy_line(fn: str, ax, label: str, recs, *, color: str) -> None:
    """One (dataset, model)'s line over the train rates, and one square per energy ``E``
    at its runs' mean effective rate."""
    by_rate: dict = {}
    by_energy: dict = {}
    for r in recs:
        kind, v = _policy(r)
        if kind == 0:
            by_rate.setdefault(v, []).append(r)
        else:
            if "effective_rate" not in r:
                raise ValueError(f"{fn}: an energy-trained record of {label} has no key "
                                 f"'effective_rate'")
            by_energy.setdefault(v, []).append(r)
    if by_rate:
        xs = sorted(by_rate)
        _mean_line(ax, xs, [[100 * r["test_accuracy"] for r in by_rate[c]] for c in xs],
                   fmt="o-", label=label, color=color, ms=4)
    for e, ers in sorted(by_energy.items()):
        _mean_line(ax, [np.mean([r["effective_rate"] for r in ers])],
                   [[100 * r["test_accuracy"] for r in ers]], fmt="s", ms=7, mfc="none",
                   label=f"{label}, E = {e:g}", color=color)


def plot_train_test_heatmap(results, *, ax=None, dataset=None, model=None):
    """Mean test accuracy for each (train compress rate, test compress rate), annotated.

    Parameters
    ----------
    results : list of dict or pandas DataFrame
        Sweep records, keys as in :func:`plot_compression_accuracy`, of one
        dataset and model (or choose with ``dataset`` / ``model``).
    ax : matplotlib Axes, optional
    dataset, model : str, optional

    Returns
    -------
    matplotlib Axes
        Its image holds the mean accuracy in percent over seeds: rows the
        training policies (rates ascending, then ``E = ...`` energy-trained
        runs), columns the test rates ascending; missing pairs are masked.  Each
        cell is annotated; a colourbar is added.

    Raises
    ------
    TypeError, ValueError
        For bad records, a missing key (named) or several datasets or models
        without a choice.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_train_test_heatmap
    >>> recs = [dict(dataset="digits", seed=0, train_compress_rate=tr,
    ...              test_compress_rate=te, test_accuracy=acc)
    ...         for tr, te, acc in [(0.0, 0.0, 0.9), (0.0, 0.5, 0.6), (0.5, 0.0, 0.8),
    ...                             (0.5, 0.5, 0.85)]]
    >>> ax = plot_train_test_heatmap(recs)
    >>> ax.images[0].get_array().round(6).tolist()
    [[90.0, 60.0], [80.0, 85.0]]
    """
    fn = "plot_train_test_heatmap"
    plt = pyplot(fn)
    recs = _select(fn, _records(fn, results, _SWEEP_KEYS), dataset=dataset, model=model,
                   single=True)
    cells: dict = {}
    for r in recs:
        cells.setdefault((_policy(r), _rate(r, "test_compress_rate")), []).append(
            r["test_accuracy"])
    rows = sorted({k[0] for k in cells})
    cols = sorted({k[1] for k in cells})
    mean = np.full((len(rows), len(cols)), np.nan)
    for (row, col), accs in cells.items():
        mean[rows.index(row), cols.index(col)] = 100 * _stats(accs)[0]
    ax = axes_or_new(plt, ax)
    im = ax.imshow(np.ma.masked_invalid(mean), cmap="viridis", aspect="auto",
                   interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="mean test accuracy (%)")
    lo, hi = np.nanmin(mean), np.nanmax(mean)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(mean[i, j]):
                light = (mean[i, j] - lo) / ((hi - lo) or 1.0) > 0.6
                ax.text(j, i, f"{mean[i, j]:.1f}", ha="center", va="center", fontsize="small",
                        color="black" if light else "white")
    ax.set_xticks(range(len(cols)), [f"{c:g}" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{v:g}" if kind == 0 else f"E = {v:g}"
                                     for kind, v in rows])
    ax.set_xlabel("test compress rate")
    ax.set_ylabel("train compress rate" + (" (or energy E)" if rows[-1][0] else ""))
    ax.set_title(f"{_label(recs[0])}: accuracy (%), mean over seeds")
    return ax


def plot_noise_robustness(results, *, ax=None, dataset=None, model=None):
    """Plot test accuracy against input noise level, one line per training policy.

    Parameters
    ----------
    results : list of dict or pandas DataFrame
        Records with keys ``noise_sigma``, ``train_compress_rate`` and
        ``test_accuracy`` (a fraction); ``train_preserve_energy`` (own lines,
        ``E = ...``) and ``test_compress_rate`` are read when present: records
        tested at another rate than they were trained at are left out.
    ax : matplotlib Axes, optional
    dataset, model : str, optional
        Choose one when the records hold several.

    Returns
    -------
    matplotlib Axes
        One error-bar line per training policy, labelled ``"train rate c"`` or
        ``"train E = e"``: x the sigmas ascending, y the mean accuracy (%) over
        seeds, error bars the sample standard deviation (``ddof=1``).

    Raises
    ------
    TypeError, ValueError
        For bad records or a missing key (named).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_noise_robustness
    >>> recs = [dict(noise_sigma=s, train_compress_rate=c, test_accuracy=a)
    ...         for s, c, a in [(0.0, 0.0, 0.9), (0.5, 0.0, 0.6), (0.0, 0.5, 0.88),
    ...                         (0.5, 0.5, 0.75)]]
    >>> ax = plot_noise_robustness(recs)
    >>> [line.get_label() for line in ax.lines]
    ['train rate 0', 'train rate 0.5']
    """
    fn = "plot_noise_robustness"
    plt = pyplot(fn)
    recs = _records(fn, results, ("noise_sigma", "train_compress_rate", "test_accuracy"))
    if any("dataset" in r for r in recs) or dataset is not None:
        recs = _select(fn, recs, dataset=dataset, model=model, single=True)
    recs = _at_train_rate(fn, recs)
    lines: dict = {}
    for r in recs:
        lines.setdefault(_policy(r), {}).setdefault(float(r["noise_sigma"]), []).append(
            100 * r["test_accuracy"])
    ax = axes_or_new(plt, ax)
    for i, ((kind, v), by_sigma) in enumerate(sorted(lines.items())):
        xs = sorted(by_sigma)
        _mean_line(ax, xs, [by_sigma[s] for s in xs], fmt="o-", ms=4, color=f"C{i % 10}",
                   label=f"train rate {v:g}" if kind == 0 else f"train E = {v:g}")
    ax.set_xlabel("input noise sigma")
    ax.set_ylabel("test accuracy (%)")
    where = f"{_label(recs[0])}: " if "dataset" in recs[0] else ""
    ax.set_title(f"{where}accuracy under input noise (mean ± sample SD over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax
