"""The training record of a checkpoint: what its model was trained on.

:func:`blconv.checkpoint.save` stores it in the checkpoint's JSON description
(``__meta__["record"]``): the blconv version, the training data
(:func:`describe_data`: name, classes, input channels and spatial shape,
normalisation) and the band policy of every band-limited conv layer, with its
frozen band (:func:`blconv.nn.calibrate`) when it has one.
"""
from __future__ import annotations

import json
import numbers
import warnings
from collections.abc import Mapping

from .nn import Conv1d, Conv2d, Linear, Module

__all__ = ["describe_data", "NoRecordWarning", "RECORD_VERSION"]

#: Version of the training record (``__meta__["record"]``) written by
#: :func:`blconv.checkpoint.save`.
RECORD_VERSION = 1


class NoRecordWarning(UserWarning):
    """A checkpoint has no training record: it was written by an older blconv.

    Its model loads as before; what it was trained on (dataset, classes, input
    shape, normalisation) and the blconv version are unknown.
    """


# --- the training record ----------------------------------------------------------------------
_DATA_KEYS = ("name", "n_classes", "classes", "in_channels", "shape", "normalisation")


def describe_data(data, *, name: str | None = None, normalisation: dict | None = None) -> dict:
    """What a model is trained on, as a checkpoint's training record holds it.

    Parameters
    ----------
    data : blconv.data.Dataset
        The training data; only its name, classes and the shape of one example
        (``data.x.shape[1:]``) are read.
    name : str, optional
        The name to record (default ``data.name``): the name the data is loaded
        by, so that ``blconv eval`` can find it again (``"freq-low"`` rather
        than the dataset's own ``"frequency-low"``).
    normalisation : dict, optional
        What was done to the raw values, in JSON types, e.g. ``{"method":
        "znorm", "per": "series", "ddof": 1}`` (see
        :func:`blconv.data.normalisation`); ``None`` records "not known".

    Returns
    -------
    dict
        ``{"name", "n_classes", "classes", "in_channels", "shape",
        "normalisation"}``; ``shape`` is the spatial shape of one example, a
        list (``[427]`` for series of length 427, ``[8, 8]`` for 8x8 images).

    Raises
    ------
    TypeError
        When ``data`` is not a Dataset, ``name`` not a str, or
        ``normalisation`` not a JSON-serialisable dict.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.checkpoint import describe_data
    >>> from blconv.data import Dataset
    >>> ds = Dataset(np.zeros((4, 1, 30)), np.array([0, 1, 2, 0]), ("a", "b", "c"), "toy")
    >>> describe_data(ds, normalisation={"method": "none"})  # doctest: +NORMALIZE_WHITESPACE
    {'name': 'toy', 'n_classes': 3, 'classes': ['a', 'b', 'c'], 'in_channels': 1,
     'shape': [30], 'normalisation': {'method': 'none'}}
    """
    fn = "describe_data"
    from .data import Dataset
    if not isinstance(data, Dataset):
        raise TypeError(f"{fn}: data must be a blconv.data.Dataset, got {type(data).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{fn}: name must be a str, got {type(name).__name__}")
    if normalisation is not None:
        if not isinstance(normalisation, dict):
            raise TypeError(f"{fn}: normalisation must be a dict or None, got "
                            f"{type(normalisation).__name__}")
        try:
            normalisation = json.loads(json.dumps(normalisation, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise TypeError(f"{fn}: normalisation must hold JSON types only: {e}") from e
    return {"name": data.name if name is None else name, "n_classes": data.n_classes,
            "classes": list(data.classes), "in_channels": int(data.x.shape[1]),
            "shape": [int(n) for n in data.x.shape[2:]], "normalisation": normalisation}


def model_io(model: Module) -> dict:
    """What a model takes and gives, read from its layers: ``None`` where it cannot tell.

    ``in_channels`` and ``ndim`` (1 or 2) of its first conv layer, and
    ``n_outputs``, the ``out_features`` of its last layer when that is a
    :class:`~blconv.nn.Linear` (the head of every model of :mod:`blconv.models`).
    """
    convs = [m for m in model.modules() if isinstance(m, (Conv1d, Conv2d))]
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    head = leaves[-1] if leaves else None
    return {"in_channels": convs[0].in_channels if convs else None,
            "ndim": 1 if convs and isinstance(convs[0], Conv1d) else 2 if convs else None,
            "n_outputs": head.out_features if isinstance(head, Linear) else None}


def _band_policy(model: Module) -> list[dict]:
    """One entry per band-limited conv layer (depth first): its name and band settings."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, (Conv1d, Conv2d)):
            fft_size = list(m.fft_size) if isinstance(m.fft_size, tuple) else m.fft_size
            out.append({"layer": name, "type": type(m).__name__,
                        "compress_rate": float(m.compress_rate),
                        "preserve_energy": (None if m.preserve_energy is None
                                            else float(m.preserve_energy)),
                        "fft_size": fft_size,
                        "frozen_band": None if m.frozen_band is None else {
                            "fft_shape": list(m.frozen_band.fft_shape),
                            "keep": list(m.frozen_band.keep)}})
    return out


def check_data_info(fn: str, model: Module, data_info) -> dict | None:
    """``data_info`` (a Dataset or :func:`describe_data` mapping) checked against the model."""
    from .data import Dataset
    if data_info is None:
        return None
    if isinstance(data_info, Dataset):
        data_info = describe_data(data_info)
    if not isinstance(data_info, Mapping) or set(data_info) != set(_DATA_KEYS):
        got = sorted(data_info) if isinstance(data_info, Mapping) else type(data_info).__name__
        raise TypeError(f"{fn}: data_info must be a Dataset or a describe_data() mapping with "
                        f"keys {list(_DATA_KEYS)}, got {got}")
    io = model_io(model)
    for what, model_value, value in (
            ("classes", io["n_outputs"], data_info["n_classes"]),
            ("input channels", io["in_channels"], data_info["in_channels"]),
            ("spatial dimensions", io["ndim"], len(data_info["shape"]))):
        if model_value is not None and model_value != value:
            raise ValueError(f"{fn}: data_info describes {data_info['name']!r} with {value} "
                             f"{what}, but the model has {model_value}")
    return dict(data_info)


def training_record(fn: str, model: Module, data_info) -> dict:
    """The record :func:`blconv.checkpoint.save` writes: version, blconv, data, layers."""
    from . import __version__
    return {"version": RECORD_VERSION, "blconv": __version__,
            "data": check_data_info(fn, model, data_info), "layers": _band_policy(model)}


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_record(fn: str, path: str, record):
    """The ``record`` of ``__meta__`` as read (``None`` when absent); a malformed one raises."""
    if record is None:
        return None
    problem = None
    if not isinstance(record, dict) or not {"version", "blconv", "data", "layers"} <= set(record):
        problem = "it must be an object with version, blconv, data and layers"
    elif not _is_int(record["version"]) or record["version"] < 1:
        problem = f"version must be an int >= 1, got {record['version']!r}"
    elif not isinstance(record["layers"], list):
        problem = f"layers must be a list, got {type(record['layers']).__name__}"
    elif record["data"] is not None:
        d = record["data"]
        if not isinstance(d, dict) or not set(_DATA_KEYS) <= set(d):
            problem = f"data must be null or an object with keys {list(_DATA_KEYS)}"
        elif not (isinstance(d["name"], str) and _is_int(d["n_classes"])
                  and _is_int(d["in_channels"]) and isinstance(d["shape"], list)
                  and all(_is_int(n) for n in d["shape"])):
            problem = ("data must hold a str name, int n_classes and in_channels and a list "
                       "of ints shape")
    if problem:
        raise ValueError(f"{fn}: {path} has a malformed training record: {problem}")
    return record


def warn_no_record(fn: str, path: str, stacklevel: int) -> None:
    warnings.warn(f"{fn}: {path} has no training record (written by an older blconv): its "
                  f"dataset, classes, input shape and normalisation are unknown",
                  NoRecordWarning, stacklevel=stacklevel + 1)
