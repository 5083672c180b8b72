"""The datasets runs are named by: what each name loads, and how it is normalised.

A run (:class:`blconv.runs.Run`) names its dataset by a string: one of
:data:`~blconv.data.DATASETS`, or any UCR dataset of an archive on disk
(``ucr_dir``).  :func:`~blconv.data.load_dataset` turns the name into
``(train, test)`` NumPy datasets, normalised as :func:`~blconv.data.normalisation`
records; :func:`~blconv.data.list_datasets` and
:func:`~blconv.data.resolve_datasets` expand ``"all"`` and comma-separated lists
of names.  All are re-exported from :mod:`blconv.data`.
"""
from __future__ import annotations

import os

from .home import ENV, UCR_ARCHIVE_URL, default_ucr_dir, ucr_home
from .images import load_digits
from .mnist1d import load_mnist1d
from .synthetic import make_frequency_task
from .ucr import SUFFIXES, list_ucr, load_ucr
from .utils import train_test_split, znorm

__all__ = ["DATASETS", "load_dataset", "normalisation", "list_datasets", "resolve_datasets"]

DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "OSULeaf", "digits",
            "freq-low", "freq-high", "mnist1d", "mnist1d-shuffled")

_UNKNOWN = ("{fn}: unknown dataset {name!r}: it is none of the datasets blconv knows "
            "({known}) and no UCR archive on disk holds it: looked in {where}. To use a UCR "
            "dataset, download the archive from " + UCR_ARCHIVE_URL + " and unpack it so that "
            "{home}/{name}/{name}_TRAIN.tsv exists (the data home is $" + ENV + ", default "
            "~/.cache/blconv), or pass --ucr-dir (ucr_dir=) to where it is")
_MNIST1D = ("mnist1d", "mnist1d-shuffled")


def _unknown(fn: str, name: str, ucr_dir) -> ValueError:
    """The error for a dataset found nowhere: where it was looked for and how to get it."""
    where = (f"{ucr_dir} (ucr_dir)" if ucr_dir is not None
             else f"{ucr_home()} (the data home's UCR folder: it does not exist)"
             if default_ucr_dir() is None else f"{ucr_home()} (the data home's UCR folder)")
    return ValueError(_UNKNOWN.format(fn=fn, name=name, known=", ".join(DATASETS),
                                      where=where, home=ucr_home()))


def load_dataset(name: str, *, ucr_dir: str | None = None, seed: int = 0):
    """``(train, test)`` NumPy datasets for a name of :data:`DATASETS` or a UCR dataset.

    UCR series are z-normalised per series (as the archive is); digits are scaled
    to [0, 1] and split 75/25 with a fixed seed; the frequency tasks are generated;
    MNIST-1D is generated once by the ``mnist1d`` package and cached under the data
    home (:func:`blconv.data.load_mnist1d`).

    Parameters
    ----------
    name : str
        A name of :data:`DATASETS`, or of a UCR dataset under ``ucr_dir``.
    ucr_dir : str or os.PathLike, optional
        A UCR archive on disk (see :func:`load_ucr`).  Without it, a name that
        blconv does not ship is looked for in ``<data home>/UCR``
        (:func:`blconv.data.data_home`).
    seed : int, default 0
        The draw of a generated frequency task (the other datasets are fixed).

    Returns
    -------
    train, test : Dataset
        Normalised as :func:`normalisation` says.

    Raises
    ------
    ValueError
        ``name`` is none of these and no UCR archive looked in holds it (the
        message says where it looked and how to get the archive).
    FileNotFoundError
        ``ucr_dir`` is given but lacks the dataset's files.
    ImportError
        MNIST-1D is not cached and the ``mnist1d`` package is missing.

    Examples
    --------
    >>> from blconv.data import load_dataset
    >>> train, test = load_dataset("GunPoint")
    >>> train.x.shape, test.x.shape, train.n_classes
    ((50, 1, 150), (150, 1, 150), 2)
    """
    if name == "digits":
        ds = load_digits()
        ds = ds.replace(x=ds.x / 16.0)
        train, test = train_test_split(ds, test_fraction=0.25, seed=0)
        return train, test
    if name in ("freq-low", "freq-high"):
        return make_frequency_task(name.split("-")[1], n_samples=256, length=128,
                                   seed=1000 + seed)
    if name in _MNIST1D:
        return load_mnist1d(shuffled=name == "mnist1d-shuffled")
    if ucr_dir is None and name not in list_ucr():
        ucr_dir = default_ucr_dir()
        if ucr_dir is None or name not in list_datasets(ucr_dir):
            raise _unknown("load_dataset", name, None)
    try:
        train, test = load_ucr(name, path=ucr_dir)
    except FileNotFoundError:
        if ucr_dir is None or name not in list_ucr():
            raise
        # a shipped dataset that this archive lacks: the shipped files (the same series)
        train, test = load_ucr(name)
    return znorm(train), znorm(test)


