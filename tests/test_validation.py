"""Bad input: a clear error naming the function, the argument, what was expected and what came."""
import numpy as np
import pytest

import blconv

X2 = np.zeros((2, 4, 8, 8))
W2 = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x=np.zeros((4, 8, 8))), ValueError, r"conv2d: x must be 4-D"),
    (dict(w=np.zeros((6, 4, 3))), ValueError, r"conv2d: w must be 4-D"),
    (dict(w=np.zeros((6, 3, 3, 3))), ValueError,
     r"conv2d: x.shape\[1\] \(C_in=4\) must equal w.shape\[1\] \* groups \(3 \* 1 = 3\)"),
    (dict(groups=3, w=np.zeros((6, 1, 3, 3))), ValueError,
     r"conv2d: x.shape\[1\] \(C_in=4\) must be divisible by groups \(3\)"),
    (dict(groups=4, w=np.zeros((6, 1, 3, 3))), ValueError,
     r"conv2d: w.shape\[0\] \(C_out=6\) must be divisible by groups \(4\)"),
    (dict(groups=0), ValueError, r"conv2d: groups must be an int >= 1, got 0"),
    (dict(b=np.zeros(5)), ValueError, r"conv2d: b must have shape \(C_out,\) = \(6,\), got \(5,\)"),
    (dict(w=np.zeros((6, 4, 9, 3))), ValueError,
     r"conv2d: kernel \(effective size 9.*larger than the padded input \(8\).*output size would be 0"),
    (dict(w=np.zeros((6, 4, 3, 3)), dilation=5), ValueError, r"effective size 11"),
    (dict(stride=0), ValueError, r"conv2d: stride must be >= 1, got 0"),
    (dict(stride=(1, 2, 3)), TypeError, r"conv2d: stride must be an int or a tuple of 2 ints"),
    (dict(stride=1.5), TypeError, r"conv2d: stride must be an int"),
    (dict(dilation=0), ValueError, r"conv2d: dilation must be >= 1, got 0"),
    (dict(padding=-1), ValueError, r"conv2d: padding must be >= 0, got -1"),
    (dict(padding="same", stride=2), ValueError, r"conv2d: padding='same' needs stride 1"),
    (dict(padding="full"), ValueError, r"conv2d: padding must be .*'valid' or 'same', got 'full'"),
    (dict(compress_rate=50), ValueError,
     r"conv2d: compress_rate must be in \[0, 1\), got 50 \(a fraction, not a percent\)"),
    (dict(compress_rate=1.0), ValueError, r"compress_rate must be in \[0, 1\), got 1.0"),
    (dict(compress_rate=-0.1), ValueError, r"compress_rate must be in \[0, 1\), got -0.1"),
    (dict(compress_rate=float("nan")), ValueError, r"compress_rate must be in \[0, 1\), got nan"),
    (dict(compress_rate="0.5"), TypeError, r"conv2d: compress_rate must be a real number"),
    (dict(compress_rate=True), TypeError, r"conv2d: compress_rate must be a real number"),
    (dict(preserve_energy=0.0), ValueError, r"conv2d: preserve_energy must be in \(0, 1\], got 0.0"),
    (dict(preserve_energy=1.5), ValueError, r"preserve_energy must be in \(0, 1\], got 1.5"),
    (dict(preserve_energy=0.9, compress_rate=0.5), ValueError,
     r"conv2d: give either preserve_energy or compress_rate > 0, not both"),
    (dict(fft_size=7), ValueError,
     r"conv2d: fft_size along spatial axis 0 must be >= 8, the smallest exact size .*, got 7"),
    (dict(fft_size=(8, 7)), ValueError, r"spatial axis 1 must be >= 8, the smallest exact size"),
    (dict(fft_size="huge"), ValueError, r"conv2d: fft_size must be 'fast', 'pow2'"),
    (dict(x=np.zeros((2, 4, 8, 8), np.int64)), TypeError, r"conv2d: x must be float32 or float64, got int64"),
    (dict(x=np.zeros((2, 4, 8, 8), np.float16)), TypeError, r"x must be float32 or float64, got float16"),
    (dict(x=np.zeros((2, 4, 8, 8), np.complex128)), TypeError, r"x must be float32 or float64"),
    (dict(x=np.zeros((2, 4, 8, 8), bool)), TypeError, r"x must be float32 or float64, got bool"),
    (dict(w=np.zeros((6, 4, 3, 3), np.float32)), TypeError,
     r"conv2d: arrays must share one dtype.*x.dtype=float64, w.dtype=float32"),
    (dict(x=[[1.0]]), TypeError, r"conv2d: x must be an array.*got builtins.list"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_conv2d_bad_input(kwargs, exc, match):
    args = dict(x=X2, w=W2, b=None)
    args.update(kwargs)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(exc, match=match):
        blconv.conv2d(x, w, b, **args)


def test_conv1d_messages_name_conv1d():
    with pytest.raises(ValueError, match=r"conv1d: x must be 3-D \(N, C_in, L\)"):
        blconv.conv1d(np.zeros((2, 4, 8, 8)), np.zeros((2, 4, 3)))


def test_mixed_libraries_name_both_types():
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"x is numpy.ndarray, w is array_api_strict.Array"):
        blconv.conv2d(X2, xs.asarray(W2))


def test_backward_checks_dy_and_ctx():
    y, ctx = blconv.conv2d_forward(X2, W2, padding=1)
    with pytest.raises(ValueError, match=r"conv2d_backward: dy must have the forward output's "
                                         r"shape \(2, 6, 8, 8\), got \(2, 6, 8, 7\)"):
        blconv.conv2d_backward(np.zeros((2, 6, 8, 7)), ctx)
    with pytest.raises(TypeError, match=r"dy must have the forward's dtype float64, got float32"):
        blconv.conv2d_backward(np.zeros(y.shape, np.float32), ctx)
    _, ctx1 = blconv.conv1d_forward(np.zeros((1, 1, 5)), np.zeros((1, 1, 2)))
    with pytest.raises(TypeError, match=r"conv2d_backward: ctx must be the ConvContext returned "
                                        r"by conv2d_forward, got ConvContext from conv1d"):
        blconv.conv2d_backward(y, ctx1)
    with pytest.raises(TypeError, match=r"ctx must be the ConvContext"):
        blconv.conv2d_backward(y, {"band": None})


def test_band_for_bad_input():
    with pytest.raises(ValueError, match=r"band_for: x_shape and w_shape must both have 3"):
        blconv.band_for((1, 2), (1, 2))
    with pytest.raises(ValueError, match=r"band_for: compress_rate must be in \[0, 1\), got 75 "
                                         r"\(a fraction, not a percent\)"):
        blconv.band_for((1, 1, 8), (1, 1, 3), compress_rate=75)
