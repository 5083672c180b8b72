"""Training loop, evaluation at any compress rate, and atomic ``.npz`` checkpoints.

:func:`fit` runs the plain loop -- forward, loss, backward, step -- over NumPy
:class:`~blconv.data.Dataset` batches moved to the model's device; it shuffles
each epoch from ``(seed, epoch)`` alone and, with ``checkpoint_dir``, saves
everything the next epoch depends on, so a resumed run ends with exactly the
weights of an uninterrupted one.  Callbacks (:class:`CSVLogger`,
:class:`EarlyStopping`, or any object with the methods described in
:func:`fit`) see each epoch's history row.  :func:`evaluate` measures a model
at another compress rate without changing it.  :func:`save` / :func:`load` /
:func:`load_checkpoint` read and write one ``.npz`` file, never pickled.

Examples
--------
>>> from blconv.data import make_frequency_task
>>> from blconv.models import fcn1d
>>> from blconv.optim import SGD
>>> from blconv.train import evaluate, fit
>>> train, test = make_frequency_task("low", n_samples=32, length=40, seed=0)
>>> model = fcn1d(1, 2, channels=(4, 4, 4))
>>> history = fit(model, train, test, epochs=2, batch_size=16, seed=0, progress=False,
...               optimizer=SGD(model, lr=0.1, momentum=0.9))
>>> len(history.loss), sorted(evaluate(model, test, compress_rate=0.5))
(2, ['accuracy', 'effective_rate', 'effective_rate_per_layer', 'loss'])
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
import time

import numpy as np
from tqdm import tqdm

from . import _backend as B
from ._callbacks import Calibrate, CSVLogger, EarlyStopping, EpochBar, check_callbacks, notify
from ._history import History
from ._record import check_data_info
from ._validation import check_int
from .checkpoint import FORMAT_VERSION, Checkpoint, load, load_checkpoint, restore, save
from .data import Dataset, batches
from .models import conv_layers, set_compression
from .nn import Module, cross_entropy, to_device
from .nn._base import check_module, np_dtype

__all__ = ["fit", "evaluate", "History", "NonFiniteLossError", "CSVLogger", "EarlyStopping",
           "Calibrate", "save", "load", "load_checkpoint", "Checkpoint", "FORMAT_VERSION"]


# --- errors -----------------------------------------------------------------------------------
class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss, gradient or parameter.

    Attributes
    ----------
    epoch, batch : int
        Where it happened, both counted from 1.

    Examples
    --------
    >>> from blconv.train import NonFiniteLossError
    >>> issubclass(NonFiniteLossError, FloatingPointError)
    True
    """

    def __init__(self, message: str, *, epoch: int, batch: int):
        super().__init__(message)
        self.epoch, self.batch = epoch, batch


# --- batches and epochs --------------------------------------------------------------------
def _check_dataset(fn: str, name: str, data) -> Dataset:
    if not isinstance(data, Dataset):
        raise TypeError(f"{fn}: {name} must be a blconv.data.Dataset, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{fn}: {name} must hold at least one example, got 0")
    return data


def _placement(model: Module):
    """``(xp, like, numpy dtype)``: where and in which dtype the model's inputs must be."""
    params = list(model.params.values())
    if not params:
        return np, None, np.dtype(np.float64)
    p = params[0]
    return B.namespace(p, fn="blconv.train"), p, np_dtype(p)


def _batch(data: Dataset, idx, *, xp, like, dtype):
    """Examples ``idx`` of the host dataset, cast to the model dtype and moved to its device."""
    x = np.ascontiguousarray(data.x[idx], dtype=dtype)
    y = data.y[idx]
    if like is None:
        return x, y
    return B.asarray(x, xp=xp, like=like), B.asarray(y, xp=xp, like=like)


def _check_labels(fn: str, data: Dataset, n_outputs: int) -> None:
    """Every label of ``data`` names one of the model's ``n_outputs`` classes."""
    lo, hi = int(data.y.min()), int(data.y.max())
    if lo < 0 or hi >= n_outputs:
        name = f" {data.name!r}" if data.name else ""
        raise ValueError(f"{fn}: the labels of data{name} must lie in 0..{n_outputs - 1} "
                         f"(the model has {n_outputs} classes), got labels {lo}..{hi} "
                         f"({data.n_classes} classes)")


