"""Tests of blconv.data: shipped data, parsers, CIFAR-10 binary, frequency task, utilities."""
import dataclasses
import doctest
import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

import blconv.data as bd
from blconv.data import (Dataset, batches, frequency_task_bins, list_ucr, load_cifar10,
                         load_digits, load_ucr, make_frequency_task, shuffle, standardize,
                         train_test_split, znorm)

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "blconv" / "data" / "files"

# Published by the UCR archive (Dau et al. 2018): train, test, length, classes.
UCR_FACTS = {
    "GunPoint": (50, 150, 150, 2),
    "ItalyPowerDemand": (67, 1029, 24, 2),
    "ArrowHead": (36, 175, 251, 3),
    "OSULeaf": (200, 242, 427, 6),
}


@pytest.fixture(scope="module")
def ucr():
    return {name: load_ucr(name) for name in UCR_FACTS}


# ---------------------------------------------------------------- shipped UCR data

def test_list_ucr_names_the_shipped_datasets():
    assert list_ucr() == sorted(UCR_FACTS)


@pytest.mark.parametrize("name", sorted(UCR_FACTS))
def test_shipped_ucr_matches_published_counts(ucr, name):
    n_train, n_test, length, k = UCR_FACTS[name]
    train, test = ucr[name]
    assert train.x.shape == (n_train, 1, length)
    assert test.x.shape == (n_test, 1, length)
    for ds in (train, test):
        assert ds.x.dtype == np.float64 and ds.y.dtype == np.int64
        assert ds.name == name and ds.n_classes == k
        assert np.isfinite(ds.x).all()
    assert train.classes == test.classes
    # every class occurs in both splits, labels are exactly 0..K-1
    assert set(train.y.tolist()) == set(test.y.tolist()) == set(range(k))


@pytest.mark.parametrize("name", sorted(UCR_FACTS))
def test_shipped_ucr_is_znormalised_like_the_archive(ucr, name):
    # the archive z-normalises each series with the sample std (ddof=1)
    for ds in ucr[name]:
        np.testing.assert_allclose(znorm(ds).x, ds.x, atol=1e-6)


def test_ucr_split_argument_and_label_mapping(ucr):
    train, test = ucr["GunPoint"]
    one = load_ucr("GunPoint", split="train")
    np.testing.assert_array_equal(one.x, train.x)
    np.testing.assert_array_equal(load_ucr("GunPoint", split="test").y, test.y)
    assert train.classes == ("1", "2")
    # the first GunPoint training series is class "2" in the archive file
    assert train.classes[train.y[0]] == "2"
    assert train.x[0, 0, 0] == pytest.approx(-0.6478854)
    assert ucr["ArrowHead"][0].classes == ("0", "1", "2")


def test_shipped_files_match_checksums_in_docs():
    doc = (ROOT / "docs" / "data.md").read_text()
    listed = dict(re.findall(r"`([\w.]+\.gz)`[^\n]*?`([0-9a-f]{64})`", doc))
    shipped = sorted(p.name for p in FILES.iterdir())
    assert sorted(listed) == shipped
    for name, digest in listed.items():
        assert hashlib.sha256((FILES / name).read_bytes()).hexdigest() == digest, name


def test_unknown_dataset_lists_shipped_names():
    with pytest.raises(ValueError, match=r"load_ucr: unknown dataset 'Foo'; shipped: "
                                         r"ArrowHead, GunPoint, ItalyPowerDemand, OSULeaf"):
        load_ucr("Foo")


def test_bad_arguments():
    with pytest.raises(ValueError, match="load_ucr: split must be None, 'train' or 'test', "
                                         "got 'valid'"):
        load_ucr("GunPoint", split="valid")
    with pytest.raises(TypeError, match="load_ucr: name must be a non-empty str"):
        load_ucr(3)


# ---------------------------------------------------------------- hand-written files