def normalisation(name: str) -> dict:
    """How :func:`load_dataset` normalises dataset ``name``, as a checkpoint records it.

    Parameters
    ----------
    name : str
        A name of :data:`DATASETS` or a UCR dataset.

    Returns
    -------
    dict
        ``{"method": "scale", "factor": 0.0625}`` for digits (pixel counts
        0..16 to [0, 1]); ``{"method": "none"}`` for the generated frequency
        tasks; for MNIST-1D ``{"method": "none", "generator": "standardise",
        "per": "dataset"}``: blconv uses the generated values as they are, which
        the generator has standardised over all 5,000 series (train and test
        together) to mean 0 and standard deviation 1, as the published models
        were trained; ``{"method": "znorm", "per": "series", "ddof": 1}`` for UCR
        datasets (each series and channel to mean 0, sample std 1, by
        :func:`blconv.data.znorm`).

    Examples
    --------
    >>> from blconv.data import normalisation
    >>> normalisation("OSULeaf")
    {'method': 'znorm', 'per': 'series', 'ddof': 1}
    """
    if name == "digits":
        return {"method": "scale", "factor": 1 / 16}
    if name in ("freq-low", "freq-high"):
        return {"method": "none"}
    if name in _MNIST1D:
        return {"method": "none", "generator": "standardise", "per": "dataset"}
    return {"method": "znorm", "per": "series", "ddof": 1}


def list_datasets(ucr_dir=None) -> list[str]:
    """The UCR datasets available: the shipped ones, or every dataset of an archive on disk.

    Parameters
    ----------
    ucr_dir : str or os.PathLike, optional
        A UCR archive in its standard layout: ``ucr_dir/<Name>/<Name>_TRAIN.tsv``
        and ``_TEST.tsv`` (or ``.ts``, ``.tsv.gz``, ``.ts.gz``).

    Returns
    -------
    list of str
        Without ``ucr_dir``, :func:`blconv.data.list_ucr`; with it, the sorted
        names of the subfolders holding a TRAIN/TEST pair.

    Raises
    ------
    FileNotFoundError
        ``ucr_dir`` is not a directory.

    Examples
    --------
    >>> from blconv.data import list_datasets
    >>> list_datasets()
    ['ArrowHead', 'GunPoint', 'ItalyPowerDemand', 'OSULeaf']
    """
    if ucr_dir is None:
        return list_ucr()
    if not os.path.isdir(ucr_dir):
        raise FileNotFoundError(f"list_datasets: ucr_dir is not a directory: {ucr_dir}")
    names = []
    for entry in sorted(os.scandir(ucr_dir), key=lambda e: e.name):
        if entry.is_dir() and any(
                all(os.path.isfile(os.path.join(entry.path, f"{entry.name}_{part}{suffix}"))
                    for part in ("TRAIN", "TEST")) for suffix in SUFFIXES):
            names.append(entry.name)
    return names


def resolve_datasets(names="GunPoint", *, ucr_dir=None) -> list[str]:
    """Dataset names from ``"all"``, ``"A,B"`` or a list of those; duplicates dropped.

    ``"all"`` is :func:`list_datasets` (the shipped UCR datasets, or every one
    in ``ucr_dir``).  Without ``ucr_dir`` every name must be one of
    :data:`DATASETS` or a dataset of the data home's UCR folder.

    Raises
    ------
    ValueError
        An unknown name without ``ucr_dir``; no names; ``"all"`` finding none.

    Examples
    --------
    >>> from blconv.data import resolve_datasets
    >>> resolve_datasets(["GunPoint,digits", "GunPoint"])
    ['GunPoint', 'digits']
    """
    fn = "resolve_datasets"
    if isinstance(names, (str, os.PathLike)):
        names = [os.fspath(names)]
    out: list[str] = []
    for name in (n.strip() for item in names for n in str(item).split(",")):
        if not name:
            continue
        found = list_datasets(ucr_dir) if name == "all" else [name]
        if name == "all" and not found:
            raise ValueError(f"{fn}: 'all' found no UCR datasets under {ucr_dir} (looked "
                             f"for <Name>/<Name>_TRAIN.tsv and _TEST.tsv)")
        out.extend(n for n in found if n not in out)
    if not out:
        raise ValueError(f"{fn}: no dataset names in {names!r}")
    if ucr_dir is None:
        known = set(DATASETS) | set(list_datasets())
        home = default_ucr_dir()
        for name in out:
            if name not in known and (home is None or name not in list_datasets(home)):
                raise _unknown(fn, name, None)
    return out
