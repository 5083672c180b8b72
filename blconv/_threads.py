"""blconv's own CPU threads: work split into runs of whole blocks, one run per thread.

NumPy releases the GIL in BLAS and in its copying loops, so a small pool of Python
threads can keep the cores busy on the many medium-sized GEMMs and copies of one
layer.  It does so only where BLAS leaves the cores idle: when NumPy's BLAS runs
one thread (``threadpoolctl.threadpool_limits(1)``, ``OPENBLAS_NUM_THREADS=1``).
Measured on 2 cores, the per-frequency channel products split between two Python
threads over a one-thread BLAS ran 20-25% faster than one batched product over a
two-thread BLAS; over a two-thread BLAS the same split was no faster, and on a busy
machine it was slower (OpenBLAS's workers spin after each call and compete with the
second Python thread), so there the cores are left to BLAS.

The number of threads is :func:`blconv.fft_workers` (``-1``: the usable cores);
the split depends only on the sizes and the thread count, and every element is
computed by the same arithmetic whatever the split (sums over blocks aside), so
results agree across thread counts to rounding.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import _backend as B

__all__ = ["blas_threads", "count", "parallel"]

_POOL: list = []
_LOCK = threading.Lock()


def count(opts, *, xp) -> int:
    """Threads for blconv's own CPU work: ``opts.fft_workers`` (``-1``: the usable cores)
    on NumPy when its BLAS runs one thread; one otherwise (a multi-threaded BLAS has the
    cores; a GPU's work is the device's)."""
    if not B.is_numpy(xp) or opts.fft_workers == 1 or blas_threads() > 1:
        return 1
    if opts.fft_workers > 0:
        return opts.fft_workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_BLAS: list = []


def blas_threads() -> int:
    """Threads of the BLAS behind NumPy's matmul now (read through :mod:`threadpoolctl`,
    whose library scan runs once); 2 when it cannot be found (as if multi-threaded)."""
    if not _BLAS:
        try:
            import threadpoolctl
            libs = [c for c in threadpoolctl.ThreadpoolController().lib_controllers
                    if c.user_api == "blas"]
        except Exception:  # pragma: no cover - depends on the installation
            libs = []
        _BLAS.append([c for c in libs if "numpy" in c.filepath] or libs)
    return max((c.num_threads for c in _BLAS[0]), default=2)


def _submit(n: int, fn, *args):
    """``fn(*args)`` on the pool, grown to at least ``n`` workers first (under the lock, so
    that no thread submits to a pool another has just replaced)."""
    with _LOCK:
        if not _POOL or _POOL[0]._max_workers < n:
            if _POOL:
                _POOL.pop().shutdown(wait=False)       # its queued work still runs
            _POOL.append(ThreadPoolExecutor(max_workers=n, thread_name_prefix="blconv"))
        return _POOL[0].submit(fn, *args)


def parallel(run, n: int, nthreads: int, block: int) -> list:
    """``run(i0, i1)`` over ``[0, n)`` cut into at most ``nthreads`` runs of whole blocks of
    ``block``; their results in order.  The calling thread takes the first run."""
    nblocks = -(-n // block)
    parts = max(1, min(nthreads, nblocks))
    if parts == 1:
        return [run(0, n)]
    cuts = [min(n, (nblocks * i // parts) * block) for i in range(parts + 1)]
    futures = [_submit(parts - 1, run, cuts[i], cuts[i + 1]) for i in range(1, parts)]
    first = run(cuts[0], cuts[1])
    return [first] + [f.result() for f in futures]
