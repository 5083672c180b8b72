"""Training loop, evaluation at any compress rate, and atomic ``.npz`` checkpoints.

:func:`fit` runs the plain loop -- forward, loss, backward, step -- over NumPy
:class:`~blconv.data.Dataset` batches moved to the model's device; it shuffles
each epoch from ``(seed, epoch)`` alone and, with ``checkpoint_dir``, saves
everything the next epoch depends on, so a resumed run ends with exactly the
weights of an uninterrupted one.  :func:`evaluate` measures a model at another
compress rate without changing it.  :func:`save` / :func:`load` /
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

import math
import os
import time
from dataclasses import dataclass, field, fields

import numpy as np
from tqdm import tqdm

from . import _backend as B
from ._record import check_data_info
from ._validation import check_int
from .data import Dataset, batches
from .models import conv_layers, set_compression
from .nn import Module, cross_entropy, to_device
from .optim import ReduceLROnPlateau
from .checkpoint import FORMAT_VERSION, Checkpoint, load, load_checkpoint, restore, save
from .nn._base import check_module

__all__ = ["fit", "evaluate", "History", "NonFiniteLossError", "save", "load",
           "load_checkpoint", "Checkpoint", "FORMAT_VERSION"]

# --- history and errors -----------------------------------------------------------------------
@dataclass
class History:
    """Per-epoch records of a :func:`fit` run (entry ``i`` is epoch ``i + 1``).

    Attributes
    ----------
    loss, accuracy : list of float
        Mean training loss and training accuracy (in [0, 1]) over the epoch's
        batches, measured in training mode as the weights changed.
    val_loss, val_accuracy : list of (float or None)
        :func:`evaluate` on the validation set after the epoch (``None`` without one).
    lr : list of float
        The learning rate used during the epoch.
    epoch_seconds : list of float
        Wall time of the epoch (training and validation).
    effective_rate : list of list of float
        Per conv layer (:func:`blconv.models.conv_layers` order), the
        ``effective_rate`` of the band of the epoch's last training batch.

    Examples
    --------
    >>> from blconv.train import History
    >>> h = History(loss=[0.7], accuracy=[0.5], val_loss=[None], val_accuracy=[None],
    ...             lr=[0.1], epoch_seconds=[0.2], effective_rate=[[0.0]])
    >>> History.from_dict(h.to_dict()) == h, len(h)
    (True, 1)
    """
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    effective_rate: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of lists (copies)."""
        return {f.name: [list(v) if isinstance(v, list) else v for v in getattr(self, f.name)]
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            When the keys differ from the fields.
        """
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) != names:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"History.from_dict: keys must be {sorted(names)}, got {got}")
        return cls(**{k: list(v) for k, v in d.items()})


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


# --- small helpers ---------------------------------------------------------------------------
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
    xp = B.namespace(p, fn="blconv.train")
    return xp, p, np.dtype(np.float32) if "float32" in str(p.dtype) else np.dtype(np.float64)


def _batch(data: Dataset, idx, *, xp, like, dtype):
    """Examples ``idx`` of the host dataset, cast to the model dtype and moved to its device."""
    x = np.ascontiguousarray(data.x[idx], dtype=dtype)
    y = data.y[idx]
    if like is None:
        return x, y
    return B.asarray(x, xp=xp, like=like), B.asarray(y, xp=xp, like=like)


# --- evaluation -------------------------------------------------------------------------------
def _check_labels(fn: str, data: Dataset, n_outputs: int) -> None:
    """Every label of ``data`` names one of the model's ``n_outputs`` classes."""
    lo, hi = int(data.y.min()), int(data.y.max())
    if lo < 0 or hi >= n_outputs:
        name = f" {data.name!r}" if data.name else ""
        raise ValueError(f"{fn}: the labels of data{name} must lie in 0..{n_outputs - 1} "
                         f"(the model has {n_outputs} classes), got labels {lo}..{hi} "
                         f"({data.n_classes} classes)")


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
    train/eval mode, ``last_band`` and any cached forward are restored, and the
    parameters and buffers are not touched.

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
    convs = conv_layers(model)
    saved = [(m, m.training, getattr(m, "_cache", None), getattr(m, "last_band", None))
             for m in model.modules()]
    previous = None
    if compress_rate is not None or preserve_energy is not None:
        previous = set_compression(model, compress_rate=compress_rate,
                                   preserve_energy=preserve_energy)
    xp, like, dtype = _placement(model)
    total_loss, hits, rates = 0.0, 0, [0.0] * len(convs)
    try:
        model.eval()
        for b, idx in enumerate(batches(len(data), batch_size)):
            x, y = _batch(data, idx, xp=xp, like=like, dtype=dtype)
            logits = model.forward(x)
            if b == 0:
                _check_labels(fn, data, logits.shape[-1])
            loss, _ = cross_entropy(logits, y)
            n = idx.size
            # accumulated on the device, in float64 / int64: one transfer at the end
            total_loss = total_loss + xp.astype(loss, xp.float64) * n
            hits = hits + xp.sum(xp.astype(xp.argmax(logits, axis=1) == y, xp.int64))
            rates = [r + c.last_band.effective_rate * n for r, c in zip(rates, convs)]
    finally:
        if previous is not None:
            set_compression(model, **previous)
        for m, training, cache, band in saved:
            m.training, m._cache = training, cache
            if hasattr(m, "last_band"):
                m.last_band = band
    n = len(data)
    per_layer = [r / n for r in rates]
    return {"loss": float(total_loss) / n, "accuracy": int(hits) / n,
            "effective_rate": sum(per_layer) / len(per_layer) if per_layer else 0.0,
            "effective_rate_per_layer": per_layer}


# --- training ---------------------------------------------------------------------------------
def fit(model: Module, train: Dataset, val: Dataset | None = None, *, epochs: int,
        batch_size: int, optimizer, scheduler=None, seed: int, progress: bool = True,
        checkpoint_dir=None, resume: bool = False, device=None,
        monitor: str | None = None, data_info=None) -> History:
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
        Stepped after every batch; built over ``model``.
    scheduler : optional
        :class:`blconv.optim.ReduceLROnPlateau` steps on the epoch's ``monitor``
        metric; any other scheduler steps once per epoch.
    seed : int
        Fixes the shuffling (see Notes).
    progress : bool, default True
        Show ``tqdm`` progress bars (epochs, and the batches of the running epoch).
    checkpoint_dir : str or os.PathLike, optional
        Save ``checkpoint_dir/last.npz`` (:func:`save`) after every epoch: model,
        optimizer, scheduler, dropout RNG states, epoch, seed and history.
        Created if missing.
    resume : bool, default False
        Continue from ``checkpoint_dir/last.npz`` if it exists (from scratch if
        not): loads its state into ``model``, ``optimizer`` and ``scheduler``
        and trains from the next epoch.  Needs ``checkpoint_dir``.
    device : {None, "cpu", "gpu"}, optional
        Move the model first (:func:`blconv.nn.to_device`); ``None`` keeps it
        where it is.
    monitor : {"val_loss", "loss"}, optional
        What ReduceLROnPlateau watches: the validation loss (the default when
        ``val`` is given) or the training loss (the default without ``val``;
        choose it to keep ``val`` -- say, a test set -- out of every training
        decision).
    data_info : Dataset or dict, optional
        What the checkpoints record the model was trained on (see
        :func:`save`): default ``train`` itself (its name, classes and example
        shape); pass :func:`blconv.checkpoint.describe_data`'s mapping to add
        the name it is loaded by and its normalisation.

    Returns
    -------
    History
        One entry per epoch since epoch 1 (a resumed run includes the
        checkpoint's earlier epochs).

    Raises
    ------
    NonFiniteLossError
        (a ``FloatingPointError``) when a batch's loss or gradients, or a
        parameter at the end of an epoch, are NaN or infinite; the message
        names the epoch and batch.  It is raised before that step or that
        save, so the last checkpoint keeps the last good epoch (in memory,
        BatchNorm's running statistics may already hold the bad batch).
    ValueError
        For bad arguments, ``resume`` without ``checkpoint_dir``, or a
        checkpoint written for another model, optimizer, scheduler or seed.
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
    """
    fn = "fit"
    check_module(fn, "model", model)
    _check_dataset(fn, "train", train)
    if val is not None:
        _check_dataset(fn, "val", val)
    epochs = check_int(fn, "epochs", epochs, minimum=1)
    batch_size = check_int(fn, "batch_size", batch_size, minimum=1)
    seed = check_int(fn, "seed", seed, minimum=0)
    for name, obj, needed in (("optimizer", optimizer, ("step", "state_dict", "lr")),
                              ("scheduler", scheduler, ("step", "state_dict"))):
        if obj is not None and not all(hasattr(obj, a) for a in needed):
            raise TypeError(f"{fn}: {name} must have {', '.join(needed)} (blconv.optim), "
                            f"got {type(obj).__name__}")
    if optimizer is None:
        raise TypeError(f"{fn}: optimizer must be given (e.g. blconv.optim.SGD(model, lr=0.1))")
    if not isinstance(progress, bool) or not isinstance(resume, bool):
        raise TypeError(f"{fn}: progress and resume must be True or False, got "
                        f"progress={progress!r}, resume={resume!r}")
    if resume and checkpoint_dir is None:
        raise ValueError(f"{fn}: resume=True needs checkpoint_dir, got checkpoint_dir=None")
    if device not in (None, "cpu", "gpu"):
        raise ValueError(f"{fn}: device must be None, 'cpu' or 'gpu', got {device!r}")
    if monitor is None:
        monitor = "loss" if val is None else "val_loss"
    if monitor not in ("val_loss", "loss") or (monitor == "val_loss" and val is None):
        allowed = "'loss' (val is None)" if val is None else "'loss' or 'val_loss'"
        raise ValueError(f"{fn}: monitor must be {allowed}, got {monitor!r}")

    if device is not None:
        try:
            to_device(model, device)
        except RuntimeError as e:
            raise RuntimeError(f"{fn}: device='gpu' needs CuPy and a GPU ({e})") from e
        if hasattr(optimizer, "load_state_dict"):      # momentum buffers follow the params
            optimizer.load_state_dict(optimizer.state_dict())
    path = None
    if checkpoint_dir is not None:
        data_info = check_data_info(fn, model, train if data_info is None else data_info)
        os.makedirs(checkpoint_dir, exist_ok=True)
        path = os.path.join(os.fspath(checkpoint_dir), "last.npz")

    history, start = History(), 0
    if resume and os.path.exists(path):
        history, start = _resume(path, model, optimizer, scheduler, seed)
    xp, like, dtype = _placement(model)
    convs = conv_layers(model)
    n_batches = math.ceil(len(train) / batch_size)

    bar = tqdm(range(start, epochs), total=epochs, initial=start, desc="fit", unit="epoch",
               disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        lr = float(optimizer.lr)
        model.train()
        order = batches(len(train), batch_size, shuffle=True,
                        rng=np.random.default_rng([seed, epoch]))
        total_loss, hits = 0.0, 0
        for b, idx in enumerate(tqdm(order, total=n_batches, desc=f"epoch {epoch + 1}",
                                     unit="batch", leave=False, disable=not progress)):
            x, y = _batch(train, idx, xp=xp, like=like, dtype=dtype)
            logits = model.forward(x)
            loss, dlogits = cross_entropy(logits, y)
            model.backward(dlogits)
            grads = model.grads
            # ReLU maps NaN to 0, so a NaN input or weight may leave the loss finite and
            # show only in the gradients: check both, in one synchronisation per batch
            finite = xp.isfinite(loss)
            for g in grads.values():
                finite = finite & xp.all(xp.isfinite(g))
            if not bool(finite):
                raise _non_finite(loss, grads, epoch, epochs, b, n_batches, path, xp=xp)
            optimizer.step()
            total_loss = total_loss + xp.astype(loss, xp.float64) * idx.size
            hits = hits + xp.sum(xp.astype(xp.argmax(logits, axis=1) == y, xp.int64))
        for key, p in model.params.items():     # a huge step can overflow the weights
            if not bool(xp.all(xp.isfinite(p))):
                raise NonFiniteLossError(
                    f"{fn}: parameter {key!r} became non-finite in the step of epoch "
                    f"{epoch + 1} of {epochs}, batch {n_batches} of {n_batches} (the last)"
                    f"{_last_saved(path, epoch)}",
                    epoch=epoch + 1, batch=n_batches)
        history.loss.append(float(total_loss) / len(train))
        history.accuracy.append(int(hits) / len(train))
        history.lr.append(lr)
        history.effective_rate.append([c.last_band.effective_rate for c in convs])
        if val is not None:
            v = evaluate(model, val, batch_size=max(batch_size, 256))
            history.val_loss.append(v["loss"])
            history.val_accuracy.append(v["accuracy"])
        else:
            history.val_loss.append(None)
            history.val_accuracy.append(None)
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(getattr(history, monitor)[-1])
        elif scheduler is not None:
            scheduler.step()
        history.epoch_seconds.append(time.perf_counter() - t0)
        if path is not None:
            save(model, path, optimizer=optimizer, scheduler=scheduler, data_info=data_info,
                 state={"epoch": epoch + 1, "epochs": epochs, "seed": seed,
                        "history": history.to_dict()})
        bar.set_postfix(loss=f"{history.loss[-1]:.4g}", acc=f"{history.accuracy[-1]:.3f}",
                        **({} if val is None else {"val_acc": f"{history.val_accuracy[-1]:.3f}"}))
    return history


def _non_finite(loss, grads, epoch, epochs, b, n_batches, path, *, xp) -> NonFiniteLossError:
    value = float(loss)
    if math.isfinite(value):
        key = next(k for k, g in grads.items() if not bool(xp.all(xp.isfinite(g))))
        what = f"non-finite gradient of {key!r} (loss {value:.6g})"
    else:
        what = f"non-finite loss ({value})"
    return NonFiniteLossError(f"fit: {what} at epoch {epoch + 1} of {epochs}, batch {b + 1} "
                              f"of {n_batches}{_last_saved(path, epoch)}",
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
