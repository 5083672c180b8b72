"""Executing a sweep: in this process or on Dask clusters, resuming, retries.

:func:`blconv.experiments.sweep` builds the runs and hands them to
:func:`run_sweep`, which skips those already done in the output directory and
runs the rest in this process, or as Dask tasks: on a new
:func:`local_cluster` of worker processes, or on an existing cluster.  Each
run calls :func:`blconv.runs.run_one` and returns its record (a small dict);
this process writes each record as its own file
``out_dir/runs/<config hash>.json`` as it arrives (:mod:`blconv.results`), so
Dask workers need no shared file system, only ``blconv`` and the datasets.  The
summary is then rebuilt from those files (:func:`~blconv.results.collect`).
Runs in this process or on a :func:`local_cluster` also save their training
every minute under ``out_dir/checkpoints/<config hash>/`` (removed when the run
is done), so that an interrupted sweep resumes each run where it was saved,
not from its first epoch; runs on another cluster, whose workers may not see
``out_dir``, start over.
Dask is the ``dist`` extra (``pip install "blconv[dist]"``); without it only
in-process sweeps run.  ``SweepResult``, ``collect``, ``read_run``,
``write_run`` and ``run_path`` are those of :mod:`blconv.results`, re-exported.

Failures, and how each is handled:

* a run that raises is caught where it runs and comes back as a record with
  ``status: "failed"``, its error and traceback; the other runs go on;
* a worker that dies mid-run (killed, out of memory): the scheduler gives the
  run to another worker, up to ``distributed.scheduler.allowed-failures``
  times (default 3); a run that kills every worker it meets is then recorded
  as failed (``KilledWorker``);
* an error in the task machinery itself (say ``blconv`` missing on a worker)
  is retried ``retries`` times (Dask's ``retries=``), then recorded as failed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import traceback
import uuid

from ._progress import MODES, LocalEpochs, SweepProgress, WorkerEpochs
from .results import (SweepResult, checkpoint_dir, collect, read_run, run_path, split_records,
                      write_results, write_run)
from .runs import make_record, run_one, thread_limits

__all__ = ["run_sweep", "SweepResult", "collect", "read_run", "write_run", "run_path",
           "local_cluster", "connect", "describe", "run_on"]

_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
_HINT = 'needs Dask: pip install "blconv[dist]" (or pip install "dask[distributed]")'
# messages of the library (not the command line output): the "blconv" logger hierarchy
_log = logging.getLogger(__name__)


def _distributed(fn: str):
    try:
        import distributed
    except ImportError as e:
        raise ImportError(f"{fn}: {_HINT}") from e
    return distributed


# --- a sweep ----------------------------------------------------------------------------
def run_sweep(runs, *, client=None, workers=None, out_dir=None, threads=None, retries=2,
              progress=True) -> SweepResult:
    """Execute distinct ``runs``, skipping those done in ``out_dir``.

    The body of :func:`blconv.experiments.sweep`, which documents the arguments.
    """
    results: dict[str, dict] = {}
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        for run in runs:
            record = read_run(out_dir, run)
            if record is not None and record["status"] == "done":
                results[run.config_hash] = record
    todo = [run for run in runs if run.config_hash not in results]

    def on_result(record):
        if out_dir is not None:
            write_run(out_dir, record)
            if record["status"] == "done":
                shutil.rmtree(checkpoint_dir(out_dir, record["hash"]), ignore_errors=True)
        results[record["hash"]] = record

    done = [run for run in runs if run.config_hash in results]
    reporter = None
    try:
        if todo and client is None and workers is None:
            reporter = _reporter(progress, todo, done)
            _run_here(todo, on_result=on_result, threads=threads, progress=reporter,
                      out_dir=out_dir)
        elif todo:
            with _cluster(client, workers) as client:
                # made once the cluster is up, so that its description is not drawn over
                reporter = _reporter(progress, todo, done)
                run_on(client, todo, on_result=on_result,
                       threads=1 if threads is None else threads, retries=retries,
                       progress=reporter if reporter is not None else False,
                       out_dir=out_dir if workers is not None else None)
    finally:
        if reporter is not None:
            reporter.close()
    if out_dir is not None:
        records, failures = collect(out_dir, runs)
        write_results(records, out_dir, failures=failures)
    else:
        records, failures = split_records([results[run.config_hash] for run in runs
                                           if run.config_hash in results])
    return SweepResult(records, failures=failures, executed=len(todo),
                       skipped=len(runs) - len(todo), out_dir=out_dir)


@contextlib.contextmanager
def _cluster(client, workers):
    """The client a sweep runs on, described to the ``blconv`` logger when made here.

    A new local cluster of ``workers`` processes (closed on exit), a connection to
    the scheduler address ``client`` (closed on exit), or ``client`` itself.
    """
    if workers is not None:
        with local_cluster(workers) as client:
            _log.info("sweep: local cluster: %s", describe(client))
            yield client
    elif isinstance(client, str):
        with connect(client) as client:
            _log.info("sweep: %s", describe(client))
            yield client
    else:
        yield client


def _reporter(progress, todo, done):
    """The :class:`SweepProgress` of ``progress`` (True, "bar", "lines"), or None (False)."""
    if progress is False or progress is None:
        return None
    if isinstance(progress, SweepProgress):
        return progress
    if progress is True:
        progress = "auto"
    if progress not in MODES:
        raise ValueError(f"sweep: progress must be True, False, 'bar' or 'lines', got "
                         f"{progress!r}")
    return SweepProgress(todo, done=done, mode=progress)


def _saves(out_dir, run) -> str | None:
    """Where ``run`` saves its training: None without ``out_dir``."""
    return None if out_dir is None else checkpoint_dir(out_dir, run.config_hash)


def _run_here(runs, *, on_result, threads, progress=None, out_dir=None) -> None:
    """Execute ``runs`` one after the other in this process, each epoch told to ``progress``."""
    with thread_limits(threads):
        for run in runs:
            if progress is None:
                record = run_one(run, checkpoint_dir=_saves(out_dir, run))
            else:
                progress.poll(running=1)
                record = run_one(run, callbacks=[LocalEpochs(progress, run.config_hash)],
                                 checkpoint_dir=_saves(out_dir, run))
            on_result(record)
            if progress is not None:
                progress.finished(record)


# --- Dask -------------------------------------------------------------------------------
@contextlib.contextmanager
def local_cluster(n_workers: int, *, dashboard_address: str | None = ":8787", **kwargs):
    """A ``LocalCluster`` of ``n_workers`` processes of one thread each, and its client.

    Parameters
    ----------
    n_workers : int
        Worker processes, each running one run at a time.
    dashboard_address : str or None, default ":8787"
        Where the Dask dashboard listens (another free port if taken; ``":0"``
        any free port; ``None`` none).
    **kwargs
        Passed on to ``distributed.LocalCluster``.

    Yields
    ------
    distributed.Client
        Closed, with the cluster, on exit.

    Notes
    -----
    Dask's nanny starts each worker with ``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to 1, and each run sets
    its BLAS and FFT threads (see :func:`blconv.runs.run_one`), so
    ``n_workers`` runs use about ``n_workers`` cores.

    The nanny also sets ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's
    mmap threshold as well: every temporary array over 128 KiB is then mapped
    and unmapped afresh, and training ran 25-50 % slower for it (GunPoint,
    fcn1d).  These workers start without it, like a process of your own.
    """
    fn = "local_cluster"
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"{fn}: n_workers must be a positive int, got {n_workers!r}")
    distributed = _distributed(fn)
    import dask
    kwargs = {"threads_per_worker": 1, "processes": True, **kwargs}
    with dask.config.set({_TRIM: None}):      # read by each nanny as it is created
        cluster = distributed.LocalCluster(n_workers=n_workers,
                                           dashboard_address=dashboard_address, **kwargs)
    with cluster, distributed.Client(cluster) as client:
        yield client


@contextlib.contextmanager
def connect(address: str):
    """A client of the running Dask scheduler at ``address`` (``tcp://host:8786``)."""
    distributed = _distributed("connect")
    with distributed.Client(address) as client:
        yield client


def describe(client) -> str:
    """One line: the scheduler, its workers and threads, and the dashboard address."""
    info = client.scheduler_info()
    nthreads = client.nthreads()           # every worker (scheduler_info may list a few)
    line = (f"Dask scheduler {info.get('address', '?')}: {len(nthreads)} workers, "
            f"{sum(nthreads.values())} threads")
    if "dashboard" in info.get("services", {}):
        line += f"; dashboard {client.dashboard_link}"
        try:
            import bokeh  # noqa: F401  (the dashboard's plots need it)
        except ImportError:
            line += " (pip install bokeh for its plots)"
    return line


def run_on(client, runs, *, on_result, threads: int | None = 1, retries: int = 2,
           progress=True, poll: float = 0.5, out_dir=None) -> None:
    """Execute ``runs`` as Dask tasks; call ``on_result(record)`` in this process as each ends.

    Parameters
    ----------
    client : distributed.Client
    runs : list of Run
        Distinct runs; each is a task ``blconv-run-<hash[:16]>-<token of this call>``.
    on_result : callable
        Called with each run's record (see :func:`blconv.runs.run_one`),
        in completion order; a run lost with its workers gets a ``failed`` one.
    threads : int or None, default 1
        BLAS and FFT threads of each run on its worker.
    retries : int, default 2
        Dask's ``retries=`` for errors raised by the task machinery.
    progress : bool, "bar", "lines" or SweepProgress
        Epochs done over all runs, and a line per run as it ends (see
        :func:`blconv.experiments.sweep`); ``False``: nothing.
    poll : float
        Seconds between updates of the display and of the running count.
    out_dir : str or os.PathLike, optional
        A folder the workers share with this process: each run saves its
        training under ``out_dir/checkpoints/<hash>/`` and resumes from it (see
        :func:`blconv.runs.execute`); ``None``: runs start over when retried.

    Notes
    -----
    Each worker logs its runs' epoch counts as Dask events (``Worker.log_event``,
    at most two a second per run, cumulative) on a topic that this client
    subscribes to; the scheduler forwards them.  A count lost on the way only
    slows the display: a run's epochs all count when its record arrives.
    """
    distributed = _distributed("run_on")
    reporter = _reporter(progress, runs, [])
    own = reporter is not None and reporter is not progress
    # keys unique to this call: a key cancelled by an interrupted sweep may linger
    token = uuid.uuid4().hex[:8]
    topic = None
    if reporter is not None:
        topic = reporter.topic()
        client.subscribe_topic(topic, reporter.event)
    futures = {}
    for run in runs:
        key = f"blconv-run-{run.config_hash[:16]}-{token}"
        callbacks = [] if topic is None else [WorkerEpochs(topic, run.config_hash, run.epochs)]
        futures[client.submit(run_one, run, threads=threads, callbacks=callbacks, key=key,
                              checkpoint_dir=_saves(out_dir, run), retries=retries,
                              pure=False)] = run
    keys = {f.key for f in futures}
    try:
        pending = set(futures)
        while pending:
            try:
                finished, pending = distributed.wait(pending, timeout=poll,
                                                     return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            for f in finished:
                record = _record_of(f, futures.pop(f))
                on_result(record)
                if reporter is not None:
                    reporter.finished(record)
            if reporter is not None:
                # a worker holds up to ~1.1 x its threads of tasks: at most nthreads run
                nthreads = client.nthreads()
                running = sum(min(sum(k in keys for k in ks), nthreads.get(w, 1))
                              for w, ks in client.processing().items())
                reporter.poll(running=running)
    except BaseException:
        client.cancel(list(futures))   # interrupted: finished runs are already written
        raise
    finally:
        if topic is not None:
            client.unsubscribe_topic(topic)
        if own:
            reporter.close()


def _record_of(future, run) -> dict:
    """The task's record, or a ``failed`` one when the task itself errored."""
    if future.status == "finished":
        return future.result()
    exc = future.exception()
    tb = "".join(traceback.format_exception(type(exc), exc, future.traceback()))
    return make_record(run, status="failed", error=f"{type(exc).__name__}: {exc}",
                       traceback=tb, started=time.time())
