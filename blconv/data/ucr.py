"""UCR time-series classification datasets: the shipped ones and any on disk.

Two text formats of the archive are read with plain Python and NumPy:

``.tsv`` (UCR 2018 archive)
    One series per line, tab-separated, the class label first.
``.ts`` (sktime / aeon)
    ``#`` comments, ``@`` header lines (``@problemName``, ``@univariate``,
    ``@classLabel true <labels...>``, ...), then ``@data`` and one series per
    line: ``v1,v2,...:label``, channels of a multivariate series separated by ``:``.

Either may be gzip-compressed (``.tsv.gz``, ``.ts.gz``); the shipped files are.
"""
from __future__ import annotations

import gzip
import zlib
import math
from pathlib import Path

import numpy as np

from ._dataset import FILES, Dataset, check_split

__all__ = ["load_ucr", "list_ucr"]

_FN = "load_ucr"
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
        line); missing values or variable-length series, which are not supported.
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
    (xtr, ltr, ctr), (xte, lte, cte) = (_read(f) for f in files)
    if xtr.shape[1:] != xte.shape[1:]:
        raise ValueError(f"{_FN}: train series in {files[0]} have (channels, length) "
                         f"{xtr.shape[1:]} but test series in {files[1]} have {xte.shape[1:]}")
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
    """The fields as floats; non-numbers, missing values and infinities are errors."""
    try:
        vals = [float(f) for f in fields]
        if all(map(math.isfinite, vals)):
            return vals
    except ValueError:
        vals = []
        for j, f in enumerate(fields):
            try:
                vals.append(math.nan if f.strip() == "?" else float(f))
            except ValueError:
                raise _error(path, lineno, f"{where}value {j + 1} is not a number: "
                             f"{f.strip()!r}") from None
    j = next(j for j, v in enumerate(vals) if not math.isfinite(v))
    if math.isinf(vals[j]):
        raise _error(path, lineno, f"{where}value {j + 1} is not finite: {fields[j].strip()!r}")
    if j > 0 and all(math.isnan(v) for v in vals[j:]):
        raise _error(path, lineno, f"{where}values {j + 1}..{len(vals)} are missing (NaN "
                     f"padding): variable-length series are not supported")
    raise _error(path, lineno, f"{where}value {j + 1} is missing ({fields[j].strip()!r}); "
                 f"missing values are not supported")


def _read(path: Path):
    """``(x, labels, classes)`` of one file: x float64 (n, channels, length)."""
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
    x = np.array(rows, dtype=np.float64).reshape(len(rows), 1, -1)
    return x, labels, set(labels)


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
            elif key == "equallength" and flag == "false":
                raise _error(path, lineno, "variable-length series (@equalLength false) are "
                             "not supported")
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
        row = []
        for i, fields in enumerate(channels):
            if len(fields) != shape[1]:
                raise _error(path, lineno, f"channel {i + 1} has {len(fields)} values, expected "
                             f"{shape[1]} (as on line {first}); variable-length series are "
                             f"not supported")
            row.append(_floats(fields, path, lineno, f"channel {i + 1}: " if shape[0] > 1 else ""))
        labels.append(label)
        rows.append(row)
    if not in_data:
        raise _error(path, 0, "no @data line")
    if not rows:
        raise _error(path, 0, "contains no series")
    for key, tag, value in (("serieslength", "@seriesLength", shape[1]),
                            ("dimensions", "@dimensions", shape[0])):
        if key in header and header[key][0] != value:
            raise _error(path, header[key][1], f"{tag} says {header[key][0]} but the series "
                         f"have {value}")
    if header.get("univariate", (None,))[0] is True and shape[0] != 1:
        raise _error(path, header["univariate"][1], f"@univariate true but the series have "
                     f"{shape[0]} channels")
    return np.array(rows, dtype=np.float64).reshape(len(rows), *shape), labels, declared
