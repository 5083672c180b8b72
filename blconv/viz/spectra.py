"""Spectra of data: a signal's or image's power spectrum, the energy in the nested bands,
a conv layer's filter spectra."""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .._validation import check_int
from ..band import Band, energy_family, parseval_weights
from ._common import (axes_or_new, cell_extent, centred_freqs, check_fft_shape, host_float64,
                      pyplot, subplots)

__all__ = ["plot_spectrum", "energy_curve", "plot_energy", "plot_filter_spectra"]

_DECADES = 10     # log-power display range below the peak (the data are not clipped)


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
    plt = pyplot(fn)
    x = host_float64(fn, "a", a)
    if band is not None and not isinstance(band, Band):
        raise TypeError(f"{fn}: band must be a blconv.Band or None, got {type(band).__name__}")
    d = _spatial_dims(fn, x, band, spatial_dims)
    n = check_fft_shape(fn, x.shape[x.ndim - d:], band.fft_shape if band is not None else None)
    lead = tuple(range(x.ndim - d))                       # the axes the power is averaged over
    ax = axes_or_new(plt, ax)
    (_draw_spectrum_1d if d == 1 else _draw_spectrum_2d)(ax, x, n, lead, band=band, log=log)
    title = "power spectrum" + (f" at fft_shape {n}" if band is not None else "")
    title += f", mean of {math.prod(x.shape[:x.ndim - d])}" if lead else ""
    if band is not None and d == 2:     # a legend would hide cells: say it in the title
        title += (f"\nretained band (cyan): keep {band.keep}, effective rate "
                  f"{band.effective_rate:.2f}")
    ax.set_title(title, fontsize="medium")
    return ax


def _spatial_dims(fn: str, x: np.ndarray, band: Band | None, spatial_dims) -> int:
    """The number of trailing spatial axes: ``band``'s, ``spatial_dims`` or inferred."""
    d = len(band.fft_shape) if band is not None else spatial_dims
    if d is None:
        d = {1: 1, 3: 1, 2: 2, 4: 2}.get(x.ndim)
        if d is None:
            raise ValueError(f"{fn}: cannot infer the spatial axes of a {x.ndim}-dimensional "
                             f"array; pass spatial_dims=1 or 2")
    if d not in (1, 2) or x.ndim < d:
        raise ValueError(f"{fn}: spatial_dims must be 1 or 2 and at most a.ndim ({x.ndim}), "
                         f"got {d}" + (" (from band)" if band is not None else ""))
    return d


def _log_power(p: np.ndarray, log: bool) -> np.ndarray:
    """``log10`` of the power, zero floored at the smallest positive float64; or the power."""
    return np.log10(np.maximum(p, np.finfo(np.float64).tiny)) if log else p


def _draw_spectrum_1d(ax, x, n, lead, *, band, log) -> None:
    """The mean one-sided power ``0 .. n // 2`` as a line, the band as a shaded span."""
    p = np.mean(np.abs(np.fft.rfft(x, n=n[0], axis=-1)) ** 2, axis=lead)
    y = _log_power(p, log)
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


