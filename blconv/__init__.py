"""blconv: band-limited convolution through the FFT, with exact gradients.

The method of Dziedzic et al., "Band-limited Training and Inference for
Convolutional Neural Networks" (ICML 2019), on NumPy (CPU) and CuPy (GPU)
arrays from one code path.
"""
from ._backend import set_fft_workers, set_plan_cache_size, to_numpy
from .band import Band, band_for, next_fast_len
from .spectral import set_transform
from .conv import (ConvContext, conv1d, conv1d_backward, conv1d_forward, conv2d,
                   conv2d_backward, conv2d_forward)
from .experiments import sweep

__version__ = "0.1.0"

__all__ = ["Band", "ConvContext", "band_for", "conv1d", "conv1d_backward", "conv1d_forward",
           "conv2d", "conv2d_backward", "conv2d_forward", "next_fast_len",
           "set_fft_workers", "set_plan_cache_size", "set_transform", "sweep", "to_numpy",
           "__version__"]
