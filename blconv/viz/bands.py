"""The retained coefficients of a band, on the one-sided and the centred two-sided grid."""
from __future__ import annotations

import numpy as np

from ..band import Band
from ._common import axes_or_new, cell_extent, centred_freqs, pyplot, subplots

__all__ = ["plot_band"]


def _draw_mask(ax, m, rows, cols, title: str) -> None:
    """A boolean grid ``m`` as kept/discarded cells centred on the coordinates ``rows`` x
    ``cols``, with a legend beside the Axes."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator
    ax.imshow(m.astype(np.int8), origin="lower", extent=cell_extent(rows, cols),
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
    plt = pyplot(fn)
    if not isinstance(band, Band):
        raise TypeError(f"{fn}: band must be a blconv.Band, got {type(band).__name__}")
    d = len(band.fft_shape)
    if d not in (1, 2):
        raise ValueError(f"{fn}: only 1D and 2D bands can be drawn, got fft_shape "
                         f"{band.fft_shape}")
    summary = (f"keep {band.keep}: {band.retained} of {band.total} coefficients, "
               f"effective rate {band.effective_rate:.3f}")
    if d == 1:
        ax = axes_or_new(plt, ax, figsize=(8, 1.9))
        m = band.mask()
        _draw_mask(ax, m[None, :], np.array([0]), np.arange(m.shape[0]),
                   f"n = {band.fft_shape[0]}, {summary}")
        ax.set_yticks([])
        ax.set_xlabel("frequency v (one-sided)")
        return ax
    fig, axs, view = _band_axes(fn, plt, ax, view)
    if view in ("both", "one-sided"):
        _draw_one_sided(axs[0], band)
    if view in ("both", "two-sided"):
        _draw_two_sided(axs[-1], band)
    if fig is not None:
        fig.suptitle(f"Band fft_shape {band.fft_shape}, {summary}")
        return fig
    axs[0].set_title(f"{axs[0].get_title()}\neffective rate {band.effective_rate:.3f}",
                     fontsize="medium")
    return axs[0]


def _band_axes(fn: str, plt, ax, view):
    """``(figure, axes, view)`` of a 2D band: the Figure only when it holds both panels
    (``None`` for a single Axes), the view resolved from ``ax`` when not given."""
    pair = ax is not None and not hasattr(ax, "imshow")
    view = view or ("both" if ax is None or pair else "one-sided")
    if view not in ("both", "one-sided", "two-sided"):
        raise ValueError(f"{fn}: view must be 'both', 'one-sided' or 'two-sided', got {view!r}")
    if view != "both":
        if pair:
            raise ValueError(f"{fn}: view={view!r} draws one grid; pass a single Axes")
        return None, [axes_or_new(plt, ax)], view
    if ax is None:
        fig, axs = subplots(plt, 1, 2, figsize=(10, 4.6))
        return fig, axs, view
    axs = list(ax) if pair else [ax]
    if len(axs) != 2:
        raise ValueError(f"{fn}: view='both' needs ax=None or a pair of Axes, "
                         f"got {len(axs)} Axes")
    return axs[0].figure, axs, view


def _draw_one_sided(ax, band: Band) -> None:
    """The stored grid: rows ``u = 0 .. n_0 - 1`` (``u mod n_0``), columns ``0 .. n_1 // 2``."""
    m = band.mask()
    n0 = band.fft_shape[0]
    _draw_mask(ax, m, np.arange(n0), np.arange(m.shape[1]),
               f"one-sided (stored) {n0} x {m.shape[1]}: {band.retained} kept")
    ax.set_xlabel("v")
    ax.set_ylabel("row index u (u mod n_0)")


def _draw_two_sided(ax, band: Band) -> None:
    """The centred grid: the low-pass square ``|u| < k_0, |v| < k_1`` around DC."""
    n0, n1 = band.fft_shape
    u, v = centred_freqs(n0), centred_freqs(n1)
    two = (np.abs(u)[:, None] < band.keep[0]) & (np.abs(v)[None, :] < band.keep[1])
    _draw_mask(ax, two, u, v, f"two-sided (centred) {n0} x {n1}: |u| < {band.keep[0]}, "
                              f"|v| < {band.keep[1]}")
    ax.set_xlabel("frequency v")
    ax.set_ylabel("frequency u")
