"""Plots: spectra, bands, energy curves, filter spectra and experiment results.

Matplotlib is imported inside the functions (the optional ``plot`` extra:
``pip install 'blconv[plot]'``), so ``import blconv.viz`` works without it.
Arrays may be NumPy or CuPy (or any array-API array); they are copied to the
host with :func:`blconv.to_numpy` and transformed with NumPy.  Every function
draws into ``ax`` when given, creates a figure otherwise, returns what it drew
into and never calls ``show()``.

Spectra follow :mod:`blconv.band`: ``compress_rate`` and the retained band are
defined there.  On the *one-sided* grid (what ``Band.retained`` counts) row
``u`` is stored at index ``u mod n_0``; the *centred two-sided* grid
(``fftshift``) shows the band as the low-pass square ``|u| < k_0, |v| < k_1``
around DC.  Accuracies from experiment records (fractions) are drawn in
percent; means and standard deviations are over seeds (the sample standard
deviation, ``ddof=1``, as :func:`blconv.experiments.summarize`; a single seed
has none and gets no error bar).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import array_api_compat
import numpy as np

from ._backend import to_numpy
from .band import Band, energy_family, parseval_weights

__all__ = ["plot_spectrum", "plot_band", "energy_curve", "plot_energy", "plot_filter_spectra",
           "plot_compression_accuracy", "plot_train_test_heatmap", "plot_history",
           "plot_noise_robustness"]


# --- helpers ---------------------------------------------------------------------------------
def _pyplot(fn: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"{fn}: plotting needs matplotlib, the optional 'plot' extra; "
                          f"install it with pip install 'blconv[plot]'") from e
    return plt


def _axes(plt, ax):
    return plt.subplots(layout="constrained")[1] if ax is None else ax


def _host(fn: str, name: str, a) -> np.ndarray:
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


def _fft_shape(fn: str, spatial: tuple[int, ...], fft_shape, *,
               name: str = "fft_shape") -> tuple[int, ...]:
    if fft_shape is None:
        return spatial
    d = len(spatial)
    vals = fft_shape if isinstance(fft_shape, (tuple, list)) else (fft_shape,) * d
    if len(vals) != d or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                 for v in vals):
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {d} ints, "
                        f"got {fft_shape!r}")
    for a, (n, s) in enumerate(zip(vals, spatial)):
        if n < s:
            raise ValueError(f"{fn}: {name} along spatial axis {a} must be >= the input "
                             f"length {s}, got {n}")
    return tuple(int(v) for v in vals)


def _centred_freqs(n: int) -> np.ndarray:
    """Signed frequency of each index after ``fftshift``: ``-(n // 2) .. n - 1 - n // 2``."""
    return np.arange(n) - n // 2


def _cell_extent(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float, float]:
    """``imshow`` extent putting cell centres on integer coordinates (origin lower)."""
    return (cols[0] - 0.5, cols[-1] + 0.5, rows[0] - 0.5, rows[-1] + 0.5)


def _records(fn: str, results, required) -> list[dict]:
    """Sweep records as a list of dicts, each holding every key of ``required``."""
    if hasattr(results, "columns") and hasattr(results, "to_dict"):   # a pandas DataFrame
        results = results.to_dict("records")
    if isinstance(results, Mapping) or not hasattr(results, "__iter__"):
        raise TypeError(f"{fn}: results must be a list of dicts or a pandas DataFrame, "
                        f"got {type(results).__name__}")
    recs = list(results)
    if not recs:
        raise ValueError(f"{fn}: results is empty")
    for i, r in enumerate(recs):
        if not isinstance(r, Mapping):
            raise TypeError(f"{fn}: results[{i}] must be a dict, got {type(r).__name__}")
        for key in required:
            if key not in r:
                raise ValueError(f"{fn}: results[{i}] has no key {key!r} "
                                 f"(keys: {sorted(r)})")
    return recs


def _energy(r) -> float | None:
    """``train_preserve_energy`` of a record, ``None`` when absent, None or NaN (pandas)."""
    e = r.get("train_preserve_energy")
    return None if e is None or (isinstance(e, float) and math.isnan(e)) else float(e)


def _rate(r, key: str) -> float:
    return round(float(r[key]), 12)       # CSV round trips must not split groups


def _select(fn: str, recs, *, dataset=None, model=None, single: bool = False):
    """Records of ``dataset``/``model`` (str or list); with ``single``, exactly one of each."""
    for key, want in (("dataset", dataset), ("model", model)):
        have = sorted({str(r.get(key)) for r in recs})
        if want is not None:
            want = {want} if isinstance(want, str) else set(want)
            if not want <= set(have):
                raise ValueError(f"{fn}: {key} {sorted(want - set(have))} not in the "
                                 f"results (have {have})")
            recs = [r for r in recs if str(r.get(key)) in want]
        elif single and len(have) > 1:
            raise ValueError(f"{fn}: results hold several {key}s {have}; choose one with "
                             f"{key}=...")
    return recs


def _stats(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; ``nan`` for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else math.nan)


def _mean_line(ax, xs, groups, *, fmt: str, label: str, color: str, **kw):
    """A labelled line of the group means (the legend entry) with sample-std error bars
    beneath (none for a group of one)."""
    st = np.array([_stats(g) for g in groups]).reshape(-1, 2)
    x = np.asarray(xs, dtype=np.float64)
    # capsize 0: the bars are one LineCollection, so ax.lines holds only the mean lines
    ax.errorbar(x, st[:, 0], yerr=np.nan_to_num(st[:, 1]), fmt="none", ecolor=color,
                capsize=0, lw=1.5, alpha=0.7)
    ax.plot(x, st[:, 0], fmt, color=color, label=label, **kw)


_DECADES = 10     # log-power display range below the peak (the data are not clipped)


# --- spectra and bands -----------------------------------------------------------------------
def plot_spectrum(a, *, band: Band | None = None, ax=None, log: bool = True,
                  spatial_dims: int | None = None):
    """Plot the (log) power spectrum of a signal, image, batch or filter.

    Parameters
    ----------
    a : array, shape ``(..., L)`` or ``(..., H, W)``
        Real data; the power is averaged over every leading axis.
    band : Band, optional
        Compute the spectrum at ``band.fft_shape`` (zero-padded) and outline the
        retained band.  Without it, at the array's own spatial size.
    ax : matplotlib Axes, optional
    log : bool, optional
        Plot ``log10`` of the mean power (default) instead of the power.  Zero
        power is floored at the smallest positive float64.
    spatial_dims : {1, 2}, optional
        Number of trailing spatial axes.  Default: ``band``'s, else 1 for 1- and
        3-dimensional ``a`` (signal, ``(N, C, L)`` batch, ``(C_out, C_in, k)``
        filter) and 2 for 2- and 4-dimensional ``a``.

    Returns
    -------
    matplotlib Axes
        1D: one line over the one-sided frequencies ``0 .. n // 2``; the band is
        a shaded span ending at ``keep - 1/2``.  2D: an image of the centred
        two-sided spectrum (``fftshift``), one cell per integer frequency ``(u, v)``
        (rows ``u`` on the y axis), with a colourbar; the band is a rectangle of
        ``(2 k_1 - 1) x (2 k_0 - 1)`` cells (clipped to the grid) around DC.

    Raises
    ------
    TypeError
        For a non-array ``a``, a complex or bool dtype, or ``band`` not a Band.
    ValueError
        For a dimension mismatch or ``band.fft_shape`` smaller than the input.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, blconv
    >>> from blconv.viz import plot_spectrum
    >>> x = np.random.default_rng(0).standard_normal((4, 3, 16, 16))
    >>> ax = plot_spectrum(x, band=blconv.band_for(x.shape, (3, 3, 3, 3), padding=1,
    ...                                            compress_rate=0.5))
    >>> ax.images[0].get_array().shape
    (17, 17)
    """
    fn = "plot_spectrum"
    plt = _pyplot(fn)
    x = _host(fn, "a", a)
    if band is not None and not isinstance(band, Band):
        raise TypeError(f"{fn}: band must be a blconv.Band or None, got {type(band).__name__}")
    d = len(band.fft_shape) if band is not None else spatial_dims
    if d is None:
        d = {1: 1, 3: 1, 2: 2, 4: 2}.get(x.ndim)
        if d is None:
            raise ValueError(f"{fn}: cannot infer the spatial axes of a {x.ndim}-dimensional "
                             f"array; pass spatial_dims=1 or 2")
    if d not in (1, 2) or x.ndim < d:
        raise ValueError(f"{fn}: spatial_dims must be 1 or 2 and at most a.ndim ({x.ndim}), "
                         f"got {d}" + (" (from band)" if band is not None else ""))
    spatial = x.shape[x.ndim - d:]
    n = _fft_shape(fn, spatial, band.fft_shape if band is not None else None)
    lead = tuple(range(x.ndim - d))
    ax = _axes(plt, ax)
    if d == 1:
        p = np.mean(np.abs(np.fft.rfft(x, n=n[0], axis=-1)) ** 2, axis=lead)
        y = np.log10(np.maximum(p, np.finfo(np.float64).tiny)) if log else p
        ax.plot(np.arange(p.shape[0]), y, color="C0", label="mean power")
        if band is not None:
            k = band.keep[0]
            ax.axvspan(-0.5, k - 0.5, color="C1", alpha=0.2,
                       label=f"retained band (k={k}, effective rate "
                             f"{band.effective_rate:.2f})")
            ax.axvline(k - 0.5, color="C1", lw=1)
            ax.legend(loc="best", fontsize="small")
        ax.set_xlabel(f"frequency v (cycles per {n[0]} samples)")
        ax.set_ylabel("log10 power" if log else "power")
        ax.set_xlim(-0.5, p.shape[0] - 0.5)
        if log:     # view at most _DECADES below the peak: a zero-mean DC must not squash it
            ax.set_ylim(max(y.min(), y.max() - _DECADES) - 0.2, y.max() + 0.3)
    else:
        spec = np.fft.fft2(x, s=n, axes=(-2, -1))
        p = np.fft.fftshift(np.mean(np.abs(spec) ** 2, axis=lead))
        img = np.log10(np.maximum(p, np.finfo(np.float64).tiny)) if log else p
        u, v = _centred_freqs(n[0]), _centred_freqs(n[1])
        # colour range: at most _DECADES below the peak, so rounding noise stays dark
        vmin = max(img.min(), img.max() - _DECADES) if log else None
        im = ax.imshow(img, origin="lower", extent=_cell_extent(u, v), cmap="magma",
                       vmin=vmin, interpolation="nearest", aspect="equal")
        ax.figure.colorbar(im, ax=ax, label="log10 power" if log else "power")
        if band is not None:
            from matplotlib.patches import Rectangle
            freqs = [_centred_freqs(m) for m in n]
            # |u| < k on the centred grid: -(k - 1) .. k - 1, clipped to the grid's frequencies
            lo = [max(-(k - 1), f[0]) for k, f in zip(band.keep, freqs)]
            hi = [min(k - 1, f[-1]) for k, f in zip(band.keep, freqs)]
            ax.add_patch(Rectangle((lo[1] - 0.5, lo[0] - 0.5), hi[1] - lo[1] + 1,
                                   hi[0] - lo[0] + 1, fill=False, edgecolor="cyan", lw=1.5,
                                   label="retained band"))
        ax.set_xlabel("frequency v (axis -1)")
        ax.set_ylabel("frequency u (axis -2)")
    title = "power spectrum" + (f" at fft_shape {n}" if band is not None else "")
    title += f", mean of {math.prod(x.shape[:x.ndim - d])}" if lead else ""
    if band is not None and d == 2:     # a legend would hide cells: say it in the title
        title += (f"\nretained band (cyan): keep {band.keep}, effective rate "
                  f"{band.effective_rate:.2f}")
    ax.set_title(title, fontsize="medium")
    return ax


def _draw_mask(ax, m, rows, cols, title: str) -> None:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator
    ax.imshow(m.astype(np.int8), origin="lower", extent=_cell_extent(rows, cols),
              cmap=ListedColormap(["#e8e8e8", "#1f77b4"]), vmin=0, vmax=1,
              interpolation="nearest", aspect="equal")
    if max(m.shape) <= 48:                                  # cell borders on small grids
        ax.set_xticks(np.arange(cols[0], cols[-1] + 2) - 0.5, minor=True)
        ax.set_yticks(np.arange(rows[0], rows[-1] + 2) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=0.5)
        ax.tick_params(which="minor", length=0)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(handles=[Patch(color="#1f77b4", label="kept"),
                       Patch(color="#e8e8e8", label="discarded")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.set_title(title, fontsize="medium")


def plot_band(band: Band, ax=None, *, view: str | None = None):
    """Draw the retained coefficients of a 1D or 2D :class:`~blconv.Band`.

    Parameters
    ----------
    band : Band
    ax : matplotlib Axes, or a pair of Axes (2D), optional
        With ``None`` a new figure is made.  A single Axes for a 2D band gets
        the one-sided grid only (unless ``view`` says otherwise).
    view : {"both", "one-sided", "two-sided"}, optional
        2D only.  ``"both"`` (the default without ``ax`` or with a pair) draws
        the one-sided grid (rows ``u = 0 .. n_0 - 1`` as stored, columns
        ``v = 0 .. n_1 // 2``) and the centred two-sided grid side by side;
        ``"one-sided"`` (the default for a single Axes) and ``"two-sided"``
        draw one of them.

    Returns
    -------
    matplotlib Figure or Axes
        The Figure for two panels (``effective_rate`` in its title), else the
        Axes (``effective_rate`` in the Axes title).  Retained cells are
        coloured; the one-sided image holds exactly ``band.retained`` ones.

    Raises
    ------
    TypeError
        When ``band`` is not a Band.
    ValueError
        For a band of more than 2 axes, an unknown ``view`` or a mismatch of
        ``view`` and ``ax``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import blconv
    >>> from blconv.viz import plot_band
    >>> band = blconv.Band.from_keep((8, 8), (2, 2))
    >>> fig = plot_band(band)
    >>> int(fig.axes[0].images[0].get_array().sum()) == band.retained == 6
    True
    """
    fn = "plot_band"
    plt = _pyplot(fn)
    if not isinstance(band, Band):
        raise TypeError(f"{fn}: band must be a blconv.Band, got {type(band).__name__}")
    d = len(band.fft_shape)
    if d not in (1, 2):
        raise ValueError(f"{fn}: only 1D and 2D bands can be drawn, got fft_shape "
                         f"{band.fft_shape}")
    summary = (f"keep {band.keep}: {band.retained} of {band.total} coefficients, "
               f"effective rate {band.effective_rate:.3f}")
    m = band.mask()
    if d == 1:
        ax = plt.subplots(figsize=(8, 1.9), layout="constrained")[1] if ax is None else ax
        _draw_mask(ax, m[None, :], np.array([0]), np.arange(m.shape[0]),
                   f"n = {band.fft_shape[0]}, {summary}")
        ax.set_yticks([])
        ax.set_xlabel("frequency v (one-sided)")
        return ax
    pair = ax is not None and not hasattr(ax, "imshow")
    view = view or ("both" if ax is None or pair else "one-sided")
    if view not in ("both", "one-sided", "two-sided"):
        raise ValueError(f"{fn}: view must be 'both', 'one-sided' or 'two-sided', got {view!r}")
    if view == "both":
        if ax is None:
            fig, axs = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
        else:
            axs = list(ax) if pair else [ax]
            if len(axs) != 2:
                raise ValueError(f"{fn}: view='both' needs ax=None or a pair of Axes, "
                                 f"got {len(axs)} Axes")
            fig = axs[0].figure
    elif pair:
        raise ValueError(f"{fn}: view={view!r} draws one grid; pass a single Axes")
    else:
        axs = [_axes(plt, ax)]
        fig = None
    n0, n1 = band.fft_shape
    panels = {"one-sided": [], "two-sided": []}
    if view in ("both", "one-sided"):
        panels["one-sided"] = [axs[0]]
    if view in ("both", "two-sided"):
        panels["two-sided"] = [axs[-1]]
    for a_ in panels["one-sided"]:
        _draw_mask(a_, m, np.arange(n0), np.arange(m.shape[1]),
                   f"one-sided (stored) {n0} x {m.shape[1]}: {band.retained} kept")
        a_.set_xlabel("v")
        a_.set_ylabel("row index u (u mod n_0)")
    for a_ in panels["two-sided"]:
        u, v = _centred_freqs(n0), _centred_freqs(n1)
        two = (np.abs(u)[:, None] < band.keep[0]) & (np.abs(v)[None, :] < band.keep[1])
        _draw_mask(a_, two, u, v, f"two-sided (centred) {n0} x {n1}: |u| < {band.keep[0]}, "
                                  f"|v| < {band.keep[1]}")
        a_.set_xlabel("frequency v")
        a_.set_ylabel("frequency u")
    if fig is not None:
        fig.suptitle(f"Band fft_shape {band.fft_shape}, {summary}")
        return fig
    axs[0].set_title(f"{axs[0].get_title()}\neffective rate {band.effective_rate:.3f}",
                     fontsize="medium")
    return axs[0]


def energy_curve(a, *, fft_shape=None) -> tuple[np.ndarray, np.ndarray, list[Band]]:
    """Effective compress rate and retained energy fraction of each band of the nested family.

    The data of :func:`plot_energy` (see its Notes), without matplotlib.

    Parameters
    ----------
    a : array, shape ``(N, C, L)`` or ``(N, C, H, W)``
    fft_shape : int or tuple of int, optional
        FFT size per spatial axis; default the input's spatial size.

    Returns
    -------
    rate, fraction : ndarray of float64, shape ``(H,)``
        For band ``j = 1 .. H`` (``H = max_a half_a``): ``band.effective_rate``
        and the fraction of Parseval-weighted spectral energy inside it.
    bands : list of Band

    Raises
    ------
    TypeError, ValueError
        As :func:`plot_energy`.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.viz import energy_curve
    >>> rate, frac, _ = energy_curve(np.ones((1, 1, 8)))   # all energy at DC
    >>> rate.round(2).tolist(), frac.tolist()
    ([0.8, 0.6, 0.4, 0.2, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    fn = "energy_curve"
    x = _host(fn, "a", a)
    if x.ndim not in (3, 4) or 0 in x.shape:
        raise ValueError(f"{fn}: a must have shape (N, C, L) or (N, C, H, W), non-empty, "
                         f"got {x.shape}")
    d = x.ndim - 2
    n = _fft_shape(fn, x.shape[2:], fft_shape)
    # (*spectrum): power summed over N and C, weighted for the mirrored half
    p = np.sum(np.abs(np.fft.rfftn(x, s=n, axes=tuple(range(2, 2 + d)))) ** 2, axis=(0, 1))
    energy = p * parseval_weights(n)
    total = energy.sum()
    if not total > 0:
        raise ValueError(f"{fn}: a has no spectral energy (all zeros)")
    bands = [Band.from_keep(n, keep) for keep in energy_family(n)]
    rate = np.array([b.effective_rate for b in bands])
    frac = np.array([energy[b.mask()].sum() / total for b in bands])
    return rate, frac, bands


def plot_energy(a, ax=None, *, fft_shape=None):
    """Plot the retained energy fraction against compress rate, as ``preserve_energy`` reads it.

    Parameters
    ----------
    a : array, shape ``(N, C, L)`` or ``(N, C, H, W)``
        A layer's input.
    ax : matplotlib Axes, optional
    fft_shape : int or tuple of int, optional
        FFT size per spatial axis (zero padding), e.g. ``ctx.band.fft_shape``
        of the conv; default the input's spatial size.

    Returns
    -------
    matplotlib Axes
        Its line labelled ``"energy"`` holds, for each band ``j = 1 .. H`` of the
        nested family, ``x = band.effective_rate`` and ``y`` = the energy fraction
        inside it (``j`` ascending: rate falling, fraction rising to 1 at rate 0).

    Notes
    -----
    Band ``j`` keeps ``k_a = max(1, ceil(j * half_a / H))`` per axis, with
    ``half_a = n_a // 2 + 1`` and ``H = max_a half_a``.  The energy of a
    one-sided position is ``sum_{N,C} |x_hat|^2`` times 2 unless it is the DC or
    (even ``n``) Nyquist column, so fractions equal two-sided (Parseval) ones.
    ``preserve_energy=E`` picks the first band (highest rate) whose fraction
    is ``>= E`` (:func:`blconv.band.energy_keep`).

    Raises
    ------
    TypeError, ValueError
        For a non-array or complex ``a``, a wrong shape, an all-zero input or
        ``fft_shape`` smaller than the input.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from blconv.viz import plot_energy
    >>> x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
    >>> ax = plot_energy(x)
    >>> ax.lines[0].get_ydata()[-1], ax.lines[0].get_xdata()[-1]
    (np.float64(1.0), np.float64(0.0))
    """
    fn = "plot_energy"
    plt = _pyplot(fn)
    rate, frac, bands = energy_curve(a, fft_shape=fft_shape)
    ax = _axes(plt, ax)
    ax.plot(rate, frac, "o-", ms=3, color="C0", label="energy")
    for e in (0.9, 0.99):
        ax.axhline(e, color="grey", lw=0.6, ls=":")
        ax.annotate(f"E = {e}", (1.0, e), xycoords=("axes fraction", "data"),
                    xytext=(-4, -10), textcoords="offset points", ha="right",
                    fontsize="small", color="grey")
    ax.set_xlabel("effective compress rate (1 - retained / total)")
    ax.set_ylabel("fraction of spectral energy retained")
    ax.set_xlim(-0.02, 1.0)
    ax.set_title(f"Energy in the nested bands, fft_shape {bands[0].fft_shape}")
    ax.grid(alpha=0.3)
    return ax


def plot_filter_spectra(layer_or_weights, *, max_filters: int = 16, fft_size=None, ax=None,
                        ncols: int | None = None):
    """Grid of a conv layer's filter spectra and their mean.

    Each panel shows ``sum over C_in of |FFT(w[o, c])|`` of one output filter,
    zero-padded to ``fft_size``; the last panel the mean over *all* ``C_out``
    filters.  Trained CNNs concentrate it on low frequencies (Dziedzic et al.).

    Parameters
    ----------
    layer_or_weights : Conv1d, Conv2d or array
        A layer (its ``params["w"]``) or weights of shape ``(C_out, C_in, k)`` or
        ``(C_out, C_in, kh, kw)``.
    max_filters : int, optional
        At most this many filter panels (the first ones), default 16.
    fft_size : int or tuple of int, optional
        FFT size per spatial axis, default ``max(16, kernel size)``.
    ax : sequence of matplotlib Axes, optional
        At least ``min(C_out, max_filters) + 1`` Axes to draw into (extras are
        switched off); default a new figure.
    ncols : int, optional
        Columns of the new grid, default ``ceil(sqrt(panels))``.

    Returns
    -------
    matplotlib Figure
        1D: line panels over ``v = 0 .. n // 2``, a shared y range.  2D: images
        of the centred two-sided magnitude (DC in the middle, ``fftshift``) on one
        shared colour scale, with one colourbar.

    Raises
    ------
    TypeError, ValueError
        For something that is neither a layer with ``params["w"]`` nor an
        array, a wrong shape, ``max_filters < 1`` or ``fft_size`` below the
        kernel size.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.nn import Conv2d
    >>> from blconv.viz import plot_filter_spectra
    >>> fig = plot_filter_spectra(Conv2d(3, 4, 3, rng=0), fft_size=8)
    >>> len([a for a in fig.axes if a.images])
    5
    """
    fn = "plot_filter_spectra"
    plt = _pyplot(fn)
    params = getattr(layer_or_weights, "params", None)
    w = params["w"] if isinstance(params, Mapping) and "w" in params else layer_or_weights
    w = _host(fn, "weights", w)
    if w.ndim not in (3, 4) or 0 in w.shape:
        raise ValueError(f"{fn}: weights must have shape (C_out, C_in, k) or "
                         f"(C_out, C_in, kh, kw), got {w.shape}")
    if not isinstance(max_filters, numbers.Integral) or max_filters < 1:
        raise ValueError(f"{fn}: max_filters must be an int >= 1, got {max_filters!r}")
    d = w.ndim - 2
    n = _fft_shape(fn, w.shape[2:], tuple(max(16, s) for s in w.shape[2:])
                   if fft_size is None else fft_size, name="fft_size")
    axes = tuple(range(2, 2 + d))
    if d == 1:
        mag = np.abs(np.fft.rfft(w, n=n[0], axis=-1)).sum(axis=1)               # (C_out, n//2+1)
    else:
        mag = np.fft.fftshift(np.abs(np.fft.fft2(w, s=n, axes=axes)).sum(axis=1), axes=(1, 2))
    shown = min(w.shape[0], int(max_filters))
    panels = [(mag[o], f"filter {o}") for o in range(shown)]
    panels.append((mag.mean(axis=0), f"mean of {w.shape[0]}"))
    if ax is None:
        ncols = ncols or math.ceil(math.sqrt(len(panels)))
        nrows = math.ceil(len(panels) / ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(2.1 * ncols + (1.0 if d == 2 else 0),
                                                        2.0 * nrows + 0.6),
                                 layout="constrained", squeeze=False)
        axs = list(grid.ravel())
    else:
        axs = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axs) < len(panels):
            raise ValueError(f"{fn}: ax must hold at least {len(panels)} Axes, got {len(axs)}")
        fig = axs[0].figure
    hi = float(mag.max()) or 1.0
    im = None
    for a_, (m, title) in zip(axs, panels):
        if d == 1:
            a_.plot(np.arange(m.shape[0]), m, color="C1" if title.startswith("mean") else "C0")
            a_.set_ylim(0, 1.05 * hi)
        else:
            u, v = _centred_freqs(n[0]), _centred_freqs(n[1])
            im = a_.imshow(m, origin="lower", extent=_cell_extent(u, v), cmap="viridis",
                           vmin=0, vmax=hi, interpolation="nearest")
            a_.set_xticks([v[0], 0, v[-1]])
            a_.set_yticks([u[0], 0, u[-1]])
        a_.set_title(title, fontsize="small", fontweight="bold" if title[:4] == "mean" else None)
        a_.tick_params(labelsize="x-small")
    for a_ in axs[len(panels):]:
        a_.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=axs[:len(panels)], shrink=0.8, label="sum over C_in of |FFT(w)|")
    where = "x: v (one-sided)" if d == 1 else "centred, DC in the middle; x: v, y: u"
    fig.suptitle(f"Filter spectra, fft_size {n} ({where})", fontsize="medium")
    return fig


# --- experiment results ------------------------------------------------------------------------
_SWEEP_KEYS = ("dataset", "train_compress_rate", "test_compress_rate", "test_accuracy")


def _label(r) -> str:
    return f"{r['dataset']} ({r['model']})" if r.get("model") is not None else str(r["dataset"])


def plot_compression_accuracy(results, *, ax=None, dataset=None, model=None, reference=None):
    """Plot test accuracy against the training compress rate, one line per dataset.

    Only records tested at their training rate (``test_compress_rate ==
    train_compress_rate``) are used: the band-limited training *and* inference
    of the paper.  Runs trained with ``preserve_energy`` appear as separate
    square markers at their mean ``effective_rate``.

    Parameters
    ----------
    results : list of dict or pandas DataFrame
        Sweep records (:func:`blconv.experiments.sweep`) with keys ``dataset``,
        ``train_compress_rate``, ``test_compress_rate``, ``test_accuracy``
        (a fraction), and ``effective_rate`` for energy-trained runs; ``model``,
        ``seed`` and ``train_preserve_energy`` are read when present.
    ax : matplotlib Axes, optional
    dataset, model : str or list of str, optional
        Only these datasets / models.
    reference : dict, optional
        ``{label: {rate: accuracy_percent}}`` reference points, e.g.
        ``{"ResNet-18/CIFAR-10 (paper)": {0.0: 93.69, 0.5: 92.32}}``.

    Returns
    -------
    matplotlib Axes
        One error-bar line per (dataset, model), labelled ``"dataset (model)"``:
        x the train rates ascending, y the mean test accuracy in percent, error
        bars the sample standard deviation over seeds (``ddof=1``).

    Raises
    ------
    TypeError, ValueError
        For records that are not dicts, a missing key (named), no records at
        test rate == train rate, or a malformed ``reference``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_compression_accuracy
    >>> recs = [dict(dataset="GunPoint", model="fcn1d", seed=s, train_compress_rate=c,
    ...              train_preserve_energy=None, test_compress_rate=c,
    ...              test_accuracy=acc, effective_rate=c)
    ...         for s, c, acc in [(0, 0.0, 0.98), (1, 0.0, 1.0), (0, 0.5, 0.96), (1, 0.5, 0.94)]]
    >>> ax = plot_compression_accuracy(recs)
    >>> ax.lines[0].get_ydata().round(6).tolist()
    [99.0, 95.0]
    """
    fn = "plot_compression_accuracy"
    plt = _pyplot(fn)
    recs = _select(fn, _records(fn, results, _SWEEP_KEYS), dataset=dataset, model=model)
    recs = [r for r in recs if _rate(r, "test_compress_rate") == _rate(r, "train_compress_rate")]
    if not recs:
        raise ValueError(f"{fn}: no record has test_compress_rate == train_compress_rate")
    if reference is not None and not (isinstance(reference, Mapping) and all(
            isinstance(v, Mapping) for v in reference.values())):
        raise TypeError(f"{fn}: reference must be a dict {{label: {{rate: accuracy %}}}}, "
                        f"got {reference!r}")
    ax = _axes(plt, ax)
    lines: dict = {}
    for r in recs:
        lines.setdefault(_label(r), []).append(r)
    for i, (label, rs) in enumerate(lines.items()):
        color = f"C{i % 10}"
        by_rate: dict = {}
        by_energy: dict = {}
        for r in rs:
            e = _energy(r)
            if e is None:
                by_rate.setdefault(_rate(r, "train_compress_rate"), []).append(r)
            else:
                if "effective_rate" not in r:
                    raise ValueError(f"{fn}: an energy-trained record of {label} has no key "
                                     f"'effective_rate'")
                by_energy.setdefault(e, []).append(r)
        if by_rate:
            xs = sorted(by_rate)
            _mean_line(ax, xs, [[100 * r["test_accuracy"] for r in by_rate[c]] for c in xs],
                       fmt="o-", label=label, color=color, ms=4)
        for e, ers in sorted(by_energy.items()):
            _mean_line(ax, [np.mean([r["effective_rate"] for r in ers])],
                       [[100 * r["test_accuracy"] for r in ers]], fmt="s", ms=7, mfc="none",
                       label=f"{label}, E = {e:g}", color=color)
    for j, (label, pts) in enumerate((reference or {}).items()):
        keys = sorted(pts, key=float)
        ax.plot(np.array(keys, dtype=np.float64),
                np.array([pts[c] for c in keys], dtype=np.float64), marker="*", ms=11, ls="--",
                lw=0.8, color="k", alpha=0.8 - 0.25 * (j % 3), label=label)
    energy_runs = any(_energy(r) is not None for r in recs)
    ax.set_xlabel("train (= test) compress rate"
                  + ("; E = ...: mean effective rate" if energy_runs else ""))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against compression (mean ± sample SD over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_train_test_heatmap(results, *, ax=None, dataset=None, model=None):
    """Mean test accuracy for each (train compress rate, test compress rate), annotated.

    Parameters
    ----------
    results : list of dict or pandas DataFrame
        Sweep records, keys as in :func:`plot_compression_accuracy`, of one
        dataset and model (or choose with ``dataset`` / ``model``).
    ax : matplotlib Axes, optional
    dataset, model : str, optional

    Returns
    -------
    matplotlib Axes
        Its image holds the mean accuracy in percent over seeds: rows the
        training policies (rates ascending, then ``E = ...`` energy-trained
        runs), columns the test rates ascending; missing pairs are masked.  Each
        cell is annotated; a colourbar is added.

    Raises
    ------
    TypeError, ValueError
        For bad records, a missing key (named) or several datasets or models
        without a choice.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_train_test_heatmap
    >>> recs = [dict(dataset="digits", seed=0, train_compress_rate=tr,
    ...              test_compress_rate=te, test_accuracy=acc)
    ...         for tr, te, acc in [(0.0, 0.0, 0.9), (0.0, 0.5, 0.6), (0.5, 0.0, 0.8),
    ...                             (0.5, 0.5, 0.85)]]
    >>> ax = plot_train_test_heatmap(recs)
    >>> ax.images[0].get_array().round(6).tolist()
    [[90.0, 60.0], [80.0, 85.0]]
    """
    fn = "plot_train_test_heatmap"
    plt = _pyplot(fn)
    recs = _select(fn, _records(fn, results, _SWEEP_KEYS), dataset=dataset, model=model,
                   single=True)
    cells: dict = {}
    for r in recs:
        e = _energy(r)
        row = (0, _rate(r, "train_compress_rate")) if e is None else (1, e)
        cells.setdefault((row, _rate(r, "test_compress_rate")), []).append(r["test_accuracy"])
    rows = sorted({k[0] for k in cells})
    cols = sorted({k[1] for k in cells})
    mean = np.full((len(rows), len(cols)), np.nan)
    for (row, col), accs in cells.items():
        mean[rows.index(row), cols.index(col)] = 100 * _stats(accs)[0]
    ax = _axes(plt, ax)
    im = ax.imshow(np.ma.masked_invalid(mean), cmap="viridis", aspect="auto",
                   interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="mean test accuracy (%)")
    lo, hi = np.nanmin(mean), np.nanmax(mean)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(mean[i, j]):
                light = (mean[i, j] - lo) / ((hi - lo) or 1.0) > 0.6
                ax.text(j, i, f"{mean[i, j]:.1f}", ha="center", va="center", fontsize="small",
                        color="black" if light else "white")
    ax.set_xticks(range(len(cols)), [f"{c:g}" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{v:g}" if kind == 0 else f"E = {v:g}"
                                     for kind, v in rows])
    ax.set_xlabel("test compress rate")
    ax.set_ylabel("train compress rate" + (" (or energy E)" if rows[-1][0] else ""))
    ax.set_title(f"{_label(recs[0])}: accuracy (%), mean over seeds")
    return ax


def plot_history(history, *, ax=None):
    """Plot training (and validation) loss and accuracy against the epoch.

    Parameters
    ----------
    history : dict or object with ``to_dict()``
        :class:`blconv.train.History` or a dict of per-epoch lists with keys
        ``loss`` and ``accuracy`` (a fraction) and optionally ``val_loss``,
        ``val_accuracy`` (``None`` entries are gaps).  Other keys (``lr``,
        ``epoch_seconds``, ...) are not drawn.
    ax : matplotlib Axes or a pair of Axes, optional
        ``None``: a new figure with two panels, loss left and accuracy right.
        A pair: those two panels.  A single Axes: loss on it and accuracy on a
        twin y axis (``ax.twinx()``) on the right.

    Returns
    -------
    matplotlib Figure or Axes
        The Figure for two panels, else the given Axes.  Line data are the
        epochs ``1 .. len(loss)`` and the values as passed (accuracy not
        rescaled).

    Raises
    ------
    TypeError, ValueError
        For a non-dict, a missing ``loss``/``accuracy`` key or lists of
        different lengths.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_history
    >>> fig = plot_history({"loss": [0.9, 0.5, 0.4], "accuracy": [0.5, 0.8, 0.9]})
    >>> fig.axes[1].lines[0].get_ydata().tolist()
    [0.5, 0.8, 0.9]
    """
    fn = "plot_history"
    plt = _pyplot(fn)
    h = history.to_dict() if hasattr(history, "to_dict") else history
    if not isinstance(h, Mapping):
        raise TypeError(f"{fn}: history must be a dict or have to_dict(), "
                        f"got {type(history).__name__}")
    for key in ("loss", "accuracy"):
        if key not in h:
            raise ValueError(f"{fn}: history has no key {key!r} (keys: {sorted(h)})")
    n = len(h["loss"])
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in h]
    for k in keys:
        if len(h[k]) != n:
            raise ValueError(f"{fn}: history[{k!r}] has {len(h[k])} entries, "
                             f"history['loss'] has {n}")
    epochs = np.arange(1, n + 1)
    data = {k: np.array([np.nan if v is None else float(v) for v in h[k]]) for k in keys}
    pair = ax is not None and not hasattr(ax, "plot")
    if ax is None:
        fig, (a_loss, a_acc) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    elif pair:
        a_loss, a_acc = ax
        fig = a_loss.figure
    else:
        a_loss, a_acc, fig = ax, ax.twinx(), None
    styles = {"": "-", "val_": "--"}
    for prefix, ls in styles.items():
        if f"{prefix}loss" in data and not np.all(np.isnan(data[f"{prefix}loss"])):
            a_loss.plot(epochs, data[f"{prefix}loss"], ls, marker=".", color="C0",
                        label=f"{'validation' if prefix else 'train'} loss")
        if f"{prefix}accuracy" in data and not np.all(np.isnan(data[f"{prefix}accuracy"])):
            a_acc.plot(epochs, data[f"{prefix}accuracy"], ls, marker=".", color="C1",
                       label=f"{'validation' if prefix else 'train'} accuracy")
    a_loss.set_xlabel("epoch")
    a_loss.set_ylabel("loss", **({"color": "C0"} if fig is None else {}))
    a_acc.set_ylabel("accuracy (fraction)", **({"color": "C1"} if fig is None else {}))
    a_acc.set_ylim(0, 1.02)
    if fig is not None:
        a_acc.set_xlabel("epoch")
        a_loss.set_title("loss")
        a_acc.set_title("accuracy")
        for a_ in (a_loss, a_acc):
            a_.grid(alpha=0.3)
            a_.legend(fontsize="small")
        return fig
    handles = a_loss.get_legend_handles_labels()
    more = a_acc.get_legend_handles_labels()
    # on the twin: it is drawn above the loss axes, so a legend there would be hidden
    a_acc.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="center right")
    a_loss.set_title("training history")
    return a_loss


def plot_noise_robustness(results, *, ax=None, dataset=None, model=None):
    """Plot test accuracy against input noise level, one line per training policy.

    Parameters
    ----------
    results : list of dict or pandas DataFrame
        Records with keys ``noise_sigma``, ``train_compress_rate`` and
        ``test_accuracy`` (a fraction); ``train_preserve_energy`` (own lines,
        ``E = ...``) and ``test_compress_rate`` are read when present: records
        tested at another rate than they were trained at are left out.
    ax : matplotlib Axes, optional
    dataset, model : str, optional
        Choose one when the records hold several.

    Returns
    -------
    matplotlib Axes
        One error-bar line per training policy, labelled ``"train rate c"`` or
        ``"train E = e"``: x the sigmas ascending, y the mean accuracy (%) over
        seeds, error bars the sample standard deviation (``ddof=1``).

    Raises
    ------
    TypeError, ValueError
        For bad records or a missing key (named).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from blconv.viz import plot_noise_robustness
    >>> recs = [dict(noise_sigma=s, train_compress_rate=c, test_accuracy=a)
    ...         for s, c, a in [(0.0, 0.0, 0.9), (0.5, 0.0, 0.6), (0.0, 0.5, 0.88),
    ...                         (0.5, 0.5, 0.75)]]
    >>> ax = plot_noise_robustness(recs)
    >>> [line.get_label() for line in ax.lines]
    ['train rate 0', 'train rate 0.5']
    """
    fn = "plot_noise_robustness"
    plt = _pyplot(fn)
    recs = _records(fn, results, ("noise_sigma", "train_compress_rate", "test_accuracy"))
    if any("dataset" in r for r in recs) or dataset is not None:
        recs = _select(fn, recs, dataset=dataset, model=model, single=True)
    recs = [r for r in recs if "test_compress_rate" not in r
            or _rate(r, "test_compress_rate") == _rate(r, "train_compress_rate")]
    if not recs:
        raise ValueError(f"{fn}: no record has test_compress_rate == train_compress_rate")
    lines: dict = {}
    for r in recs:
        e = _energy(r)
        key = (0, _rate(r, "train_compress_rate")) if e is None else (1, e)
        lines.setdefault(key, {}).setdefault(float(r["noise_sigma"]), []).append(
            100 * r["test_accuracy"])
    ax = _axes(plt, ax)
    for i, ((kind, v), by_sigma) in enumerate(sorted(lines.items())):
        xs = sorted(by_sigma)
        _mean_line(ax, xs, [by_sigma[s] for s in xs], fmt="o-", ms=4, color=f"C{i % 10}",
                   label=f"train rate {v:g}" if kind == 0 else f"train E = {v:g}")
    ax.set_xlabel("input noise sigma")
    ax.set_ylabel("test accuracy (%)")
    where = f"{_label(recs[0])}: " if "dataset" in recs[0] else ""
    ax.set_title(f"{where}accuracy under input noise (mean ± sample SD over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax
