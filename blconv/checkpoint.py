"""Checkpoints: one ``.npz`` of arrays plus a JSON description, never pickled.

:func:`save` writes the parameters and buffers, the optimiser's and scheduler's
state, the RNG states of Dropout layers, the architecture (``model.spec``) and a
training record (what the model was trained on: see :func:`describe_data`) to
one ``.npz`` file atomically: a temporary file in the same directory, flushed and
fsync'ed, then renamed over the target, so an interrupted save leaves the previous
checkpoint intact.  :func:`load` and :func:`load_checkpoint` read it with
``allow_pickle=False`` and refuse truncated, corrupted or object-holding files;
:func:`restore` loads a whole training state (model, optimizer, scheduler) into
existing objects, as :func:`blconv.train.fit` does to resume.

Examples
--------
>>> import tempfile, os, numpy as np
>>> from blconv.models import fcn1d
>>> from blconv.checkpoint import load, save
>>> model = fcn1d(1, 2, channels=(4, 4, 4))
>>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
>>> save(model, path)
>>> x = np.ones((2, 1, 16), np.float32)
>>> bool(np.array_equal(load(path).eval()(x), model.eval()(x)))
True
"""
from __future__ import annotations

import json
import os
import uuid
import zipfile
from dataclasses import dataclass

import numpy as np

from . import _backend as B
from .models import build, set_compression
from ._record import (RECORD_VERSION, NoRecordWarning, check_record, describe_data,
                      training_record, warn_no_record)
from .nn import Module
from .nn._base import check_module

__all__ = ["save", "load", "load_checkpoint", "restore", "Checkpoint", "describe_data",
           "NoRecordWarning", "FORMAT_VERSION", "RECORD_VERSION"]

#: Version of the checkpoint layout written by :func:`save`.
FORMAT_VERSION = 1
_FORMAT = "blconv-checkpoint"
_META = "__meta__"


