"""Speed settings: how results are computed, never what they are; and one precision choice.

Each speed setting changes time or memory only.  The band, and so every output and
gradient, is a function of the arguments of the call alone (shapes, padding,
dilation, ``compress_rate``/``preserve_energy``, ``fft_size``): outputs under
two settings agree to floating-point rounding (a different summation order),
never more than that.  The exception is :func:`tf32`, a precision the caller asks
for: float32 products on a GPU with TF32 inputs, as PyTorch's cuDNN convolutions
compute by default.

Every setting has a process-wide default (``set_*``) and a context manager
that changes it for the code inside the ``with`` block only, in this thread
or asyncio task (a :mod:`contextvars` variable).  A call reads the settings
once, at its entry.

Examples
--------
>>> import numpy as np, blconv
>>> x = np.random.default_rng(0).standard_normal((2, 3, 40)); w = np.ones((4, 3, 5))
>>> y = blconv.conv1d(x, w, padding=2, compress_rate=0.5)
>>> with blconv.transform("fft"), blconv.fft_workers(1):
...     y_fft = blconv.conv1d(x, w, padding=2, compress_rate=0.5)
>>> bool(np.allclose(y, y_fft, rtol=0, atol=1e-12))
True
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from dataclasses import dataclass

__all__ = ["Settings", "current", "set_transform", "transform", "set_fft_workers",
           "fft_workers", "set_max_workspace_bytes", "max_workspace_bytes",
           "set_plan_cache_size", "plan_cache_size", "set_cuda_graphs", "cuda_graphs",
           "set_tf32", "tf32"]


@dataclass(frozen=True)
class Settings:
    """The speed settings in force.

    Attributes
    ----------
    transform : {"auto", "matrix", "fft"}
        How each spatial axis is transformed: ``"matrix"`` a GEMM with the DFT
        matrix restricted to the retained frequencies, ``"fft"`` a full FFT then
        the retained coefficients, ``"auto"`` the matrix for FFT sizes
        ``<= matrix_max_n`` and the FFT above.  Both routes are exact for every size.
    matrix_max_n : int
        The switch-over size of ``"auto"``.
    fft_workers : int
        Threads of :mod:`scipy.fft` for NumPy inputs (``-1``: all cores); the
        environment variable ``BLCONV_FFT_WORKERS`` sets the initial default.
    max_workspace_bytes : int or None
        Default bound on the transient memory of one call, for calls that do
        not pass ``max_workspace_bytes`` themselves (``None``: no bound).
    cuda_graphs : bool
        On CuPy, replay each correlation's forward and backward from a CUDA graph
        captured on its first call (:mod:`blconv._graphs`); off by default.
    tf32 : bool
        On CuPy, float32 and complex64 matrix products (the transforms and the
        channel products) read their inputs rounded to TF32 on the tensor cores; off
        by default.  A precision, not a speed setting: see :func:`set_tf32`.
    """
    transform: str = "auto"
    matrix_max_n: int = 256
    fft_workers: int = -1
    max_workspace_bytes: int | None = None
    cuda_graphs: bool = False
    tf32: bool = False

    def use_matrix(self, n: int) -> bool:
        """Whether an axis of FFT size ``n`` goes through the DFT-matrix route."""
        return self.transform == "matrix" or (self.transform == "auto"
                                              and n <= self.matrix_max_n)


def _check_workers(fn: str, workers) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers == 0 \
            or workers < -1:
        raise ValueError(f"{fn}: workers must be -1 or a positive int, got {workers!r}")
    return workers


def _initial() -> Settings:
    env = os.environ.get("BLCONV_FFT_WORKERS", "-1")
    try:
        workers = _check_workers("BLCONV_FFT_WORKERS", int(env))
    except ValueError:
        raise ValueError(f"BLCONV_FFT_WORKERS must be -1 or a positive int, got {env!r}") \
            from None
    return Settings(fft_workers=workers)


_DEFAULT = [_initial()]                     # the process-wide default, replaced whole
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("blconv_settings", default=None)


def current() -> Settings:
    """The settings in force here: the innermost context manager's, else the default."""
    s = _CURRENT.get()
    return _DEFAULT[0] if s is None else s


