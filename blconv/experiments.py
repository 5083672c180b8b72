"""Experiments: train at several compress rates, test at several, over seeds.

A sweep is a list of independent runs (:class:`~blconv.runs.Run`).  Each run
trains one model at one training compress rate (or energy) and seed, then
evaluates it at every test compress rate — the paper's "band-limited inference"
experiment.  Every run is a pure function of its configuration (seeded by it,
never by order or worker), so runs can execute anywhere and in any order:
:func:`sweep` runs them here, or on a Dask cluster (:mod:`blconv.dist`), writing
each run's result as its own file ``runs/<config hash>.json`` so that a sweep
run again does only what is missing.

This module is the front of the experiment layer: :func:`sweep`, and the names
of the modules that own each part, re-exported —

* :mod:`blconv.runs`: the :class:`~blconv.runs.Run` configuration, its training
  recipes, executing one run and its per-run record;
* :mod:`blconv.results`: the per-run files, collecting them, ``results.json`` and
  ``.csv``, summaries, tables and plots;
* :mod:`blconv.data`: the dataset names runs accept, and their loading;
* :mod:`blconv.dist`: executing a list of runs, here or on a Dask cluster.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from .data import DATASETS, list_datasets, load_dataset, normalisation, resolve_datasets
from .dist import run_sweep
from .results import (COLUMNS, PUBLISHED_FCN, SweepResult, collect, format_table, read_run,
                      run_path, summarize, write_plots, write_results, write_run)
# prepare is not in __all__ but has always been reachable here (blconv train uses it)
from .runs import (FORMAT, RECIPES, Run, describe_training_data, execute, make_runs, prepare,
                   run_one)

__all__ = ["Run", "DATASETS", "load_dataset", "list_datasets", "resolve_datasets",
           "make_runs", "execute", "run_one", "sweep", "SweepResult", "collect",
           "read_run", "write_run", "run_path", "write_results", "write_plots", "summarize",
           "normalisation", "describe_training_data",
           "format_table", "COLUMNS", "PUBLISHED_FCN", "FORMAT", "RECIPES"]


def sweep(spec=None, client=None, *, workers: int | None = None, out_dir=None,
          threads: int | None = None, retries: int = 2, progress=True,
          **grid) -> SweepResult:
    """Execute a sweep's runs, here or on a Dask cluster; skip those already done in ``out_dir``.

    Parameters
    ----------
    spec : list of Run (or of Run mappings), Run, or mapping, optional
        The runs, or the keyword arguments of :func:`~blconv.runs.make_runs`.
        Without it, ``grid`` (the same keywords) builds the runs:
        ``sweep(datasets="all", rates=[0, 0.5], seeds=[0, 1], epochs=50)``; with
        neither, the default sweep.  Duplicate runs are executed once.
    client : distributed.Client or str, optional
        Run on this Dask cluster (a scheduler address connects to it).
    workers : int, optional
        Run on a new local Dask cluster of this many processes (one thread
        each), closed at the end.  With neither ``client`` nor ``workers`` the
        runs execute one after the other in this process.
    out_dir : str or os.PathLike, optional
        Each run's record is written, atomically, to ``out_dir/runs/<hash>.json``
        as it ends (see :func:`~blconv.runs.run_one` for the fields); runs whose
        file says ``done`` are not executed again (failed ones are).  At the end
        ``results.json``, ``results.csv``, the plots and ``failures.json`` are
        rebuilt from the per-run files of ``spec``'s runs.  Runs here or on
        a cluster made with ``workers`` save their training every minute in
        ``out_dir/checkpoints/<hash>/`` and pick it up again when interrupted
        (the records are those of an uninterrupted run); the folder goes when
        the run is done.
    threads : int, optional
        BLAS and FFT threads of each run (default: this process's settings
        when running here, 1 on Dask workers).
    retries : int, default 2
        Dask's ``retries=`` for a task whose machinery errors (the run's own
        errors are recorded, not retried; a run whose worker dies is given to
        another worker by the scheduler).
    progress : bool or {"bar", "lines"}, default True
        Report on ``sys.stdout`` as the runs go: progress counted in epochs
        over all runs (runs x epochs, those found done counted as done), with
        the elapsed time and an ETA from the first epoch on, and one line per
        run as it ends (dataset, training rate or energy, seed, test accuracy
        at its own band, seconds).  ``True`` shows a ``tqdm.auto`` bar (a
        widget in notebooks) when stdout is a terminal or a notebook, plain
        lines otherwise (a summary line at most every 30 s, and one at the
        end); ``"bar"`` and ``"lines"`` choose; ``False`` reports nothing.
        On Dask the workers report epochs as Dask events (see
        :func:`blconv.dist.run_on`).  (The cluster that ``workers`` starts,
        or the scheduler address ``client`` connects to, is described with
        its dashboard address at ``INFO`` level to the ``blconv`` logger,
        whatever ``progress`` says.)
    **grid
        Keywords of :func:`~blconv.runs.make_runs`, when ``spec`` is not given.

    Returns
    -------
    blconv.results.SweepResult
        The records of the done runs, in ``spec`` order (one per run and test
        rate), with ``failures``, ``executed`` and ``skipped``.

    Raises
    ------
    TypeError
        Both ``spec`` and ``grid``; both ``client`` and ``workers``; a ``spec``
        item that is not a run.
    ImportError
        ``client`` or ``workers`` without Dask (the ``dist`` extra).

    Notes
    -----
    A run's result depends on its configuration alone: its seed drives the
    weights, the shuffles and the dropout.  Its records are identical
    (bit for bit) wherever the arithmetic is: the same machine, libraries,
    BLAS/FFT thread count and speed settings, on any worker, in any order,
    resumed or not.  Across thread counts, batch chunkings
    (:func:`blconv.max_workspace_bytes`) or CPU kernels the sums are reordered,
    and the float fields agree to float32 rounding (losses to about 1e-4
    relative on short runs; an accuracy may move by a sample whose logits tie).
    See the cluster guide in the documentation.

    An interrupted sweep (Ctrl-C, a crash, a cancelled job) keeps every
    finished run's file; calling it again with the same ``out_dir`` executes
    only the rest.

    Examples
    --------
    >>> from blconv.experiments import Run, sweep
    >>> runs = [Run(dataset="ItalyPowerDemand", width=4, epochs=1, batch_size=32,
    ...             train_compress_rate=rate, test_rates=(0.0, 0.5)) for rate in (0.0, 0.5)]
    >>> result = sweep(runs, progress=False)        # sweep(runs, workers=2) on Dask
    >>> len(result), result.executed, result.failures
    (4, 2, [])
    """
    runs = _as_runs("sweep", spec, grid)
    if client is not None and workers is not None:
        raise TypeError("sweep: pass client or workers, not both")
    return run_sweep(runs, client=client, workers=workers, out_dir=out_dir, threads=threads,
                     retries=retries, progress=progress)


def _as_runs(fn: str, spec, grid) -> list[Run]:
    """``spec`` (or ``grid``) as distinct runs, first occurrence first."""
    if spec is not None and grid:
        raise TypeError(f"{fn}: pass spec or grid keywords ({', '.join(sorted(grid))}), "
                        f"not both")
    if spec is None:
        spec = grid
    if isinstance(spec, Mapping):
        items = make_runs(**spec)
    elif isinstance(spec, Run):
        items = [spec]
    elif isinstance(spec, Iterable) and not isinstance(spec, str):
        items = list(spec)
    else:
        raise TypeError(f"{fn}: spec must be a list of Run, a Run or a mapping of make_runs "
                        f"keywords, got {type(spec).__name__}")
    runs: dict[str, Run] = {}
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            item = Run.from_dict(item)
        if not isinstance(item, Run):
            raise TypeError(f"{fn}: spec[{i}] must be a Run or a mapping of Run fields, "
                            f"got {type(item).__name__}")
        runs.setdefault(item.config_hash, item)
    return list(runs.values())
