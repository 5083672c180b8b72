"""CUDA graphs: a correlation's forward or backward replayed on CuPy as one launch.

Eager, one forward on CuPy is some twenty array operations, each dispatched from
Python with a kernel launch; on the CNN layers that dispatch, not the arithmetic,
sets the time (docs/benchmarks.md, "Results: GPU").  Under the setting
:func:`blconv.cuda_graphs`, :func:`run` takes a function of arrays and a *signature*
(everything its sequence of operations depends on besides the arrays' values:
shapes, dtypes, band, geometry, settings; the device and stream are added here):

* the first call of a signature copies its inputs into fresh C-contiguous buffers and
  runs the function on them once, with its products routed through cuBLAS directly
  (:mod:`blconv._cublas`: CuPy's own ``matmul`` refuses to run while a stream
  captures), so that kernels are compiled and caches filled; then it captures the same
  operations on the same buffers into a graph;
* every call, the first included, copies its inputs into the graph's input buffers,
  launches the graph on the current stream and copies the outputs out, so that nothing
  a caller holds is the graph's memory and a replay never overwrites an earlier result.

Every call of a signature runs the same kernels on the same buffers: they give the
same bits.  Each graph keeps a private CuPy memory pool with its
inputs, intermediates and outputs for as long as it is cached; the cache holds at most
:data:`MAX_BYTES` of them, least recently used first out, and
:func:`blconv.clear_caches` empties it.  A signature whose capture fails runs eagerly
from then on, with one warning per process naming the reason.
"""
from __future__ import annotations

import warnings

from . import _backend as B
from . import settings
from ._cache import ByteCache

__all__ = ["run", "clear", "MAX_BYTES"]

#: Device bytes the cached graphs may hold together.
MAX_BYTES = 1 << 30

_FAILED = object()


_CACHE = ByteCache(MAX_BYTES)
_WARNED = [False]                       # a failed capture is reported once per process


def clear() -> None:
    """Drop every cached graph (their device memory goes back with them)."""
    _CACHE.clear()


class _Entry:
    """One captured graph, its input and output buffers, and the pool that holds them."""

    def __init__(self, graph, inputs, outputs, pool, nbytes):
        self.graph, self.inputs, self.outputs = graph, inputs, outputs
        self.pool, self.nbytes = pool, nbytes
        self.replays = 0


class _CuPyGraphs:
    """Capture and replay with CuPy's streams, graphs and memory pools."""

    def __init__(self, cp):
        self.cp = cp

    def where(self):
        """The device and stream a graph is captured for and replayed on."""
        return (self.cp.cuda.Device().id, self.cp.cuda.get_current_stream().ptr)

    def capturing(self) -> bool:
        return bool(self.cp.cuda.get_current_stream().is_capturing())

    def buffers(self, arrays):
        """The graph's input buffers, C-contiguous, from a pool of its own, holding the
        values of ``arrays``; and that pool."""
        cp = self.cp
        pool = cp.cuda.MemoryPool()
        with cp.cuda.using_allocator(pool.malloc):
            inputs = tuple(None if a is None else cp.empty(a.shape, a.dtype) for a in arrays)
        for buf, a in zip(inputs, arrays):
            if buf is not None:
                buf[...] = a
        return pool, inputs

    def capture(self, fn, pool, inputs):
        cp = self.cp
        caller = cp.cuda.get_current_stream()
        side = cp.cuda.Stream(non_blocking=True)          # the legacy stream cannot capture
        side.wait_event(caller.record())
        with cp.cuda.using_allocator(pool.malloc), side:
            side.begin_capture()
            try:
                outputs = fn(*inputs)
            except BaseException:
                try:
                    side.end_capture()
                except Exception:        # the capture is already invalid: the first error counts
                    pass
                raise
            graph = side.end_capture()
        caller.wait_event(side.record())
        return _Entry(graph, inputs, outputs, pool, pool.total_bytes())

    def replay(self, entry, arrays):
        for buf, a in zip(entry.inputs, arrays):
            if buf is not None:
                buf[...] = a
        entry.graph.launch()
        return tuple(None if o is None else o.copy() for o in entry.outputs)


def _graphs_for(xp):
    """The capture backend for namespace ``xp``, or ``None`` where graphs do not apply."""
    if B.is_cupy(xp):
        import cupy
        return _CuPyGraphs(cupy)
    return None


def run(signature, fn, arrays, *, xp, capturable=True):
    """``fn(*arrays)`` (a tuple of arrays, ``None`` entries allowed in and out), replayed
    from a CUDA graph under the setting :func:`blconv.cuda_graphs`.

    ``signature`` must be hashable and hold everything ``fn``'s operations depend on
    besides the values in ``arrays`` (whose shapes and dtypes are added here);
    ``capturable=False`` says that ``fn`` needs the host (an index sent to the device)
    and runs it as it is.
    """
    if not (capturable and settings.current().cuda_graphs):
        return fn(*arrays)
    backend = _graphs_for(xp)
    if backend is None:
        return fn(*arrays)
    if backend.capturing():              # inside a capture of the caller's: be part of it
        with B.direct_gemm():
            return fn(*arrays)
    key = (signature, backend.where(),
           tuple(None if a is None else (tuple(a.shape), str(a.dtype)) for a in arrays))
    entry = _CACHE.get(key)
    if entry is _FAILED:
        return fn(*arrays)
    if entry is not None:
        entry.replays += 1
        return backend.replay(entry, arrays)
    with B.direct_gemm():
        pool, inputs = backend.buffers(arrays)
        # a first run on the graph's own buffers (errors here are the call's own): kernels
        # compiled for these layouts, DFT matrices on the device, cuBLAS ready, none of
        # which a capture may do
        fn(*inputs)
        try:
            entry = backend.capture(fn, pool, inputs)
        except Exception as err:
            _CACHE.put(key, _FAILED, 0)
            if not _WARNED[0]:
                _WARNED[0] = True
                warnings.warn(f"blconv: CUDA graph capture failed ({type(err).__name__}: {err}); "
                              f"these calls run without graphs", RuntimeWarning, stacklevel=3)
            return fn(*arrays)
    if not _CACHE.put(key, entry, entry.nbytes):     # larger than the whole cache
        _CACHE.put(key, _FAILED, 0)
    # the first call's result comes from the graph too: every call of a signature runs the
    # same kernels on the same buffers
    return backend.replay(entry, arrays)
