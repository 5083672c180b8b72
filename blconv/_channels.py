"""The channel products of a band-limited correlation, in blocks of frequencies.

Per retained frequency ``f`` and group, the forward is ``Y[f] = X[f] @ conj(W[f])``
and the backward ``conj(DX[f]) = conj(DY[f]) @ conj(W[f])^T`` and
``DW[f] = X[f]^T @ conj(DY[f])``, followed by the filters' inverse transform
``dw = Re(G @ DW)`` (``G`` the ``(taps, F)`` inverse DFT matrix of the tap positions).

The filters' retained spectrum ``conj(W)`` has ``F * C_in * C_out / groups`` entries,
each used by only ``N`` (the batch) multiply-adds: on a layer with many channels and
a small batch it is the largest array of the layer (FCN 256→128, length 150:
20 MB, eight times the input's spectrum), and writing it out and reading it back
costs as much as the products themselves.  So on NumPy it is never built whole:
each block of frequencies makes its own slice of it from ``w`` (one GEMM of the
``(block, taps)`` DFT matrix with the filters), uses it while it is in cache, and
the backward adds each block's ``G @ DW`` to ``dw``'s accumulator instead of
keeping ``DW``.  The blocks are shared out among the CPU threads of
:func:`blconv.fft_workers` (NumPy releases the GIL in BLAS and in its loops); with
one thread they run in order.  On other namespaces (CuPy, array API) there is one
block: one batched product per step, as few kernel launches as possible.
"""
from __future__ import annotations

import numpy as np

from . import _backend as B
from . import _threads, spectral

__all__ = ["Filters", "forward", "backward", "dw"]

#: Bytes of the filters' spectrum made per block (about a core's L2 cache).
_BLOCK_BYTES = 1 << 20
_MIN_BLOCK_PER_TAP = 4


class Filters:
    """The filters ``w`` ``(O, C/G, *k)`` of one call, ready for the channel products.

    ``block(f0, f1)`` is ``conj(W[f])`` per group for ``f0 <= f < f1``, shaped
    ``(f1 - f0, G, C/G, O/G)``, or with ``transposed`` (the backward's) its transpose
    ``(f1 - f0, G, O/G, C/G)``, made in that layout: BLAS runs the product with a
    contiguous right operand 20-40% faster than with a transposed view.  Nothing is
    transformed before the first ``block``: a backward that needs only ``dw`` uses the
    layout alone.
    """

    def __init__(self, w, band, *, start, step, groups, xp, opts, nthreads, transposed=False):
        self.xp, self.band, self.start, self.step, self.opts = xp, band, start, step, opts
        o, cg, *k = w.shape
        self.w, self.groups, self.cg, self.og, self.kernel = w, groups, cg, o // groups, tuple(k)
        self.taps = int(np.prod(k))
        self.nthreads, self.transposed = nthreads, transposed
        f = band.retained
        self.cdtype = spectral.complex_dtype(w.dtype, xp=xp)
        self.whole = (not B.is_numpy(xp)) or f * self.taps > spectral.FILTER_MATRIX_MAX
        self.size = f                    # whole: one block, as one batched product
        if not self.whole:
            # Each block reads the (P, C*O/G) filters and, in the backward, reads and writes
            # dw's (P, C*O/G) accumulator: blocks of fewer than a few times P frequencies
            # would move more than the spectrum they avoid (512 channels on a 5x5
            # transform: 15 frequencies, 9 taps), so a block has at least
            # _MIN_BLOCK_PER_TAP * P frequencies.
            per_freq = o * cg * np.dtype(self.cdtype).itemsize
            self.size = max(1, min(f, max(_BLOCK_BYTES // per_freq,
                                          _MIN_BLOCK_PER_TAP * self.taps)))
        self._made = None

    def _make(self):
        """The whole spectrum ``conj(W)`` ``(F, G, C/G, O/G)``, or for blocks the filters
        ``(P, G * C/G * O/G)`` (``(P, G * O/G * C/G)`` transposed), taps first so that a
        block's spectrum is one GEMM, and the ``(F, P)`` DFT matrix of the taps."""
        w, xp = self.w, self.xp
        if self.whole:
            return spectral.filter_forward(w, self.band, start=self.start, step=self.step,
                                           groups=self.groups, xp=xp, opts=self.opts)
        wt = np.ascontiguousarray(np.reshape(w, (self.groups, self.og, self.cg, self.taps))
                                  .transpose((3, 0, 1, 2) if self.transposed else (3, 0, 2, 1)))
        return (wt.reshape(self.taps, -1).astype(self.cdtype),
                spectral.filter_matrix(self.band, self.start, self.step, self.kernel,
                                       "fwd_conj", xp=xp, dtype=self.cdtype, like=w))

    def prepare(self):
        """Transform the filters now (idempotent): before threads share the blocks."""
        if self._made is None:
            self._made = self._make()
        return self

    def block(self, f0, f1):
        self.prepare()
        if self.whole:
            w_hat = self._made[f0:f1, ...]
            return self.xp.matrix_transpose(w_hat) if self.transposed else w_hat
        wt, e = self._made
        inner = (self.og, self.cg) if self.transposed else (self.cg, self.og)
        return np.reshape(e[f0:f1] @ wt, (f1 - f0, self.groups) + inner)


