"""Band-limited convolutions inside PyTorch models.

``blconv.torch`` runs blconv's core, unchanged, under PyTorch's autograd:

* :func:`conv1d`, :func:`conv2d`: ``torch.nn.functional.conv1d/conv2d`` with a
  band, as ``torch.autograd.Function`` objects whose forward calls
  :func:`blconv.conv2d_forward` (or ``conv1d_forward``) and whose backward calls
  :func:`blconv.conv2d_backward`; :func:`conv_transpose1d`, :func:`conv_transpose2d`
  the same for the transposed convolutions (:mod:`blconv.transpose`);
* :class:`Conv1d`, :class:`Conv2d`, :class:`ConvTranspose1d`,
  :class:`ConvTranspose2d`: subclasses of PyTorch's layers with the same parameters
  and ``state_dict`` keys, plus the band settings;
* :func:`convert`: turns every such PyTorch layer of a model into one of these, in
  place, keeping the same ``Parameter`` objects; :func:`set_compress_rate`
  changes the band of every such layer (band-limited inference at another rate);
* :func:`saved_bytes`: the bytes of retained spectra an autograd graph holds.

Tensors are handed to the core without a copy: CPU tensors as NumPy arrays
(``Tensor.numpy()`` on the detached tensor), CUDA tensors as CuPy arrays through
DLPack, with CuPy running on the tensor's current CUDA stream; the results come
back the same way.  Between forward and backward the autograd node keeps only the
retained spectrum of the input (the core's ``ctx.x_hat``, saved as a complex tensor
that shares the array's memory; for 1x1 filters, the input low-passed to the band at
the output positions, a real tensor) and the weight itself, as PyTorch's own convolution
saves it (modifying it in place before the backward raises PyTorch's usual error):
not the input, not a padded copy.  The backward recomputes the filters' retained
spectrum from the weight.  PyTorch frees what was saved after the backward (unless
``retain_graph=True``), exactly as it frees the tensors its own layers save.

PyTorch is an optional dependency: ``pip install "blconv[torch]"``.
``import blconv`` never imports it.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401 - PyTorch itself (an absolute import), checked first
except ImportError as _err:  # torch missing, or blocked
    raise ImportError('blconv.torch needs PyTorch, which is not installed: '
                      'pip install "blconv[torch]" (or pip install "torch>=2.1")') from _err

from .functional import conv1d, conv2d, conv_transpose1d, conv_transpose2d, saved_bytes
from .layers import (Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, convert,
                     set_compress_rate)

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "Conv1d", "Conv2d",
           "ConvTranspose1d", "ConvTranspose2d", "convert", "set_compress_rate",
           "saved_bytes"]