# --- checkpoints ------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read from one file.

    Attributes
    ----------
    model : Module
        Rebuilt from ``spec`` (or the model passed in), with the saved params,
        buffers, compression settings, mode and dropout RNG states.
    optimizer, scheduler : dict or None
        Their ``state_dict()`` as saved (arrays as NumPy), for ``load_state_dict``.
    classes : dict
        ``{"optimizer": class name or None, "scheduler": class name or None}``.
    state : dict
        The ``state`` given to :func:`save` (``fit`` stores epoch, epochs, seed, history).
    spec : dict or None
        The model's ``spec``.
    path : str
    version : int
        The format version of the file.
    record : dict or None
        The training record (see :func:`save`, Notes): ``version``, ``blconv``,
        ``data`` (:func:`describe_data`'s mapping, or ``None`` when saved
        without ``data_info``) and ``layers`` (the band policy of every conv
        layer).  ``None`` for a file written by a blconv older than the record,
        which :func:`load_checkpoint` says with a :class:`NoRecordWarning`.
    """
    model: Module
    optimizer: dict | None
    scheduler: dict | None
    classes: dict
    state: dict
    spec: dict | None
    path: str
    version: int
    record: dict | None = None


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _split_state(what: str, state: dict, arrays: dict) -> dict:
    """Scalars of ``state`` for the JSON; its dicts of arrays into ``arrays``."""
    scalars, array_keys = {}, []
    for key, v in state.items():
        if isinstance(v, dict):
            array_keys.append(key)
            for sub, a in v.items():
                arrays[f"{what}/{key}/{sub}"] = np.asarray(B.to_numpy(a))
        else:
            scalars[key] = v
    return {"scalars": scalars, "arrays": array_keys}


def save(model: Module, path, *, optimizer=None, scheduler=None, state: dict | None = None,
         data_info=None):
    """Write a checkpoint atomically as one ``.npz`` file (loadable without pickle).

    Parameters
    ----------
    model : Module
        Saved: params, buffers, compression settings, train/eval mode, the
        states of its ``Dropout`` generators and ``model.spec`` (if any; needed
        by :func:`load` to rebuild it).
    path : str or os.PathLike
        The file; its directory must exist.  Written as-is (no suffix added).
    optimizer, scheduler : optional
        Objects with ``state_dict()``; their arrays (momentum buffers) are
        stored as arrays, their scalars in the JSON.
    state : dict, optional
        Any JSON-serialisable extra state (``fit`` stores epoch, seed, history).
    data_info : Dataset or dict, optional
        What the model was trained on, for the training record: the training
        :class:`~blconv.data.Dataset`, or :func:`describe_data`'s mapping (which
        can add the name it is loaded by and its normalisation).  Without it the
        record's ``data`` is ``None``.

    Raises
    ------
    TypeError
        When ``state`` or a scalar state is not JSON-serialisable, or
        ``data_info`` is neither a Dataset nor a :func:`describe_data` mapping.
    ValueError
        When ``data_info``'s classes, input channels or number of spatial
        dimensions differ from the model's (its last Linear's outputs, its first
        conv layer's input).

    Notes
    -----
    The archive holds float arrays ``params/<key>``, ``buffers/<key>``,
    ``optimizer/<name>/<key>`` (e.g. ``optimizer/momentum_buffers/0.w``),
    ``scheduler/<name>/<key>``, and ``__meta__``: the UTF-8 bytes (uint8 array)
    of a JSON object ``{"format": "blconv-checkpoint", "version", "spec",
    "training", "compression", "rng", "optimizer", "scheduler", "state",
    "record"}`` (Python's JSON: an infinite float such as ReduceLROnPlateau's
    initial ``best`` is written ``Infinity``).

    ``record``, the training record, is an object with ``version``
    (:data:`RECORD_VERSION`), ``blconv`` (the version that wrote the file),
    ``data`` (:func:`describe_data`'s object, or null) and ``layers``, one
    object per band-limited conv layer, depth first, such as ``{"layer": "0",
    "type": "Conv1d", "compress_rate": 0.5, "preserve_energy": null,
    "fft_size": "fast", "frozen_band": null}``.  Files written before the record
    existed lack it and still load (format version 1 either way; older blconv
    versions ignore it).

    ``compression`` is :func:`blconv.models.set_compression`'s mapping, which
    :func:`load` applies again: with a ``"frozen_band"`` list (``{"fft_shape",
    "keep"}`` or null per conv layer) when the model was calibrated
    (:func:`blconv.nn.calibrate`); files without it load unfrozen, as before.

    The file is written to a temporary name in the same directory, flushed and
    ``fsync``-ed, then renamed over ``path`` with :func:`os.replace`: a crash
    at any point leaves either the old or the new checkpoint, never a mix.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from blconv.models import fcn1d
    >>> from blconv.train import load, save
    >>> model = fcn1d(1, 2, channels=(2, 2, 2), compress_rate=0.5)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(model, path)
    >>> sorted(np.load(path, allow_pickle=False).files)[:2]
    ['__meta__', 'buffers/1.running_mean']
    >>> x = np.ones((1, 1, 16), dtype=np.float32)
    >>> bool(np.array_equal(load(path)(x), model(x)))
    True
    """
    fn = "save"
    check_module(fn, "model", model)
    path = os.fspath(path)
    record = training_record(fn, model, data_info)
    arrays = {f"params/{k}": np.asarray(B.to_numpy(v)) for k, v in model.params.items()}
    arrays.update({f"buffers/{k}": np.asarray(B.to_numpy(v)) for k, v in model.buffers.items()})
    meta = {"format": _FORMAT, "version": FORMAT_VERSION, "spec": getattr(model, "spec", None),
            "training": model.training, "compression": set_compression(model),
            "rng": model.state_dict().get("rng", {}),
            "state": {} if state is None else state, "record": record}
    for what, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        meta[what] = None
        if obj is not None:
            meta[what] = _split_state(what, obj.state_dict(), arrays)
            meta[what]["class"] = type(obj).__name__
    try:
        text = json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: the checkpoint state for {path} must be JSON-serialisable: "
                        f"{e}") from e
    arrays[_META] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_savez(path, arrays)


def _atomic_savez(path: str, arrays: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:                          # make the rename itself durable (POSIX; not on Windows)
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_npz(fn: str, path: str) -> dict:
    """Every array of the file, loaded without pickle; anything wrong is a ValueError."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{fn}: no checkpoint at {path}")
    with open(path, "rb") as f:       # our handle: closed even when np.load fails midway
        try:
            npz = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError,
                RuntimeError) as e:
            raise ValueError(f"{fn}: {path} is not a readable .npz checkpoint "
                             f"(truncated or corrupted?): {e}") from e
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError(f"{fn}: {path} is a single .npy array, not a .npz checkpoint")
        try:
            with npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile,
                NotImplementedError, RuntimeError) as e:
            # object arrays land here too: np.load refuses them without pickle
            raise ValueError(f"{fn}: {path} holds an unreadable array (truncated or "
                             f"corrupted file, or an object array, which is never "
                             f"unpickled): {e}") from e


