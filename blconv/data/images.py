"""Image datasets: the shipped 8x8 digits, and CIFAR-10 read from its binary distribution."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._dataset import FILES, Dataset, check_split

__all__ = ["load_digits", "load_cifar10", "CIFAR10_CLASSES"]

#: CIFAR-10 class names, in label order (as in ``batches.meta.txt``).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_RECORD = 1 + 3 * 32 * 32


def load_digits() -> Dataset:
    """The 8x8 handwritten digits shipped with the package (UCI optdigits, test part).

    1,797 grey-level images of the digits 0..9, each pixel an integer count 0..16.
    There is no official train/test split: use :func:`train_test_split`.

    Returns
    -------
    Dataset
        ``x`` float64 of shape ``(1797, 1, 8, 8)`` with values 0..16 (not rescaled),
        ``y`` int64 digits, ``classes`` ``('0', ..., '9')``, name ``'digits'``.

    Examples
    --------
    >>> from blconv.data import load_digits
    >>> ds = load_digits()
    >>> ds.x.shape, ds.n_classes, float(ds.x.max())
    ((1797, 1, 8, 8), 10, 16.0)
    """
    data = np.loadtxt(FILES / "digits.csv.gz", delimiter=",", dtype=np.float64)
    x = np.ascontiguousarray(data[:, :64]).reshape(-1, 1, 8, 8)
    return Dataset(x, data[:, 64].astype(np.int64), tuple("0123456789"), "digits")


def load_cifar10(path, *, split: str | None = None, dtype=np.float32):
    """Read CIFAR-10 from its binary distribution on disk (nothing is downloaded).

    Parameters
    ----------
    path : str or os.PathLike
        The directory ``cifar-10-batches-bin`` (holding ``data_batch_1.bin`` ..
        ``data_batch_5.bin`` and ``test_batch.bin``) or the directory that contains it.
        Each record is one label byte then 3072 pixel bytes, 3x32x32 channel-major.
    split : {None, 'train', 'test'}, optional
        ``None`` (default) returns ``(train, test)``; otherwise that one split, reading
        only its files.
    dtype : {numpy.float32, numpy.float64}, optional
        The dtype of ``x`` (default float32: the training split is 614 MB in it).

    Returns
    -------
    Dataset or tuple of Dataset
        ``x`` of shape ``(n, 3, 32, 32)`` scaled to [0, 1], ``y`` int64 in 0..9,
        ``classes`` :data:`CIFAR10_CLASSES`.

    Raises
    ------
    FileNotFoundError
        A batch file is missing (the message names it).
    ValueError
        A file whose size is not a positive multiple of 3073 bytes, or a label byte
        above 9 (the message names the file).

    Examples
    --------
    >>> import os, tempfile
    >>> from blconv.data import load_cifar10
    >>> d = tempfile.mkdtemp()
    >>> record = bytes([3]) + bytes(range(256)) * 12  # label 3, then 3072 pixel bytes
    >>> for f in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    ...     _ = open(os.path.join(d, f), "wb").write(record * 2)
    >>> train, test = load_cifar10(d)
    >>> train.x.shape, test.y.tolist(), test.classes[3], float(train.x.max())
    ((10, 3, 32, 32), [3, 3], 'cat', 1.0)
    >>> import shutil; shutil.rmtree(d)
    """
    fn = "load_cifar10"
    split = check_split(fn, split)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dtype}")
    root = Path(path)
    if (root / "cifar-10-batches-bin").is_dir():
        root = root / "cifar-10-batches-bin"
    if not root.is_dir():
        raise FileNotFoundError(f"{fn}: path {str(root)!r} is not a directory")
    parts = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
    out = []
    for part in (["train", "test"] if split is None else [split]):
        records = [_read_records(fn, root / name) for name in parts[part]]
        rec = np.concatenate(records)
        x = rec[:, 1:].reshape(-1, 3, 32, 32).astype(dtype)
        x /= dtype.type(255)
        out.append(Dataset(x, rec[:, 0].astype(np.int64), CIFAR10_CLASSES, "cifar10"))
    return tuple(out) if split is None else out[0]


def _read_records(fn: str, file: Path) -> np.ndarray:
    if not file.is_file():
        raise FileNotFoundError(f"{fn}: missing file {file}")
    raw = np.fromfile(file, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise ValueError(f"{fn}: {file}: size {raw.size} bytes is not a positive multiple of "
                         f"{_RECORD} (1 label byte + 3072 pixel bytes per record)")
    rec = raw.reshape(-1, _RECORD)
    bad = np.flatnonzero(rec[:, 0] > 9)
    if bad.size:
        raise ValueError(f"{fn}: {file}: record {bad[0]} (byte offset {bad[0] * _RECORD}) has "
                         f"label byte {rec[bad[0], 0]}; expected 0..9")
    return rec
