"""blconv.viz: what each plot shows, checked against independent computations.

Oracles are explicit DFT matrices (no ``np.fft``, no ``fftshift``), the two-sided
masks of ``helpers`` and means worked out by hand from small record lists.
"""
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import blconv
from blconv import viz

from helpers import two_sided_mask

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(autouse=True)
def _no_show_and_close(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a blconv.viz function called show()")
    monkeypatch.setattr(plt, "show", refuse)
    monkeypatch.setattr(matplotlib.figure.Figure, "show", refuse)
    yield
    plt.close("all")


# --- oracles --------------------------------------------------------------------------------
def dft(n, m):
    """(n, m) matrix of the n-point DFT of a length-m input zero-padded to n."""
    return np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(m)) / n)


def spectrum_2d(x, n):
    """Two-sided spectrum of the last two axes at size n, by DFT matrices."""
    return dft(n[0], x.shape[-2]) @ x @ dft(n[1], x.shape[-1]).T


def centred(a, n):
    """Reorder the last two axes so index i holds signed frequency i - n // 2."""
    i0 = (np.arange(n[0]) - n[0] // 2) % n[0]
    i1 = (np.arange(n[1]) - n[1] // 2) % n[1]
    return a[..., i0[:, None], i1[None, :]]


def cells_of(rect):
    """Integer (u, v) centres of the grid cells covered by a Rectangle patch (x: v, y: u)."""
    x0, y0 = rect.get_xy()
    w, h = rect.get_width(), rect.get_height()
    vs = np.arange(math.ceil(x0), math.floor(x0 + w) + 1)
    us = np.arange(math.ceil(y0), math.floor(y0 + h) + 1)
    return us, vs


def one_sided_from_cells(us, vs, fft_shape):
    """One-sided positions (row u mod n0, column v) of centred cells whose v maps to 0..n1//2."""
    n0, n1 = fft_shape
    m = np.zeros((n0, n1 // 2 + 1), dtype=bool)
    for u in us:
        for v in vs:
            if v % n1 <= n1 // 2:
                m[u % n0, v % n1] = True
    return m


def energy_oracle(x, n):
    """(rate, fraction) of the nested family from full two-sided spectra."""
    d = x.ndim - 2
    full = x.astype(np.float64)
    for a in range(d):                 # n-point DFT along each spatial axis, by matrices
        F = dft(n[a], x.shape[2 + a])
        full = np.moveaxis(np.tensordot(full, F, axes=([2 + a], [1])), -1, 2 + a)
    power = np.sum(np.abs(full) ** 2, axis=(0, 1))
    halves = [m // 2 + 1 for m in n]
    H = max(halves)
    rates, fracs = [], []
    for j in range(1, H + 1):
        keep = [max(1, math.ceil(j * h / H)) for h in halves]
        inside = two_sided_mask(n, keep)
        one_sided = inside[..., : n[-1] // 2 + 1]          # the rfft columns of the same set
        rates.append(1 - one_sided.sum() / math.prod(one_sided.shape))
        fracs.append(power[inside].sum() / power.sum())
    return np.array(rates), np.array(fracs)


def shown_at(ax, x, y):
    """The image value matplotlib displays at data point (x, y) (origin and extent applied)."""
    px, py = ax.transData.transform((x, y))
    return ax.images[0].get_cursor_data(SimpleNamespace(x=px, y=py, inaxes=ax))


def line(ax, label):
    found = [ln for ln in ax.lines if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.lines]
    return found[0]


# --- matplotlib is optional -----------------------------------------------------------------
def test_import_does_not_need_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import blconv.viz as v\n"
            "try:\n    v.plot_band(v.Band.from_keep((8,), (2,)))\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "plot_band" in out and "'plot' extra" in out and "blconv[plot]" in out


# --- plot_spectrum --------------------------------------------------------------------------
BANDS_2D = [
    blconv.band_for((2, 3, 16, 16), (4, 3, 3, 3), padding=1, compress_rate=0.5),   # n = 18
    blconv.band_for((1, 1, 9, 12), (1, 1, 1, 1), compress_rate=0.75),                # odd rows
    blconv.Band.from_keep((10, 15), (3, 5)),                                         # odd cols
    blconv.Band.from_keep((8, 8), (1, 1)),                                           # DC only
]


@pytest.mark.parametrize("band", BANDS_2D, ids=["18x18-c0.5", "9x12-c0.75", "10x15", "dc"])
def test_spectrum_band_rectangle_is_the_retained_square(band):
    rng = np.random.default_rng(0)
    ax = viz.plot_spectrum(rng.standard_normal((2, 1) + band.fft_shape), band=band)
    (rect,) = ax.patches
    k0, k1 = band.keep
    assert (rect.get_width(), rect.get_height()) == (2 * k1 - 1, 2 * k0 - 1)
    us, vs = cells_of(rect)
    assert (len(us), len(vs)) == (2 * k0 - 1, 2 * k1 - 1)
    assert us.min() == -(k0 - 1) and vs.min() == -(k1 - 1)
    m = one_sided_from_cells(us, vs, band.fft_shape)
    assert m.sum() == band.retained
    np.testing.assert_array_equal(m, band.mask())


def test_spectrum_rectangle_clipped_at_rate_zero_even_n():
    band = blconv.Band.from_keep((8, 8), (5, 5))          # everything kept: 2k - 1 = 9 > 8
    ax = viz.plot_spectrum(np.ones((8, 8)), band=band)
    us, vs = cells_of(ax.patches[0])
    assert (len(us), len(vs)) == (8, 8)
    assert one_sided_from_cells(us, vs, (8, 8)).sum() == band.retained == band.total


def test_spectrum_2d_image_equals_centred_log_power():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 7, 10))
    band = blconv.Band.from_keep((9, 12), (3, 4))         # zero-padded to (9, 12)
    ax = viz.plot_spectrum(x, band=band)
    img = np.asarray(ax.images[0].get_array())
    expected = centred(np.log10(np.mean(np.abs(spectrum_2d(x, (9, 12))) ** 2, axis=(0, 1))),
                       (9, 12))
    np.testing.assert_allclose(img, expected, rtol=1e-10, atol=1e-10)
    # without a band: at the array's own size, power not logged
    ax = viz.plot_spectrum(x, log=False)
    expected = centred(np.mean(np.abs(spectrum_2d(x, (7, 10))) ** 2, axis=(0, 1)), (7, 10))
    np.testing.assert_allclose(np.asarray(ax.images[-1].get_array()), expected, rtol=1e-10)


def test_spectrum_2d_cosine_peaks_at_its_frequency():
    H, W, a, b = 12, 16, 2, 3
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    x = np.cos(2 * np.pi * (a * i / H + b * j / W))
    ax = viz.plot_spectrum(x)
    img = np.asarray(ax.images[0].get_array())
    x0, x1, y0, y1 = ax.images[0].get_extent()
    assert (x0, x1, y0, y1) == (-W // 2 - 0.5, W - W // 2 - 0.5, -H // 2 - 0.5, H - H // 2 - 0.5)
    peaks = {(int(r) - H // 2, int(c) - W // 2)                  # row index -> frequency u
             for r, c in zip(*np.nonzero(img > img.max() - 1e-9))}
    assert peaks == {(a, b), (-a, -b)}
    assert img.max() == pytest.approx(np.log10((H * W / 2) ** 2))
    # as displayed: the cell drawn at (v, u) = (b, a) holds the peak, (b, -a) does not
    ax.figure.canvas.draw()
    assert shown_at(ax, b, a) == shown_at(ax, -b, -a) == img.max()
    assert shown_at(ax, b, -a) < img.max() - 5


def test_spectrum_1d_line_and_band_span():
    n, f = 32, 5
    x = np.cos(2 * np.pi * f * np.arange(n) / n)
    ax = viz.plot_spectrum(x)
    ln = line(ax, "mean power")
    np.testing.assert_array_equal(ln.get_xdata(), np.arange(n // 2 + 1))
    assert int(np.argmax(ln.get_ydata())) == f
    assert ln.get_ydata()[f] == pytest.approx(np.log10((n / 2) ** 2))
    # a batch, zero-padded by the band; independent DFT; the span ends at keep - 1/2
    rng = np.random.default_rng(2)
    xb = rng.standard_normal((4, 3, 20))
    band = blconv.band_for(xb.shape, (2, 3, 5), padding=2, compress_rate=0.6)
    ax = viz.plot_spectrum(xb, band=band)
    n = band.fft_shape[0]
    power = np.mean(np.abs(xb @ dft(n, 20).T) ** 2, axis=(0, 1))[: n // 2 + 1]
    np.testing.assert_allclose(line(ax, "mean power").get_ydata(), np.log10(power), rtol=1e-10)
    (span,) = ax.patches
    xs = ax.transData.inverted().transform(span.get_verts())[:, 0]
    assert (xs.min(), xs.max()) == pytest.approx((-0.5, band.keep[0] - 0.5))


def test_spectrum_accepts_other_array_libraries(backend):
    x = np.random.default_rng(3).standard_normal((2, 2, 6, 8))
    band = blconv.Band.from_keep((8, 8), (3, 3))
    ref = np.asarray(viz.plot_spectrum(x, band=band).images[0].get_array())
    got = np.asarray(viz.plot_spectrum(backend.asarray(x), band=band).images[0].get_array())
    np.testing.assert_allclose(got, ref, rtol=1e-12)


@pytest.mark.parametrize("args, kw, err, match", [
    (("not an array",), {}, TypeError, "a must be an array"),
    ((np.ones((4, 4)) + 1j,), {}, TypeError, "real"),
    ((np.ones((4, 4)),), dict(band=(4, 4)), TypeError, "band must be"),
    ((np.ones((1, 1, 1, 4, 4)),), {}, ValueError, "spatial_dims"),
    ((np.ones((4, 10)),), dict(band=blconv.Band.from_keep((8, 8), (2, 2))), ValueError,
     "axis 1 must be >= the input length 10"),
], ids=["str", "complex", "band-type", "5d", "band-too-small"])
def test_spectrum_bad_input(args, kw, err, match):
    with pytest.raises(err, match=match):
        viz.plot_spectrum(*args, **kw)


# --- plot_band ------------------------------------------------------------------------------
@pytest.mark.parametrize("band", BANDS_2D + [blconv.Band.from_keep((8, 8), (5, 5))],
                         ids=["18x18-c0.5", "9x12-c0.75", "10x15", "dc", "full"])
def test_band_2d_marks_exactly_the_retained_cells(band):
    fig = viz.plot_band(band)
    one, two = fig.axes[0].images[0], fig.axes[1].images[0]
    m = np.asarray(one.get_array())
    assert m.shape == band.spectrum_shape
    assert int(m.sum()) == band.retained
    np.testing.assert_array_equal(m.astype(bool), band.mask())
    c = np.asarray(two.get_array())
    np.testing.assert_array_equal(c.astype(bool), centred(two_sided_mask(band.fft_shape,
                                                                         band.keep),
                                                          band.fft_shape))
    assert f"{band.effective_rate:.3f}" in fig._suptitle.get_text()
    fig.canvas.draw()               # as displayed: row u of the one-sided grid at height u
    n0, half = band.spectrum_shape
    for u in sorted({0, 1, n0 // 2, n0 - 1}):
        for v in sorted({0, half // 2, half - 1}):
            assert shown_at(fig.axes[0], v, u) == band.mask()[u, v]


def test_band_1d_strip_and_single_axes():
    band = blconv.band_for((1, 1, 30), (1, 1, 3), padding=1, compress_rate=0.5)
    ax = viz.plot_band(band)
    strip = np.asarray(ax.images[0].get_array())
    assert strip.shape == (1, band.total) and int(strip.sum()) == band.retained == band.keep[0]
    assert f"{band.effective_rate:.3f}" in ax.get_title()
    b2 = blconv.Band.from_keep((12, 12), (3, 4))
    fig, (a, b) = plt.subplots(1, 2)
    assert viz.plot_band(b2, ax=(a, b)) is fig
    assert int(np.asarray(a.images[0].get_array()).sum()) == b2.retained
    single = viz.plot_band(b2, ax=plt.figure().add_subplot())
    assert int(np.asarray(single.images[0].get_array()).sum()) == b2.retained
    assert f"{b2.effective_rate:.3f}" in single.get_title()
    two = viz.plot_band(b2, ax=plt.figure().add_subplot(), view="two-sided")
    assert int(np.asarray(two.images[0].get_array()).sum()) == (2 * 3 - 1) * (2 * 4 - 1)


def test_band_bad_input():
    with pytest.raises(TypeError, match="band must be a blconv.Band"):
        viz.plot_band((8, 8))
    with pytest.raises(ValueError, match="view must be"):
        viz.plot_band(blconv.Band.from_keep((8, 8), (2, 2)), view="three")
    with pytest.raises(ValueError, match="only 1D and 2D"):
        viz.plot_band(blconv.Band.from_keep((4, 4, 4), (2, 2, 2)))


# --- plot_energy ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, fft_shape", [
    ((3, 2, 16, 16), None), ((2, 3, 9, 14), (12, 15)), ((4, 2, 40), None), ((2, 1, 33), 48),
], ids=["2d-even", "2d-padded-odd", "1d", "1d-padded"])
def test_energy_line_equals_full_fft_parseval(shape, fft_shape):
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.standard_normal(shape), axis=-1)          # low-frequency heavy
    ax = viz.plot_energy(x, fft_shape=fft_shape)
    ln = line(ax, "energy")
    n = shape[2:] if fft_shape is None else ((fft_shape,) if np.isscalar(fft_shape)
                                              else fft_shape)
    rate, frac = energy_oracle(x, n)
    np.testing.assert_allclose(ln.get_xdata(), rate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ln.get_ydata(), frac, rtol=1e-10)
    assert np.all(np.diff(ln.get_ydata()) >= -1e-12) and np.all(np.diff(ln.get_xdata()) < 0)
    assert ln.get_xdata()[-1] == 0 and ln.get_ydata()[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("energy", [0.5, 0.8, 0.95, 0.999])
def test_energy_curve_is_what_preserve_energy_reads(energy):
    rng = np.random.default_rng(5)
    x = np.cumsum(np.cumsum(rng.standard_normal((4, 3, 14, 14)), axis=-1), axis=-2)
    w = rng.standard_normal((2, 3, 3, 3))
    _, ctx = blconv.conv2d_forward(x, w, padding=1, preserve_energy=energy)
    _, frac, bands = viz.energy_curve(x, fft_shape=ctx.band.fft_shape)
    first = int(np.argmax(frac >= energy))                    # the highest rate reaching E
    assert bands[first].keep == ctx.band.keep
    ax = viz.plot_energy(x, fft_shape=ctx.band.fft_shape)
    np.testing.assert_array_equal(line(ax, "energy").get_ydata(), frac)


def test_energy_accepts_other_array_libraries(backend):
    x = np.random.default_rng(6).standard_normal((2, 2, 10))
    ref = line(viz.plot_energy(x), "energy").get_ydata()
    got = line(viz.plot_energy(backend.asarray(x)), "energy").get_ydata()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_energy_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, L\) or \(N, C, H, W\)"):
        viz.plot_energy(np.ones((4, 4)))
    with pytest.raises(ValueError, match="no spectral energy"):
        viz.plot_energy(np.zeros((1, 1, 8)))
    with pytest.raises(ValueError, match="fft_shape along spatial axis 0 must be >= the input"):
        viz.plot_energy(np.ones((1, 1, 8)), fft_shape=4)


# --- plot_filter_spectra --------------------------------------------------------------------
def test_filter_spectra_2d_panels_and_mean():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 3, 3, 3))
    fig = viz.plot_filter_spectra(w, max_filters=4, fft_size=(8, 10))
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 5
    mag = centred(np.abs(spectrum_2d(w, (8, 10))).sum(axis=1), (8, 10))  # (C_out, 8, 10)
    for o in range(4):
        np.testing.assert_allclose(np.asarray(panels[o].images[0].get_array()), mag[o],
                                   rtol=1e-10)
    np.testing.assert_allclose(np.asarray(panels[4].images[0].get_array()), mag.mean(axis=0),
                               rtol=1e-10)
    assert "mean of 6" in panels[4].get_title()


def test_filter_spectra_of_a_layer_and_low_pass_filters():
    from blconv.nn import Conv1d
    layer = Conv1d(2, 3, 5, rng=0)
    fig = viz.plot_filter_spectra(layer)
    w = np.asarray(layer.params["w"], dtype=np.float64)
    mag = np.abs(w @ dft(16, 5).T).sum(axis=1)[:, :9]           # default fft_size 16
    lines = [a.lines[0] for a in fig.axes if a.lines]
    assert len(lines) == 4
    for o in range(3):
        np.testing.assert_allclose(lines[o].get_ydata(), mag[o], rtol=1e-6)
    # box filters are low-pass: the mean spectrum peaks at DC, the centre cell
    box = np.ones((4, 2, 5, 5))
    fig = viz.plot_filter_spectra(box, fft_size=16)
    mean = np.asarray([a for a in fig.axes if a.images][-1].images[0].get_array())
    assert np.unravel_index(np.argmax(mean), mean.shape) == (8, 8)


def test_filter_spectra_bad_input():
    with pytest.raises(ValueError, match=r"\(C_out, C_in, k\)"):
        viz.plot_filter_spectra(np.ones((3, 3)))
    with pytest.raises(ValueError, match="fft_size along spatial axis 0 must be >= the input length 5"):
        viz.plot_filter_spectra(np.ones((2, 1, 5)), fft_size=4)
    with pytest.raises(TypeError, match="weights must be an array"):
        viz.plot_filter_spectra(object())
    with pytest.raises(ValueError, match="max_filters"):
        viz.plot_filter_spectra(np.ones((2, 1, 3)), max_filters=0)


# --- experiment records ---------------------------------------------------------------------
def rec(ds, seed, train, test, acc, energy=None, eff=None, model="m"):
    return dict(dataset=ds, model=model, seed=seed, train_compress_rate=train,
                train_preserve_energy=energy, test_compress_rate=test, test_accuracy=acc,
                effective_rate=test if eff is None else eff)


RECORDS = [
    rec("A", 0, 0.0, 0.0, 0.90), rec("A", 1, 0.0, 0.0, 0.80),       # A, 0.0: 85 +- 5 sqrt(2)
    rec("A", 0, 0.5, 0.5, 0.70), rec("A", 1, 0.5, 0.5, 0.76),       # A, 0.5: 73 +- 3 sqrt(2)
    rec("A", 0, 0.0, 0.5, 0.40), rec("A", 1, 0.0, 0.5, 0.50),       # tested elsewhere: 45
    rec("A", 0, 0.5, 0.0, 0.60),                                    # one seed: 60
    rec("B", 0, 0.25, 0.25, 0.99), rec("B", 1, 0.25, 0.25, 0.97),   # B, 0.25: 98 +- 1
    rec("B", 0, 0.0, 0.0, 1.00),                                    # B, 0.0: 100
    rec("A", 0, 0.0, 0.0, 0.88, energy=0.9, eff=0.6),               # energy runs of A: 87
    rec("A", 1, 0.0, 0.0, 0.86, energy=0.9, eff=0.4),
]


def test_compression_accuracy_lines_are_hand_means():
    ax = viz.plot_compression_accuracy(
        RECORDS, reference={"paper": {0.5: 92.32, 0.0: 93.69}})
    a = line(ax, "A (m)")
    np.testing.assert_allclose(a.get_xdata(), [0.0, 0.5])
    np.testing.assert_allclose(a.get_ydata(), [85.0, 73.0])
    b = line(ax, "B (m)")
    np.testing.assert_allclose(b.get_xdata(), [0.0, 0.25])
    np.testing.assert_allclose(b.get_ydata(), [100.0, 98.0])
    e = line(ax, "A (m), E = 0.9")
    np.testing.assert_allclose([e.get_xdata()[0], e.get_ydata()[0]], [0.5, 87.0])
    ref = line(ax, "paper")
    np.testing.assert_allclose(ref.get_xdata(), [0.0, 0.5])
    np.testing.assert_allclose(ref.get_ydata(), [93.69, 92.32])
    # A's error bars: the segments (x, mean -+ sample std): two seeds d apart have
    # sample std d / sqrt(2) (the population std would be d / 2)
    segs = [np.asarray(s) for c in ax.collections for s in c.get_segments()]
    sd0, sd5 = 10 / np.sqrt(2), 6 / np.sqrt(2)
    assert any(np.allclose(s, [[0.0, 85 - sd0], [0.0, 85 + sd0]]) for s in segs)
    assert any(np.allclose(s, [[0.5, 73 - sd5], [0.5, 73 + sd5]]) for s in segs)
    assert ax.get_legend() is not None and ax.get_ylabel() == "test accuracy (%)"


def test_compression_accuracy_dataset_filter_and_dataframe_like():
    class Frame:   # the two members of a pandas DataFrame the function reads
        columns = tuple(RECORDS[0])

        def to_dict(self, orient):
            assert orient == "records"
            return [dict(r) for r in RECORDS]

    ax = viz.plot_compression_accuracy(Frame(), dataset="B")
    assert [ln.get_label() for ln in ax.lines] == ["B (m)"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [100.0, 98.0])


def test_compression_accuracy_from_pandas():
    pd = pytest.importorskip("pandas")
    ax = viz.plot_compression_accuracy(pd.DataFrame(RECORDS), dataset="A")
    np.testing.assert_allclose(line(ax, "A (m)").get_ydata(), [85.0, 73.0])
    np.testing.assert_allclose(line(ax, "A (m), E = 0.9").get_ydata(), [87.0])


@pytest.mark.parametrize("results, kw, err, match", [
    ([{k: v for k, v in RECORDS[0].items() if k != "test_accuracy"}], {}, ValueError,
     "results\\[0\\] has no key 'test_accuracy'"),
    ({"dataset": "A"}, {}, TypeError, "list of dicts"),
    ([1, 2], {}, TypeError, "results\\[0\\] must be a dict"),
    ([], {}, ValueError, "empty"),
    (RECORDS, dict(dataset="C"), ValueError, "dataset \\['C'\\] not in the results"),
    ([rec("A", 0, 0.0, 0.5, 0.4)], {}, ValueError, "test_compress_rate == train_compress_rate"),
    (RECORDS, dict(reference={"x": 1}), TypeError, "reference must be"),
], ids=["missing-key", "dict", "not-dicts", "empty", "unknown-dataset", "no-diagonal", "ref"])
def test_compression_accuracy_bad_input(results, kw, err, match):
    with pytest.raises(err, match=match):
        viz.plot_compression_accuracy(results, **kw)


def test_heatmap_is_the_hand_means():
    ax = viz.plot_train_test_heatmap(RECORDS, dataset="A")
    img = ax.images[0].get_array()
    expected = np.array([[85.0, 45.0], [60.0, 73.0], [87.0, np.nan]])   # rows 0.0, 0.5, E=0.9
    np.testing.assert_allclose(np.ma.filled(img.astype(float), np.nan), expected)
    assert img.mask[2, 1] and not img.mask[:2].any()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "0.5", "E = 0.9"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.5"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["85.0", "45.0", "60.0", "73.0",
                                                             "87.0"])
    assert ax.get_xlabel() == "test compress rate"


def test_heatmap_needs_one_dataset():
    with pytest.raises(ValueError, match="several datasets .* dataset="):
        viz.plot_train_test_heatmap(RECORDS)
    with pytest.raises(ValueError, match="no key 'test_compress_rate'"):
        viz.plot_train_test_heatmap([{k: v for k, v in RECORDS[0].items()
                                      if k != "test_compress_rate"}])


def test_history_lines_are_the_values_passed():
    h = {"loss": [1.0, 0.6, 0.5], "accuracy": [0.4, 0.7, 0.8], "val_loss": [0.9, None, 0.55],
         "val_accuracy": [0.5, None, 0.75], "lr": [0.1, 0.1, 0.01]}
    fig = viz.plot_history(h)
    loss_ax, acc_ax = fig.axes
    np.testing.assert_array_equal(line(loss_ax, "train loss").get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line(loss_ax, "train loss").get_ydata(), h["loss"])
    np.testing.assert_array_equal(line(loss_ax, "validation loss").get_ydata(),
                                  [0.9, np.nan, 0.55])
    np.testing.assert_array_equal(line(acc_ax, "train accuracy").get_ydata(), h["accuracy"])
    np.testing.assert_array_equal(line(acc_ax, "validation accuracy").get_ydata(),
                                  [0.5, np.nan, 0.75])


def test_history_object_and_twin_axes():
    from blconv.train import History
    h = History(loss=[0.7, 0.3], accuracy=[0.6, 0.9], val_loss=[None, None],
                val_accuracy=[None, None], lr=[0.1, 0.1], epoch_seconds=[1.0, 1.0],
                effective_rate=[[0.0], [0.0]])
    ax = plt.figure().add_subplot()
    assert viz.plot_history(h, ax=ax) is ax
    np.testing.assert_array_equal(line(ax, "train loss").get_ydata(), [0.7, 0.3])
    twin = [a for a in ax.figure.axes if a is not ax]
    assert len(twin) == 1
    np.testing.assert_array_equal(line(twin[0], "train accuracy").get_ydata(), [0.6, 0.9])
    assert not [ln for ln in ax.lines + twin[0].lines if "validation" in ln.get_label()]


@pytest.mark.parametrize("h, err, match", [
    ({"loss": [1.0]}, ValueError, "no key 'accuracy'"),
    ({"loss": [1.0, 0.5], "accuracy": [0.5]}, ValueError, "history\\['accuracy'\\] has 1"),
    ([1.0], TypeError, "history must be a dict"),
], ids=["missing", "lengths", "list"])
def test_history_bad_input(h, err, match):
    with pytest.raises(err, match=match):
        viz.plot_history(h)


def test_noise_robustness_lines_are_hand_means():
    recs = [dict(noise_sigma=s, train_compress_rate=c, seed=k, test_accuracy=a)
            for s, c, k, a in [(0.0, 0.0, 0, 0.90), (0.0, 0.0, 1, 0.92), (0.2, 0.0, 0, 0.70),
                               (0.2, 0.0, 1, 0.60), (0.0, 0.5, 0, 0.88), (0.2, 0.5, 0, 0.80),
                               (0.1, 0.5, 0, 0.84)]]
    recs.append(dict(noise_sigma=0.0, train_compress_rate=0.5, test_compress_rate=0.0,
                     test_accuracy=0.1))                          # tested elsewhere: left out
    ax = viz.plot_noise_robustness(recs)
    a = line(ax, "train rate 0")
    np.testing.assert_allclose(a.get_xdata(), [0.0, 0.2])
    np.testing.assert_allclose(a.get_ydata(), [91.0, 65.0])
    b = line(ax, "train rate 0.5")
    np.testing.assert_allclose(b.get_xdata(), [0.0, 0.1, 0.2])
    np.testing.assert_allclose(b.get_ydata(), [88.0, 84.0, 80.0])
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="no key 'noise_sigma'"):
        viz.plot_noise_robustness([dict(train_compress_rate=0.0, test_accuracy=0.5)])
