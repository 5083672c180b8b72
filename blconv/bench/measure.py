"""The run: options, interleaved timing of every configuration of a layer."""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .. import settings
from .configs import blconv_configs, numpy_peer_config, torch_config
from .layers import DEFAULT_LAYERS, DEFAULT_RATES, GPU_METHODS, LAYERS, METHODS, SLOW_METHODS
from .machine import loadavg, machine_info, usable_cores
from .report import layer_records, target_ratios

__all__ = ["run_benchmark"]


def _timed(fn, sync):
    """Seconds of ``fn()`` on the host clock, the devices idle before and after."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def _event_timed(fn, sync):
    """Seconds of ``fn()`` between two CUDA events on the current stream (where CuPy and
    PyTorch both run by default): from the stream reaching the call to its last kernel."""
    import cupy
    sync()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    fn()
    end.record()
    end.synchronize()
    sync()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3


def _check_options(fn, layers, rates, repeats, peer_repeats, warmup, methods, device, batch,
                   threads, *, pause, peer_budget):
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
    for name, v in (("pause", pause), ("peer_budget", peer_budget)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"{fn}: {name} must be a number of seconds >= 0, got {v!r}")


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


def _available_methods(methods, *, gpu):
    """The methods that can run here (importing torch), and a note for each left out."""
    methods, notes = list(methods), []
    if "torch" in methods:
        try:
            import torch
            if gpu and not torch.cuda.is_available():
                raise ImportError("PyTorch has no CUDA")
        except ImportError as e:
            methods.remove("torch")
            notes.append(f"torch skipped: {e}")
    if gpu:
        for m in SLOW_METHODS:
            if m in methods:
                methods.remove(m)
                notes.append(f"{m} skipped: CPU only")
    else:
        for m in GPU_METHODS:
            if m in methods:
                methods.remove(m)
                notes.append(f"{m} skipped: GPU only")
    return methods, notes


def _synchronizer(methods, *, gpu):
    """A function that waits for the devices the methods run on (nothing on the CPU)."""
    if not gpu:
        return lambda: None
    import cupy
    cupy_sync = cupy.cuda.Device().synchronize
    if "torch" not in methods:
        return cupy_sync
    import torch

    def sync():
        cupy_sync()
        torch.cuda.synchronize()
    return sync


@dataclass(frozen=True)
class _Plan:
    """How each layer is run: the resolved options of :func:`run_benchmark`."""
    gpu: bool
    repeats: int
    peer_repeats: int
    peer_budget: float
    warmup: int
    pause: float
    threads: int
    seed: int
    sync: Callable[[], None]
    log: Callable[[str], None]
    timer: Callable = _timed


def run_benchmark(layers=None, *, rates=DEFAULT_RATES, repeats=5, peer_repeats=3,
                  peer_budget=20.0, warmup=1, pause=0.25, methods=METHODS, device="cpu",
                  batch=None, threads=None, seed=0, log=None):
    """Time blconv and its peers on the paper's layers, interleaved.

    Parameters
    ----------
    layers : list of str, optional
        Names from :data:`LAYERS` (default: :data:`DEFAULT_LAYERS`, in that order).
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
        ``spatial_bytes`` (the layer's ``x`` and ``w``), ``peak_bytes``,
        ``effective_rate`` and the ratios ``ratio_blconv0`` and ``ratio_torch`` of the
        forward+backward medians; ``targets`` holds the ratios of
        :func:`~blconv.bench.report.target_ratios` for every layer (compression
        ratios, memory over ``x`` and ``w``, and, where torch ran, time over torch's),
        ``value`` from medians, ``value_min`` from minima.

    Raises
    ------
    ValueError
        Unknown layer or method names, rates outside ``[0, 1)``, counts < 1.
    RuntimeError
        ``device='gpu'`` without CuPy or a CUDA device.
    """
    fn = "run_benchmark"
    layers = list(DEFAULT_LAYERS) if layers is None else list(layers)
    rates, methods = [float(r) for r in rates], list(dict.fromkeys(methods))
    _check_options(fn, layers, rates, repeats, peer_repeats, warmup, methods, device, batch,
                   threads, pause=pause, peer_budget=peer_budget)
    load_start = loadavg()
    gpu = device == "gpu"
    if gpu:
        _require_gpu(fn)
    methods, notes = _available_methods(methods, gpu=gpu)
    plan = _Plan(gpu=gpu, repeats=repeats, peer_repeats=peer_repeats, peer_budget=peer_budget,
                 warmup=warmup, pause=pause, threads=threads or usable_cores(), seed=seed,
                 sync=_synchronizer(methods, gpu=gpu), log=log or (lambda line: None),
                 timer=_event_timed if gpu else _timed)
    if gpu:
        notes.append("times: CUDA events on the current stream around each call")
    # after _available_methods, so that the torch version is known; its date is the start
    header = machine_info(device=device, threads=plan.threads)
    records = _run_layers(layers, rates, methods, batch=batch, plan=plan)
    header.update(device=device, layers=layers, rates=rates, methods=methods, repeats=repeats,
                  peer_repeats=peer_repeats, peer_budget=peer_budget, warmup=warmup,
                  pause=pause, batch=batch, seed=seed,
                  loadavg_start=load_start, loadavg_end=loadavg())
    return {"header": header, "records": records, "targets": target_ratios(records),
            "notes": notes}


def _run_layers(layers, rates, methods, *, batch, plan):
    """The records of every layer in turn, blconv's CPU FFTs on ``plan.threads`` threads."""
    records = []
    with settings.fft_workers(plan.threads), warnings.catch_warnings():
        # torch warns that padding='same' with an even kernel copies x: expected here
        warnings.filterwarnings("ignore", message="Using padding='same'")
        for name in layers:
            layer = LAYERS[name] if batch is None else replace(LAYERS[name], batch=batch)
            records += _run_layer(layer, rates, methods, plan)
    return records


def _inputs(layer, seed):
    """Random float32 ``(x, w, b, dy)`` of the layer (``b`` None without bias)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.x_shape, dtype=np.float32)
    w = (rng.standard_normal(layer.w_shape, dtype=np.float32)
         / np.float32(np.sqrt(np.prod(layer.w_shape[1:]))))
    b = rng.standard_normal(layer.c_out, dtype=np.float32) if layer.bias else None
    dy = rng.standard_normal(layer.y_shape, dtype=np.float32)
    return x, w, b, dy


def _configs(layer, data, rates, methods, plan):
    """Every configuration of the layer: blconv at each rate, each other method once."""
    configs = []
    for m in methods:
        if m.startswith("blconv"):
            configs += blconv_configs(layer, data, rates, gpu=plan.gpu, repeats=plan.repeats,
                                      method=m)
        elif m == "torch":
            configs.append(torch_config(layer, data, gpu=plan.gpu, repeats=plan.repeats,
                                        threads=plan.threads))
        else:
            configs.append(numpy_peer_config(m, layer, data, repeats=plan.peer_repeats,
                                             threads=plan.threads))
    return configs


def _warm_up(configs, plan):
    """``plan.warmup`` untimed rounds of every configuration but the slow peers'."""
    for _ in range(plan.warmup):
        for cfg in configs:
            if cfg.method not in SLOW_METHODS:
                cfg.forward()
                plan.sync()
                cfg.forward_backward()
                plan.sync()


def _time_interleaved(configs, plan):
    """Timed repeats, round robin: repeat ``r`` of every configuration before ``r + 1``."""
    last = None
    for r in range(max(cfg.repeats for cfg in configs)):
        for cfg in configs:
            spent = sum(cfg.fwd_s) + sum(cfg.fwdbwd_s)
            if r < cfg.repeats and not (cfg.method in SLOW_METHODS and spent > plan.peer_budget):
                if plan.pause and cfg.method != last:
                    time.sleep(plan.pause)  # let the last method's spinning threads sleep
                last = cfg.method
                cfg.fwd_s.append(plan.timer(cfg.forward, plan.sync))
                cfg.fwdbwd_s.append(plan.timer(cfg.forward_backward, plan.sync))


def _run_layer(layer, rates, methods, plan):
    t_start = time.perf_counter()
    configs = _configs(layer, _inputs(layer, plan.seed), rates, methods, plan)
    for cfg in configs:                     # untimed: memory, and a first warm-up
        cfg.peak_bytes = cfg.peak()
    _warm_up(configs, plan)
    _time_interleaved(configs, plan)
    plan.log(f"bench: {layer.name}: {len(configs)} configurations in "
             f"{time.perf_counter() - t_start:.1f} s")
    return layer_records(layer, configs, "gpu" if plan.gpu else "cpu")
