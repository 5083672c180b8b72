"""The transient memory of one correlation: per-sample estimates, batch chunks, and the
out-of-memory hint that names the option bounding it (``max_workspace_bytes``)."""
from __future__ import annotations

import contextlib
import math

import numpy as np

from . import _backend as B

__all__ = ["bytes_per_sample", "chunks", "memory_hint"]


def bytes_per_sample(geom, band, c_in, c_out, itemsize, energy):
    """Estimated transient bytes one sample needs in forward or backward (see Notes)."""
    F, K = band.retained, band.keep[-1]
    rows_in = math.prod(geom.length[:-1])
    rows_out = math.prod(geom.out[:-1])
    cs = 2 * itemsize
    est = cs * (2 * c_in * rows_in * K + 2 * F * (c_in + c_out) + 2 * c_out * rows_out * K)
    est += itemsize * (c_in * math.prod(geom.length) + c_out * math.prod(geom.out))
    if energy:
        est += cs * c_in * math.prod(band.fft_shape[:-1]) * (band.fft_shape[-1] // 2 + 1)
    return est


def chunks(fn, n, per_sample, max_workspace_bytes):
    if max_workspace_bytes is None:
        return [(0, n)]
    if (not isinstance(max_workspace_bytes, (int, np.integer)) or isinstance(max_workspace_bytes,
                                                                           bool)
            or max_workspace_bytes < 1):
        raise ValueError(f"{fn}: max_workspace_bytes must be None or an int >= 1, "
                         f"got {max_workspace_bytes!r}")
    size = max(1, int(max_workspace_bytes) // max(1, per_sample))
    return [(i, min(n, i + size)) for i in range(0, max(n, 1), size)]


@contextlib.contextmanager
def memory_hint(fn, xp):
    """CuPy's out-of-memory error re-raised as ``MemoryError`` naming the option that
    avoids it; every other error passes through."""
    try:
        yield
    except Exception as err:
        if B.is_cupy(xp) and type(err).__name__ == "OutOfMemoryError":
            raise MemoryError(f"{fn}: out of GPU memory ({err}); pass max_workspace_bytes=... "
                              f"(bytes) to process the batch in chunks") from err
        raise
