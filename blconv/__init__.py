"""blconv: band-limited convolution through the FFT, with exact gradients.

The method of Dziedzic et al., "Band-limited Training and Inference for
Convolutional Neural Networks" (ICML 2019), on NumPy (CPU) and CuPy (GPU)
arrays from one code path.
"""
from . import settings
from ._backend import to_numpy
from .band import Band, band_for, next_fast_len
from .spectral import clear_caches
from .settings import (cuda_graphs, fft_workers, max_workspace_bytes, plan_cache_size,
                       set_cuda_graphs, set_fft_workers, set_max_workspace_bytes,
                       set_plan_cache_size, set_tf32, set_transform, tf32, transform)
from .conv import (ConvContext, conv1d, conv1d_backward, conv1d_forward, conv2d,
                   conv2d_backward, conv2d_forward)
from .transpose import (ConvTransposeContext, conv_transpose1d, conv_transpose1d_backward,
                        conv_transpose1d_forward, conv_transpose2d, conv_transpose2d_backward,
                        conv_transpose2d_forward)

__version__ = "0.1.0"

__all__ = ["Band", "ConvContext", "ConvTransposeContext", "band_for", "clear_caches", "conv1d",
           "conv1d_backward", "conv1d_forward", "conv2d", "conv2d_backward", "conv2d_forward",
           "conv_transpose1d", "conv_transpose1d_backward", "conv_transpose1d_forward",
           "conv_transpose2d", "conv_transpose2d_backward", "conv_transpose2d_forward",
           "cuda_graphs", "fft_workers",
           "max_workspace_bytes", "next_fast_len", "plan_cache_size", "set_cuda_graphs",
           "set_fft_workers", "set_max_workspace_bytes",
           "set_plan_cache_size", "set_tf32", "set_transform", "settings", "sweep", "tf32",
           "to_numpy", "transform",
           "__version__"]


def __getattr__(name):
    # blconv.sweep on first use: importing the experiment layer (and Dask, when installed)
    # is left to the programs that run sweeps
    if name == "sweep":
        from .experiments import sweep
        return sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"sweep"})