def _draw_spectrum_2d(ax, x, n, lead, *, band, log) -> None:
    """The mean centred two-sided power as an image, the band as a rectangle around DC."""
    spec = np.fft.fft2(x, s=n, axes=(-2, -1))
    img = _log_power(np.fft.fftshift(np.mean(np.abs(spec) ** 2, axis=lead)), log)
    u, v = centred_freqs(n[0]), centred_freqs(n[1])
    # colour range: at most _DECADES below the peak, so rounding noise stays dark
    vmin = max(img.min(), img.max() - _DECADES) if log else None
    im = ax.imshow(img, origin="lower", extent=cell_extent(u, v), cmap="magma",
                   vmin=vmin, interpolation="nearest", aspect="equal")
    ax.figure.colorbar(im, ax=ax, label="log10 power" if log else "power")
    if band is not None:
        from matplotlib.patches import Rectangle
        freqs = [centred_freqs(m) for m in n]
        # |u| < k on the centred grid: -(k - 1) .. k - 1, clipped to the grid's frequencies
        lo = [max(-(k - 1), f[0]) for k, f in zip(band.keep, freqs)]
        hi = [min(k - 1, f[-1]) for k, f in zip(band.keep, freqs)]
        ax.add_patch(Rectangle((lo[1] - 0.5, lo[0] - 0.5), hi[1] - lo[1] + 1,
                               hi[0] - lo[0] + 1, fill=False, edgecolor="cyan", lw=1.5,
                               label="retained band"))
    ax.set_xlabel("frequency v (axis -1)")
    ax.set_ylabel("frequency u (axis -2)")


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
    x = host_float64(fn, "a", a)
    if x.ndim not in (3, 4) or 0 in x.shape:
        raise ValueError(f"{fn}: a must have shape (N, C, L) or (N, C, H, W), non-empty, "
                         f"got {x.shape}")
    d = x.ndim - 2
    n = check_fft_shape(fn, x.shape[2:], fft_shape)
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
    plt = pyplot(fn)
    rate, frac, bands = energy_curve(a, fft_shape=fft_shape)
    ax = axes_or_new(plt, ax)
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
        array, a wrong shape, ``max_filters`` not an int (``TypeError``) or
        below 1, or ``fft_size`` below the kernel size.

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
    plt = pyplot(fn)
    params = getattr(layer_or_weights, "params", None)
    w = params["w"] if isinstance(params, Mapping) and "w" in params else layer_or_weights
    w = host_float64(fn, "weights", w)
    if w.ndim not in (3, 4) or 0 in w.shape:
        raise ValueError(f"{fn}: weights must have shape (C_out, C_in, k) or "
                         f"(C_out, C_in, kh, kw), got {w.shape}")
    max_filters = check_int(fn, "max_filters", max_filters, minimum=1)
    d = w.ndim - 2
    n = check_fft_shape(fn, w.shape[2:], tuple(max(16, s) for s in w.shape[2:])
                        if fft_size is None else fft_size, name="fft_size")
    mag = _filter_magnitudes(w, n)
    shown = min(w.shape[0], max_filters)
    panels = [(mag[o], f"filter {o}") for o in range(shown)]
    panels.append((mag.mean(axis=0), f"mean of {w.shape[0]}"))
    fig, axs = _panel_axes(fn, plt, ax, len(panels), ncols=ncols, d=d)
    im = _draw_filter_panels(axs, panels, n, hi=float(mag.max()) or 1.0)
    for a_ in axs[len(panels):]:
        a_.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=axs[:len(panels)], shrink=0.8, label="sum over C_in of |FFT(w)|")
    where = "x: v (one-sided)" if d == 1 else "centred, DC in the middle; x: v, y: u"
    fig.suptitle(f"Filter spectra, fft_size {n} ({where})", fontsize="medium")
    return fig


def _filter_magnitudes(w: np.ndarray, n: tuple[int, ...]) -> np.ndarray:
    """``sum over C_in of |FFT(w)|``: ``(C_out, n // 2 + 1)`` one-sided (1D) or
    ``(C_out, n_0, n_1)`` centred two-sided (2D)."""
    if len(n) == 1:
        return np.abs(np.fft.rfft(w, n=n[0], axis=-1)).sum(axis=1)
    return np.fft.fftshift(np.abs(np.fft.fft2(w, s=n, axes=(2, 3))).sum(axis=1), axes=(1, 2))


def _panel_axes(fn: str, plt, ax, count: int, *, ncols, d: int):
    """The figure and its Axes, flat: a new grid of ``count`` panels, or the given ones."""
    if ax is None:
        ncols = ncols or math.ceil(math.sqrt(count))
        nrows = math.ceil(count / ncols)
        fig, grid = subplots(plt, nrows, ncols, squeeze=False,
                             figsize=(2.1 * ncols + (1.0 if d == 2 else 0), 2.0 * nrows + 0.6))
        return fig, list(grid.ravel())
    axs = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axs) < count:
        raise ValueError(f"{fn}: ax must hold at least {count} Axes, got {len(axs)}")
    return axs[0].figure, axs


def _draw_filter_panels(axs, panels, n: tuple[int, ...], *, hi: float):
    """One panel per ``(magnitude, title)`` on a shared scale ``0 .. hi``; the last image
    (2D) for the colourbar, ``None`` for lines (1D)."""
    im = None
    for a_, (m, title) in zip(axs, panels):
        if len(n) == 1:
            a_.plot(np.arange(m.shape[0]), m, color="C1" if title.startswith("mean") else "C0")
            a_.set_ylim(0, 1.05 * hi)
        else:
            u, v = centred_freqs(n[0]), centred_freqs(n[1])
            im = a_.imshow(m, origin="lower", extent=cell_extent(u, v), cmap="viridis",
                           vmin=0, vmax=hi, interpolation="nearest")
            a_.set_xticks([v[0], 0, v[-1]])
            a_.set_yticks([u[0], 0, u[-1]])
        a_.set_title(title, fontsize="small", fontweight="bold" if title[:4] == "mean" else None)
        a_.tick_params(labelsize="x-small")
    return im