def _run_epoch(model: Module, data: Dataset, order, *, fn: str, step=None,
               check_labels: bool = False) -> dict:
    """One pass of ``model`` over the batches ``order`` of ``data``, in the model's mode.

    ``step(batch, loss, dlogits)``, when given, runs after each batch's loss (the
    backward and the optimizer step of training).  Returns the mean ``loss``,
    the ``accuracy`` and, per conv layer, the batch-size-weighted mean
    ``effective_rate`` of the applied bands.
    """
    xp, like, dtype = _placement(model)
    convs = conv_layers(model)
    total_loss, hits, rates = 0.0, 0, [0.0] * len(convs)
    for b, idx in enumerate(order):
        x, y = _batch(data, idx, xp=xp, like=like, dtype=dtype)
        logits = model.forward(x)
        if check_labels and b == 0:
            _check_labels(fn, data, logits.shape[-1])
        loss, dlogits = cross_entropy(logits, y)
        if step is not None:
            step(b, loss, dlogits)
        n = idx.size
        # accumulated on the device, in float64 / int64: one transfer at the end
        total_loss = total_loss + xp.astype(loss, xp.float64) * n
        hits = hits + xp.sum(xp.astype(xp.argmax(logits, axis=1) == y, xp.int64))
        rates = [r + c.last_band.effective_rate * n for r, c in zip(rates, convs)]
    n = len(data)
    return {"loss": float(total_loss) / n, "accuracy": int(hits) / n,
            "effective_rate_per_layer": [r / n for r in rates]}


@contextlib.contextmanager
def _compression(model: Module, compress_rate, preserve_energy):
    """A ``with`` block at another band (when one is given); the model's own band after."""
    if compress_rate is None and preserve_energy is None:
        yield
        return
    previous = set_compression(model, compress_rate=compress_rate,
                               preserve_energy=preserve_energy)
    try:
        yield
    finally:
        set_compression(model, **previous)


# --- evaluation -------------------------------------------------------------------------------
def evaluate(model: Module, data: Dataset, *, compress_rate=None, preserve_energy=None,
             batch_size: int = 256) -> dict:
    """Loss and accuracy of ``model`` on ``data`` in eval mode, optionally at another rate.

    Parameters
    ----------
    model : Module
        Evaluated in eval mode (BatchNorm's running statistics, no dropout).
    data : Dataset
        Host data; batches are cast to the model dtype and moved to its device.
    compress_rate, preserve_energy : optional
        Evaluate at this band instead of the model's own (one value or a list
        per conv layer, as :func:`blconv.models.set_compression`).
    batch_size : int, default 256

    Returns
    -------
    dict
        ``loss`` (mean cross-entropy, float), ``accuracy`` (fraction in [0, 1]),
        ``effective_rate_per_layer`` (per conv layer, in
        :func:`blconv.models.conv_layers` order, the batch-size-weighted mean
        of the applied band's ``effective_rate``; it varies between batches
        only with ``preserve_energy``) and ``effective_rate`` (their mean over
        the conv layers, a float; 0.0 without conv layers).

    Raises
    ------
    ValueError
        When a label of ``data`` is negative or not below the model's number of
        outputs (a dataset of other classes than the model's), and for bad
        arguments.

    Notes
    -----
    The model is left exactly as found: compression settings, each layer's
    train/eval mode, ``last_band`` and any cached forward are restored
    (:meth:`blconv.nn.Module.mode`), and the parameters and buffers are not
    touched.

    Examples
    --------
    >>> from blconv.data import make_frequency_task
    >>> from blconv.models import fcn1d
    >>> from blconv.train import evaluate
    >>> _, test = make_frequency_task("low", n_samples=8, n_test=20, length=40)
    >>> model = fcn1d(1, 2, channels=(4, 4, 4), compress_rate=0.25)
    >>> r = evaluate(model, test, compress_rate=0.5)
    >>> 0 <= r["accuracy"] <= 1, len(r["effective_rate_per_layer"]), model[0].compress_rate
    (True, 3, 0.25)
    >>> r["effective_rate"] > 0.45
    True
    """
    fn = "evaluate"
    check_module(fn, "model", model)
    _check_dataset(fn, "data", data)
    batch_size = check_int(fn, "batch_size", batch_size, minimum=1)
    with _compression(model, compress_rate, preserve_energy), model.mode(training=False):
        r = _run_epoch(model, data, batches(len(data), batch_size), fn=fn, check_labels=True)
    per_layer = r["effective_rate_per_layer"]
    return {"loss": r["loss"], "accuracy": r["accuracy"],
            "effective_rate": sum(per_layer) / len(per_layer) if per_layer else 0.0,
            "effective_rate_per_layer": per_layer}


