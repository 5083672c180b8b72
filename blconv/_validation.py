"""Every argument check of the public entry points, with its message.

Messages name the function, the argument, what was expected and what came.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["native", "ntuple", "check_int", "check_rate", "check_energy", "check_dtypes", "conv_geometry", "Geometry"]


def check_int(fn: str, name: str, value, *, minimum: int = 1) -> int:
    """An int (not a bool) ``>= minimum``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def ntuple(fn: str, name: str, value, d: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a length-``d`` tuple of ints, each ``>= minimum``, as a tuple."""
    vals = value if isinstance(value, (tuple, list)) else (value,) * d
    if len(vals) != d or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                 for v in vals):
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {d} ints, got {value!r}")
    if any(v < minimum for v in vals):
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


def _is_real_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_rate(fn: str, compress_rate) -> float:
    if not _is_real_number(compress_rate):
        raise TypeError(f"{fn}: compress_rate must be a real number in [0, 1), "
                        f"got {compress_rate!r}")
    c = float(compress_rate)
    if math.isnan(c) or not 0.0 <= c < 1.0:
        hint = " (a fraction, not a percent)" if 1.0 <= c <= 100.0 else ""
        raise ValueError(f"{fn}: compress_rate must be in [0, 1), got {compress_rate!r}{hint}")
    return c


def check_energy(fn: str, preserve_energy, compress_rate: float) -> float | None:
    if preserve_energy is None:
        return None
    if not _is_real_number(preserve_energy):
        raise TypeError(f"{fn}: preserve_energy must be None or a real number in (0, 1], "
                        f"got {preserve_energy!r}")
    e = float(preserve_energy)
    if math.isnan(e) or not 0.0 < e <= 1.0:
        raise ValueError(f"{fn}: preserve_energy must be in (0, 1], got {preserve_energy!r}")
    if compress_rate > 0:
        raise ValueError(f"{fn}: give either preserve_energy or compress_rate > 0, not both "
                         f"(got preserve_energy={preserve_energy!r}, "
                         f"compress_rate={compress_rate!r})")
    return e


def need_flags(fn: str, need_dx, need_dw) -> tuple[bool, bool]:
    """A backward's ``need_dx`` and ``need_dw``, checked to be bools."""
    for name, flag in (("need_dx", need_dx), ("need_dw", need_dw)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{fn}: {name} must be True or False, got {flag!r}")
    return bool(need_dx), bool(need_dw)


def native(a):
    """A NumPy array in non-native byte order (``>f8`` from FITS, MATLAB or HDF5 readers)
    converted once to the native order; anything else as it is."""
    if isinstance(a, np.ndarray) and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


def check_dtypes(fn: str, xp, **arrays) -> None:
    """All arrays float32, or all float64; anything else is a ``TypeError``."""
    present = {k: a for k, a in arrays.items() if a is not None}
    for k, a in present.items():
        if a.dtype not in (xp.float32, xp.float64):
            raise TypeError(f"{fn}: {k} must be float32 or float64, got {a.dtype}")
    dtypes = {a.dtype for a in present.values()}
    if len(dtypes) > 1:
        desc = ", ".join(f"{k}.dtype={a.dtype}" for k, a in present.items())
        raise TypeError(f"{fn}: arrays must share one dtype (float32 or float64); got {desc}")


@dataclass(frozen=True)
class Geometry:
    """Per-axis sizes of one correlation (tuples over the spatial axes)."""
    length: tuple[int, ...]      # L: input length
    kernel: tuple[int, ...]      # k: filter taps
    dilation: tuple[int, ...]
    stride: tuple[int, ...]
    pad_lo: tuple[int, ...]
    padded: tuple[int, ...]      # P = L + pad_lo + pad_hi
    out1: tuple[int, ...]        # stride-1 output length P - k_eff + 1
    out: tuple[int, ...]         # strided output length

    def tap_grid(self) -> dict:
        """``start``/``step`` of the filter taps: padding is a phase of their spectrum."""
        return dict(start=tuple(-p for p in self.pad_lo), step=self.dilation)

    @property
    def k_eff(self) -> tuple[int, ...]:
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def min_size(self) -> tuple[int, ...]:
        """Smallest exact transform size per axis: ``max(L + max(pad_lo, pad_hi), k_eff,
        out1)``, at most ``padded``, whatever the stride.

        With the input at positions ``0..L-1``, tap ``j`` at ``j*dilation - pad_lo``
        and the stride-1 outputs at ``0..out1-1``, the positions read run from
        ``-pad_lo`` to ``L - 1 + pad_hi``.  A circular correlation of size ``n``
        equals the padded one (forward and both gradients) when each of them that
        lies outside the input wraps to outside it (``n >= L + pad_lo`` and
        ``n >= L + pad_hi``) and no two taps and no two outputs share a position
        (``n >= k_eff``, ``n >= out1``).
        """
        return tuple(max(n + max(lo, p - n - lo), ke, p - ke + 1)
                     for n, lo, p, ke in zip(self.length, self.pad_lo, self.padded,
                                              self.k_eff))


def conv_geometry(fn: str, spatial: tuple[int, ...], kernel: tuple[int, ...], *,
                  stride=1, padding=0, dilation=1) -> Geometry:
    d = len(spatial)
    stride = ntuple(fn, "stride", stride, d, minimum=1)
    dilation = ntuple(fn, "dilation", dilation, d, minimum=1)
    k_eff = tuple((k - 1) * dl + 1 for k, dl in zip(kernel, dilation))
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * d
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}: padding='same' needs stride 1 (as in PyTorch), "
                                 f"got stride={stride}")
            lo = tuple((ke - 1) // 2 for ke in k_eff)
            hi = tuple(ke - 1 - p for ke, p in zip(k_eff, lo))
        else:
            raise ValueError(f"{fn}: padding must be an int, a tuple of {d} ints, 'valid' or "
                             f"'same', got {padding!r}")
    else:
        lo = hi = ntuple(fn, "padding", padding, d, minimum=0)
    padded = tuple(n + a + b for n, a, b in zip(spatial, lo, hi))
    out1 = tuple(p - ke + 1 for p, ke in zip(padded, k_eff))
    for a in range(d):
        if out1[a] < 1:
            raise ValueError(
                f"{fn}: kernel (effective size {k_eff[a]} = (k-1)*dilation+1 with k={kernel[a]}, "
                f"dilation={dilation[a]}) is larger than the padded input ({padded[a]}) along "
                f"spatial axis {a}; the output size would be {out1[a]}")
    out = tuple((o - 1) // s + 1 for o, s in zip(out1, stride))
    return Geometry(tuple(spatial), tuple(kernel), dilation, stride, lo, padded, out1, out)
