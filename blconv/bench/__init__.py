"""Benchmark of band-limited convolution against its peers: ``python -m blconv bench``.

The layers are those of the paper's experiments: the ResNet-18 stages on CIFAR-10
(batch 32, 3x3 filters, padding 1) and the fully convolutional network of Wang et
al. (2017) for UCR time series (batch 16, length 150, padding ``'same'``), all in
float32; the ResNet-18 stages on ImageNet (56x56 to 7x7, batch 64) run when named.  For
every layer each *configuration* -- blconv at each compress rate, and each peer once --
is timed forward only and forward+backward:

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
from .cli import add_parser, main
from .layers import DEFAULT_LAYERS, DEFAULT_RATES, LAYERS, METHODS, QUICK_BATCH, Layer
from .machine import machine_info
from .measure import run_benchmark
from .peers import fftconvolve_backward, fftconvolve_forward
from .report import format_table, format_targets

__all__ = ["DEFAULT_LAYERS", "DEFAULT_RATES", "LAYERS", "METHODS", "QUICK_BATCH", "Layer",
           "add_parser", "fftconvolve_backward", "fftconvolve_forward", "format_table",
           "format_targets", "machine_info", "main", "run_benchmark"]
