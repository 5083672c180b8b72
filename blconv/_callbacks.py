"""The callbacks of :func:`blconv.train.fit`: how they are called, and those blconv ships.

The protocol (``on_train_begin(info)``, ``on_epoch_end(epoch, row)``,
``on_train_end(history)``, a truthy return to stop) is documented once, in the
Notes of :func:`blconv.train.fit`.  :class:`CSVLogger`, :class:`EarlyStopping` and
:class:`Calibrate` are exported by :mod:`blconv.train`; ``EpochBar`` is ``fit``'s
progress bar.
"""
from __future__ import annotations

import csv
import json
import math
import os
from tqdm import tqdm

from ._history import History
from ._validation import check_int

__all__ = ["CSVLogger", "EarlyStopping", "Calibrate"]

HOOKS = ("on_train_begin", "on_epoch_end", "on_train_end")


def check_callbacks(fn: str, callbacks) -> tuple:
    """``callbacks`` as a tuple; a TypeError naming ``fn`` for anything that is not one."""
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{fn}: callbacks must be a list or tuple of callbacks (objects with "
                        f"{', '.join(HOOKS)}), got {type(callbacks).__name__}")
    for i, cb in enumerate(callbacks):
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            raise TypeError(f"{fn}: callbacks[{i}] must have at least one of the methods "
                            f"{', '.join(HOOKS)}, got {type(cb).__name__}")
    return tuple(callbacks)


def notify(callbacks, hook: str, *args) -> bool:
    """Call ``hook`` on every callback that has it; whether any asked to stop."""
    said = [getattr(cb, hook)(*args) for cb in callbacks if callable(getattr(cb, hook, None))]
    return any(bool(s) for s in said)


class EpochBar:
    """The epoch progress bar of ``fit(progress=True)``: epochs, loss and accuracies."""

    def on_train_begin(self, info: dict) -> None:
        self.val = info["validation"]
        self.bar = tqdm(total=info["epochs"], initial=len(info["history"]), desc="fit",
                        unit="epoch")

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        extra = {"val_acc": f"{row['val_accuracy']:.3f}"} if self.val else {}
        self.bar.set_postfix(loss=f"{row['loss']:.4g}", acc=f"{row['accuracy']:.3f}",
                             **extra, refresh=False)
        self.bar.update(1)

    def on_train_end(self, history) -> None:
        self.bar.close()


# --- CSV ----------------------------------------------------------------------------------
def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list):                        # effective_rate: one value per conv layer
        return json.dumps(v)
    return repr(v)


