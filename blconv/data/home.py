"""The data home: where datasets that do not ship with blconv are found and cached.

One directory, ``$BLCONV_DATA`` when that environment variable is set (and not
empty), else ``~/.cache/blconv``:

* ``<data home>/UCR`` -- a copy of the UCR archive (``<Name>/<Name>_TRAIN.tsv`` and
  ``_TEST.tsv``, or ``.ts``, ``.tsv.gz``, ``.ts.gz``).  When that directory exists it
  is the default of ``--ucr-dir`` (see :func:`default_ucr_dir`);
* ``<data home>/generated`` -- generated datasets worth caching (MNIST-1D), one
  compressed ``.npz`` each, written on first use.

Nothing is ever downloaded into it: a missing dataset raises an error that says
where it was looked for and how to get it.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "data_home", "ucr_home", "generated_home", "default_ucr_dir",
           "UCR_ARCHIVE_URL"]

#: The environment variable that moves the data home.
ENV = "BLCONV_DATA"
#: Where the UCR archive is published (downloaded by hand; blconv never fetches it).
UCR_ARCHIVE_URL = "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/"


def data_home() -> Path:
    """The data home: ``$BLCONV_DATA``, or ``~/.cache/blconv``; absolute, maybe missing.

    Read anew at every call, so that setting the variable takes effect at once.

    Examples
    --------
    >>> from blconv.data import data_home, ucr_home
    >>> data_home().is_absolute(), ucr_home() == data_home() / "UCR"
    (True, True)
    """
    value = os.environ.get(ENV, "")
    path = Path(value).expanduser() if value else Path("~", ".cache", "blconv").expanduser()
    return Path(os.path.abspath(path))


def ucr_home() -> Path:
    """``<data home>/UCR``: where a copy of the UCR archive is looked for (maybe missing).

    Examples
    --------
    >>> from blconv.data import data_home, ucr_home
    >>> ucr_home() == data_home() / "UCR"
    True
    """
    return data_home() / "UCR"


def generated_home() -> Path:
    """``<data home>/generated``: the cache of generated datasets (created when written).

    Examples
    --------
    >>> from blconv.data import data_home, generated_home
    >>> generated_home() == data_home() / "generated"
    True
    """
    return data_home() / "generated"


def default_ucr_dir() -> str | None:
    """The default ``ucr_dir`` of the command line: ``<data home>/UCR`` if it is a directory.

    ``None`` when it does not exist, whether the data home comes from
    ``$BLCONV_DATA`` or is the default ``~/.cache/blconv``.  The library's
    :func:`blconv.data.load_dataset` also looks there for a dataset it does not
    ship when given no ``ucr_dir``.

    Examples
    --------
    >>> from blconv.data import default_ucr_dir, ucr_home
    >>> default_ucr_dir() == (str(ucr_home()) if ucr_home().is_dir() else None)
    True
    """
    path = ucr_home()
    return str(path) if path.is_dir() else None
