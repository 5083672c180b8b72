"""Preprocessing, splitting and mini-batching of :class:`Dataset` objects (NumPy only)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import check_int
from ._dataset import Dataset, check_dataset

__all__ = ["standardize", "znorm", "batches", "shuffle", "train_test_split"]


def _robust_stats(x: np.ndarray, axis, ddof: int = 0):
    """Mean and std over ``axis`` (kept); a constant slice gets std 1 and its exact value."""
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True, ddof=ddof)
    lo, hi = x.min(axis=axis, keepdims=True), x.max(axis=axis, keepdims=True)
    const = lo == hi
    return np.where(const, lo, mean), np.where(const, 1, std).astype(x.dtype, copy=False)


def standardize(train: Dataset, test: Dataset | None = None, *, per_channel: bool = True):
    """Shift and scale to zero mean, unit variance with statistics of ``train`` only.

    Parameters
    ----------
    train : Dataset
        Its mean and (population) standard deviation are computed over the examples and
        every axis after the channel axis, per channel (or over everything when
        ``per_channel=False``).
    test : Dataset, optional
        Transformed with the statistics of ``train``.
    per_channel : bool, optional
        One mean and std per channel (default) or a single pair.

    Returns
    -------
    Dataset or tuple of Dataset
        The new ``train``, or ``(train, test)`` when ``test`` is given; ``x`` keeps its
        dtype. A constant channel is only shifted (to 0), never divided by zero.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.data import Dataset, standardize
    >>> ds = Dataset(np.array([[[1.0, 3.0]], [[5.0, 7.0]]]), np.array([0, 1]), ("a", "b"))
    >>> tr, te = standardize(ds, ds)
    >>> float(tr.x.mean()), float(tr.x.std())
    (0.0, 1.0)
    """
    fn = "standardize"
    check_dataset(fn, "train", train)
    if test is not None:
        check_dataset(fn, "test", test)
        if test.x.shape[1:] != train.x.shape[1:]:
            raise ValueError(f"{fn}: test examples must have the shape of train examples "
                             f"{train.x.shape[1:]}, got {test.x.shape[1:]}")
    if len(train) == 0:
        raise ValueError(f"{fn}: train must hold at least one example, got 0")
    axis = (0, *range(2, train.x.ndim)) if per_channel else None
    mean, std = _robust_stats(train.x, axis)
    out = tuple(d.replace(x=((d.x - mean) / std).astype(d.x.dtype, copy=False))
                for d in (train, test) if d is not None)
    return out if test is not None else out[0]


def znorm(ds: Dataset, *, ddof: int = 1) -> Dataset:
    """Z-normalise every series (each example and channel) on its own, as the UCR archive does.

    Parameters
    ----------
    ds : Dataset
    ddof : int, optional
        Delta degrees of freedom of the standard deviation. The default 1 (sample std)
        reproduces the normalisation of the UCR archive's files.

    Returns
    -------
    Dataset
        Each series has mean 0 and std 1 over its remaining axes; a constant series
        becomes all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.data import Dataset, znorm
    >>> ds = znorm(Dataset(np.array([[[1.0, 2.0, 3.0]]]), np.array([0]), ("a",)))
    >>> ds.x.tolist()
    [[[-1.0, 0.0, 1.0]]]
    """
    check_dataset("znorm", "ds", ds)
    ddof = check_int("znorm", "ddof", ddof, minimum=0)
    axis = tuple(range(2, ds.x.ndim))
    if ds.x.size and math.prod(ds.x.shape[2:]) <= ddof:
        raise ValueError(f"znorm: series of {math.prod(ds.x.shape[2:])} values are too short "
                         f"for ddof={ddof}")
    mean, std = _robust_stats(ds.x, axis, ddof) if ds.x.size else (0, 1)
    return ds.replace(x=((ds.x - mean) / std).astype(ds.x.dtype, copy=False))


def batches(n: int, batch_size: int, *, shuffle: bool = False, seed=None, rng=None):
    """Index arrays covering ``range(n)`` in mini-batches.

    Parameters
    ----------
    n : int
        Number of examples (``>= 0``).
    batch_size : int
        Examples per batch (``>= 1``); the last batch holds the remainder.
    shuffle : bool, optional
        Visit the examples in a random order (default: in order).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator, optional
        Seed of the order, via :func:`numpy.random.default_rng`; the same seed gives the
        same batches. Ignored without ``shuffle``.
    rng : numpy.random.Generator, optional
        A generator to draw the order from instead of ``seed`` (not both).

    Returns
    -------
    iterator of numpy.ndarray
        int64 index arrays; every index in ``0..n-1`` appears exactly once.

    Examples
    --------
    >>> from blconv.data import batches
    >>> [b.tolist() for b in batches(5, 2)]
    [[0, 1], [2, 3], [4]]
    >>> sorted(i for b in batches(5, 2, shuffle=True, seed=1) for i in b.tolist())
    [0, 1, 2, 3, 4]
    """
    fn = "batches"
    n = check_int(fn, "n", n, minimum=0)
    batch_size = check_int(fn, "batch_size", batch_size, minimum=1)
    if seed is not None and rng is not None:
        raise ValueError(f"{fn}: give seed or rng, not both (got seed={seed!r}, rng={rng!r})")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if shuffle:
        order = (rng if rng is not None else np.random.default_rng(seed)).permutation(n)
    else:
        order = np.arange(n)
    order = order.astype(np.int64, copy=False)
    return (order[i:i + batch_size] for i in range(0, n, batch_size))


def shuffle(ds: Dataset, seed) -> Dataset:
    """The examples of ``ds`` in a random order.

    Parameters
    ----------
    ds : Dataset
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Passed to :func:`numpy.random.default_rng`; ``None`` is not reproducible.

    Returns
    -------
    Dataset
        A new dataset holding the same examples, permuted.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.data import Dataset, shuffle
    >>> ds = Dataset(np.arange(4.0).reshape(4, 1, 1), np.array([0, 1, 2, 3]), tuple("abcd"))
    >>> sorted(shuffle(ds, seed=0).y.tolist())
    [0, 1, 2, 3]
    """
    check_dataset("shuffle", "ds", ds)
    return ds.subset(np.random.default_rng(seed).permutation(len(ds)))


def train_test_split(ds: Dataset, test_fraction: float = 0.25, seed=0, stratify: bool = True):
    """Split ``ds`` at random, reproducibly, into a train and a test set.

    Parameters
    ----------
    ds : Dataset
    test_fraction : float, optional
        Fraction of examples for the test set, in (0, 1) (default 0.25).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng` (default 0).
    stratify : bool, optional
        Split each class on its own, taking ``round(test_fraction * n_k)`` of the
        ``n_k`` examples of class ``k`` (halves round up), so that both sets keep the
        class proportions (default). Otherwise ``round(test_fraction * n)`` overall.

    Returns
    -------
    tuple of Dataset
        ``(train, test)``, disjoint, together all of ``ds``, each in the original order.

    Examples
    --------
    >>> from blconv.data import load_digits, train_test_split
    >>> ds = load_digits()
    >>> train, test = train_test_split(ds, 0.25, seed=0)
    >>> len(train), len(test)
    (1346, 451)
    """
    fn = "train_test_split"
    check_dataset(fn, "ds", ds)
    if (not isinstance(test_fraction, numbers.Real) or isinstance(test_fraction, bool)
            or not 0 < test_fraction < 1):
        raise ValueError(f"{fn}: test_fraction must be a number in (0, 1), got "
                         f"{test_fraction!r}")
    rng = np.random.default_rng(seed)
    groups = ([np.flatnonzero(ds.y == k) for k in range(ds.n_classes)] if stratify
              else [np.arange(len(ds))])
    test = np.concatenate([rng.permutation(g)[:math.floor(test_fraction * g.size + 0.5)]
                           for g in groups]).astype(np.int64)
    mask = np.zeros(len(ds), dtype=bool)
    mask[test] = True
    if mask.all() or not mask.any():
        raise ValueError(f"{fn}: test_fraction={test_fraction!r} of {len(ds)} examples leaves "
                         f"an empty {'train' if mask.all() else 'test'} set")
    return ds.subset(~mask), ds.subset(mask)

