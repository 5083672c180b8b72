"""Layers, losses and device moves for band-limited CNNs (NumPy and CuPy).

Every layer is a :class:`Module` with ``forward(x) -> y`` and
``backward(dy) -> dx``; ``params`` and ``grads`` share keys (``"w"``, ``"b"``,
dotted in containers: ``"0.w"``, ``"3.body.1.b"``), ``buffers`` hold untrained
state (BatchNorm's running statistics).  Backward *overwrites* ``grads``.
Layers are built on the host from a NumPy ``Generator`` and moved with
:func:`to_device`.

Examples
--------
>>> import numpy as np
>>> from blconv.nn import (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear,
...                        Sequential, cross_entropy)
>>> model = Sequential(Conv2d(1, 4, 3, padding=1, compress_rate=0.3, rng=0), BatchNorm2d(4),
...                    ReLU(), MaxPool2d(2), Flatten(), Linear(4 * 4 * 4, 3, rng=1))
>>> x, y = np.ones((2, 1, 8, 8), dtype=np.float32), np.array([0, 2])
>>> loss, dlogits = cross_entropy(model(x), y)
>>> dx = model.backward(dlogits)
>>> sorted(model.grads) == sorted(model.params), dx.shape
(True, (2, 1, 8, 8))
"""
from ._base import Module, to_device
from .calibrate import calibrate
from .conv import Conv1d, Conv2d
from .layers import Dropout, Flatten, GlobalAvgPool, Linear, ReLU, Residual, Sequential
from .losses import accuracy, cross_entropy
from .norm import BatchNorm1d, BatchNorm2d
from .pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d

__all__ = [
           "AvgPool1d",
           "AvgPool2d",
           "BatchNorm1d",
           "BatchNorm2d",
           "Conv1d",
           "Conv2d",
           "Dropout",
           "Flatten",
           "GlobalAvgPool",
           "Linear",
           "MaxPool1d",
           "MaxPool2d",
           "Module",
           "ReLU",
           "Residual",
           "Sequential",
           "accuracy",
           "calibrate",
           "cross_entropy",
           "to_device",
]
