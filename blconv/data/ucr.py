"""UCR time-series classification datasets: the shipped ones and any on disk.

Two text formats of the archive are read with plain Python and NumPy:

``.tsv`` (UCR 2018 archive)
    One series per line, tab-separated, the class label first.
``.ts`` (sktime / aeon)
    ``#`` comments, ``@`` header lines (``@problemName``, ``@univariate``,
    ``@classLabel true <labels...>``, ...), then ``@data`` and one series per
    line: ``v1,v2,...:label``, channels of a multivariate series separated by ``:``.

Either may be gzip-compressed (``.tsv.gz``, ``.ts.gz``); the shipped files are.

Missing values and unequal lengths (about 15 datasets of the 128 in the archive) are
made regular as the archive's own notes suggest:

* a missing value (``NaN``, ``nan`` or ``?``) inside a series is linearly
  interpolated from its nearest present neighbours (one before the first present
  value takes that value, one after the last takes the last's);
* ``NaN`` at the end of a ``.tsv`` row is padding, the series being shorter; series
  shorter than the longest one of the dataset (train and test together, per
  channel) are resampled to that length by linear interpolation on a uniform grid
  (their first and last values stay where they are).

What was done is logged (logger ``blconv.data``, level INFO).  A series with no
present value at all is an error naming the file and line.
"""
from __future__ import annotations

import gzip
import logging
import math
import zlib
from pathlib import Path

import numpy as np

from ._dataset import FILES, Dataset, check_split

__all__ = ["load_ucr", "list_ucr"]

_FN = "load_ucr"
_LOG = logging.getLogger("blconv.data")
#: File suffixes of an archive dataset, in the order they are looked for.
SUFFIXES = (".tsv", ".ts", ".tsv.gz", ".ts.gz")


def list_ucr() -> list[str]:
    """Names of the UCR datasets shipped inside the package.

    Returns
    -------
    list of str
        Sorted dataset names, each accepted by :func:`load_ucr` without ``path``.

    Examples
    --------
    >>> from blconv.data import list_ucr
    >>> list_ucr()
    ['ArrowHead', 'GunPoint', 'ItalyPowerDemand', 'OSULeaf']
    """
    return sorted(p.name[: -len("_TRAIN.ts.gz")] for p in FILES.glob("*_TRAIN.ts.gz")
                  if p.with_name(p.name.replace("_TRAIN.", "_TEST.")).is_file())