def _set_default(**changes) -> None:
    _DEFAULT[0] = dataclasses.replace(_DEFAULT[0], **changes)


@contextlib.contextmanager
def _scoped(**changes):
    token = _CURRENT.set(dataclasses.replace(current(), **changes))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def using(s: Settings):
    """Context manager: exactly the settings ``s`` inside (a backward that runs in another
    thread than its forward, as PyTorch's on CUDA, takes the forward's this way)."""
    token = _CURRENT.set(s)
    try:
        yield s
    finally:
        _CURRENT.reset(token)


def _check_transform(fn: str, mode, matrix_max_n) -> dict:
    if mode not in ("auto", "matrix", "fft"):
        raise ValueError(f"{fn}: mode must be 'auto', 'matrix' or 'fft', got {mode!r}")
    if not isinstance(matrix_max_n, int) or isinstance(matrix_max_n, bool) or matrix_max_n < 1:
        raise ValueError(f"{fn}: matrix_max_n must be an int >= 1, got {matrix_max_n!r}")
    return {"transform": mode, "matrix_max_n": matrix_max_n}


def set_transform(mode: str = "auto", *, matrix_max_n: int = 256) -> None:
    """Set the default transform route of every spatial axis (speed only).

    Parameters
    ----------
    mode : {"auto", "matrix", "fft"}
        See :class:`Settings`.
    matrix_max_n : int
        The switch-over FFT size for ``"auto"``.

    See Also
    --------
    transform : the same for a ``with`` block.

    Examples
    --------
    >>> import blconv
    >>> blconv.set_transform("fft"); blconv.set_transform("auto")
    """
    _set_default(**_check_transform("set_transform", mode, matrix_max_n))


def transform(mode: str = "auto", *, matrix_max_n: int = 256):
    """Context manager: the transform route inside a ``with`` block (speed only).

    Examples
    --------
    >>> import numpy as np, blconv
    >>> with blconv.transform("matrix"):
    ...     y = blconv.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)), padding=1)
    """
    return _scoped(**_check_transform("transform", mode, matrix_max_n))


def set_fft_workers(workers: int) -> None:
    """Set the default number of threads for CPU FFTs (``-1``: all cores; speed only).

    Examples
    --------
    >>> import blconv
    >>> blconv.set_fft_workers(1); blconv.set_fft_workers(-1)
    """
    _set_default(fft_workers=_check_workers("set_fft_workers", workers))


def fft_workers(workers: int):
    """Context manager: the threads of CPU FFTs inside a ``with`` block (speed only).

    Examples
    --------
    >>> import blconv
    >>> with blconv.fft_workers(1):
    ...     blconv.settings.current().fft_workers
    1
    """
    return _scoped(fft_workers=_check_workers("fft_workers", workers))


def _check_workspace(fn: str, nbytes) -> int | None:
    if nbytes is not None and (not isinstance(nbytes, int) or isinstance(nbytes, bool)
                               or nbytes < 1):
        raise ValueError(f"{fn}: max_workspace_bytes must be None or an int >= 1, "
                         f"got {nbytes!r}")
    return nbytes


def set_max_workspace_bytes(nbytes: int | None) -> None:
    """Set the default bound on one call's transient memory (``None``: unbounded).

    A bounded call processes its batch in chunks; results equal the unchunked
    ones to rounding.

    Examples
    --------
    >>> import blconv
    >>> blconv.set_max_workspace_bytes(None)
    """
    _set_default(max_workspace_bytes=_check_workspace("set_max_workspace_bytes", nbytes))


def max_workspace_bytes(nbytes: int | None):
    """Context manager: the default workspace bound inside a ``with`` block.

    Examples
    --------
    >>> import numpy as np, blconv
    >>> with blconv.max_workspace_bytes(1 << 16):
    ...     y = blconv.conv1d(np.ones((64, 2, 100)), np.ones((3, 2, 5)))
    >>> y.shape
    (64, 3, 96)
    """
    return _scoped(max_workspace_bytes=_check_workspace("max_workspace_bytes", nbytes))


