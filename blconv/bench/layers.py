"""The benchmarked layers, the methods and the default rates."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LAYERS", "DEFAULT_RATES", "GPU_METHODS", "LAYERS", "METHODS", "QUICK_BATCH",
           "SLOW_METHODS",
           "Layer"]


@dataclass(frozen=True)
class Layer:
    """One benchmarked convolution: ``(batch, c_in, *size) -> (batch, c_out, *out)``.

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
    stride : int
        Per axis (1 unless said).
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
    stride: int = 1

    @property
    def x_shape(self) -> tuple:
        return (self.batch, self.c_in) + (self.size,) * self.dim

    @property
    def w_shape(self) -> tuple:
        return (self.c_out, self.c_in) + (self.kernel,) * self.dim

    @property
    def y_shape(self) -> tuple:
        p = self.padding
        out = self.size if p == "same" else (self.size + 2 * p - self.kernel) // self.stride + 1
        return (self.batch, self.c_out) + (out,) * self.dim


def _resnet(name, c_in, c_out, size, note, batch=32):
    return Layer(name, 2, batch, c_in, c_out, size, 3, 1, False, note)


def _shortcut(name, c_in, c_out, size, note, batch=32):
    return Layer(name, 2, batch, c_in, c_out, size, 1, 0, False, note, stride=2)


def _fcn(name, c_in, c_out, kernel, note):
    return Layer(name, 1, 16, c_in, c_out, 150, kernel, "same", True, note)


#: The benchmarked layers by name, in the order they run.
LAYERS = {layer.name: layer for layer in [
    _resnet("resnet-first", 3, 64, 32, "ResNet-18/CIFAR first layer"),
    _resnet("resnet64", 64, 64, 32, "ResNet-18/CIFAR stage 1"),
    _resnet("resnet128", 128, 128, 16, "ResNet-18/CIFAR stage 2"),
    _resnet("resnet256", 256, 256, 8, "ResNet-18/CIFAR stage 3"),
    _resnet("resnet512", 512, 512, 4, "ResNet-18/CIFAR stage 4"),
    _shortcut("short128", 64, 128, 32, "ResNet-18/CIFAR 1x1 shortcut into stage 2, stride 2"),
    _shortcut("short256", 128, 256, 16, "ResNet-18/CIFAR 1x1 shortcut into stage 3, stride 2"),
    _shortcut("short512", 256, 512, 8, "ResNet-18/CIFAR 1x1 shortcut into stage 4, stride 2"),
    _fcn("fcn1", 1, 128, 8, "FCN (Wang et al. 2017) block 1, UCR length 150"),
    _fcn("fcn2", 128, 256, 5, "FCN block 2"),
    _fcn("fcn3", 256, 128, 3, "FCN block 3"),
    _resnet("imagenet64", 64, 64, 56, "ResNet-18/ImageNet stage 1", batch=64),
    _resnet("imagenet128", 128, 128, 28, "ResNet-18/ImageNet stage 2", batch=64),
    _resnet("imagenet256", 256, 256, 14, "ResNet-18/ImageNet stage 3", batch=64),
    _resnet("imagenet512", 512, 512, 7, "ResNet-18/ImageNet stage 4", batch=64),
]}
#: The layers run when none are named: the paper's CIFAR ResNet-18 and UCR FCN layers (the
#: ImageNet stages, 8-25x their arithmetic, are run by name, as on a GPU).
DEFAULT_LAYERS = tuple(n for n in LAYERS if not n.startswith("imagenet"))
#: Methods in table order; 'reference' and 'fftconvolve' are CPU only; 'blconv-graphs'
#: (blconv under :func:`blconv.cuda_graphs`) and 'blconv-tf32' (the same with
#: :func:`blconv.tf32`) are GPU only.
METHODS = ("blconv", "blconv-graphs", "blconv-tf32", "torch", "reference", "fftconvolve")
SLOW_METHODS = ("reference", "fftconvolve")
GPU_METHODS = ("blconv-graphs", "blconv-tf32")
DEFAULT_RATES = (0.0, 0.25, 0.5, 0.75)
#: Batch size of ``--quick`` (smoke tests).
QUICK_BATCH = 2
