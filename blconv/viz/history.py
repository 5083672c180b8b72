"""Training curves: loss and accuracy per epoch, from a :class:`blconv.train.History`."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._common import pyplot, subplots

__all__ = ["plot_history"]


def plot_history(history, *, ax=None):
    """Plot training (and validation) loss and accuracy against the epoch.

    Parameters
    ----------
    history : dict or object with ``to_dict()``
        :class:`blconv.train.History` or a dict of per-epoch lists with keys
        ``loss`` and ``accuracy`` (a fraction) and optionally ``val_loss``,
        ``val_accuracy`` (``None`` entries are gaps).  Other keys (``lr``,
        ``epoch_seconds``, ...) are not drawn.
    ax : matplotlib Axes or a pair of Axes, optional
        ``None``: a new figure with two panels, loss left and accuracy right.
        A pair: those two panels.  A single Axes: loss on it and accuracy on a
        twin y axis (``ax.twinx()``) on the right.

    Returns
    -------
    matplotlib Figure or Axes
        The Figure for two panels, else the given Axes.  Line data are the
        epochs ``1 .. len(loss)`` and the values as passed (accuracy not
        rescaled).

    Raises
    ------
    TypeError, ValueError
        For a non-dict, a missing ``loss``/``accuracy`` key or lists of
        different lengths.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_history
    >>> fig = plot_history({"loss": [0.9, 0.5, 0.4], "accuracy": [0.5, 0.8, 0.9]})
    >>> fig.axes[1].lines[0].get_ydata().tolist()
    [0.5, 0.8, 0.9]
    """
    fn = "plot_history"
    plt = pyplot(fn)
    epochs, data = _history_series(fn, history)
    pair = ax is not None and not hasattr(ax, "plot")
    if ax is None:
        fig, (a_loss, a_acc) = subplots(plt, 1, 2, figsize=(9, 3.6))
    elif pair:
        a_loss, a_acc = ax
        fig = a_loss.figure
    else:
        a_loss, a_acc, fig = ax, ax.twinx(), None
    for prefix, ls in (("", "-"), ("val_", "--")):
        who = "validation" if prefix else "train"
        for a_, key, color in ((a_loss, "loss", "C0"), (a_acc, "accuracy", "C1")):
            y = data.get(prefix + key)
            if y is not None and not np.all(np.isnan(y)):
                a_.plot(epochs, y, ls, marker=".", color=color, label=f"{who} {key}")
    a_loss.set_xlabel("epoch")
    a_loss.set_ylabel("loss", **({"color": "C0"} if fig is None else {}))
    a_acc.set_ylabel("accuracy (fraction)", **({"color": "C1"} if fig is None else {}))
    a_acc.set_ylim(0, 1.02)
    if fig is not None:
        a_acc.set_xlabel("epoch")
        a_loss.set_title("loss")
        a_acc.set_title("accuracy")
        for a_ in (a_loss, a_acc):
            a_.grid(alpha=0.3)
            a_.legend(fontsize="small")
        return fig
    handles = a_loss.get_legend_handles_labels()
    more = a_acc.get_legend_handles_labels()
    # on the twin: it is drawn above the loss axes, so a legend there would be hidden
    a_acc.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="center right")
    a_loss.set_title("training history")
    return a_loss


def _history_series(fn: str, history) -> tuple[np.ndarray, dict]:
    """Epochs ``1 .. n`` and each drawn series present (``loss``, ``accuracy``, their
    ``val_`` twins) as float64 arrays, ``None`` entries as NaN (gaps)."""
    h = history.to_dict() if hasattr(history, "to_dict") else history
    if not isinstance(h, Mapping):
        raise TypeError(f"{fn}: history must be a dict or have to_dict(), "
                        f"got {type(history).__name__}")
    for key in ("loss", "accuracy"):
        if key not in h:
            raise ValueError(f"{fn}: history has no key {key!r} (keys: {sorted(h)})")
    n = len(h["loss"])
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in h]
    for k in keys:
        if len(h[k]) != n:
            raise ValueError(f"{fn}: history[{k!r}] has {len(h[k])} entries, "
                             f"history['loss'] has {n}")
    data = {k: np.array([np.nan if v is None else float(v) for v in h[k]]) for k in keys}
    return np.arange(1, n + 1), data