def load_ucr(name: str, *, split: str | None = None, path=None):
    """Load a UCR time-series classification dataset with the archive's train/test split.

    Parameters
    ----------
    name : str
        A shipped dataset (see :func:`list_ucr`) or, with ``path``, any dataset of the
        archive stored under ``path``.
    split : {None, 'train', 'test'}, optional
        ``None`` (default) returns ``(train, test)``; otherwise that one split.
    path : str or os.PathLike, optional
        A directory holding ``<name>/<name>_TRAIN.tsv`` and ``<name>/<name>_TEST.tsv``
        (the layout of the UCR 2018 archive), or the same with ``.ts``, ``.tsv.gz`` or
        ``.ts.gz`` files, or those files directly in ``path``.

    Returns
    -------
    Dataset or tuple of Dataset
        ``x`` float64 of shape ``(n, channels, length)``; ``y`` int64 in ``0..K-1``,
        the same mapping for train and test: ``classes`` holds the original labels
        (strings), sorted numerically when all are numbers, else as strings.

    Raises
    ------
    ValueError
        Unknown shipped ``name``; a malformed file (the message names the file and the
        line), including a series with no value at all.  Missing values and unequal
        lengths are not errors: see the module notes.
    FileNotFoundError
        ``path`` or one of the two files is missing (the message names the path).

    Examples
    --------
    >>> from blconv.data import load_ucr
    >>> train, test = load_ucr("GunPoint")
    >>> train.x.shape, test.x.shape, train.classes
    ((50, 1, 150), (150, 1, 150), ('1', '2'))
    >>> load_ucr("ItalyPowerDemand", split="test").x.shape
    (1029, 1, 24)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"{_FN}: name must be a non-empty str, got {name!r}")
    split = check_split(_FN, split)
    if path is None:
        shipped = list_ucr()
        if name not in shipped:
            raise ValueError(f"{_FN}: unknown dataset {name!r}; shipped: {', '.join(shipped)} "
                             f"(pass path= to read another dataset of the archive)")
        root = FILES
    else:
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"{_FN}: path {str(root)!r} is not a directory")
    files = _find(name, root)
    (rtr, ltr, ctr), (rte, lte, cte) = (_read(f) for f in files)
    if len(rtr[0]) != len(rte[0]):
        raise ValueError(f"{_FN}: train series in {files[0]} have {len(rtr[0])} "
                         f"channel(s) but test series in {files[1]} have {len(rte[0])}")
    xtr, xte = _regular(name, (rtr, rte), files)
    classes = sorted(set(ctr) | set(cte), key=_label_key)
    code = {c: k for k, c in enumerate(classes)}
    train, test = (Dataset(x, np.array([code[v] for v in lab], dtype=np.int64), classes, name)
                   for x, lab in ((xtr, ltr), (xte, lte)))
    return (train, test) if split is None else train if split == "train" else test


def _find(name: str, root: Path) -> tuple[Path, Path]:
    """The (train, test) files of ``name`` under ``root``; the first layout that has either."""
    for folder in (root / name, root):
        for suffix in SUFFIXES:
            pair = tuple(folder / f"{name}_{part}{suffix}" for part in ("TRAIN", "TEST"))
            present = [p.is_file() for p in pair]
            if all(present):
                return pair
            if any(present):
                missing = pair[present.index(False)]
                raise FileNotFoundError(f"{_FN}: found {pair[present.index(True)]} but not "
                                        f"{missing}")
    looked = root / name / f"{name}_TRAIN.tsv"
    raise FileNotFoundError(f"{_FN}: no files for dataset {name!r} under {root}: looked for "
                            f"{looked} and {name}_TRAIN/_TEST with suffixes "
                            f"{', '.join(SUFFIXES)} in {root / name} and in {root}")


def _label_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _error(path, lineno, msg) -> ValueError:
    where = f"{path}: line {lineno}" if lineno else f"{path}"
    return ValueError(f"{_FN}: {where}: {msg}")


def _open(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")


def _floats(fields, path, lineno, where="") -> list[float]:
    """The fields as floats, ``NaN`` for a missing value; non-numbers and infinities are
    errors, and so is a series with no value present."""
    try:
        vals = [float(f) for f in fields]
    except ValueError:
        vals = []
        for j, f in enumerate(fields):
            try:
                vals.append(math.nan if f.strip() == "?" else float(f))
            except ValueError:
                raise _error(path, lineno, f"{where}value {j + 1} is not a number: "
                             f"{f.strip()!r}") from None
    if all(map(math.isfinite, vals)):
        return vals
    j = next((j for j, v in enumerate(vals) if math.isinf(v)), None)
    if j is not None:
        raise _error(path, lineno, f"{where}value {j + 1} is not finite: {fields[j].strip()!r}")
    if all(math.isnan(v) for v in vals):
        raise _error(path, lineno, f"{where}no value is present (all {len(vals)} missing)")
    return vals


def _fill(v: np.ndarray, *, trailing_is_padding: bool) -> tuple[np.ndarray, int]:
    """``v`` with missing values interpolated (and trailing padding cut): ``(v, filled)``."""
    present = ~np.isnan(v)
    if present.all():
        return v, 0
    if trailing_is_padding:
        v, present = v[:np.flatnonzero(present)[-1] + 1], present[:np.flatnonzero(present)[-1] + 1]
    idx = np.arange(len(v))
    filled = int((~present).sum())
    return np.interp(idx, idx[present], v[present]), filled


def _resample(v: np.ndarray, length: int) -> np.ndarray:
    """``v`` linearly interpolated at ``length`` evenly spaced points over its own span."""
    if len(v) == length:
        return v
    if len(v) == 1:
        return np.full(length, v[0])
    return np.interp(np.linspace(0, len(v) - 1, length), np.arange(len(v)), v)


def _regular(name, parts, files):
    """The rows of each file as float64 arrays ``(n, channels, length)``: missing values
    interpolated, shorter series resampled to the dataset's longest (module notes)."""
    tsv = [f.name.endswith((".tsv", ".tsv.gz")) for f in files]
    if all(len({len(ch) for row in rows for ch in row}) == 1 for rows in parts) and \
            len({len(parts[0][0][0]), len(parts[1][0][0])}) == 1 and \
            not any(math.isnan(v) for rows in parts for row in rows for ch in row for v in ch):
        return tuple(np.array(rows, dtype=np.float64) for rows in parts)     # the usual case
    filled = resampled = 0
    out = []
    for rows, padded in zip(parts, tsv):
        fixed = []
        for row in rows:
            chans = []
            for ch in row:
                v, k = _fill(np.asarray(ch, dtype=np.float64), trailing_is_padding=padded)
                filled += k
                chans.append(v)
            fixed.append(chans)
        out.append(fixed)
    length = max(len(ch) for rows in out for row in rows for ch in row)
    arrays = []
    for rows in out:
        x = np.empty((len(rows), len(rows[0]), length))
        for i, row in enumerate(rows):
            for c, ch in enumerate(row):
                resampled += len(ch) != length
                x[i, c] = _resample(ch, length)
        arrays.append(x)
    _LOG.info("%s: %d missing value(s) interpolated, %d series channel(s) resampled to "
              "length %d", name, filled, resampled, length)
    return tuple(arrays)