# --- training ---------------------------------------------------------------------------------
def fit(model: Module, train: Dataset, val: Dataset | None = None, *, epochs: int,
        batch_size: int, optimizer, scheduler=None, seed: int, progress: bool = True,
        checkpoint_dir=None, resume: bool = False, checkpoint_interval: float = 0.0,
        device=None, monitor: str | None = None, data_info=None, callbacks=()) -> History:
    """Train ``model`` with mini-batch cross-entropy; optionally checkpoint and resume.

    Parameters
    ----------
    model : Module
        Trained in place.
    train : Dataset
        Host (NumPy) training data; each batch is cast to the model's dtype and
        moved to its namespace and device.
    val : Dataset, optional
        Evaluated with :func:`evaluate` after every epoch.
    epochs : int
        Total number of epochs (also when resuming: training stops at ``epochs``).
    batch_size : int
        Examples per batch; the last batch of an epoch holds the remainder.
    optimizer : blconv.optim.SGD or blconv.optim.Adam
        Stepped after every batch; built over ``model``.  Any object with
        ``step()``, ``state_dict()`` and an ``lr`` attribute will do (and
        ``to(device)`` with ``device``, ``load_state_dict`` to resume).
    scheduler : optional
        Stepped once per epoch as ``scheduler.step(row[monitor])`` with the
        epoch's ``monitor`` value, which :class:`blconv.optim.ReduceLROnPlateau`
        watches and the epoch-counting schedules ignore.
    seed : int
        Fixes the shuffling (see Notes).
    progress : bool, default True
        Show ``tqdm`` progress bars (epochs, and the batches of the running
        epoch); the epoch bar is a callback run before ``callbacks``.
    checkpoint_dir : str or os.PathLike, optional
        Save ``checkpoint_dir/last.npz`` (:func:`save`) after every epoch: model,
        optimizer, scheduler, dropout RNG states, epoch, seed and history.
        Created if missing.
    resume : bool, default False
        Continue from ``checkpoint_dir/last.npz`` if it exists (from scratch if
        not): loads its state into ``model``, ``optimizer`` and ``scheduler``
        and trains from the next epoch.  Needs ``checkpoint_dir``.
    checkpoint_interval : float, default 0.0
        Seconds: save after an epoch only when at least this long has passed
        since the last save (or the start), and always after the last epoch;
        0 saves every epoch.  Long runs of short epochs use it to keep the
        saving cost small; which epochs are saved never changes the result.
    device : {None, "cpu", "gpu"}, optional
        Move the model (:func:`blconv.nn.to_device`) and the optimizer's
        buffers (``optimizer.to``) first; ``None`` keeps them where they are.
    monitor : {"val_loss", "loss"}, optional
        What the scheduler steps on: the validation loss (the default when
        ``val`` is given) or the training loss (the default without ``val``;
        choose it to keep ``val`` -- say, a test set -- out of every training
        decision).
    data_info : Dataset or dict, optional
        What the checkpoints record the model was trained on (see
        :func:`save`): default ``train`` itself (its name, classes and example
        shape); pass :func:`blconv.checkpoint.describe_data`'s mapping to add
        the name it is loaded by and its normalisation.
    callbacks : list or tuple, default ()
        Objects told of the run's progress, in order, through any of the
        methods below (see Notes); e.g. :class:`CSVLogger` and
        :class:`EarlyStopping`.

    Returns
    -------
    History
        One entry per epoch since epoch 1 (a resumed run includes the
        checkpoint's earlier epochs); fewer than ``epochs`` when a callback
        stopped the run.

    Raises
    ------
    NonFiniteLossError
        (a ``FloatingPointError``) when a batch's loss or gradients, or a
        parameter at the end of an epoch, are NaN or infinite; the message
        names the epoch and batch.  It is raised before that step or that
        save, so the last checkpoint keeps a good epoch: the last one, or with
        ``checkpoint_interval`` the last one saved (in memory, BatchNorm's running
        statistics may already hold the bad batch).
    ValueError
        For bad arguments, ``resume`` without ``checkpoint_dir``, or a
        checkpoint written for another model, optimizer, scheduler or seed.
    TypeError
        For arguments of the wrong type: an optimizer or scheduler without
        the methods above, or a callback with none of the methods below.
    RuntimeError
        For ``device="gpu"`` without CuPy.

    Notes
    -----
    Epoch ``e`` (counted from 0) visits the examples in the order
    ``numpy.random.default_rng([seed, e]).permutation(len(train))``, which
    depends on nothing else.  Together with the checkpointed state (weights,
    BatchNorm statistics, momentum buffers, scheduler counters, the lr and the
    ``Dropout`` generators' states) this makes an interrupted run resumed from
    its checkpoint end with exactly the weights of an uninterrupted run with the
    same seed, on NumPy.  Each batch costs one device synchronisation: the
    loss and the gradients are checked to be finite before the step (the
    gradients too, because ReLU maps NaN to 0 and can hide it from the loss).

    **Callbacks.**  Each callback may have any of these methods (one at least):

    - ``on_train_begin(info)``: once, before the first epoch; ``info`` holds
      ``epochs``, ``batches_per_epoch``, ``validation`` (whether ``val`` is
      given) and ``history`` (a copy of the :class:`History` so far: the
      checkpoint's epochs when resuming, else empty).
    - ``on_epoch_end(epoch, row)``: after each epoch (counted from 1) and its
      checkpoint; ``row`` is the epoch's history row, ``History.row(epoch -
      1)``: a dict with keys ``loss``, ``accuracy``, ``val_loss``,
      ``val_accuracy``, ``lr``, ``epoch_seconds`` and ``effective_rate``
      (a copy: changing it changes no history).
    - ``on_train_end(history)``: once at the end, also when ``fit`` raises
      (``history`` then holds the epochs completed).

    ``on_train_begin`` or ``on_epoch_end`` returning a truthy value stops the
    run once every callback has been told (after ``on_train_begin``: before
    any epoch).  Callbacks are not saved in checkpoints: a resumed run calls
    ``on_train_begin`` again with the history so far, from which a callback
    rebuilds its state (:class:`EarlyStopping` replays it, so it stops where
    the uninterrupted run would; :class:`CSVLogger` rewrites its file).

    Examples
    --------
    >>> from blconv.data import make_frequency_task
    >>> from blconv.models import fcn1d
    >>> from blconv.optim import SGD, StepLR
    >>> from blconv.train import fit
    >>> train, _ = make_frequency_task("low", n_samples=32, length=40)
    >>> model = fcn1d(1, 2, channels=(4, 4, 4))
    >>> opt = SGD(model, lr=0.1, momentum=0.9)
    >>> h = fit(model, train, epochs=2, batch_size=8, optimizer=opt, seed=0,
    ...         scheduler=StepLR(opt, step_size=1, gamma=0.5), progress=False)
    >>> h.lr, h.val_loss
    ([0.1, 0.05], [None, None])

    A callback that records the rows and stops after the second epoch:

    >>> class Recorder:
    ...     def __init__(self):
    ...         self.rows = []
    ...     def on_epoch_end(self, epoch, row):
    ...         self.rows.append((epoch, round(row["lr"], 3)))
    ...         return epoch == 2
    >>> rec = Recorder()
    >>> h = fit(model, train, epochs=5, batch_size=8, optimizer=opt, seed=0,
    ...         progress=False, callbacks=[rec])
    >>> len(h), rec.rows
    (2, [(1, 0.025), (2, 0.025)])
    """
    epochs, batch_size, seed, monitor, callbacks = _check_fit_args(
        model, train, val, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
        scheduler=scheduler, seed=seed, progress=progress, checkpoint_dir=checkpoint_dir,
        resume=resume, checkpoint_interval=checkpoint_interval, device=device,
        monitor=monitor, callbacks=callbacks)
    if device is not None:
        _move(model, optimizer, device)
    path = None
    if checkpoint_dir is not None:
        data_info = check_data_info("fit", model, train if data_info is None else data_info)
        os.makedirs(checkpoint_dir, exist_ok=True)
        path = os.path.join(os.fspath(checkpoint_dir), "last.npz")
    history, start = History(), 0
    if resume and os.path.exists(path):
        history, start = _resume(path, model, optimizer, scheduler, seed)
    run = _Run(model=model, train=train, val=val, optimizer=optimizer, scheduler=scheduler,
               epochs=epochs, batch_size=batch_size, seed=seed, monitor=monitor, path=path,
               progress=progress)
    callbacks = ((EpochBar(),) if progress else ()) + callbacks
    info = {"epochs": epochs, "batches_per_epoch": run.n_batches, "validation": val is not None,
            "history": History.from_dict(history.to_dict())}
    saved, due = time.monotonic(), True
    try:
        stop = notify(callbacks, "on_train_begin", info)
        for epoch in range(start, epochs):
            if stop:
                break
            history.append(run.epoch(epoch))
            due = time.monotonic() - saved >= checkpoint_interval or epoch + 1 == epochs
            if path is not None and due:
                saved = time.monotonic()
                save(model, path, optimizer=optimizer, scheduler=scheduler, data_info=data_info,
                     state={"epoch": epoch + 1, "epochs": epochs, "seed": seed,
                            "history": history.to_dict()})
            stop = notify(callbacks, "on_epoch_end", epoch + 1, history.row(len(history) - 1))
        if stop and path is not None and not due:   # stopped early: the last epoch is kept
            save(model, path, optimizer=optimizer, scheduler=scheduler, data_info=data_info,
                 state={"epoch": len(history), "epochs": epochs, "seed": seed,
                        "history": history.to_dict()})
    finally:
        notify(callbacks, "on_train_end", history)
    return history


