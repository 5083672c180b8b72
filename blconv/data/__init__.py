"""Offline datasets for blconv: nothing is ever downloaded.

Shipped inside the package (``blconv/data/files/``, provenance in ``docs/data.md``):

* UCR time series with the archive's own train/test splits: :func:`load_ucr`
  (``ArrowHead``, ``GunPoint``, ``ItalyPowerDemand``, ``OSULeaf``; :func:`list_ucr`);
  any other archive dataset on disk with ``load_ucr(name, path=...)``;
* the 8x8 handwritten digits: :func:`load_digits`.

Read from disk: CIFAR-10's binary distribution (:func:`load_cifar10`).
Generated: :func:`make_frequency_task`, a task whose class information lies in a
chosen frequency band; MNIST-1D (:func:`load_mnist1d`, by the optional ``mnist1d``
package, cached under the data home).

The data home (:func:`data_home`: ``$BLCONV_DATA``, default ``~/.cache/blconv``)
holds what is not shipped: a copy of the UCR archive in ``UCR/`` (found without
``ucr_dir``) and the cache of generated datasets in ``generated/``.

Runs and the command line name their datasets (:data:`DATASETS`, or a UCR
dataset on disk): :func:`load_dataset` loads a name, normalised as
:func:`normalisation` says; :func:`list_datasets` and :func:`resolve_datasets`
expand ``"all"`` and lists of names.

Everything is a :class:`Dataset` of NumPy arrays ``x`` ``(n, channels, ...)`` and
``y`` (int64 labels); :func:`standardize`, :func:`znorm`, :func:`shuffle`,
:func:`train_test_split` and :func:`batches` prepare them for training.
"""
from ._dataset import Dataset
from .home import data_home, default_ucr_dir, generated_home, ucr_home
from .images import CIFAR10_CLASSES, load_cifar10, load_digits
from .mnist1d import load_mnist1d
from .synthetic import frequency_task_bins, make_frequency_task
from .registry import DATASETS, list_datasets, load_dataset, normalisation, resolve_datasets
from .ucr import list_ucr, load_ucr
from .utils import batches, shuffle, standardize, train_test_split, znorm

__all__ = [
    "Dataset", "load_ucr", "list_ucr", "load_digits", "load_cifar10", "CIFAR10_CLASSES",
    "make_frequency_task", "frequency_task_bins", "load_mnist1d",
    "data_home", "ucr_home", "generated_home", "default_ucr_dir",
    "standardize", "znorm", "batches", "shuffle", "train_test_split",
    "DATASETS", "load_dataset", "normalisation", "list_datasets", "resolve_datasets",
]
