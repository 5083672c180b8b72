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
same bits.  The graphs of a stream take their memory from one private CuPy memory
pool: each keeps its own input and output buffers for as long as it is cached, and
they share their intermediates (replays on one stream run one after the other).  The
cache holds at most :data:`MAX_BYTES` of input and output buffers, least recently used
first out, and :func:`blconv.clear_caches` empties it and frees the pools.  A
signature whose capture fails runs eagerly from then on, with one warning per process
naming the reason.
"""
from __future__ import annotations

import warnings

from . import _backend as B
from . import settings
from ._cache import ByteCache

__all__ = ["run", "clear", "MAX_BYTES"]

#: Device bytes of the cached graphs' own input and output buffers, together (the
#: intermediates, shared by the graphs of a stream, come on top: about the largest
#: graph's).
MAX_BYTES = 4 << 30

_FAILED = object()


_CACHE = ByteCache(MAX_BYTES)
_POOLS: dict = {}                       # (device, stream) -> (memory pool, capture stream)
_WARNED = [False]                       # a failed capture is reported once per process


def clear() -> None:
    """Drop every cached graph and the memory pools they share (their device memory goes
    back with them)."""
    _CACHE.clear()
    _POOLS.clear()


class _Entry:
    """One captured graph and its input and output buffers."""

    def __init__(self, graph, inputs, outputs, nbytes):
        self.graph, self.inputs, self.outputs, self.nbytes = graph, inputs, outputs, nbytes
        self.replays = 0


class _CuPyGraphs:
    """Capture and replay with CuPy's streams, graphs and memory pools."""

    def __init__(self, cp):
        self.cp = cp

    def where(self):
        """The device and stream a graph is captured for and replayed on."""
        return (self.cp.cuda.Device().id, self.cp.cuda.get_current_stream().ptr)

    def capturing(self) -> bool:
        try:
            return bool(self.cp.cuda.get_current_stream().is_capturing())
        except RuntimeError:     # the legacy stream, queried while another stream captures
            return True

    def _pool(self):
        """The memory pool and capture stream of the current device and stream.

        Every graph of one stream takes its memory from one pool: replays on a stream
        run one after the other, and a graph's intermediates are dead once its outputs
        are copied out, so the graphs share them (the pool holds about the largest
        graph's), while each keeps its own input and output buffers.  The legacy stream
        cannot capture: the capture stream is a stream of its own.
        """
        key = self.where()
        got = _POOLS.get(key)
        if got is None:
            got = _POOLS[key] = (self.cp.cuda.MemoryPool(),
                                 self.cp.cuda.Stream(non_blocking=True))
        return got

    def buffers(self, arrays):
        """The graph's input buffers, C-contiguous, holding the values of ``arrays``."""
        cp = self.cp
        pool, side = self._pool()
        with cp.cuda.using_allocator(pool.malloc), side:
            inputs = tuple(None if a is None else cp.empty(a.shape, a.dtype) for a in arrays)
        for buf, a in zip(inputs, arrays):
            if buf is not None:
                buf[...] = a
        return inputs

    def capture(self, fn, inputs):
        cp = self.cp
        caller = cp.cuda.get_current_stream()
        pool, side = self._pool()
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
        own = sum(a.nbytes for a in inputs + tuple(outputs) if a is not None)
        return _Entry(graph, inputs, outputs, own)

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
        inputs = backend.buffers(arrays)
        # a first run on the graph's own buffers (errors here are the call's own): kernels
        # compiled for these layouts, DFT matrices on the device, cuBLAS ready, none of
        # which a capture may do
        fn(*inputs)
        try:
            entry = backend.capture(fn, inputs)
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