def _check_flag(fn: str, enabled) -> bool:
    if not isinstance(enabled, bool):
        raise TypeError(f"{fn}: enabled must be True or False, got {enabled!r}")
    return enabled


def set_cuda_graphs(enabled: bool) -> None:
    """Set whether CuPy correlations run from CUDA graphs (speed only; off by default).

    With it on, the first forward (or backward) of each signature on CuPy (shapes,
    dtypes, band, geometry, settings, device and stream) runs its products
    through cuBLAS directly and is captured into a CUDA graph; later calls of that
    signature copy their inputs into the graph's buffers, launch it as one unit and
    copy the outputs out.  The captured and the replayed calls give the same bits;
    against the setting off they agree to rounding (the same products, through a
    different cuBLAS entry point).  The per-frequency route with a fixed band, in one
    batch chunk, on DFT-matrix transforms is captured; every other call (energy
    bands, chunked batches, the FFT route, 1x1 filters) runs as without the setting.
    The graphs hold device memory: their own copies of their inputs and outputs (at
    most 4 GiB in all, the least recently used dropped first) and, per stream, the
    intermediates they share (about the largest graph's); :func:`blconv.clear_caches`
    frees it.  NumPy arrays never use graphs.

    Examples
    --------
    >>> import blconv
    >>> blconv.set_cuda_graphs(True); blconv.set_cuda_graphs(False)
    """
    _set_default(cuda_graphs=_check_flag("set_cuda_graphs", enabled))


def cuda_graphs(enabled: bool):
    """Context manager: CUDA graphs on or off inside a ``with`` block (speed only).

    Examples
    --------
    >>> import blconv
    >>> with blconv.cuda_graphs(True):
    ...     blconv.settings.current().cuda_graphs
    True
    """
    return _scoped(cuda_graphs=_check_flag("cuda_graphs", enabled))


def set_tf32(enabled: bool) -> None:
    """Set whether float32 products on a GPU use TF32 tensor cores (off by default).

    With it on, every float32 and complex64 matrix product of a correlation on CuPy
    (the DFT-matrix transforms and the per-frequency channel products) runs through
    cuBLAS with TF32 inputs (a 10-bit mantissa, unit roundoff ``2**-11``) and float32
    accumulation, as PyTorch's cuDNN convolutions compute by default
    (``torch.backends.cudnn.allow_tf32``).  This changes results: TF32's unit
    roundoff is ``2**-11`` against float32's ``2**-24``, so a layer's norm-wise
    relative error against float64 is expected near ``1e-3`` rather than ``1e-6``.
    NumPy and float64 are not affected.

    Examples
    --------
    >>> import blconv
    >>> blconv.set_tf32(True); blconv.set_tf32(False)
    """
    _set_default(tf32=_check_flag("set_tf32", enabled))


def tf32(enabled: bool):
    """Context manager: TF32 products on a GPU on or off inside a ``with`` block.

    Examples
    --------
    >>> import blconv
    >>> with blconv.tf32(True):
    ...     blconv.settings.current().tf32
    True
    """
    return _scoped(tf32=_check_flag("tf32", enabled))


def _plan_cache(fn: str):
    try:
        import cupy
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise RuntimeError(f"{fn}: CuPy is not installed") from e
    return cupy.fft.config.get_plan_cache()  # pragma: no cover


def set_plan_cache_size(size: int) -> None:
    """Bound CuPy's cuFFT plan cache (this thread, current device) to ``size`` plans.

    Raises
    ------
    RuntimeError
        When CuPy is not installed.
    """
    _plan_cache("set_plan_cache_size").set_size(int(size))  # pragma: no cover


@contextlib.contextmanager
def plan_cache_size(size: int):
    """Context manager: CuPy's cuFFT plan cache bounded to ``size`` plans inside a
    ``with`` block, its previous size restored after.

    Raises
    ------
    RuntimeError
        When CuPy is not installed.
    """
    cache = _plan_cache("plan_cache_size")
    old = cache.get_size()  # pragma: no cover
    cache.set_size(int(size))  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        cache.set_size(old)
