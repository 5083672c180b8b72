"""Benchmark of band-limited convolution against its peers: ``python -m blconv bench``.

The layers are those of the paper's experiments: the ResNet-18 stages on CIFAR-10
(batch 32, 3x3 filters, padding 1) and the fully convolutional network of Wang et
al. (2017) for UCR time series (batch 16, length 150, padding ``'same'``), all in
float32.  For every layer each *configuration* -- blconv at each compress rate, and
each peer once -- is timed forward only and forward+backward:

``blconv``
    :func:`blconv.conv2d_forward` / :func:`blconv.conv2d_backward` (or 1D), NumPy or,
    with ``device='gpu'``, CuPy.
``reference``
    :mod:`blconv.reference`: im2col + GEMM in NumPy (CPU only).
``fftconvolve``
    Multi-channel correlation through :func:`scipy.signal.fftconvolve`, broadcast
    over batch and channels (:func:`fftconvolve_forward`, :func:`fftconvolve_backward`;
    CPU only).
``torch``
    ``torch.nn.functional.conv1d/conv2d`` with autograd, when PyTorch is importable
    (never a dependency of blconv).

Notes
-----
Timed repeats are *interleaved*: repeat ``r`` of every configuration of a layer runs
before repeat ``r + 1`` of any, so a drift in machine speed hits all of them alike;
the medians are reported.  Before timing, each configuration runs one untimed
forward+backward that measures its memory (``tracemalloc`` for NumPy, which traces
NumPy's allocations; a CuPy memory hook or ``torch.cuda.max_memory_allocated`` on
the GPU; nothing for PyTorch on the CPU, whose allocator tracemalloc cannot see) and
doubles as a warm-up, then ``warmup`` further untimed rounds for blconv and torch.
The slow peers (``reference``, ``fftconvolve``) get ``peer_repeats`` timed repeats,
fewer (at least one) once their timed calls on a layer exceed ``peer_budget`` seconds.
When the timed method changes, the run pauses (``pause``) so that threads left
spinning by the previous library do not slow the next.

``ctx`` bytes are what each method keeps between forward and backward:
``ctx.nbytes`` for blconv (the retained spectra), the tensors saved by autograd for
torch, and ``x`` plus ``w`` for the reference and fftconvolve peers, whose backward
takes exactly those.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy
import scipy.fft
import scipy.signal
import threadpoolctl

from . import __version__, _backend, reference
from .conv import conv1d_backward, conv1d_forward, conv2d_backward, conv2d_forward

__all__ = ["DEFAULT_RATES", "LAYERS", "METHODS", "QUICK_BATCH", "Layer", "add_parser",
           "fftconvolve_backward", "fftconvolve_forward", "format_table", "format_targets",
           "machine_info", "main", "run_benchmark"]


@dataclass(frozen=True)
class Layer:
    """One benchmarked convolution: ``(batch, c_in, *size) -> (batch, c_out, *size)``.

    Attributes
    ----------
    name : str
    dim : int
        1 or 2 spatial axes.
    batch, c_in, c_out, size, kernel : int
        ``size`` and ``kernel`` are per axis (square in 2D).
    padding : int or 'same'
    bias : bool
        ResNet's convolutions have none (batch norm follows); the FCN's have one.
    note : str
        Where the layer comes from.
    """
    name: str
    dim: int
    batch: int
    c_in: int
    c_out: int
    size: int
    kernel: int
    padding: int | str
    bias: bool
    note: str

    @property
    def x_shape(self) -> tuple:
        return (self.batch, self.c_in) + (self.size,) * self.dim

    @property
    def w_shape(self) -> tuple:
        return (self.c_out, self.c_in) + (self.kernel,) * self.dim

    @property
    def y_shape(self) -> tuple:
        p = self.padding
        out = self.size if p == "same" else self.size + 2 * p - self.kernel + 1
        return (self.batch, self.c_out) + (out,) * self.dim


def _resnet(name, c_in, c_out, size, note):
    return Layer(name, 2, 32, c_in, c_out, size, 3, 1, False, note)


def _fcn(name, c_in, c_out, kernel, note):
    return Layer(name, 1, 16, c_in, c_out, 150, kernel, "same", True, note)


#: The benchmarked layers by name, in the order they run.
LAYERS = {layer.name: layer for layer in [
    _resnet("resnet-first", 3, 64, 32, "ResNet-18/CIFAR first layer"),
    _resnet("resnet64", 64, 64, 32, "ResNet-18/CIFAR stage 1"),
    _resnet("resnet128", 128, 128, 16, "ResNet-18/CIFAR stage 2"),
    _resnet("resnet256", 256, 256, 8, "ResNet-18/CIFAR stage 3"),
    _resnet("resnet512", 512, 512, 4, "ResNet-18/CIFAR stage 4"),
    _fcn("fcn1", 1, 128, 8, "FCN (Wang et al. 2017) block 1, UCR length 150"),
    _fcn("fcn2", 128, 256, 5, "FCN block 2"),
    _fcn("fcn3", 256, 128, 3, "FCN block 3"),
]}
#: Methods in table order; 'reference' and 'fftconvolve' are CPU only.
METHODS = ("blconv", "torch", "reference", "fftconvolve")
_SLOW = ("reference", "fftconvolve")
DEFAULT_RATES = (0.0, 0.25, 0.5, 0.75)
#: Batch size of ``--quick`` (smoke tests).
QUICK_BATCH = 2
_MB = 1e6


# --- the fftconvolve peer ---------------------------------------------------------
def _batch_slices(n, per_sample, max_bytes):
    """Slices of the batch axis such that ``len * per_sample`` stays near ``max_bytes``."""
    step = max(1, int(max_bytes // max(per_sample, 1)))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _spectrum_bytes(c_in, c_out, length):
    # one sample's broadcast (C_out, C_in, *fft) complex64 product, with its inverse
    return 16 * c_in * c_out * int(np.prod([scipy.fft.next_fast_len(n, real=True)
                                            for n in length]))


def fftconvolve_forward(x, w, b=None, *, padding=0, workers=None, max_bytes=2**30):
    """Multi-channel cross-correlation through :func:`scipy.signal.fftconvolve`.

    Stride 1, dilation 1, one group: the naive FFT peer the benchmark compares
    blconv with.

    Parameters
    ----------
    x : ndarray, shape ``(N, C_in, *size)``
    w : ndarray, shape ``(C_out, C_in, *kernel)``
    b : ndarray, shape (C_out,), optional
    padding : int, tuple of int or 'same'
        Zero padding on both sides (``'same'``: the odd extra element on the right).
    workers : int, optional
        Threads for :mod:`scipy.fft` (default one).
    max_bytes : int
        The batch is split so that each fftconvolve call's broadcast spectra take
        about this many bytes (at least one sample per call).

    Returns
    -------
    y : ndarray, shape ``(N, C_out, *out)``, dtype of ``x``

    Notes
    -----
    ``y[n, o] = sum_c x_pad[n, c] (*) flip(w[o, c])`` in ``'valid'`` mode: one
    convolution per ``(n, o, c)``, broadcast as ``(N, 1, C) x (1, O, C)``.  The sum
    over channels happens after the inverse transforms, so the cost grows as
    ``N * C_in * C_out`` inverse FFTs (blconv sums in the frequency domain instead).

    Examples
    --------
    >>> import numpy as np
    >>> fftconvolve_forward(np.array([[[1., 2., 3., 4.]]]), np.array([[[1., -1.]]])).round(6)
    array([[[-1., -1., -1.]]])
    """
    x, w = np.asarray(x), np.asarray(w)
    d = x.ndim - 2
    axes = tuple(range(-d, 0))
    x_pad = np.pad(x, [(0, 0), (0, 0)] + reference.pads(x.shape[2:], w.shape[2:], padding, 1))
    w_flip = w[(Ellipsis,) + (slice(None, None, -1),) * d][None]
    per_sample = _spectrum_bytes(x.shape[1], w.shape[0], x_pad.shape[2:])
    with scipy.fft.set_workers(workers or 1):
        # (n, 1, C, *P) (*) (1, O, C, *k) -> (n, O, C, *out), summed over C
        y = np.concatenate([
            scipy.signal.fftconvolve(x_pad[sl, None], w_flip, mode="valid", axes=axes).sum(2)
            for sl in _batch_slices(x.shape[0], per_sample, max_bytes)])
    if b is not None:
        y = y + np.asarray(b).reshape((-1,) + (1,) * d)
    return y.astype(x.dtype, copy=False)


def fftconvolve_backward(dy, x, w, *, padding=0, bias=True, workers=None, max_bytes=2**30):
    """Gradients ``(dx, dw, db)`` of :func:`fftconvolve_forward`, also by fftconvolve.

    Parameters
    ----------
    dy : ndarray, shape ``(N, C_out, *out)``
    x, w, padding, workers, max_bytes
        As given to :func:`fftconvolve_forward`.
    bias : bool
        Whether to return ``db`` (else ``None``).

    Returns
    -------
    dx : ndarray, shape of ``x``
    dw : ndarray, shape of ``w``
    db : ndarray, shape (C_out,), or None

    Notes
    -----
    ``dx_pad[n, c] = sum_o dy[n, o] (*) w[o, c]`` in ``'full'`` mode, cropped by the
    padding; ``dw[o, c] = sum_n x_pad[n, c] (*) flip(dy[n, o])`` in ``'valid'`` mode.

    Examples
    --------
    >>> import numpy as np
    >>> dx, dw, db = fftconvolve_backward(np.ones((1, 1, 3)), np.arange(4.).reshape(1, 1, 4),
    ...                                   np.array([[[1., -1.]]]))
    >>> dx.round(6), dw.round(6), db
    (array([[[ 1.,  0.,  0., -1.]]]), array([[[3., 6.]]]), array([3.]))
    """
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    d = x.ndim - 2
    axes = tuple(range(-d, 0))
    pad = reference.pads(x.shape[2:], w.shape[2:], padding, 1)
    x_pad = np.pad(x, [(0, 0), (0, 0)] + pad)
    dy_flip = dy[(Ellipsis,) + (slice(None, None, -1),) * d]
    per_sample = _spectrum_bytes(x.shape[1], w.shape[0], x_pad.shape[2:])
    dx_pad, dw = [], np.zeros(w.shape, dtype=np.result_type(x, dy))
    with scipy.fft.set_workers(workers or 1):
        for sl in _batch_slices(x.shape[0], per_sample, max_bytes):
            # (n, O, 1, *out) (*) (1, O, C, *k) -> (n, O, C, *P), summed over O
            dx_pad.append(scipy.signal.fftconvolve(dy[sl, :, None], w[None], mode="full",
                                                   axes=axes).sum(axis=1))
            # (n, 1, C, *P) (*) (n, O, 1, *out) -> (n, O, C, *k), summed over n
            dw += scipy.signal.fftconvolve(x_pad[sl, None], dy_flip[sl, :, None],
                                           mode="valid", axes=axes).sum(axis=0)
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad, x.shape[2:]))
    dx = np.concatenate(dx_pad)[(Ellipsis,) + crop]
    db = dy.sum(axis=(0,) + tuple(range(2, 2 + d))) if bias else None
    return dx.astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db


# --- configurations ---------------------------------------------------------------
@dataclass
class _Config:
    """One timed (method, rate) pair of a layer and what was measured of it."""
    method: str
    rate: float | None
    forward: Callable[[], Any]
    forward_backward: Callable[[], Any]
    repeats: int
    peak: Callable[[], int | None]
    nbytes: int | None = None
    effective_rate: float | None = None
    peak_bytes: int | None = None
    fwd_s: list = field(default_factory=list)
    fwdbwd_s: list = field(default_factory=list)


def _tracemalloc_peak(fn):
    """Peak bytes NumPy allocates during ``fn()`` (inputs made before are not counted)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _cupy_peak(fn):
    """Peak bytes of CuPy's memory pool in use during ``fn()``, beyond those in use before."""
    import cupy
    from cupy.cuda import memory_hook

    class Peak(memory_hook.MemoryHook):
        name = "BlconvBenchPeak"

        def __init__(self):
            self.live, self.now, self.peak = {}, 0, 0

        def malloc_postprocess(self, **kw):
            self.live[kw["mem_ptr"]] = kw["mem_size"]
            self.now += kw["mem_size"]
            self.peak = max(self.peak, self.now)

        def free_postprocess(self, **kw):
            self.now -= self.live.pop(kw["mem_ptr"], 0)

    hook = Peak()
    with hook:
        fn()
        cupy.cuda.Device().synchronize()
    return hook.peak