TSV_TRAIN = "1\t0.5\t-1\t2e-1\n10\t1\t2\t3\n-1\t4\t5\t6.25\n\n2.0\t7\t8\t9\n"
TSV_TEST = "-1\t1\t1\t1\n3\t0\t0\t0\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_tsv_parsed_to_known_arrays(tmp_path):
    _write(tmp_path / "Toy" / "Toy_TRAIN.tsv", TSV_TRAIN)
    _write(tmp_path / "Toy" / "Toy_TEST.tsv", TSV_TEST)
    train, test = load_ucr("Toy", path=tmp_path)
    # sorted numerically over train and test labels; "2.0" is label "2"
    assert train.classes == test.classes == ("-1", "1", "2", "3", "10")
    np.testing.assert_array_equal(train.x, [[[0.5, -1, 0.2]], [[1, 2, 3]], [[4, 5, 6.25]],
                                            [[7, 8, 9]]])
    assert train.y.tolist() == [1, 4, 0, 2]
    assert test.y.tolist() == [0, 3]
    np.testing.assert_array_equal(test.x, [[[1, 1, 1]], [[0, 0, 0]]])
    assert train.x.dtype == np.float64 and train.y.dtype == np.int64


TS_UNI = """# a comment
@problemName Toy
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 3
@classLabel true b a
@data
1,2,3:b

-1.5,0,2e2:a
"""
TS_MULTI = """@problemName Multi
@univariate false
@dimensions 2
@classLabel true x y
@data
1,2,3,4:5,6,7,8:y
0,0,0,0:1,1,1,1:x
"""


def test_ts_univariate_parsed_to_known_arrays(tmp_path):
    _write(tmp_path / "Toy_TRAIN.ts", TS_UNI)  # files directly in path
    _write(tmp_path / "Toy_TEST.ts", TS_UNI.replace("1,2,3:b", "9,9,9:a"))
    train, test = load_ucr("Toy", path=str(tmp_path))
    assert train.classes == ("a", "b")
    np.testing.assert_array_equal(train.x, [[[1, 2, 3]], [[-1.5, 0, 200]]])
    assert train.y.tolist() == [1, 0] and test.y.tolist() == [0, 0]
    np.testing.assert_array_equal(test.x[0], [[9, 9, 9]])


def test_ts_multivariate_and_gzip(tmp_path):
    _write(tmp_path / "Multi" / "Multi_TRAIN.ts.gz", TS_MULTI)
    _write(tmp_path / "Multi" / "Multi_TEST.ts.gz", TS_MULTI)
    train = load_ucr("Multi", path=tmp_path, split="train")
    assert train.x.shape == (2, 2, 4)
    np.testing.assert_array_equal(train.x[0], [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert train.classes == ("x", "y") and train.y.tolist() == [1, 0]


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "Nope"))):
        load_ucr("Nope", path=tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_ucr("Nope", path=tmp_path / "absent")
    _write(tmp_path / "Half" / "Half_TRAIN.tsv", TSV_TRAIN)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "Half" /
                                                              "Half_TEST.tsv"))):
        load_ucr("Half", path=tmp_path)


MALFORMED = [
    # (suffix, train file text, line, message)
    (".tsv", "1\t1\t2\n1\t3\t4\n2\t5\n", 3, r"expected 3 tab-separated columns .*got 2"),
    (".tsv", "1\t1\t2\n2\t3\tx7\n", 2, r"value 2 is not a number: 'x7'"),
    (".tsv", "1\t1\t2\t3\n2\tNaN\tNaN\tNaN\n", 2, r"no value is present \(all 3 missing\)"),
    (".tsv", "1\t1\t2\n2\t3\tinf\n", 2, r"value 2 is not finite"),
    (".tsv", "1\t1\t2\n\n2,3,4\n", 3, r"separated by tabs.*comma-separated"),
    (".tsv", "1\t1\t2\n \t3\t4\n", 2, r"empty class label"),
    (".ts", "@classLabel true 1 2\n@data\n1,2,3:1\n1,2,3:7\n", 4,
     r"unknown class label '7'; @classLabel declares 1, 2"),
    (".ts", "@classLabel true 1 2\n@data\n1,2,3:1\n1,b,3:2\n", 4, r"value 2 is not a number: 'b'"),
    (".ts", "@classLabel true 1 2\n@data\n?,?,?:1\n", 3, r"no value is present"),
    (".ts", "@classLabel true 1 2\n1,2,3:1\n@data\n", 2, r"expected an @-header line or @data"),
    (".ts", "@classLabel true 1 2\n@data\n1,2:3,4:1\n1,2:2\n", 4,
     r"expected 2 channel\(s\) \(as on line 3\), got 1"),
    (".ts", "@seriesLength 4\n@classLabel true 1 2\n@data\n1,2,3:1\n", 1,
     r"@seriesLength says 4 but the series have 3"),
    (".ts", "@timeStamps true\n@classLabel true 1\n@data\n", 1, r"not supported"),
    (".ts", "@classLabel false\n@data\n", 1, r"only classification files"),
    (".ts", "@classLabel true 1 2\n@data\n1,2,3\n", 3, r"got no ':'"),
    (".ts", "@univariate true\n@classLabel true 1\n@data\n1,2:3,4:1\n", 1,
     r"@univariate true but the series have 2 channels"),
    (".ts", "@classLabel true 1\n@dimensions two\n", 2, r"expected an integer after @dimensions"),
    (".ts", "@dimensions 3\n@classLabel true 1\n@data\n1,2:3,4:1\n", 1,
     r"@dimensions says 3 but the series have 2"),
]