def _check_fit_args(model, train, val, *, epochs, batch_size, optimizer, scheduler, seed,
                    progress, checkpoint_dir, resume, checkpoint_interval, device, monitor,
                    callbacks):
    """Every argument of :func:`fit` checked; returns the normalised epochs, batch_size,
    seed, monitor and callbacks."""
    fn = "fit"
    check_module(fn, "model", model)
    _check_dataset(fn, "train", train)
    if val is not None:
        _check_dataset(fn, "val", val)
    epochs = check_int(fn, "epochs", epochs, minimum=1)
    batch_size = check_int(fn, "batch_size", batch_size, minimum=1)
    seed = check_int(fn, "seed", seed, minimum=0)
    moves = ("to",) if device is not None else ()
    for name, obj, needed in (("optimizer", optimizer, ("step", "state_dict", "lr") + moves),
                              ("scheduler", scheduler, ("step", "state_dict"))):
        if obj is not None and not all(hasattr(obj, a) for a in needed):
            raise TypeError(f"{fn}: {name} must have {', '.join(needed)} (blconv.optim), "
                            f"got {type(obj).__name__}")
    if optimizer is None:
        raise TypeError(f"{fn}: optimizer must be given (e.g. blconv.optim.SGD(model, lr=0.1))")
    if scheduler is not None:
        _check_scheduler_step(fn, scheduler)
    if not isinstance(progress, bool) or not isinstance(resume, bool):
        raise TypeError(f"{fn}: progress and resume must be True or False, got "
                        f"progress={progress!r}, resume={resume!r}")
    if (isinstance(checkpoint_interval, bool)
            or not isinstance(checkpoint_interval, (int, float, np.integer, np.floating))
            or not checkpoint_interval >= 0 or not math.isfinite(checkpoint_interval)):
        raise ValueError(f"{fn}: checkpoint_interval must be a finite number of seconds "
                         f">= 0, got {checkpoint_interval!r}")
    if resume and checkpoint_dir is None:
        raise ValueError(f"{fn}: resume=True needs checkpoint_dir, got checkpoint_dir=None")
    if device not in (None, "cpu", "gpu"):
        raise ValueError(f"{fn}: device must be None, 'cpu' or 'gpu', got {device!r}")
    if monitor is None:
        monitor = "loss" if val is None else "val_loss"
    if monitor not in ("val_loss", "loss") or (monitor == "val_loss" and val is None):
        allowed = "'loss' (val is None)" if val is None else "'loss' or 'val_loss'"
        raise ValueError(f"{fn}: monitor must be {allowed}, got {monitor!r}")
    return epochs, batch_size, seed, monitor, check_callbacks(fn, callbacks)