def _torch_cuda_peak(fn):
    import torch
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _blconv_configs(layer, data, rates, *, gpu, repeats):
    fwd_fn, bwd_fn = ((conv1d_forward, conv1d_backward) if layer.dim == 1
                      else (conv2d_forward, conv2d_backward))
    x, w, b, dy = data
    if gpu:
        import cupy
        x, w, dy = cupy.asarray(x), cupy.asarray(w), cupy.asarray(dy)
        b = None if b is None else cupy.asarray(b)
    configs = []
    for rate in rates:
        def forward(rate=rate):
            return fwd_fn(x, w, b, padding=layer.padding, compress_rate=rate)

        def forward_backward(forward=forward):
            return bwd_fn(dy, forward()[1])

        peak = ((lambda f=forward_backward: _cupy_peak(f)) if gpu
                else (lambda f=forward_backward: _tracemalloc_peak(f)))
        cfg = _Config("blconv", rate, forward, forward_backward, repeats, peak)
        ctx = forward()[1]
        cfg.nbytes, cfg.effective_rate = ctx.nbytes, float(ctx.band.effective_rate)
        configs.append(cfg)
    return configs


def _torch_config(layer, data, *, gpu, repeats, threads):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    dev = "cuda" if gpu else "cpu"
    x, w, b, dy = (None if a is None else torch.from_numpy(a).to(dev) for a in data)
    conv = F.conv1d if layer.dim == 1 else F.conv2d
    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    bg = None if b is None else b.clone().requires_grad_(True)

    def forward():
        with torch.no_grad():
            return conv(x, w, b, padding=layer.padding)

    def forward_backward():
        for t in (xg, wg, bg):
            if t is not None:
                t.grad = None
        conv(xg, wg, bg, padding=layer.padding).backward(dy)

    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward_backward()
    peak = (lambda: _torch_cuda_peak(forward_backward)) if gpu else (lambda: None)
    cfg = _Config("torch", None, forward, forward_backward, repeats, peak)
    cfg.nbytes = sum(saved.values())
    return cfg


