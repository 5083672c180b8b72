"""What is timed for each method on a layer, and how its memory is measured."""
from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import reference
from ..conv import conv1d_backward, conv1d_forward, conv2d_backward, conv2d_forward
from ..settings import cuda_graphs
from ..settings import tf32 as settings_tf32
from .peers import fftconvolve_backward, fftconvolve_forward

__all__ = ["Config", "blconv_configs", "numpy_peer_config", "torch_config"]


@dataclass
class Config:
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


def blconv_configs(layer, data, rates, *, gpu, repeats, method="blconv"):
    """blconv at each rate: as it is (``"blconv"``), with every call under
    :func:`blconv.cuda_graphs` (``"blconv-graphs"``), or under that and :func:`blconv.tf32`
    (``"blconv-tf32"``)."""
    fwd_fn, bwd_fn = ((conv1d_forward, conv1d_backward) if layer.dim == 1
                      else (conv2d_forward, conv2d_backward))
    if method != "blconv":
        fwd_fn, bwd_fn = (_with_settings(f, tf32=method == "blconv-tf32")
                          for f in (fwd_fn, bwd_fn))
    x, w, b, dy = data
    if gpu:
        import cupy
        x, w, dy = cupy.asarray(x), cupy.asarray(w), cupy.asarray(dy)
        b = None if b is None else cupy.asarray(b)
    configs = []
    for rate in rates:
        def forward(rate=rate):
            return fwd_fn(x, w, b, stride=layer.stride, padding=layer.padding,
                          compress_rate=rate)

        def forward_backward(forward=forward):
            return bwd_fn(dy, forward()[1])

        peak = ((lambda f=forward_backward: _cupy_peak(f)) if gpu
                else (lambda f=forward_backward: _tracemalloc_peak(f)))
        cfg = Config(method, rate, forward, forward_backward, repeats, peak)
        ctx = forward()[1]
        cfg.nbytes, cfg.effective_rate = ctx.nbytes, float(ctx.band.effective_rate)
        configs.append(cfg)
    return configs


def _with_settings(fn, *, tf32):
    def run(*args, **kwargs):
        with cuda_graphs(True), settings_tf32(tf32):
            return fn(*args, **kwargs)
    return run


def torch_config(layer, data, *, gpu, repeats, threads):
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
            return conv(x, w, b, stride=layer.stride, padding=layer.padding)

    def forward_backward():
        for t in (xg, wg, bg):
            if t is not None:
                t.grad = None
        conv(xg, wg, bg, stride=layer.stride, padding=layer.padding).backward(dy)

    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward_backward()
    peak = (lambda: _torch_cuda_peak(forward_backward)) if gpu else (lambda: None)
    cfg = Config("torch", None, forward, forward_backward, repeats, peak)
    cfg.nbytes = sum(saved.values())
    return cfg


def numpy_peer_config(method, layer, data, *, repeats, threads):
    x, w, b, dy = data
    if method == "reference":
        def forward():
            return reference.correlate(x, w, b, stride=layer.stride, padding=layer.padding)

        def backward():
            return reference.correlate_backward(dy, x, w, stride=layer.stride,
                                                padding=layer.padding, bias=b is not None)
    else:
        def forward():
            return fftconvolve_forward(x, w, b, stride=layer.stride, padding=layer.padding,
                                       workers=threads)

        def backward():
            return fftconvolve_backward(dy, x, w, stride=layer.stride, padding=layer.padding,
                                        bias=b is not None, workers=threads)

    def forward_backward():
        forward()
        return backward()

    cfg = Config(method, None, forward, forward_backward, repeats,
                 lambda: _tracemalloc_peak(forward_backward))
    cfg.nbytes = x.nbytes + w.nbytes           # the backward takes x and w
    return cfg

