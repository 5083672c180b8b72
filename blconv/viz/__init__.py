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
deviation, ``ddof=1``, as :func:`blconv.results.summarize`; a single seed
has none and gets no error bar).

The plots live in ``blconv.viz.spectra`` (data spectra and energy),
``blconv.viz.bands`` (a band's retained coefficients), ``blconv.viz.history``
(training curves) and ``blconv.viz.results`` (experiment results); this
package exports them all.
"""
from ..band import Band     # blconv.viz.Band: the type plot_band and plot_spectrum take
from .bands import plot_band
from .history import plot_history
from .results import plot_compression_accuracy, plot_noise_robustness, plot_train_test_heatmap
from .spectra import energy_curve, plot_energy, plot_filter_spectra, plot_spectrum

__all__ = ["plot_spectrum", "plot_band", "energy_curve", "plot_energy", "plot_filter_spectra",
           "plot_compression_accuracy", "plot_train_test_heatmap", "plot_history",
           "plot_noise_robustness"]