def _numpy_peer_config(method, layer, data, *, repeats, threads):
    x, w, b, dy = data
    if method == "reference":
        def forward():
            return reference.correlate(x, w, b, padding=layer.padding)

        def backward():
            return reference.correlate_backward(dy, x, w, padding=layer.padding,
                                                bias=b is not None)
    else:
        def forward():
            return fftconvolve_forward(x, w, b, padding=layer.padding, workers=threads)

        def backward():
            return fftconvolve_backward(dy, x, w, padding=layer.padding,
                                        bias=b is not None, workers=threads)

    def forward_backward():
        forward()
        return backward()

    cfg = _Config(method, None, forward, forward_backward, repeats,
                  lambda: _tracemalloc_peak(forward_backward))
    cfg.nbytes = x.nbytes + w.nbytes           # the backward takes x and w
    return cfg


def _loadavg():
    """1-minute load average (other processes compete for the cores), or None."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _timed(fn, sync):
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


# --- the run ----------------------------------------------------------------------
def machine_info(*, device="cpu", threads=None):
    """Where and with what the benchmark ran: a JSON-ready dict.

    Parameters
    ----------
    device : {'cpu', 'gpu'}
    threads : int, optional
        Threads given to the methods (recorded as is).

    Returns
    -------
    dict
        CPU model, core counts, Python/NumPy/SciPy/PyTorch/CuPy versions, the git
        revision of blconv (``+dirty`` with uncommitted changes), BLAS and
        thread pools (from threadpoolctl), BLAS-related environment variables,
        the GPU name when ``device='gpu'``, and the UTC date.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "threads": threads, "platform": platform.platform(),
            "python": platform.python_version(), "blconv": __version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "torch": None, "cupy": None,
            "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS", "BLCONV_FFT_WORKERS")
                    if k in os.environ},
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    info["git"] = _git_revision()
    for mod in ("torch", "cupy"):
        if mod in sys.modules:
            info[mod] = getattr(sys.modules[mod], "__version__", "?")
    info["blas"] = [{k: p.get(k) for k in ("user_api", "internal_api", "version",
                                            "num_threads", "architecture", "filepath")}
                    for p in threadpoolctl.threadpool_info()]
    if device == "gpu" and "cupy" in sys.modules:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return info