def _read(path: Path):
    """``(rows, labels, classes)`` of one file: ``rows[i][c]`` the values of channel ``c``
    of series ``i`` (``NaN`` where missing; lengths may differ)."""
    reader = _read_tsv if path.name.endswith((".tsv", ".tsv.gz")) else _read_ts
    try:
        with _open(path) as f:
            return reader(f, path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise _error(path, 0, f"not a readable gzip file (truncated or corrupted?): {e}") from e


def _read_tsv(f, path):
    labels, rows, width, first = [], [], None, None
    for lineno, line in enumerate(f, 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 2:
            hint = " (the file looks comma-separated)" if "," in line else ""
            raise _error(path, lineno, f"expected a label and values separated by tabs, got "
                         f"one field{hint}")
        if width is None:
            width, first = len(fields), lineno
        elif len(fields) != width:
            raise _error(path, lineno, f"expected {width} tab-separated columns (label + "
                         f"{width - 1} values, as on line {first}), got {len(fields)}")
        label = fields[0].strip()
        if not label:
            raise _error(path, lineno, "empty class label in column 1")
        try:  # "1", "1.0" and "1.0000000e+00" are the same label
            v = float(label)
            if v.is_integer():
                label = str(int(v))
        except ValueError:
            pass
        labels.append(label)
        rows.append(_floats(fields[1:], path, lineno))
    if not rows:
        raise _error(path, 0, "contains no series")
    return [[r] for r in rows], labels, set(labels)


def _read_ts(f, path):
    declared, header, in_data = None, {}, False
    labels, rows, shape, first = [], [], None, None
    for lineno, line in enumerate(f, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise _error(path, lineno, f"expected an @-header line or @data before the "
                             f"series, got {line[:40]!r}")
            key, *rest = line[1:].split(None, 1) or [""]
            key, rest = key.lower(), rest[0] if rest else ""
            words = rest.split()
            flag = words[0].lower() if words else ""
            if key == "data":
                if declared is None:
                    raise _error(path, lineno, "@data before any '@classLabel true ...' line; "
                                 "only classification files are supported")
                in_data = True
            elif key == "classlabel":
                if flag != "true" or len(words) < 2:
                    raise _error(path, lineno, f"expected '@classLabel true <labels...>', got "
                                 f"{line!r}; only classification files are supported")
                declared = set(words[1:])
            elif key in ("timestamps", "targetlabel") and flag == "true":
                raise _error(path, lineno, f"{line!r} is not supported (only classification "
                             f"series without time stamps)")
            elif key in ("serieslength", "dimensions"):
                try:
                    header[key] = (int(words[0]), lineno)
                except (ValueError, IndexError):
                    raise _error(path, lineno, f"expected an integer after @{key}, got "
                                 f"{rest!r}") from None
            elif key == "univariate":
                header[key] = (flag == "true", lineno)
            continue
        parts = line.split(":")
        if len(parts) < 2:
            raise _error(path, lineno, "expected 'v1,v2,...:label' (values, then the class "
                         "label after ':'), got no ':'")
        label = parts[-1].strip()
        if label not in declared:
            raise _error(path, lineno, f"unknown class label {label!r}; @classLabel declares "
                         f"{', '.join(sorted(declared, key=_label_key))}")
        channels = [c.split(",") for c in parts[:-1]]
        if shape is None:
            shape, first = (len(channels), len(channels[0])), lineno
        if len(channels) != shape[0]:
            raise _error(path, lineno, f"expected {shape[0]} channel(s) (as on line {first}), "
                         f"got {len(channels)}")
        row = [_floats(fields, path, lineno, f"channel {i + 1}: " if shape[0] > 1 else "")
               for i, fields in enumerate(channels)]
        labels.append(label)
        rows.append(row)
    if not in_data:
        raise _error(path, 0, "no @data line")
    if not rows:
        raise _error(path, 0, "contains no series")
    lengths = {len(ch) for row in rows for ch in row}
    checks = [("dimensions", "@dimensions", shape[0])]
    if len(lengths) == 1:                  # @seriesLength means nothing for unequal lengths
        checks.append(("serieslength", "@seriesLength", shape[1]))
    for key, tag, value in checks:
        if key in header and header[key][0] != value:
            raise _error(path, header[key][1], f"{tag} says {header[key][0]} but the series "
                         f"have {value}")
    if header.get("univariate", (None,))[0] is True and shape[0] != 1:
        raise _error(path, header["univariate"][1], f"@univariate true but the series have "
                     f"{shape[0]} channels")
    return rows, labels, declared