def _check_scheduler_step(fn: str, scheduler) -> None:
    """``scheduler.step`` takes the epoch's metric: ``step(metric)``."""
    try:
        signature = inspect.signature(scheduler.step)
    except (TypeError, ValueError):         # no signature to read (a builtin): trust it
        return
    try:
        signature.bind(0.0)
    except TypeError:
        raise TypeError(f"{fn}: scheduler.step must take the epoch's metric, step(metric), "
                        f"as blconv.optim's schedulers do; {type(scheduler).__name__}.step "
                        f"has the signature {signature}") from None


def _move(model: Module, optimizer, device: str) -> None:
    """The model and the optimizer's buffers to ``device``."""
    try:
        to_device(model, device)
    except RuntimeError as e:
        raise RuntimeError(f"fit: device='gpu' needs CuPy and a GPU ({e})") from e
    optimizer.to(device)


class _Run:
    """What every epoch of one :func:`fit` call shares, and the epoch itself."""

    def __init__(self, *, model, train, val, optimizer, scheduler, epochs, batch_size, seed,
                 monitor, path, progress):
        self.model, self.train, self.val = model, train, val
        self.optimizer, self.scheduler, self.monitor = optimizer, scheduler, monitor
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.path, self.progress = path, progress
        self.n_batches = math.ceil(len(train) / batch_size)

    def epoch(self, epoch: int) -> dict:
        """Train epoch ``epoch`` (from 0), validate, step the scheduler; the history row."""
        t0 = time.perf_counter()
        lr = float(self.optimizer.lr)
        r = self._train(epoch)
        row = {"loss": r["loss"], "accuracy": r["accuracy"], "val_loss": None,
               "val_accuracy": None, "lr": lr, "epoch_seconds": None,
               "effective_rate": [c.last_band.effective_rate for c in conv_layers(self.model)]}
        if self.val is not None:
            v = evaluate(self.model, self.val, batch_size=max(self.batch_size, 256))
            row["val_loss"], row["val_accuracy"] = v["loss"], v["accuracy"]
        if self.scheduler is not None:
            self.scheduler.step(row[self.monitor])
        row["epoch_seconds"] = time.perf_counter() - t0
        return row

    def _train(self, epoch: int) -> dict:
        """One training pass in the documented order; stops at the first non-finite value."""
        model, optimizer = self.model, self.optimizer
        xp = _placement(model)[0]
        model.train()
        order = batches(len(self.train), self.batch_size, shuffle=True,
                        rng=np.random.default_rng([self.seed, epoch]))
        order = tqdm(order, total=self.n_batches, desc=f"epoch {epoch + 1}", unit="batch",
                     leave=False, disable=not self.progress)

        def step(b, loss, dlogits):
            model.backward(dlogits)
            grads = model.grads
            # ReLU maps NaN to 0, so a NaN input or weight may leave the loss finite and
            # show only in the gradients: check both, in one synchronisation per batch
            finite = xp.isfinite(loss)
            for g in grads.values():
                finite = finite & xp.all(xp.isfinite(g))
            if not bool(finite):
                raise self._non_finite(loss, grads, epoch, b, xp=xp)
            optimizer.step()

        r = _run_epoch(model, self.train, order, fn="fit", step=step)
        for key, p in model.params.items():     # a huge step can overflow the weights
            if not bool(xp.all(xp.isfinite(p))):
                n = self.n_batches
                raise NonFiniteLossError(
                    f"fit: parameter {key!r} became non-finite in the step of epoch "
                    f"{epoch + 1} of {self.epochs}, batch {n} of {n} (the last)"
                    f"{_last_saved(self.path, epoch)}", epoch=epoch + 1, batch=n)
        return r

    def _non_finite(self, loss, grads, epoch, b, *, xp) -> NonFiniteLossError:
        value = float(loss)
        if math.isfinite(value):
            key = next(k for k, g in grads.items() if not bool(xp.all(xp.isfinite(g))))
            what = f"non-finite gradient of {key!r} (loss {value:.6g})"
        else:
            what = f"non-finite loss ({value})"
        return NonFiniteLossError(f"fit: {what} at epoch {epoch + 1} of {self.epochs}, batch "
                                  f"{b + 1} of {self.n_batches}{_last_saved(self.path, epoch)}",
                                  epoch=epoch + 1, batch=b + 1)


def _last_saved(path, epoch: int) -> str:
    if path is None:
        return ""
    if epoch == 0 or not os.path.exists(path):
        return "; no checkpoint was saved"
    return f"; {path} still holds epoch {epoch}"


def _resume(path: str, model, optimizer, scheduler, seed: int):
    """Load ``path`` into the model, optimizer and scheduler; return (history, next epoch)."""
    def validate(st):
        if not isinstance(st, dict) or not all(k in st for k in ("epoch", "seed", "history")):
            raise ValueError(f"fit: checkpoint {path} lacks the training state (epoch, seed, "
                             f"history); it was not written by fit")
        if st["seed"] != seed:
            raise ValueError(f"fit: seed={seed} differs from the seed of checkpoint {path} "
                             f"({st['seed']}); pass the same seed to resume")

    ck = restore(path, model, optimizer=optimizer, scheduler=scheduler, validate=validate,
                 caller="fit")
    return History.from_dict(ck.state["history"]), int(ck.state["epoch"])