class CSVLogger:
    """Write the training history to a CSV file, one line per epoch as it ends.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its directory must exist.

    Notes
    -----
    At the start of training the file is written afresh with a header line
    (``epoch`` and the fields of :class:`~blconv.train.History`) and one line
    per epoch already in the history (those of a resumed run's checkpoint), so
    that it always equals the history ``fit`` returns.  Then one line is
    appended at the end of every epoch and flushed to the file at once.
    Numbers are written exactly (``repr``), ``None`` (``val_loss`` without a
    validation set) as an empty cell, and ``effective_rate`` (a list: one
    value per conv layer) as JSON text.

    Examples
    --------
    >>> import csv, os, tempfile
    >>> from blconv.data import make_frequency_task
    >>> from blconv.models import fcn1d
    >>> from blconv.optim import SGD
    >>> from blconv.train import CSVLogger, fit
    >>> train, _ = make_frequency_task("low", n_samples=32, length=40)
    >>> model = fcn1d(1, 2, channels=(4, 4, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
    >>> h = fit(model, train, epochs=2, batch_size=16, optimizer=SGD(model, lr=0.1), seed=0,
    ...         progress=False, callbacks=[CSVLogger(path)])
    >>> with open(path, newline="") as f:
    ...     rows = list(csv.DictReader(f))
    >>> [r["epoch"] for r in rows], float(rows[1]["loss"]) == h.loss[1]
    (['1', '2'], True)
    """

    def __init__(self, path):
        try:
            self.path = os.fspath(path)
        except TypeError:
            raise TypeError(f"CSVLogger: path must be a str or os.PathLike, got "
                            f"{type(path).__name__}") from None

    def on_train_begin(self, info: dict) -> None:
        history = info["history"]
        with open(self.path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch"] + History.names())
            for i in range(len(history)):
                w.writerow(self._line(i + 1, history.row(i)))

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(self._line(epoch, row))
            f.flush()

    @staticmethod
    def _line(epoch: int, row: dict) -> list:
        return [str(epoch)] + [_cell(row[name]) for name in History.names()]

    def __repr__(self):
        return f"CSVLogger({self.path!r})"


# --- early stopping -----------------------------------------------------------------------
_MONITORED = ("loss", "accuracy", "val_loss", "val_accuracy")


class EarlyStopping:
    """Stop training when a metric of the history has stopped improving.

    Parameters
    ----------
    monitor : {"val_loss", "loss", "val_accuracy", "accuracy"}, default "val_loss"
        The field of the epoch's history row to watch (``val_*`` needs ``fit``'s
        ``val`` set).
    patience : int, default 10
        Epochs without improvement tolerated; training stops at the end of the
        next one (``patience=0``: at the first epoch that does not improve).
    min_delta : float, default 0
        How much better than the best value so far an epoch's value must be to
        count as an improvement (>= 0).
    mode : {"min", "max"}, default "min"
        Whether lower (losses) or higher (accuracies) values are better.

    Attributes
    ----------
    best : float
        The best value so far (``inf`` for "min", ``-inf`` for "max" before the
        first epoch).
    best_epoch : int or None
        The epoch (from 1) that reached ``best``.
    num_bad_epochs : int
        Epochs since the last improvement.
    stopped_epoch : int or None
        The epoch at whose end it stopped training, ``None`` if it did not.

    Notes
    -----
    An epoch improves when ``value < best - min_delta`` (``value > best +
    min_delta`` for "max"); a NaN never improves.  ``on_train_begin`` starts
    afresh and replays the history ``fit`` already holds (a resumed run's
    epochs), so a resumed run stops at the epoch an uninterrupted one would,
    and one whose checkpoint already meets the condition trains no further.
    The weights are those of the last epoch trained, not of ``best_epoch``.

    Examples
    --------
    >>> from blconv.train import EarlyStopping, History
    >>> stop = EarlyStopping("loss", patience=1)
    >>> stop.on_train_begin({"validation": False, "history": History()})
    False
    >>> [stop.on_epoch_end(e, {"loss": v}) for e, v in enumerate([3.0, 2.0, 2.5, 2.1], 1)]
    [False, False, False, True]
    >>> stop.best, stop.best_epoch, stop.stopped_epoch
    (2.0, 2, 4)
    """

    def __init__(self, monitor: str = "val_loss", *, patience: int = 10,
                 min_delta: float = 0.0, mode: str = "min"):
        name = "EarlyStopping"
        if monitor not in _MONITORED:
            raise ValueError(f"{name}: monitor must be one of {list(_MONITORED)}, "
                             f"got {monitor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        patience = check_int(name, "patience", patience, minimum=0)
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) \
                or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"{name}: min_delta must be a finite number >= 0, "
                             f"got {min_delta!r}")
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.min_delta = float(min_delta)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = self.stopped_epoch = None
        self.num_bad_epochs = 0

    def on_train_begin(self, info: dict) -> bool:
        if self.monitor.startswith("val_") and not info["validation"]:
            raise ValueError(f"EarlyStopping: monitor={self.monitor!r} needs a validation set; "
                             f"pass fit a val set or monitor 'loss' or 'accuracy'")
        self._reset()
        history = info["history"]
        for i in range(len(history)):
            if self.on_epoch_end(i + 1, history.row(i)):
                return True
        return False

    def on_epoch_end(self, epoch: int, row: dict) -> bool:
        value = row[self.monitor]
        if value is None:
            raise ValueError(f"EarlyStopping: the row of epoch {epoch} has no "
                             f"{self.monitor} (None)")
        value = float(value)
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch, self.num_bad_epochs = value, epoch, 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r})")


# --- calibration --------------------------------------------------------------------------
class Calibrate:
    """Freeze the model's bands on a data set after every epoch (:func:`blconv.nn.calibrate`).

    Parameters
    ----------
    model : Module
        The model ``fit`` trains.
    data : Dataset, array or list of arrays
        The calibration inputs (usually the training set), as
        :func:`blconv.nn.calibrate` takes them.
    preserve_energy : float in (0, 1], optional
        As :func:`blconv.nn.calibrate` (default: each layer's own).
    batch_size : int, default 256

    Notes
    -----
    After epoch ``e`` the bands are chosen from the inputs the model gives
    its conv layers with the weights of epoch ``e``: epoch ``e + 1`` trains,
    and validates, with the fixed bands inference will use (the first epoch
    trains with the per-batch energy bands).  A resumed run calibrates again
    at the start (the checkpoint of epoch ``e`` is written before its
    callbacks run), so it continues with the bands an uninterrupted run had.

    Examples
    --------
    >>> from blconv.data import make_frequency_task
    >>> from blconv.models import conv_layers, fcn1d
    >>> from blconv.optim import SGD
    >>> from blconv.train import Calibrate, fit
    >>> train, _ = make_frequency_task("low", n_samples=32, length=40)
    >>> model = fcn1d(1, 2, channels=(4, 4, 4), preserve_energy=0.9)
    >>> h = fit(model, train, epochs=2, batch_size=16, optimizer=SGD(model, lr=0.1), seed=0,
    ...         progress=False, callbacks=[Calibrate(model, train)])
    >>> all(c.frozen_band is not None for c in conv_layers(model))
    True
    """

    def __init__(self, model, data, *, preserve_energy=None, batch_size: int = 256):
        from .nn._base import check_module
        check_module("Calibrate", "model", model)
        self.model, self.data = model, data
        self.preserve_energy = preserve_energy
        self.batch_size = check_int("Calibrate", "batch_size", batch_size, minimum=1)

    def _calibrate(self) -> None:
        from .nn import calibrate
        calibrate(self.model, self.data, preserve_energy=self.preserve_energy,
                  batch_size=self.batch_size)

    def on_train_begin(self, info: dict) -> None:
        if len(info["history"]):
            self._calibrate()

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        self._calibrate()

    def __repr__(self):
        return f"Calibrate(preserve_energy={self.preserve_energy}, batch_size={self.batch_size})"