def _git_revision():
    """``<commit>`` or ``<commit>+dirty`` of a git checkout holding blconv, else None."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", here],
                               capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _check_options(fn, layers, rates, repeats, peer_repeats, warmup, methods, device, batch,
                   threads):
    unknown = [n for n in layers if n not in LAYERS]
    if unknown or not layers:
        raise ValueError(f"{fn}: layers must be a non-empty subset of {list(LAYERS)}, "
                         f"got {list(layers)}")
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"{fn}: methods must be a non-empty subset of {list(METHODS)}, "
                         f"got {list(methods)}")
    if not rates or any(not (0.0 <= r < 1.0) for r in rates):
        raise ValueError(f"{fn}: rates must be a non-empty list of numbers in [0, 1), "
                         f"got {list(rates)}")
    for name, v, lo in (("repeats", repeats, 1), ("peer_repeats", peer_repeats, 1),
                        ("warmup", warmup, 0), ("batch", batch, 1), ("threads", threads, 1)):
        if v is not None and (not isinstance(v, (int, np.integer)) or v < lo):
            raise ValueError(f"{fn}: {name} must be an int >= {lo}, got {v!r}")
    if device not in ("cpu", "gpu"):
        raise ValueError(f"{fn}: device must be 'cpu' or 'gpu', got {device!r}")


def _require_gpu(fn):
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
    except ImportError as e:
        raise RuntimeError(f"{fn}: device 'gpu' needs CuPy, which is not installed "
                           "(pip install 'blconv[gpu-cuda12]', or 'blconv[gpu-cuda13]' "
                           "for CUDA 13)") from e
    except Exception as e:  # no driver, no device
        raise RuntimeError(f"{fn}: device 'gpu' needs a CUDA device; CuPy found none "
                           f"({type(e).__name__}: {e})") from e
    if n < 1:
        raise RuntimeError(f"{fn}: device 'gpu' needs a CUDA device; CuPy found none")


def run_benchmark(layers=None, *, rates=DEFAULT_RATES, repeats=5, peer_repeats=3,
                  peer_budget=20.0, warmup=1, pause=0.25, methods=METHODS, device="cpu",
                  batch=None, threads=None, seed=0, log=None):
    """Time blconv and its peers on the paper's layers, interleaved.

    Parameters
    ----------
    layers : list of str, optional
        Names from :data:`LAYERS` (default: all, in that order).
    rates : sequence of float
        blconv compress rates, each in ``[0, 1)`` (see :mod:`blconv.band`).
    repeats : int
        Timed repeats of blconv and torch; medians are reported.
    peer_repeats : int
        Timed repeats of the slow peers 'reference' and 'fftconvolve'.
    peer_budget : float
        Seconds: a slow peer takes no further timed repeat once its timed calls
        on a layer add up to more than this (it always gets one).  With the
        default, fftconvolve gets one repeat on the large ResNet layers.
    warmup : int
        Untimed rounds of blconv and torch before the timed ones (after the
        untimed memory-measuring call every configuration makes).
    pause : float
        Seconds slept before a timed call whose method differs from the previous
        one.  OpenBLAS's worker threads keep spinning for ~0.1 s after a NumPy
        matmul and, on a machine with few cores, slow whatever runs next (PyTorch
        by 2-3x on 2 cores); the pause lets them sleep.
    methods : sequence of str
        Subset of :data:`METHODS`.  'torch' is skipped, with a note, when PyTorch
        is not importable (or has no CUDA with ``device='gpu'``); 'reference' and
        'fftconvolve' are skipped on the GPU.
    device : {'cpu', 'gpu'}
        'gpu' runs blconv on CuPy arrays and torch on CUDA.
    batch : int, optional
        Overrides every layer's batch size (``--quick`` uses :data:`QUICK_BATCH`).
    threads : int, optional
        Threads for torch, for the fftconvolve peer's FFTs and for blconv's CPU
        FFTs (default: the usable cores).  BLAS keeps its own setting (reported).
    seed : int
        Seed of the random inputs.
    log : callable, optional
        Called with one progress line per layer.

    Returns
    -------
    dict
        ``{'header': machine_info() + options, 'records': [...], 'targets': [...],
        'notes': [...]}``; one record per (layer, method, rate) with medians
        (``fwd_ms``, ``fwdbwd_ms``), minima and all timings in ms, ``nbytes``,
        ``peak_bytes``, ``effective_rate`` and the ratios ``ratio_blconv0`` and
        ``ratio_torch`` of the forward+backward medians; ``targets`` holds the
        issue's target ratios (``value`` from medians, ``value_min`` from minima).

    Raises
    ------
    ValueError
        Unknown layer or method names, rates outside ``[0, 1)``, counts < 1.
    RuntimeError
        ``device='gpu'`` without CuPy or a CUDA device.
    """
    fn = "run_benchmark"
    layers = list(LAYERS) if layers is None else list(layers)
    rates, methods = [float(r) for r in rates], list(dict.fromkeys(methods))
    _check_options(fn, layers, rates, repeats, peer_repeats, warmup, methods, device, batch,
                   threads)
    for name, v in (("pause", pause), ("peer_budget", peer_budget)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"{fn}: {name} must be a number of seconds >= 0, got {v!r}")
    load_start = _loadavg()
    gpu = device == "gpu"
    if gpu:
        _require_gpu(fn)
    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count())
    log = log or (lambda line: None)
    notes = []
    if "torch" in methods:
        try:
            import torch
            if gpu and not torch.cuda.is_available():
                raise ImportError("PyTorch has no CUDA")
        except ImportError as e:
            methods.remove("torch")
            notes.append(f"torch skipped: {e}")
    if gpu:
        for m in _SLOW:
            if m in methods:
                methods.remove(m)
                notes.append(f"{m} skipped: CPU only")
    if gpu:
        import cupy
        sync = cupy.cuda.Device().synchronize
        if "torch" in methods:
            import torch
            cupy_sync = sync

            def sync():
                cupy_sync()
                torch.cuda.synchronize()
    else:
        def sync():
            return None

    header = machine_info(device=device, threads=threads)      # its date is the start
    old_workers = _backend.fft_workers()
    _backend.set_fft_workers(threads)
    records = []
    try:
        with warnings.catch_warnings():
            # torch warns that padding='same' with an even kernel copies x: expected here
            warnings.filterwarnings("ignore", message="Using padding='same'")
            for name in layers:
                layer = LAYERS[name]
                if batch is not None:
                    layer = Layer(**{**asdict(layer), "batch": batch})
                records += _run_layer(layer, rates, methods, gpu=gpu, repeats=repeats,
                                      peer_repeats=peer_repeats, peer_budget=peer_budget,
                                      warmup=warmup, pause=pause,
                                      threads=threads, seed=seed, sync=sync, log=log)
    finally:
        _backend.set_fft_workers(old_workers)
    header.update(device=device, layers=layers, rates=rates, methods=methods, repeats=repeats,
                  peer_repeats=peer_repeats, peer_budget=peer_budget, warmup=warmup,
                  pause=pause, batch=batch, seed=seed,
                  loadavg_start=load_start, loadavg_end=_loadavg())
    return {"header": header, "records": records, "targets": _targets(records),
            "notes": notes}


def _run_layer(layer, rates, methods, *, gpu, repeats, peer_repeats, peer_budget, warmup,
               pause, threads, seed, sync, log):
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.x_shape, dtype=np.float32)
    w = (rng.standard_normal(layer.w_shape, dtype=np.float32)
         / np.float32(np.sqrt(np.prod(layer.w_shape[1:]))))
    b = rng.standard_normal(layer.c_out, dtype=np.float32) if layer.bias else None
    dy = rng.standard_normal(layer.y_shape, dtype=np.float32)
    data = (x, w, b, dy)
    configs = []
    for m in methods:
        if m == "blconv":
            configs += _blconv_configs(layer, data, rates, gpu=gpu, repeats=repeats)
        elif m == "torch":
            configs.append(_torch_config(layer, data, gpu=gpu, repeats=repeats,
                                         threads=threads))
        else:
            configs.append(_numpy_peer_config(m, layer, data, repeats=peer_repeats,
                                              threads=threads))
    for cfg in configs:                     # untimed: memory, and a first warm-up
        cfg.peak_bytes = cfg.peak()
    for _ in range(warmup):
        for cfg in configs:
            if cfg.method not in _SLOW:
                cfg.forward()
                sync()
                cfg.forward_backward()
                sync()
    last = None
    for r in range(max(cfg.repeats for cfg in configs)):    # round robin over configs
        for cfg in configs:
            spent = sum(cfg.fwd_s) + sum(cfg.fwdbwd_s)
            if r < cfg.repeats and not (cfg.method in _SLOW and spent > peer_budget):
                if pause and cfg.method != last:
                    time.sleep(pause)       # let the last method's spinning threads sleep
                last = cfg.method
                cfg.fwd_s.append(_timed(cfg.forward, sync))
                cfg.fwdbwd_s.append(_timed(cfg.forward_backward, sync))
    log(f"bench: {layer.name}: {len(configs)} configurations in "
        f"{time.perf_counter() - t_start:.1f} s")
    return _records(layer, configs, "gpu" if gpu else "cpu")


def _records(layer, configs, device):
    def med(ts):
        return 1e3 * float(np.median(ts))
    base = next((c for c in configs if c.method == "blconv" and c.rate == 0.0), None)
    torch_cfg = next((c for c in configs if c.method == "torch"), None)
    out = []
    for c in configs:
        fb = med(c.fwdbwd_s)
        out.append({
            "layer": layer.name, "dim": layer.dim, "batch": layer.batch, "c_in": layer.c_in,
            "c_out": layer.c_out, "size": layer.size, "kernel": layer.kernel,
            "padding": layer.padding, "bias": layer.bias, "device": device,
            "method": c.method, "rate": c.rate, "effective_rate": c.effective_rate,
            "repeats": len(c.fwdbwd_s), "fwd_ms": med(c.fwd_s), "fwdbwd_ms": fb,
            "fwd_ms_min": 1e3 * min(c.fwd_s), "fwdbwd_ms_min": 1e3 * min(c.fwdbwd_s),
            "fwd_ms_all": [1e3 * t for t in c.fwd_s],
            "fwdbwd_ms_all": [1e3 * t for t in c.fwdbwd_s],
            "ratio_blconv0": fb / med(base.fwdbwd_s) if base else None,
            "ratio_torch": fb / med(torch_cfg.fwdbwd_s) if torch_cfg else None,
            "nbytes": c.nbytes, "peak_bytes": c.peak_bytes})
    return out


def _targets(records):
    """The issue's target ratios, from the records (None where a run is missing)."""
    def rec(layer, method, rate=None):
        return next((r for r in records if r["layer"] == layer and r["method"] == method
                     and r["rate"] == rate), None)

    def ratio(a, b, key):
        return a[key] / b[key] if a and b and b[key] else None

    out = []
    for layer in dict.fromkeys(r["layer"] for r in records):
        half, full = rec(layer, "blconv", 0.5), rec(layer, "blconv", 0.0)
        out.append({"layer": layer, "what": "blconv fwd+bwd, c=0.5 / c=0",
                    "value": ratio(half, full, "fwdbwd_ms"),
                    "value_min": ratio(half, full, "fwdbwd_ms_min")})
        out.append({"layer": layer, "what": "ctx.nbytes, c=0.5 / c=0",
                    "value": ratio(half, full, "nbytes")})
        if layer == "resnet64":
            tch = rec(layer, "torch")
            out.append({"layer": layer, "what": "blconv(c=0.5) / torch, fwd+bwd",
                        "value": ratio(half, tch, "fwdbwd_ms"),
                        "value_min": ratio(half, tch, "fwdbwd_ms_min")})
            out.append({"layer": layer, "what": "blconv(c=0) / torch, fwd+bwd",
                        "value": ratio(full, tch, "fwdbwd_ms"),
                        "value_min": ratio(full, tch, "fwdbwd_ms_min")})
    return out