def forward(x_hat, filters: Filters, *, xp):
    """``Y[f] = X[f] @ conj(W[f])``: ``x_hat`` ``(F, G, m, C/G)`` to ``(F, G, m, O/G)``;
    with ``transposed`` filters ``X[f] @ conj(W[f])^T``, ``(F, G, m, O/G)`` to
    ``(F, G, m, C/G)`` (the transposed convolution's product)."""
    if filters.whole:
        return B.matmul(x_hat, filters.block(0, x_hat.shape[0]), xp=xp)
    F, G, m, _ = x_hat.shape
    filters.prepare()
    y_hat = np.empty((F, G, m, filters.cg if filters.transposed else filters.og),
                     dtype=filters.cdtype)

    def run(f0, f1):
        for b0 in range(f0, f1, filters.size):
            b1 = min(f1, b0 + filters.size)
            np.matmul(x_hat[b0:b1], filters.block(b0, b1), out=y_hat[b0:b1])

    _threads.parallel(run, F, filters.nthreads, filters.size)
    return y_hat


def backward(x_hat, cdy, filters: Filters, *, xp, need_dx=True, need_dw=True):
    """``conj(DX)`` ``(F, G, m, C/G)`` and ``dw``'s part from ``x_hat`` ``(F, G, m, C/G)`` and
    ``cdy = conj(DY)`` ``(F, G, m, O/G)``.

    The ``dw`` part is an accumulator to pass to :func:`dw`: ``DW`` summed over the
    batch (whole), or its inverse transform ``G @ DW`` ``(P, G * C/G * O/G)`` (blocks).
    Without ``need_dx``, ``conj(DX)`` is not computed (``None``), and ``filters``
    may be either orientation; without ``need_dw`` the part is ``None``.
    """
    if filters.whole:
        return (B.matmul(cdy, filters.block(0, cdy.shape[0]), xp=xp) if need_dx else None,
                B.matmul(xp.matrix_transpose(x_hat), cdy, xp=xp) if need_dw else None)
    F, G, m, cg = x_hat.shape
    dx_hat = None
    if need_dx:
        filters.prepare()
        dx_hat = np.empty((F, G, m, cg), dtype=filters.cdtype)
    g = spectral.filter_matrix(filters.band, filters.start, filters.step, filters.kernel,
                               "inv_real", xp=xp, dtype=filters.cdtype, like=x_hat)  # (P, F)

    def run(f0, f1):
        acc = None
        for b0 in range(f0, f1, filters.size):
            b1 = min(f1, b0 + filters.size)
            if need_dx:
                np.matmul(cdy[b0:b1], filters.block(b0, b1), out=dx_hat[b0:b1])
            if not need_dw:
                continue
            part = np.matrix_transpose(x_hat[b0:b1]) @ cdy[b0:b1]      # (Fb, G, C/G, O/G)
            part = g[:, b0:b1] @ np.reshape(part, (b1 - b0, -1))       # (P, G*C/G*O/G)
            if acc is None:
                acc = part
            else:
                acc += part
        return acc

    parts = _threads.parallel(run, F, filters.nthreads, filters.size)
    if not need_dw:
        return dx_hat, None
    acc = parts[0]
    for p in parts[1:]:
        acc += p
    return dx_hat, acc


def dw(acc, filters: Filters, *, xp):
    """The filters' gradient ``(O, C/G, *k)`` from the accumulated part of :func:`backward`."""
    if filters.whole:
        return spectral.filter_inverse(acc, filters.band, start=filters.start,
                                       step=filters.step, count=filters.kernel, xp=xp,
                                       opts=filters.opts)
    G, cg, og = filters.groups, filters.cg, filters.og
    wt = np.real(acc).reshape(filters.taps, G, cg, og).transpose(1, 3, 2, 0)  # (G, O/G, C/G, P)
    return np.ascontiguousarray(wt).reshape((G * og, cg) + filters.kernel)