@pytest.mark.parametrize("suffix, text, line, message", MALFORMED)
def test_malformed_file_names_file_and_line(tmp_path, suffix, text, line, message):
    bad = _write(tmp_path / "Bad" / f"Bad_TRAIN{suffix}", text)
    good = "@classLabel true 1 2\n@data\n1,2,3:1\n" if suffix == ".ts" else "1\t1\t2\n"
    _write(tmp_path / "Bad" / f"Bad_TEST{suffix}", good)
    pattern = rf"^load_ucr: {re.escape(str(bad))}: line {line}: .*{message}"
    with pytest.raises(ValueError, match=pattern):
        load_ucr("Bad", path=tmp_path)


@pytest.mark.parametrize("suffix, text, message", [
    (".tsv", "\n\n", "contains no series"),
    (".ts", "@classLabel true 1\n", "no @data line"),
    (".ts", "@classLabel true 1\n@data\n", "contains no series"),
])
def test_empty_file_names_file(tmp_path, suffix, text, message):
    bad = _write(tmp_path / f"E_TRAIN{suffix}", text)
    _write(tmp_path / f"E_TEST{suffix}", text)
    with pytest.raises(ValueError, match=rf"^load_ucr: {re.escape(str(bad))}: {message}"):
        load_ucr("E", path=tmp_path)


def test_train_test_channel_mismatch(tmp_path):
    _write(tmp_path / "M_TRAIN.ts", "@classLabel true 1\n@data\n1,2:3,4:1\n")
    _write(tmp_path / "M_TEST.ts", "@classLabel true 1\n@data\n1,2:1\n")
    with pytest.raises(ValueError, match=r"M_TRAIN.ts have 2 channel\(s\) but test series "
                                         r"in .*M_TEST.ts have 1"):
        load_ucr("M", path=tmp_path)


def test_missing_values_are_interpolated(tmp_path, caplog):
    """Inside a series: linear between the neighbours; before the first present value its
    value, after the last the last's (.ts, where NaN is never padding)."""
    _write(tmp_path / "G_TRAIN.ts", "@classLabel true 1 2\n@data\n"
           "1,?,?,7,9:1\n?,2,NaN,6,?:2\n")
    _write(tmp_path / "G_TEST.ts", "@classLabel true 1 2\n@data\n0,0,0,0,0:1\n")
    with caplog.at_level("INFO", logger="blconv.data"):
        train, test = load_ucr("G", path=tmp_path)
    np.testing.assert_array_equal(train.x[:, 0], [[1, 3, 5, 7, 9], [2, 2, 4, 6, 6]])
    np.testing.assert_array_equal(test.x[:, 0], [[0, 0, 0, 0, 0]])
    assert "G: 5 missing value(s) interpolated, 0 series channel(s) resampled to length 5" \
        in caplog.text