# --- output -----------------------------------------------------------------------
def _f(v, fmt, none="-"):
    return none if v is None else format(v, fmt)


def format_table(result):
    """The records of :func:`run_benchmark` as a fixed-width text table.

    Examples
    --------
    >>> print(format_table({"records": []}).splitlines()[0].split()[:3])
    ['layer', 'method', 'rate']
    """
    head = (f"{'layer':<13}{'method':<12}{'rate':>5}{'eff':>7}{'n':>3}{'fwd ms':>10}"
            f"{'fwd+bwd ms':>12}{'x blc0':>8}{'x torch':>8}{'ctx MB':>9}{'peak MB':>9}")
    lines = [head, "-" * len(head)]
    for r in result["records"]:
        lines.append(
            f"{r['layer']:<13}{r['method']:<12}{_f(r['rate'], '5.2f'):>5}"
            f"{_f(r['effective_rate'], '7.3f'):>7}{r['repeats']:>3}{r['fwd_ms']:>10.1f}"
            f"{r['fwdbwd_ms']:>12.1f}{_f(r['ratio_blconv0'], '8.2f'):>8}"
            f"{_f(r['ratio_torch'], '8.2f'):>8}"
            f"{_f(None if r['nbytes'] is None else r['nbytes'] / _MB, '9.2f'):>9}"
            f"{_f(None if r['peak_bytes'] is None else r['peak_bytes'] / _MB, '9.1f'):>9}")
    return "\n".join(lines)