def _parse(fn: str, path: str):
    arrays = _read_npz(fn, path)
    raw = arrays.pop(_META, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{fn}: {path} has no '{_META}' entry (a uint8 JSON string); it is "
                         f"not a blconv checkpoint")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{fn}: {path} has a corrupted '{_META}' entry: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{fn}: {path} is not a blconv checkpoint (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    missing = {"spec", "training", "compression", "rng", "optimizer", "scheduler",
               "state"} - set(meta)
    if missing:
        raise ValueError(f"{fn}: {path} has a '{_META}' entry without {sorted(missing)}")
    version = meta.get("version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{fn}: {path} has format version {version!r}; this blconv reads "
                         f"versions 1..{FORMAT_VERSION}")
    meta["record"] = check_record(fn, path, meta.get("record"))
    for k, a in arrays.items():
        if a.dtype.kind != "f":
            raise ValueError(f"{fn}: {path} entry {k!r} must be a float array, got dtype "
                             f"{a.dtype}")
    return arrays, meta, version


def _unsplit(meta_part, what: str, arrays: dict):
    if meta_part is None:
        return None
    state = dict(meta_part["scalars"])
    for key in meta_part["arrays"]:
        prefix = f"{what}/{key}/"
        state[key] = {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}
    return state


def load_checkpoint(path, *, model: Module | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save` (or by :func:`fit`).

    Parameters
    ----------
    path : str or os.PathLike
    model : Module, optional
        Load into this model (keys and shapes must match; arrays keep its
        device and dtype) instead of rebuilding one from the saved ``spec``.

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        Naming ``path``: a truncated or corrupted file, an object array (never
        unpickled: ``allow_pickle=False``), a missing or unknown format, no
        ``spec`` to rebuild from without ``model``, arrays that do not fit
        the model, or a malformed training record.

    Warns
    -----
    NoRecordWarning
        When the file has no training record (written by an older blconv): it
        loads, with ``record=None``.

    Examples
    --------
    >>> import os, tempfile
    >>> from blconv.models import fcn1d
    >>> from blconv.optim import SGD
    >>> from blconv.train import load_checkpoint, save
    >>> model = fcn1d(1, 2, channels=(2, 2, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "ck.npz")
    >>> save(model, path, optimizer=SGD(model, lr=0.1), state={"epoch": 3})
    >>> ck = load_checkpoint(path)
    >>> ck.state, ck.optimizer["lr"], ck.classes["optimizer"]
    ({'epoch': 3}, 0.1, 'SGD')
    """
    return _load_checkpoint("load_checkpoint", path, model=model, stacklevel=2)


def _load_checkpoint(fn: str, path, *, model: Module | None = None, stacklevel: int = 1,
                     warn: bool = True) -> Checkpoint:
    path = os.fspath(path)
    ck = _assemble(fn, path, *_parse(fn, path), model=model)
    if ck.record is None and warn:
        warn_no_record(fn, path, stacklevel + 1)
    return ck


def _assemble(fn: str, path: str, arrays: dict, meta: dict, version: int, *,
              model: Module | None) -> Checkpoint:
    """Build (or fill) the model from a parsed file and wrap everything in a Checkpoint."""
    spec = meta.get("spec")
    if model is None:
        if spec is None:
            raise ValueError(f"{fn}: {path} holds no model spec (the model was not built by "
                             f"blconv.models); pass model= to load into an existing model")
        try:
            model = build(spec)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{fn}: cannot rebuild the model of {path}: {e}") from e
    else:
        check_module(fn, "model", model)
    state = {"params": {}, "buffers": {}, "rng": meta["rng"]}
    for k, a in arrays.items():
        part, _, key = k.partition("/")
        if part in ("params", "buffers"):
            state[part][key] = a
    try:
        model.load_state_dict(state)
        set_compression(model, **meta["compression"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{fn}: {path} does not fit the model: {e}") from e
    model.train(bool(meta["training"]))
    return Checkpoint(model=model,
                      optimizer=_unsplit(meta["optimizer"], "optimizer", arrays),
                      scheduler=_unsplit(meta["scheduler"], "scheduler", arrays),
                      classes={w: (meta[w] or {}).get("class") for w in ("optimizer", "scheduler")},
                      state=meta["state"], spec=spec, path=path, version=version,
                      record=meta["record"])


def restore(path, model: Module, *, optimizer=None, scheduler=None, validate=None,
            caller: str = "restore") -> Checkpoint:
    """Load a saved training state into an existing model, optimizer and scheduler.

    Everything is checked before anything is loaded: a refused file leaves the
    three objects exactly as they were.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save` (or by :func:`blconv.train.fit`).
    model : Module
        Receives the params, buffers, compression settings, mode and dropout
        generator states; when it has a ``spec`` (a :mod:`blconv.models`
        model) it must equal the saved one.
    optimizer, scheduler : optional
        Receive their saved state through ``load_state_dict``.  Each must be
        of the class whose state the file holds, and ``None`` where it holds
        none: a training state is restored whole or not at all.
    validate : callable, optional
        Called as ``validate(state)`` with the file's ``state`` (see
        :func:`save`) after the checks above and before loading; raise from it
        to refuse the file on other grounds (:func:`~blconv.train.fit` checks
        the seed).
    caller : str, default "restore"
        The function named at the start of error messages; a function that
        restores on its user's behalf passes its own name.

    Returns
    -------
    Checkpoint
        With ``model`` the model given.  No :class:`NoRecordWarning` is
        issued: the model is the caller's, and ``record`` is ``None`` for a
        file without one.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        As :func:`load_checkpoint`, and when the file was written for a model
        of another ``spec``, or for another optimizer or scheduler class.
    TypeError
        When ``model`` is not a :class:`~blconv.nn.Module`.

    Examples
    --------
    >>> import os, tempfile
    >>> from blconv.models import fcn1d
    >>> from blconv.optim import SGD, StepLR
    >>> from blconv.checkpoint import restore, save
    >>> model = fcn1d(1, 2, channels=(2, 2, 2))
    >>> opt = SGD(model, lr=0.1)
    >>> sched = StepLR(opt, step_size=1, gamma=0.5)
    >>> sched.step()
    >>> path = os.path.join(tempfile.mkdtemp(), "ck.npz")
    >>> save(model, path, optimizer=opt, scheduler=sched, state={"epoch": 1})
    >>> again = fcn1d(1, 2, channels=(2, 2, 2))
    >>> opt2 = SGD(again, lr=0.1)
    >>> sched2 = StepLR(opt2, step_size=1, gamma=0.5)
    >>> restore(path, again, optimizer=opt2, scheduler=sched2).state, opt2.lr
    ({'epoch': 1}, 0.05)
    """
    fn = caller
    check_module(fn, "model", model)
    path = os.fspath(path)
    arrays, meta, version = _parse(fn, path)
    spec = getattr(model, "spec", None)
    if spec is not None and meta.get("spec") is not None and spec != meta["spec"]:
        raise ValueError(f"{fn}: checkpoint {path} was written for another model; its spec "
                         f"{meta['spec']} differs from model.spec {spec}")
    if validate is not None:
        validate(meta["state"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        have = None if obj is None else type(obj).__name__
        was = (meta[name] or {}).get("class")
        if have != was:
            raise ValueError(f"{fn}: {name} is {have} but checkpoint {path} holds the state "
                             f"of {was}")
    ck = _assemble(fn, path, arrays, meta, version, model=model)
    for obj, saved in ((optimizer, ck.optimizer), (scheduler, ck.scheduler)):
        if obj is not None:
            obj.load_state_dict(saved)
    return ck


def load(path) -> Module:
    """The model of a checkpoint, rebuilt from its ``spec`` with the saved arrays.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Module
        On the host (NumPy), in the saved dtype, compression settings and mode.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load_checkpoint`.

    Warns
    -----
    NoRecordWarning
        As :func:`load_checkpoint`.

    Examples
    --------
    >>> import os, tempfile
    >>> from blconv.models import cnn2d
    >>> from blconv.train import load, save
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> save(cnn2d(1, 10, width=2, dtype="float64"), path)
    >>> load(path).params["0.w"].dtype
    dtype('float64')
    """
    return _load_checkpoint("load_checkpoint", path, stacklevel=2).model
