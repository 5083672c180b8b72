"""Synthetic datasets whose class information lives in a known frequency band."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import check_int
from ._dataset import Dataset

__all__ = ["make_frequency_task", "frequency_task_bins"]

_FN = "make_frequency_task"


def frequency_task_bins(band: str, length: int, n_classes: int = 2) -> np.ndarray:
    """The class frequencies used by :func:`make_frequency_task`, in cycles per series.

    With ``M = length // 2`` (the one-sided spectrum has bins ``0..M``):

    * ``'low'``: the band is bins ``1 .. floor(0.10 * M)`` (first 10% of the spectrum);
    * ``'high'``: the band is bins ``ceil(0.75 * M) .. (length - 1) // 2`` (last 25%,
      strictly below Nyquist).

    The ``n_classes`` frequencies are spread evenly over the band, both ends included:
    ``band[round(linspace(0, len(band) - 1, n_classes))]``.

    Parameters
    ----------
    band : {'low', 'high'}
    length : int
        Series length.
    n_classes : int, optional
        Number of classes (default 2); the band must hold at least that many bins.

    Returns
    -------
    numpy.ndarray
        int64 array of ``n_classes`` distinct bin indices; class ``k`` is a sinusoid
        with ``bins[k]`` whole periods per series.

    Examples
    --------
    >>> from blconv.data import frequency_task_bins
    >>> frequency_task_bins("low", 128).tolist(), frequency_task_bins("high", 128).tolist()
    ([1, 6], [48, 63])
    """
    if band not in ("low", "high"):
        raise ValueError(f"{_FN}: band must be 'low' or 'high', got {band!r}")
    length = check_int(_FN, "length", length, minimum=2)
    n_classes = check_int(_FN, "n_classes", n_classes, minimum=2)
    m = length // 2
    if band == "low":
        bins = np.arange(1, math.floor(0.10 * m) + 1)
    else:
        bins = np.arange(math.ceil(0.75 * m), (length - 1) // 2 + 1)
    if bins.size < n_classes:
        raise ValueError(f"{_FN}: length={length} leaves {bins.size} frequencies in the "
                         f"{band!r} band, fewer than n_classes={n_classes}; use length >= "
                         f"{20 * n_classes}")
    pick = np.round(np.linspace(0, bins.size - 1, n_classes)).astype(np.int64)
    return bins[pick].astype(np.int64)


def make_frequency_task(band: str = "low", *, n_samples: int = 512, n_test: int | None = None,
                        length: int = 128, n_classes: int = 2, noise: float = 1.0, seed=0):
    """A 1-D classification task whose class information lies only in one frequency band.

    Example ``i`` of class ``k`` is ``sin(2 pi f_k t / length + phi_i) + noise * e_i(t)``,
    ``t = 0 .. length-1``, with ``f_k = frequency_task_bins(band, length, n_classes)[k]``
    (whole periods per series, so no spectral leakage), a phase ``phi_i`` uniform on
    ``[0, 2 pi)`` and white Gaussian noise ``e_i`` of unit variance, the same
    distribution for every class. Only the class frequency depends on the label, so:

    * ``'low'``: frequencies in the first 10% of the one-sided spectrum; keeping the
      lowest 25% of the spectrum keeps all class information;
    * ``'high'``: frequencies in the last 25% below Nyquist; keeping the lowest 25%
      leaves pure noise, identical in distribution for all classes.

    Parameters
    ----------
    band : {'low', 'high'}, optional
        Where the class frequencies lie (default ``'low'``).
    n_samples : int, optional
        Number of training examples (default 512).
    n_test : int, optional
        Number of test examples (default: ``n_samples``).
    length : int, optional
        Series length (default 128); at least ``20 * n_classes``.
    n_classes : int, optional
        Number of classes (default 2). Labels are balanced (``i % n_classes``, shuffled).
    noise : float, optional
        Standard deviation of the noise (default 1.0; the sinusoid has amplitude 1).
    seed : int, numpy.random.Generator or None, optional
        Seed for :func:`numpy.random.default_rng` (default 0).

    Returns
    -------
    tuple of Dataset
        ``(train, test)``, ``x`` float64 of shape ``(n, 1, length)``, ``classes`` the
        class frequencies as strings (e.g. ``('1', '6')``).

    Examples
    --------
    >>> from blconv.data import make_frequency_task
    >>> train, test = make_frequency_task("high", n_samples=64, n_test=32, seed=0)
    >>> train.x.shape, test.x.shape, train.classes
    ((64, 1, 128), (32, 1, 128), ('48', '63'))
    """
    freqs = frequency_task_bins(band, length, n_classes)
    n_samples = check_int(_FN, "n_samples", n_samples, minimum=1)
    n_test = n_samples if n_test is None else check_int(_FN, "n_test", n_test, minimum=1)
    if not isinstance(noise, numbers.Real) or isinstance(noise, bool) or not noise >= 0 \
            or not math.isfinite(noise):
        raise ValueError(f"{_FN}: noise must be a finite real number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = []
    for n in (n_samples, n_test):
        y = rng.permutation(np.arange(n) % n_classes)
        phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        x = np.sin(2 * np.pi * freqs[y][:, None] * t / length + phase)
        x += noise * rng.standard_normal((n, length))
        out.append(Dataset(x[:, None, :], y, tuple(str(f) for f in freqs), f"frequency-{band}"))
    return tuple(out)
