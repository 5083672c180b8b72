"""The :class:`Dataset` container shared by every loader in :mod:`blconv.data`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "FILES"]

#: Directory of the data files shipped inside the package.
FILES = Path(__file__).with_name("files")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled data set held in host (NumPy) memory.

    Parameters
    ----------
    x : numpy.ndarray
        Real floating inputs, shape ``(n, channels, *spatial)``: ``(n, c, length)``
        for series, ``(n, c, height, width)`` for images.
    y : numpy.ndarray
        Integer labels ``0 .. K-1``, shape ``(n,)``; stored as int64.
    classes : tuple of str
        The original class labels: ``classes[k]`` is what label ``k`` stands for.
    name : str
        A short name for messages and plots.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.data import Dataset
    >>> ds = Dataset(np.zeros((4, 1, 3)), np.array([0, 1, 1, 0]), ("a", "b"), "toy")
    >>> len(ds), ds.n_classes, ds.x.shape
    (4, 2, (4, 1, 3))
    >>> ds.subset([1, 2]).y.tolist()
    [1, 1]
    """

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    name: str = ""

    def __post_init__(self):
        x, y = self.x, self.y
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.ndim < 2:
            got = (f"an array of dtype {x.dtype} and shape {x.shape}"
                   if isinstance(x, np.ndarray) else type(x).__name__)
            raise TypeError(f"Dataset: x must be a real floating NumPy array of shape "
                            f"(n, channels, ...), got {got}")
        y = np.asarray(y)
        if y.dtype.kind not in "iu" or y.shape != (x.shape[0],):
            raise ValueError(f"Dataset: y must be integer labels of shape ({x.shape[0]},), "
                             f"got dtype {y.dtype} and shape {y.shape}")
        if isinstance(self.classes, (str, bytes)) or not hasattr(self.classes, "__iter__"):
            raise TypeError(f"Dataset: classes must be a sequence of labels, "
                            f"got {self.classes!r}")
        classes = tuple(str(c) for c in self.classes)
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"Dataset: y must lie in 0..{len(classes) - 1} "
                             f"(len(classes) - 1), got labels {int(y.min())}..{int(y.max())}")
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "name", str(self.name))

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def n_classes(self) -> int:
        """Number of classes, ``len(classes)``."""
        return len(self.classes)

    def subset(self, indices) -> Dataset:
        """The examples at ``indices`` (an index array, a slice or a boolean mask)."""
        if isinstance(indices, slice):
            return Dataset(self.x[indices], self.y[indices], self.classes, self.name)
        idx = np.asarray(indices)
        if idx.dtype != bool and idx.dtype.kind not in "iu":
            if idx.size:
                raise TypeError(f"Dataset.subset: indices must be integers or a boolean mask, "
                                f"got dtype {idx.dtype}")
            idx = idx.astype(np.int64)
        return Dataset(self.x[idx], self.y[idx], self.classes, self.name)

    def replace(self, **changes) -> Dataset:
        """A copy with some of ``x``, ``y``, ``classes`` and ``name`` replaced."""
        fields = dict(x=self.x, y=self.y, classes=self.classes, name=self.name)
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Dataset.replace: unknown field(s) {sorted(unknown)}; "
                            f"expected some of {sorted(fields)}")
        fields.update(changes)
        return Dataset(**fields)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, x={self.x.dtype}{list(self.x.shape)}, "
                f"n_classes={self.n_classes})")


def check_dataset(fn: str, name: str, value) -> Dataset:
    if not isinstance(value, Dataset):
        raise TypeError(f"{fn}: {name} must be a blconv.data.Dataset, "
                        f"got {type(value).__name__}")
    return value


def check_split(fn: str, split):
    if split not in (None, "train", "test"):
        raise ValueError(f"{fn}: split must be None, 'train' or 'test', got {split!r}")
    return split
