"""FFT sizes and the retained band of frequencies.

This module is the single definition of ``compress_rate`` and of the band.

Notes
-----
Spectra are one-sided: a real FFT along the last spatial axis gives
``n[-1] // 2 + 1`` columns, every other axis keeps its ``n`` rows.  With
``half_a = n_a // 2 + 1`` and ``d`` spatial axes, a compress rate ``c`` keeps

.. math:: k_a = \\max(1, \\lfloor \\mathrm{half}_a (1 - c)^{1/d} \\rfloor)

per axis.  The retained set is every one-sided position whose signed
frequency satisfies ``|u_a| < k_a`` on the full axes (``|u| = min(u, n - u)``)
and ``0 <= v < k_last`` on the one-sided axis: a centred low-pass square in the
two-sided spectrum, symmetric under ``u -> -u``, so the inverse real FFT of a
spectrum restricted to it is exact.  ``compress_rate`` is the fraction of
one-sided coefficients a user asks to discard; ``Band.effective_rate`` is the
fraction actually discarded after rounding to whole coefficients.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import _validation as V

__all__ = ["Band", "FAST_EXACT_MAX", "band_for", "energy_family", "energy_keep", "fft_shape_for",
           "next_fast_len", "parseval_weights", "rate_keep"]


@dataclass(frozen=True)
class Band:
    """The retained low-frequency band of one band-limited correlation.

    Attributes
    ----------
    fft_shape : tuple of int
        FFT size ``n`` per spatial axis.
    keep : tuple of int
        ``k`` per axis: rows with ``|u| < k`` on the full axes, columns ``v < k``
        on the last (one-sided) axis.
    retained : int
        Number of one-sided coefficients kept.
    total : int
        Number of one-sided coefficients, ``prod(n[:-1]) * (n[-1] // 2 + 1)``.
    effective_rate : float
        ``1 - retained / total``: the compression actually obtained.
    """
    fft_shape: tuple[int, ...]
    keep: tuple[int, ...]
    retained: int
    total: int
    effective_rate: float

    @classmethod
    def from_keep(cls, fft_shape, keep) -> "Band":
        fft_shape, keep = tuple(int(n) for n in fft_shape), tuple(int(k) for k in keep)
        total = math.prod(fft_shape[:-1]) * (fft_shape[-1] // 2 + 1)
        retained = keep[-1] * math.prod(min(n, 2 * k - 1) for n, k in zip(fft_shape[:-1], keep))
        return cls(fft_shape, keep, retained, total, 1.0 - retained / total)

    @property
    def spectrum_shape(self) -> tuple[int, ...]:
        """Shape of the full one-sided spectrum, ``n[:-1] + (n[-1] // 2 + 1,)``."""
        return self.fft_shape[:-1] + (self.fft_shape[-1] // 2 + 1,)

    def indices(self, axis: int) -> np.ndarray:
        """Retained one-sided indices along spatial ``axis`` (ascending)."""
        return np.array(self.rows(axis), dtype=np.int64)

    def rows(self, axis: int) -> tuple[int, ...]:
        """:meth:`indices` as a tuple of ints (cached: every transform of a call reads it)."""
        last = axis in (len(self.fft_shape) - 1, -1)
        return _retained_rows(self.fft_shape[axis], self.keep[axis], last)

    def mask(self) -> np.ndarray:
        """Boolean NumPy mask of the retained set on the one-sided grid."""
        m = np.zeros(self.spectrum_shape, dtype=bool)
        m[np.ix_(*(self.indices(a) for a in range(len(self.fft_shape))))] = True
        return m


@functools.lru_cache(maxsize=4096)
def _retained_rows(n: int, k: int, last: bool) -> tuple[int, ...]:
    """Retained indices of an axis of size ``n`` keeping ``k``: ``0 .. k-1`` on the
    one-sided last axis, ``|u| < k`` (``u`` and ``n - u``) on a full axis."""
    if last:
        return tuple(range(k))
    if 2 * k - 1 >= n:
        return tuple(range(n))
    return tuple(range(k)) + tuple(range(n - k + 1, n))


def next_fast_len(n: int) -> int:
    """The smallest 5-smooth integer (factors 2, 3 and 5 only) ``>= n``.

    Examples
    --------
    >>> [next_fast_len(n) for n in (1, 7, 34, 97)]
    [1, 8, 36, 100]
    """
    m = max(1, int(n))
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


#: ``fft_size="fast"`` keeps the smallest exact size ``m`` on axes with ``m <=`` this
#: and rounds ``m`` up to :func:`next_fast_len` above it.  A constant of the band's
#: definition: no speed setting changes it (every transform route takes every size).
FAST_EXACT_MAX = 256


def fft_shape_for(geom: V.Geometry, fft_size, *, fn: str) -> tuple[int, ...]:
    """FFT size per axis for ``fft_size`` = ``"fast"``, ``"pow2"``, an int or a tuple.

    ``"fast"``: the smallest exact size ``m`` (:attr:`Geometry.min_size`) when
    ``m <= FAST_EXACT_MAX``, else ``next_fast_len(m)``.
    """
    d = len(geom.padded)
    if isinstance(fft_size, str):
        if fft_size == "fast":
            return tuple(m if m <= FAST_EXACT_MAX else next_fast_len(m) for m in geom.min_size)
        if fft_size == "pow2":  # the authors' reference implementation
            if d == 1:
                return tuple(_next_pow2(p + 2 * max(ke - 1, o - 1))
                             for p, ke, o in zip(geom.padded, geom.k_eff, geom.out1))
            return tuple(_next_pow2(p + max(o, ke) - 1)
                         for p, ke, o in zip(geom.padded, geom.k_eff, geom.out1))
        raise ValueError(f"{fn}: fft_size must be 'fast', 'pow2', an int or a tuple of {d} "
                         f"ints, got {fft_size!r}")
    n = V.ntuple(fn, "fft_size", fft_size, d, minimum=1)
    for a in range(d):
        if n[a] < geom.min_size[a]:
            raise ValueError(f"{fn}: fft_size along spatial axis {a} must be >= "
                             f"{geom.min_size[a]}, the smallest exact size for this input "
                             f"length, padding and filter, got {n[a]}")
    return n


def check_band(fn: str, band, geom: V.Geometry, fft_size="fast") -> "Band":
    """``band`` as the band of one correlation of geometry ``geom``, rebuilt from its keep.

    Raises, naming ``fn``: ``TypeError`` when ``band`` is not a :class:`Band`;
    ``ValueError`` when its ``fft_shape`` does not have one entry per spatial axis,
    an entry is below the smallest exact size (:attr:`Geometry.min_size`), an
    explicit ``fft_size`` (anything but the default ``"fast"``) differs from it,
    or a kept count is outside ``1 .. n // 2 + 1``.
    """
    if not isinstance(band, Band):
        raise TypeError(f"{fn}: band must be a blconv.Band (e.g. from blconv.band_for), "
                        f"got {type(band).__name__}")
    d, n = len(geom.length), tuple(band.fft_shape)
    if len(n) != d or len(band.keep) != d:
        raise ValueError(f"{fn}: band must have one fft_shape and keep entry per spatial axis "
                         f"({d}), got fft_shape={n}, keep={tuple(band.keep)}")
    for a in range(d):
        if n[a] < geom.min_size[a]:
            raise ValueError(f"{fn}: band.fft_shape along spatial axis {a} must be >= "
                             f"{geom.min_size[a]}, the smallest exact size for this input "
                             f"length, padding and filter, got {n[a]}")
        if not 1 <= band.keep[a] <= n[a] // 2 + 1:
            raise ValueError(f"{fn}: band.keep along spatial axis {a} must be in 1.."
                             f"{n[a] // 2 + 1} (fft size {n[a]}), got {band.keep[a]}")
    if not (isinstance(fft_size, str) and fft_size == "fast"):
        want = fft_shape_for(geom, fft_size, fn=fn)
        if want != n:
            raise ValueError(f"{fn}: fft_size={fft_size!r} gives the FFT shape {want}, but "
                             f"band.fft_shape is {n}; leave fft_size at its default with band")
    return Band.from_keep(n, band.keep)


def rate_keep(fft_shape: tuple[int, ...], compress_rate: float) -> tuple[int, ...]:
    """Kept count per axis for a fixed compress rate (see the module notes)."""
    d = len(fft_shape)
    scale = (1.0 - compress_rate) ** (1.0 / d)
    return tuple(max(1, math.floor((n // 2 + 1) * scale)) for n in fft_shape)


def parseval_weights(fft_shape: tuple[int, ...]) -> np.ndarray:
    """Weights along the one-sided last axis that make one-sided energy two-sided.

    ``(n // 2 + 1,)`` values: 1 for the DC column and, for even ``n``, the Nyquist
    column (their mirror images are themselves), 2 for every other column.

    Examples
    --------
    >>> parseval_weights((8,)).tolist(), parseval_weights((4, 7)).tolist()
    ([1.0, 2.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 2.0])
    """
    n = int(fft_shape[-1])
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def energy_family(fft_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Kept counts of the nested band family that ``preserve_energy`` chooses from.

    Band ``j = 1 .. H`` (``H`` the largest ``half_a = n_a // 2 + 1``) keeps
    ``k_a = max(1, ceil(j * half_a / H))`` per axis: from the DC alone to the whole
    spectrum, each band inside the next.

    Examples
    --------
    >>> energy_family((8,))
    [(1,), (2,), (3,), (4,), (5,)]
    >>> energy_family((4, 8))[:3]
    [(1, 1), (2, 2), (2, 3)]
    """
    halves = [n // 2 + 1 for n in fft_shape]
    H = max(halves)
    return [tuple(max(1, math.ceil(j * h / H)) for h in halves) for j in range(1, H + 1)]


def energy_keep(energy: np.ndarray, fft_shape: tuple[int, ...], preserve_energy: float):
    """Smallest band of :func:`energy_family` holding ``preserve_energy`` of ``energy``.

    ``energy`` is the Parseval-weighted energy per one-sided position (host
    NumPy, summed over batch and channels; :func:`parseval_weights`).  A position
    enters the family at band ``j = max_a(floor(|u_a| * H / half_a) + 1)``.
    """
    halves = [n // 2 + 1 for n in fft_shape]
    H = max(halves)
    j = np.ones(energy.shape, dtype=np.int64)
    for a, (n, half) in enumerate(zip(fft_shape, halves)):
        u = np.arange(energy.shape[a])
        if a < len(fft_shape) - 1:
            u = np.minimum(u, n - u)
        shape = [1] * energy.ndim
        shape[a] = -1
        j = np.maximum(j, (u * H // half + 1).reshape(shape))
    cum = np.cumsum(np.bincount(j.ravel(), weights=energy.ravel(), minlength=H + 1))
    if preserve_energy >= 1.0 or not np.isfinite(cum[-1]):   # NaN/inf input: keep everything
        jj = H
    else:
        jj = int(np.searchsorted(cum, preserve_energy * cum[-1], side="left"))
        jj = min(max(jj, 1), H)
    return energy_family(fft_shape)[jj - 1]


def band_for(x_shape, w_shape, *, padding=0, dilation=1, compress_rate=0.0, fft_size="fast"):
    """The :class:`Band` that ``conv1d``/``conv2d`` use at a fixed compress rate.

    Parameters
    ----------
    x_shape : tuple of int
        ``(N, C_in, L)`` or ``(N, C_in, H, W)``.
    w_shape : tuple of int
        ``(C_out, C_in / groups, k)`` or ``(C_out, C_in / groups, kH, kW)``.
    padding, dilation, fft_size
        As in :func:`blconv.conv2d`.
    compress_rate : float
        Fraction of one-sided coefficients to discard, in ``[0, 1)``.

    Returns
    -------
    Band

    Examples
    --------
    >>> b = band_for((32, 64, 32, 32), (64, 64, 3, 3), padding=1, compress_rate=0.5)
    >>> b.fft_shape, b.keep, b.retained, b.total
    ((33, 33), (12, 12), 276, 561)
    """
    fn = "band_for"
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) not in (3, 4) or len(w_shape) != len(x_shape):
        raise ValueError(f"{fn}: x_shape and w_shape must both have 3 (1D) or 4 (2D) entries, "
                         f"got {x_shape} and {w_shape}")
    geom = V.conv_geometry(fn, x_shape[2:], w_shape[2:], padding=padding, dilation=dilation)
    c = V.check_rate(fn, compress_rate)
    n = fft_shape_for(geom, fft_size, fn=fn)
    return Band.from_keep(n, rate_keep(n, c))