def format_targets(result):
    """The target ratios of :func:`run_benchmark` as text lines.

    Time ratios are shown from the medians and, in brackets, from the fastest
    repeats (less sensitive to other processes on the machine).
    """
    lines = ["target ratios (lower is better; time ratios: medians [fastest repeats]):"]
    for t in result["targets"]:
        extra = f" [{_f(t['value_min'], '.3f', 'n/a')}]" if "value_min" in t else ""
        lines.append(f"  {t['layer']:<13}{t['what']:<34}{_f(t['value'], '.3f', 'n/a')}{extra}")
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------
def _rate(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"compress rate must be a number, got {s!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"compress rate must be in [0, 1), got {v}")
    return v


def _count(lo):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v
    return parse


def _seconds(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {s!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {v}")
    return v


def _add_arguments(p):
    p.add_argument("--layers", nargs="+", choices=list(LAYERS), default=list(LAYERS),
                   metavar="NAME", help=f"layers to run (default all: {' '.join(LAYERS)})")
    p.add_argument("--rates", nargs="+", type=_rate, default=list(DEFAULT_RATES),
                   help="blconv compress rates (default 0 0.25 0.5 0.75)")
    p.add_argument("--repeats", type=_count(1), default=5,
                   help="timed repeats of blconv and torch (default 5)")
    p.add_argument("--peer-repeats", type=_count(1), default=None,
                   help="timed repeats of the slow reference and fftconvolve peers "
                        "(default 3; 1 with --quick)")
    p.add_argument("--peer-budget", type=_seconds, default=20.0,
                   help="seconds of timed calls after which a slow peer takes no further "
                        "repeat on a layer (default 20)")
    p.add_argument("--warmup", type=_count(0), default=1,
                   help="untimed rounds of blconv and torch before timing (default 1)")
    p.add_argument("--pause", type=_seconds, default=0.25,
                   help="seconds slept when the timed method changes, so that BLAS threads "
                        "spinning after a NumPy call do not slow the next one (default 0.25)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   metavar="METHOD", help=f"methods to run (default all: {' '.join(METHODS)})")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--quick", action="store_true",
                   help=f"batch {QUICK_BATCH} for every layer, 1 peer repeat (smoke test)")
    p.add_argument("--batch", type=_count(1), default=None, help="override every batch size")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: blconv on CuPy and torch on CUDA (default cpu)")
    p.add_argument("--threads", type=_count(1), default=None,
                   help="threads for torch and the FFTs (default: usable cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", default=None, help="also write the results here")
    return p


def _run(args) -> int:
    methods = [m for m in args.methods if not (args.no_torch and m == "torch")]
    batch = args.batch if args.batch is not None else (QUICK_BATCH if args.quick else None)
    peer_repeats = args.peer_repeats or (1 if args.quick else 3)
    try:
        result = run_benchmark(args.layers, rates=args.rates, repeats=args.repeats,
                               peer_repeats=peer_repeats, peer_budget=args.peer_budget,
                               warmup=args.warmup, pause=args.pause,
                               methods=methods, device=args.device, batch=batch,
                               threads=args.threads, seed=args.seed,
                               log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, RuntimeError) as e:
        print(f"blconv bench: error: {e}", file=sys.stderr)
        return 2
    h = result["header"]
    print(f"blconv {h['blconv']} ({h['git'] or 'no git'}) bench on {h['cpu']} "
          f"({h['cores_usable']} cores, {h['threads']} threads), device {h['device']}"
          + (f" ({h['gpu']})" if h.get("gpu") else ""))
    print(f"python {h['python']}, numpy {h['numpy']}, scipy {h['scipy']}, "
          f"torch {h['torch'] or '-'}, float32; medians of the timed repeats (n)")
    for note in result["notes"]:
        print(f"note: {note}")
    print(format_table(result))
    print(format_targets(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


# the module docstring is reStructuredText for the API pages; --help shows plain text
_DESCRIPTION = ("Benchmark of band-limited convolution against its peers (reference, "
                "fftconvolve, torch) on the paper's layers: time and peak memory of "
                "forward+backward per compress rate.")


def add_parser(subparsers):
    """Register the ``bench`` sub-command on an ``argparse`` sub-parsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``bench`` parser; its ``func`` default takes the parsed arguments and
        returns the exit code.
    """
    p = subparsers.add_parser("bench", help="time blconv against its peers on the paper's layers",
                              description=_DESCRIPTION)
    _add_arguments(p)
    p.set_defaults(func=_run)
    return p


def main(argv=None) -> int:
    """``python -m blconv.bench [options]``: the ``bench`` sub-command on its own.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0, or 2 for bad options (argparse exits with 2 itself for those
        it checks).
    """
    p = _add_arguments(argparse.ArgumentParser(prog="blconv bench",
                                               description=_DESCRIPTION))
    return _run(p.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