def test_unequal_lengths_are_resampled_to_the_longest(tmp_path):
    """Trailing NaN in a .tsv row is padding: the series is shorter.  Shorter series are
    resampled linearly over their own span to the dataset's longest length (train and
    test together); a missing value inside is interpolated first."""
    _write(tmp_path / "U_TRAIN.tsv", "1\t0\t1\t2\t3\t4\n2\t0\tNaN\t4\tNaN\tNaN\n")
    _write(tmp_path / "U_TEST.tsv", "1\t5\t7\tNaN\tNaN\tNaN\n2\t3\tNaN\tNaN\tNaN\tNaN\n")
    train, test = load_ucr("U", path=tmp_path)
    assert train.x.shape == (2, 1, 5) and test.x.shape == (2, 1, 5)
    # [0, (2), 4] -> 5 points over [0, 2]: 0, 1, 2, 3, 4; [5, 7] -> 5, 5.5, 6, 6.5, 7
    np.testing.assert_allclose(train.x[:, 0], [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    np.testing.assert_allclose(test.x[:, 0], [[5, 5.5, 6, 6.5, 7], [3, 3, 3, 3, 3]])


def test_variable_length_ts_channels_are_resampled(tmp_path):
    _write(tmp_path / "V_TRAIN.ts", "@equalLength false\n@classLabel true 1\n@data\n"
           "0,2:1,2,3:1\n")
    _write(tmp_path / "V_TEST.ts", "@equalLength false\n@classLabel true 1\n@data\n"
           "1,1,1:4,4,4:1\n")
    train, test = load_ucr("V", path=tmp_path)
    np.testing.assert_allclose(train.x[0], [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_allclose(test.x[0], [[1, 1, 1], [4, 4, 4]])


# ---------------------------------------------------------------- digits

def test_digits_shape_values_and_first_record():
    ds = load_digits()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float64
    assert ds.y.dtype == np.int64 and ds.classes == tuple("0123456789")
    assert ds.x.min() == 0 and ds.x.max() == 16 and (ds.x == np.round(ds.x)).all()
    counts = np.bincount(ds.y, minlength=10)
    assert counts.sum() == 1797 and (counts >= 174).all()  # 174..183 per digit
    # first record of the file: a zero
    assert ds.y[0] == 0
    assert ds.x[0, 0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    assert ds.x[0, 0, 1].tolist() == [0, 0, 13, 15, 10, 15, 5, 0]


def test_train_test_split_is_stratified_disjoint_and_seeded():
    ds = load_digits()
    train, test = train_test_split(ds, 0.25, seed=0)
    assert len(train) + len(test) == len(ds)
    rows = {r.tobytes() for r in ds.x}
    assert len({r.tobytes() for r in train.x} | {r.tobytes() for r in test.x}) == len(rows)
    for k in range(10):
        n_k = int((ds.y == k).sum())
        assert (test.y == k).sum() == np.floor(0.25 * n_k + 0.5)
    again = train_test_split(ds, 0.25, seed=0)[1]
    np.testing.assert_array_equal(again.x, test.x)
    assert not np.array_equal(train_test_split(ds, 0.25, seed=1)[1].x, test.x)
    plain = train_test_split(ds, 0.1, seed=3, stratify=False)[1]
    assert len(plain) == round(0.1 * 1797)
    for bad in (0, 1, 1.5, -0.1, True):
        with pytest.raises(ValueError, match=r"train_test_split: test_fraction must be a "
                                             r"number in \(0, 1\)"):
            train_test_split(ds, bad)


def test_split_that_leaves_an_empty_set_is_an_error():
    tiny = Dataset(np.zeros((2, 1, 1)), np.array([0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="empty test set"):
        train_test_split(tiny, 0.2)


# ---------------------------------------------------------------- CIFAR-10 binary

def _cifar_records(n, start):
    labels = (np.arange(n) + start) % 10
    pix = (np.arange(3072)[None, :] * 7 + np.arange(n)[:, None] * 31 + start) % 256
    raw = np.concatenate([labels[:, None], pix], axis=1).astype(np.uint8)
    return raw, labels, pix.reshape(n, 3, 32, 32) / 255.0


def _write_cifar(folder: Path):
    folder.mkdir(parents=True)
    expect = {}
    for i, name in enumerate([f"data_batch_{j}.bin" for j in range(1, 6)] + ["test_batch.bin"]):
        raw, labels, x = _cifar_records(2 + i % 2, start=10 * i)
        (folder / name).write_bytes(raw.tobytes())
        expect[name] = (labels, x)
    return expect


def test_cifar10_binary_round_trip(tmp_path):
    expect = _write_cifar(tmp_path / "cifar-10-batches-bin")
    train, test = load_cifar10(tmp_path)  # the parent directory
    ys = np.concatenate([expect[f"data_batch_{j}.bin"][0] for j in range(1, 6)])
    xs = np.concatenate([expect[f"data_batch_{j}.bin"][1] for j in range(1, 6)])
    assert train.x.shape == (len(ys), 3, 32, 32) and train.x.dtype == np.float32
    np.testing.assert_array_equal(train.y, ys)
    np.testing.assert_allclose(train.x, xs, rtol=1e-6)
    # channel-major: pixel (c, h, w) is byte 1 + 1024 c + 32 h + w of the record
    assert train.x[0, 2, 1, 3] == np.float32(((1024 * 2 + 32 + 3) * 7) % 256 / 255)
    assert test.classes[3] == "cat" and len(test.classes) == 10
    test64 = load_cifar10(tmp_path / "cifar-10-batches-bin", split="test", dtype=np.float64)
    np.testing.assert_array_equal(test64.x, expect["test_batch.bin"][1])
    np.testing.assert_array_equal(test64.y, expect["test_batch.bin"][0])
    assert 0 <= train.x.min() and train.x.max() <= 1


def test_cifar10_errors(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write_cifar(folder)
    with (folder / "data_batch_3.bin").open("ab") as f:
        f.write(b"\x00" * 5)
    with pytest.raises(ValueError, match=r"load_cifar10: .*data_batch_3\.bin: size 6151 bytes "
                                         r"is not a positive multiple of 3073"):
        load_cifar10(folder, split="train")
    load_cifar10(folder, split="test")  # only the test file is read
    raw = bytearray((folder / "test_batch.bin").read_bytes())
    raw[3073] = 12  # label byte of record 1
    (folder / "test_batch.bin").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"test_batch\.bin: record 1 .*label byte 12; "
                                         r"expected 0\.\.9"):
        load_cifar10(folder, split="test")
    (folder / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(folder / "test_batch.bin"))):
        load_cifar10(folder, split="test")
    with pytest.raises(TypeError, match="load_cifar10: dtype must be float32 or float64"):
        load_cifar10(folder, dtype=np.int32)


# ---------------------------------------------------------------- frequency task

def _lowpass(x, keep=0.25):
    """Keep only the lowest ``keep`` fraction of the one-sided spectrum."""
    spec = np.fft.rfft(x, axis=-1)
    spec[..., int(np.ceil(keep * spec.shape[-1])):] = 0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1)


def test_frequency_bins_are_documented_values():
    assert frequency_task_bins("low", 128).tolist() == [1, 6]
    assert frequency_task_bins("high", 128).tolist() == [48, 63]
    assert frequency_task_bins("low", 200, 10).tolist() == list(range(1, 11))
    hi = frequency_task_bins("high", 255, 4)  # odd length: top bin 127 < Nyquist 127.5
    assert hi.tolist() == [96, 106, 117, 127]
    with pytest.raises(ValueError, match=r"length=40 leaves 2 frequencies in the 'low' band, "
                                         r"fewer than n_classes=3"):
        frequency_task_bins("low", 40, 3)
    with pytest.raises(ValueError, match="band must be 'low' or 'high', got 'mid'"):
        make_frequency_task("mid")


@pytest.mark.parametrize("band", ["low", "high"])
def test_frequency_task_lowpass_keeps_or_destroys_class_information(band):
    # without noise: the signal lies exactly in its class bin
    clean, _ = make_frequency_task(band, n_samples=64, n_test=8, noise=0.0, n_classes=3,
                                   length=256, seed=2)
    freqs = np.array([int(c) for c in clean.classes])
    power = np.abs(np.fft.rfft(clean.x[:, 0], axis=-1)) ** 2
    assert (power.argmax(axis=1) == freqs[clean.y]).all()
    filtered = _lowpass(clean.x)
    if band == "low":
        np.testing.assert_allclose(filtered, clean.x, atol=1e-9)
    else:
        np.testing.assert_allclose(filtered, 0, atol=1e-9)

    # with noise: class-mean spectra differ only at the class bins
    train, test = make_frequency_task(band, n_samples=400, seed=1)
    assert train.x.shape == (400, 1, 128) and test.x.shape == (400, 1, 128)
    assert np.bincount(train.y).tolist() == [200, 200]
    spec = np.abs(np.fft.rfft(train.x[:, 0], axis=-1)) ** 2
    a, b = spec[train.y == 0], spec[train.y == 1]
    z = np.abs(a.mean(0) - b.mean(0)) / np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
    cls_bins = frequency_task_bins(band, 128)
    assert (z[cls_bins] > 20).all()
    assert np.delete(z, cls_bins).max() < 5

    # after keeping the lowest 25%: nearest class-mean spectrum classifies "low", not "high"
    def features(ds):
        return np.abs(np.fft.rfft(_lowpass(ds.x[:, 0]), axis=-1)) ** 2
    ftr, fte = features(train), features(test)
    means = np.stack([ftr[train.y == k].mean(0) for k in range(2)])
    pred = ((fte[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    acc = (pred == test.y).mean()
    assert acc > 0.95 if band == "low" else 0.35 < acc < 0.65


def test_frequency_task_is_reproducible():
    a = make_frequency_task("low", n_samples=16, seed=5)
    b = make_frequency_task("low", n_samples=16, seed=5)
    c = make_frequency_task("low", n_samples=16, seed=6)
    np.testing.assert_array_equal(a[1].x, b[1].x)
    assert not np.array_equal(a[0].x, c[0].x)
    with pytest.raises(ValueError, match="noise must be a finite real number >= 0"):
        make_frequency_task(noise=-1.0)


# ---------------------------------------------------------------- utilities

def test_standardize_uses_training_statistics_per_channel():
    rng = np.random.default_rng(0)
    x = rng.normal([[[3.0], [-2.0], [0.0]]], [[[2.0], [0.5], [1.0]]], size=(40, 3, 16))
    x[:, 2] = 7.0  # a constant channel
    train = Dataset(x[:30], np.zeros(30, np.int64), ("a",))
    test = Dataset(x[30:] + 1.0, np.zeros(10, np.int64), ("a",))
    tr, te = standardize(train, test)
    np.testing.assert_allclose(tr.x[:, :2].mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(tr.x[:, :2].std(axis=(0, 2)), 1, rtol=1e-12)
    assert (tr.x[:, 2] == 0).all() and (te.x[:, 2] == 1).all()  # no division by zero
    mean, std = x[:30].mean(axis=(0, 2)), x[:30].std(axis=(0, 2))
    np.testing.assert_allclose(te.x[:, :2], (x[30:, :2] + 1 - mean[:2, None]) / std[:2, None])
    assert np.array_equal(train.x, x[:30])  # input untouched
    glob = standardize(train, per_channel=False)
    assert isinstance(glob, Dataset)
    np.testing.assert_allclose([glob.x.mean(), glob.x.std()], [0, 1], atol=1e-12)
    f32 = standardize(Dataset(x.astype(np.float32), np.zeros(40, np.int64), ("a",)))
    assert f32.x.dtype == np.float32


def test_znorm_per_series():
    x = np.array([[[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]]])
    out = znorm(Dataset(x, np.array([0]), ("a",))).x
    np.testing.assert_allclose(out[0, 0].mean(), 0, atol=1e-15)
    np.testing.assert_allclose(out[0, 0].std(ddof=1), 1)
    assert (out[0, 1] == 0).all()
    np.testing.assert_allclose(znorm(Dataset(x, np.array([0]), ("a",)), ddof=0).x[0, 0].std(), 1)


@pytest.mark.parametrize("n, size", [(0, 3), (1, 4), (10, 3), (12, 4), (7, 1), (5, 100)])
def test_batches_cover_each_index_once(n, size):
    for kwargs in ({}, {"shuffle": True, "seed": 3}):
        parts = list(batches(n, size, **kwargs))
        assert all(b.dtype == np.int64 for b in parts)
        assert [len(b) for b in parts] == [size] * (n // size) + ([n % size] if n % size else [])
        flat = np.concatenate(parts) if parts else np.array([], np.int64)
        assert sorted(flat.tolist()) == list(range(n))
    if n:
        assert np.concatenate(list(batches(n, size))).tolist() == list(range(n))


def test_batches_reproducible_by_seed_or_rng():
    def run(**kw):
        return [b.tolist() for b in batches(50, 8, shuffle=True, **kw)]
    assert run(seed=1) == run(seed=1)
    assert run(seed=1) != run(seed=2)
    assert run(rng=np.random.default_rng(4)) == run(seed=4)
    assert run(seed=1) != [b.tolist() for b in batches(50, 8)]


def test_batches_bad_arguments():
    with pytest.raises(ValueError, match="batches: batch_size must be >= 1, got 0"):
        batches(10, 0)
    with pytest.raises(TypeError, match="batches: batch_size must be an int, got 2.5"):
        batches(10, 2.5)
    with pytest.raises(ValueError, match="batches: n must be >= 0, got -1"):
        batches(-1, 2)
    with pytest.raises(ValueError, match="give seed or rng, not both"):
        batches(10, 2, shuffle=True, seed=1, rng=np.random.default_rng())


def test_shuffle_keeps_pairs_and_is_seeded():
    ds = Dataset(np.arange(20.0).reshape(20, 1, 1), np.arange(20) % 4, tuple("abcd"))
    s = shuffle(ds, seed=0)
    assert (s.x[:, 0, 0].astype(int) % 4 == s.y).all()
    assert sorted(s.x.ravel().tolist()) == ds.x.ravel().tolist()
    assert not np.array_equal(s.x, ds.x)
    np.testing.assert_array_equal(shuffle(ds, seed=0).x, s.x)


def test_dataset_validation():
    x = np.zeros((3, 1, 2))
    with pytest.raises(ValueError, match=r"y must be integer labels of shape \(3,\)"):
        Dataset(x, np.zeros(2, np.int64), ("a",))
    with pytest.raises(ValueError, match=r"y must lie in 0\.\.1"):
        Dataset(x, np.array([0, 1, 2]), ("a", "b"))
    with pytest.raises(TypeError, match="x must be a real floating NumPy array"):
        Dataset(np.zeros((3, 1, 2), np.int64), np.zeros(3, np.int64), ("a",))
    with pytest.raises(TypeError, match="classes must be a sequence of labels"):
        Dataset(x, np.zeros(3, np.int64), "ab")
    ds = Dataset(x, np.array([0, 1, 1], np.int32), ["a", 2])
    assert ds.y.dtype == np.int64 and ds.classes == ("a", "2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.x = x


@pytest.mark.parametrize("module", ["_dataset", "ucr", "images", "synthetic", "utils", "home"])
def test_docstring_examples_run(module):
    mod = getattr(bd, module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_function_has_an_example():
    for name in bd.__all__:
        obj = getattr(bd, name)
        if callable(obj):
            assert obj.__doc__ and ">>>" in obj.__doc__, name


# --- the data home ---------------------------------------------------------------------------
def _archive(root, name, n=4, length=5):
    """A tiny UCR dataset ``root/name/name_{TRAIN,TEST}.tsv`` of two classes."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part in ("TRAIN", "TEST"):
        rows = [f"{1 + i % 2}\t" + "\t".join(f"{v:.4f}" for v in rng.normal(size=length))
                for i in range(n)]
        (folder / f"{name}_{part}.tsv").write_text("\n".join(rows) + "\n")


def test_data_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path))
    assert bd.data_home() == tmp_path and bd.ucr_home() == tmp_path / "UCR"
    assert bd.default_ucr_dir() is None                      # no UCR folder yet
    (tmp_path / "UCR").mkdir()
    assert bd.default_ucr_dir() == str(tmp_path / "UCR")
    monkeypatch.setenv("BLCONV_DATA", "")                    # empty: the default
    assert bd.data_home() == Path.home() / ".cache" / "blconv"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BLCONV_DATA", "rel")                 # relative: made absolute
    assert bd.data_home() == tmp_path / "rel"


def test_a_ucr_dataset_in_the_data_home_loads_without_ucr_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path))
    _archive(tmp_path / "UCR", "Tiny")
    train, test = bd.load_dataset("Tiny")
    assert train.x.shape == (4, 1, 5) and test.n_classes == 2
    assert bd.resolve_datasets("Tiny,GunPoint") == ["Tiny", "GunPoint"]
    assert bd.load_dataset("GunPoint")[0].x.shape == (50, 1, 150)    # still the shipped one


def test_a_missing_dataset_says_where_it_looked_and_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path))
    for call in (lambda: bd.load_dataset("Adiac"), lambda: bd.resolve_datasets("Adiac")):
        with pytest.raises(ValueError) as e:
            call()
        message = str(e.value)
        assert "unknown dataset 'Adiac'" in message
        assert f"looked in {tmp_path / 'UCR'} (the data home's UCR folder: it does not exist)" \
            in message
        assert "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/" in message
        assert f"{tmp_path / 'UCR' / 'Adiac' / 'Adiac_TRAIN.tsv'} exists" in message
        assert "$BLCONV_DATA" in message and "--ucr-dir" in message


def test_a_shipped_dataset_missing_from_an_archive_comes_from_the_package(tmp_path):
    _archive(tmp_path, "Tiny")
    train, _ = bd.load_dataset("ItalyPowerDemand", ucr_dir=tmp_path)
    assert train.x.shape == (67, 1, 24)
    with pytest.raises(FileNotFoundError, match="no files for dataset 'Adiac'"):
        bd.load_dataset("Adiac", ucr_dir=tmp_path)


# --- MNIST-1D --------------------------------------------------------------------------------
@pytest.fixture
def mnist1d(monkeypatch, tmp_path):
    """The mnist1d package, with a data home of this test's own."""
    package = pytest.importorskip("mnist1d.data", reason="MNIST-1D needs the optional mnist1d "
                                  'package: pip install "blconv[mnist1d]"')
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path))
    return package


def _published(package, shuffled):
    args = package.get_dataset_args()
    args.shuffle_seq = shuffled
    return package.make_dataset(args)


@pytest.mark.parametrize("shuffled", [False, True], ids=["mnist1d", "shuffled"])
def test_mnist1d_is_the_generator_output(mnist1d, shuffled):
    train, test = bd.load_dataset("mnist1d-shuffled" if shuffled else "mnist1d")
    assert train.x.shape == (4000, 1, 40) and test.x.shape == (1000, 1, 40)
    assert train.x.dtype == np.float64 and train.y.dtype == np.int64
    assert train.classes == tuple("0123456789") and train.n_classes == 10
    assert set(np.unique(test.y)) == set(range(10))
    assert train.name == ("mnist1d-shuffled" if shuffled else "mnist1d")
    ref = _published(mnist1d, shuffled)                  # the package's own, in its order
    np.testing.assert_array_equal(train.x[:, 0], ref["x"])
    np.testing.assert_array_equal(test.x[:, 0], ref["x_test"])
    np.testing.assert_array_equal(train.y, ref["y"])
    np.testing.assert_array_equal(test.y, ref["y_test"])


def test_mnist1d_is_deterministic_and_leaves_the_global_generators_alone(mnist1d):
    import random
    np.random.seed(7)
    random.seed(7)
    state = np.random.get_state()[1].copy(), random.getstate()
    a, _ = bd.load_mnist1d(cache=False)
    b, _ = bd.load_mnist1d(cache=False)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert (np.random.get_state()[1] == state[0]).all() and random.getstate() == state[1]


def test_mnist1d_cache_is_written_once_then_used(mnist1d, monkeypatch, tmp_path):
    from blconv.data import mnist1d as M
    first, test = bd.load_dataset("mnist1d")
    path = tmp_path / "generated" / "mnist1d.npz"
    with np.load(path, allow_pickle=False) as z:          # no pickle inside
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
    assert meta["args"] == M.mnist1d_args() and meta["args"]["seed"] == 42
    assert meta["mnist1d"] and meta["generator"] == "mnist1d.data.make_dataset"

    def fail(args):
        raise AssertionError("generated again")
    monkeypatch.setattr(M, "_generate", fail)
    again, test_again = bd.load_dataset("mnist1d")          # from the cache
    np.testing.assert_array_equal(again.x, first.x)
    np.testing.assert_array_equal(test_again.y, test.y)
    with pytest.raises(AssertionError, match="generated again"):
        bd.load_mnist1d(cache=False)
    with pytest.raises(AssertionError, match="generated again"):   # another variant: no cache
        bd.load_dataset("mnist1d-shuffled")


def test_mnist1d_shuffled_is_one_fixed_permutation_of_the_positions(mnist1d):
    plain = np.concatenate([d.x[:, 0] for d in bd.load_dataset("mnist1d")])
    shuffled = np.concatenate([d.x[:, 0] for d in bd.load_dataset("mnist1d-shuffled")])
    assert plain.shape == shuffled.shape == (5000, 40)
    # the same series and labels; position j of the shuffled variant is position perm[j]
    perm = [int(np.argmin(np.abs(plain - shuffled[:, [j]]).sum(axis=0))) for j in range(40)]
    assert sorted(perm) == list(range(40)) and perm != list(range(40))
    np.testing.assert_array_equal(plain[:, perm], shuffled)
    np.testing.assert_array_equal(bd.load_dataset("mnist1d")[0].y,
                                  bd.load_dataset("mnist1d-shuffled")[0].y)


def test_mnist1d_normalisation_is_recorded():
    assert bd.normalisation("mnist1d") == bd.normalisation("mnist1d-shuffled") == {
        "method": "none", "generator": "standardise", "per": "dataset"}


def test_mnist1d_without_the_package_says_what_to_install(monkeypatch, tmp_path):
    import builtins
    monkeypatch.setenv("BLCONV_DATA", str(tmp_path))
    real = builtins.__import__

    def no_mnist1d(name, *args, **kw):
        if name == "mnist1d" or name.startswith("mnist1d."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_mnist1d)
    with pytest.raises(ImportError, match=r'load_mnist1d: generating MNIST-1D needs the '
                                          r'mnist1d package: pip install "blconv\[mnist1d\]"'):
        bd.load_dataset("mnist1d")
