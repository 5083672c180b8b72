"""Helpers shared by the plots: matplotlib on demand, host copies, argument checks, grids."""
from __future__ import annotations

import array_api_compat
import numpy as np

from .._backend import to_numpy
from .._validation import ntuple


def pyplot(fn: str):
    """``matplotlib.pyplot``, or an ImportError naming ``fn`` and the ``plot`` extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"{fn}: plotting needs matplotlib, the optional 'plot' extra; "
                          f"install it with pip install 'blconv[plot]'") from e
    return plt


def subplots(plt, nrows: int = 1, ncols: int = 1, **fig_kw):
    """A new pyplot figure and its Axes, in constrained layout (``fig_kw``: ``figsize``,
    ``squeeze``)."""
    return plt.subplots(nrows, ncols, layout="constrained", **fig_kw)


def axes_or_new(plt, ax, **fig_kw):
    """``ax``, or the Axes of a new one-panel figure."""
    return subplots(plt, **fig_kw)[1] if ax is None else ax


def host_float64(fn: str, name: str, a) -> np.ndarray:
    """A real float64 host copy of an array (NumPy, CuPy, array-API) or a nested list."""
    if array_api_compat.is_array_api_obj(a):
        a = to_numpy(a)
    elif not isinstance(a, (list, tuple)):
        raise TypeError(f"{fn}: {name} must be an array (NumPy, CuPy or array-API), "
                        f"got {type(a).__module__}.{type(a).__qualname__}")
    a = np.asarray(a)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer)
                               or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"{fn}: {name} must have a real integer or float dtype, got {a.dtype}")
    return a.astype(np.float64)


def check_fft_shape(fn: str, spatial: tuple[int, ...], fft_shape, *,
                    name: str = "fft_shape") -> tuple[int, ...]:
    """An FFT size per spatial axis (an int or a tuple), each at least the input's length;
    ``spatial`` itself for ``None``."""
    if fft_shape is None:
        return spatial
    n = ntuple(fn, name, fft_shape, len(spatial), minimum=1)
    for a, (m, s) in enumerate(zip(n, spatial)):
        if m < s:
            raise ValueError(f"{fn}: {name} along spatial axis {a} must be >= the input "
                             f"length {s}, got {m}")
    return n


def centred_freqs(n: int) -> np.ndarray:
    """Signed frequency of each index after ``fftshift``: ``-(n // 2) .. n - 1 - n // 2``."""
    return np.arange(n) - n // 2


def cell_extent(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float, float]:
    """``imshow`` extent putting cell centres on integer coordinates (origin lower)."""
    return (cols[0] - 0.5, cols[-1] + 0.5, rows[0] - 0.5, rows[-1] + 0.5)

