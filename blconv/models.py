"""Ready-made band-limited networks, rebuildable from a JSON-serialisable spec.

Every builder returns a :class:`blconv.nn.Sequential` whose ``spec`` attribute,
``{"builder": name, "kwargs": {...}}``, holds JSON types only, so a checkpoint
(:func:`blconv.train.save`) can store it and :func:`build` can rebuild the same
architecture with the same initial weights.

``compress_rate`` and ``preserve_energy`` (defined in :mod:`blconv.band` and
:class:`blconv.nn.Conv2d`) are either one value for every band-limited layer or
a list with one entry per conv layer, in the order of :func:`conv_layers`
(depth first: for :func:`resnet`, a block's two convs, then its 1x1 projection).

Examples
--------
>>> import numpy as np
>>> from blconv.models import build, fcn1d, set_compression
>>> model = fcn1d(1, 3, channels=(4, 8, 4), compress_rate=0.5)
>>> model(np.zeros((2, 1, 32), dtype=np.float32)).shape
(2, 3)
>>> build(model.spec).spec == model.spec
True
>>> previous = set_compression(model, compress_rate=0.75)
>>> previous["compress_rate"]
[0.5, 0.5, 0.5]
"""
from __future__ import annotations

import numbers

import numpy as np

from ._validation import check_energy, check_int, check_rate
from .band import Band
from .nn._base import check_dtype
from .nn import (BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout, GlobalAvgPool, Linear,
                 MaxPool2d, Module, ReLU, Residual, Sequential)

__all__ = ["fcn1d", "cnn2d", "resnet", "build", "conv_layers", "set_compression", "BUILDERS"]


# --- argument checks ------------------------------------------------------------------------
def _int_list(fn: str, name: str, value) -> list[int]:
    if not isinstance(value, (tuple, list)) or not value:
        raise TypeError(f"{fn}: {name} must be a non-empty tuple of ints, got {value!r}")
    return [check_int(fn, f"{name}[{i}]", v) for i, v in enumerate(value)]


def _dropout(fn: str, p) -> float:
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p < 1.0:
        raise ValueError(f"{fn}: dropout must be a number in [0, 1), got {p!r}")
    return float(p)


def _seed(fn: str, seed) -> int:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"{fn}: seed must be an int (stored in the JSON spec), got {seed!r}")
    if seed < 0:
        raise ValueError(f"{fn}: seed must be >= 0, got {seed!r}")
    return int(seed)


def _dtype(fn: str, dtype) -> str:
    return check_dtype(fn, dtype).name           # the JSON spec stores the name


def _fft_size(fn: str, fft_size):
    # JSON form: a str, an int, or a list of ints (the conv layers check the values)
    if isinstance(fft_size, str) or (isinstance(fft_size, numbers.Integral)
                                     and not isinstance(fft_size, bool)):
        return fft_size if isinstance(fft_size, str) else int(fft_size)
    if isinstance(fft_size, (tuple, list)):
        return [check_int(fn, f"fft_size[{i}]", v) for i, v in enumerate(fft_size)]
    raise TypeError(f"{fn}: fft_size must be 'fast', 'pow2', an int or a tuple of ints, "
                    f"got {fft_size!r}")


def _rate_spec(value):
    # JSON form of a compress_rate / preserve_energy argument: a number, None or a list
    if isinstance(value, (tuple, list)):
        return [None if v is None else float(v) if isinstance(v, numbers.Real)
                and not isinstance(v, bool) else v for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for the initial weights and for the dropout masks."""
    init, drop = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init), np.random.default_rng(drop)


def _finish(fn: str, layers: list, spec_kwargs: dict, compress_rate, preserve_energy,
            dropout: float, drop_rng, head: Linear) -> Sequential:
    if dropout > 0:
        layers.append(Dropout(dropout, rng=drop_rng))
    layers.append(head)
    model = Sequential(*layers)
    _apply(fn, model, compress_rate, preserve_energy)
    model.spec = {"builder": fn, "kwargs": spec_kwargs}
    return model


# --- builders ---------------------------------------------------------------------------------
def fcn1d(in_channels: int, n_classes: int, *, channels=(128, 256, 128), kernels=(8, 5, 3),
          compress_rate=0.0, preserve_energy=None, fft_size="fast", dropout: float = 0.0,
          dtype="float32", seed: int = 0) -> Sequential:
    """The fully convolutional network for time series of Wang et al. (2017).

    ``len(channels)`` blocks ``Conv1d(padding="same") -> BatchNorm1d -> ReLU``,
    then :class:`~blconv.nn.GlobalAvgPool`, an optional
    :class:`~blconv.nn.Dropout` and a :class:`~blconv.nn.Linear` head.

    Parameters
    ----------
    in_channels : int
        Channels of the input series, shape (N, in_channels, L).
    n_classes : int
        Number of logits.
    channels : tuple of int, default (128, 256, 128)
        Output channels of each conv block.
    kernels : tuple of int, default (8, 5, 3)
        Kernel size of each conv block (same length as ``channels``).
    compress_rate : float or list of float, default 0.0
        Per conv layer or one for all (see the module notes and :mod:`blconv.band`).
    preserve_energy : float or list of (float or None), optional
        Energy-based band per conv layer instead of a fixed rate.
    fft_size : {"fast", "pow2"} or int, default "fast"
        Passed to every conv layer.
    dropout : float, default 0.0
        Drop probability before the head (no Dropout layer when 0).
    dtype : {"float32", "float64"}, default "float32"
    seed : int, default 0
        Seeds the initial weights and the dropout masks.

    Returns
    -------
    Sequential
        Logits (N, n_classes); ``spec`` rebuilds it with :func:`build`.

    Raises
    ------
    ValueError, TypeError
        For bad sizes, mismatched ``channels``/``kernels`` or a per-layer list
        of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.models import fcn1d
    >>> model = fcn1d(2, 5, channels=(4, 6, 4), compress_rate=[0.0, 0.5, 0.5])
    >>> model(np.ones((3, 2, 20), dtype=np.float32)).shape
    (3, 5)
    """
    fn = "fcn1d"
    in_channels, n_classes = check_int(fn, "in_channels", in_channels), check_int(fn, "n_classes",
                                                                                 n_classes)
    channels, kernels = _int_list(fn, "channels", channels), _int_list(fn, "kernels", kernels)
    if len(channels) != len(kernels):
        raise ValueError(f"{fn}: kernels must have one entry per entry of channels "
                         f"({len(channels)}), got {len(kernels)}")
    kwargs = dict(in_channels=in_channels, n_classes=n_classes, channels=channels,
                  kernels=kernels, compress_rate=_rate_spec(compress_rate),
                  preserve_energy=_rate_spec(preserve_energy), fft_size=_fft_size(fn, fft_size),
                  dropout=_dropout(fn, dropout), dtype=_dtype(fn, dtype), seed=_seed(fn, seed))
    init, drop = _rngs(kwargs["seed"])
    dt, layers, c_in = kwargs["dtype"], [], in_channels
    for c, k in zip(channels, kernels):
        layers += [Conv1d(c_in, c, k, padding="same", fft_size=kwargs["fft_size"], dtype=dt,
                          rng=init),
                   BatchNorm1d(c, dtype=dt), ReLU()]
        c_in = c
    layers.append(GlobalAvgPool())
    head = Linear(c_in, n_classes, dtype=dt, rng=init)
    return _finish(fn, layers, kwargs, compress_rate, preserve_energy, kwargs["dropout"], drop,
                   head)


def cnn2d(in_channels: int, n_classes: int, *, width: int = 32, compress_rate=0.0,
          preserve_energy=None, fft_size="fast", dropout: float = 0.0, dtype="float32",
          seed: int = 0) -> Sequential:
    """A small image CNN: two 3x3 conv blocks with a 2x2 max-pool between.

    ``Conv2d(in, width, 3, padding=1) -> BatchNorm2d -> ReLU -> MaxPool2d(2) ->
    Conv2d(width, 2 width, 3, padding=1) -> BatchNorm2d -> ReLU -> GlobalAvgPool
    -> [Dropout] -> Linear``.  Sized for the 8x8 digits; works on 32x32 CIFAR
    (any input of at least 2x2).  The convs have no bias (BatchNorm follows).

    Parameters
    ----------
    in_channels : int
        Image channels, input shape (N, in_channels, H, W).
    n_classes : int
    width : int, default 32
        Channels of the first block (the second has ``2 * width``).
    compress_rate, preserve_energy, fft_size, dropout, dtype, seed
        As in :func:`fcn1d`; lists have 2 entries.

    Returns
    -------
    Sequential
        Logits (N, n_classes); ``spec`` rebuilds it with :func:`build`.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.models import cnn2d
    >>> cnn2d(1, 10, width=4, compress_rate=0.3)(np.ones((2, 1, 8, 8), dtype=np.float32)).shape
    (2, 10)
    """
    fn = "cnn2d"
    kwargs = dict(in_channels=check_int(fn, "in_channels", in_channels),
                  n_classes=check_int(fn, "n_classes", n_classes),
                  width=check_int(fn, "width", width),
                  compress_rate=_rate_spec(compress_rate),
                  preserve_energy=_rate_spec(preserve_energy), fft_size=_fft_size(fn, fft_size),
                  dropout=_dropout(fn, dropout), dtype=_dtype(fn, dtype), seed=_seed(fn, seed))
    init, drop = _rngs(kwargs["seed"])
    dt, w, fs = kwargs["dtype"], kwargs["width"], kwargs["fft_size"]
    layers = [Conv2d(kwargs["in_channels"], w, 3, padding=1, bias=False, fft_size=fs, dtype=dt,
                     rng=init), BatchNorm2d(w, dtype=dt), ReLU(), MaxPool2d(2),
              Conv2d(w, 2 * w, 3, padding=1, bias=False, fft_size=fs, dtype=dt, rng=init),
              BatchNorm2d(2 * w, dtype=dt), ReLU(), GlobalAvgPool()]
    head = Linear(2 * w, kwargs["n_classes"], dtype=dt, rng=init)
    return _finish(fn, layers, kwargs, compress_rate, preserve_energy, kwargs["dropout"], drop,
                   head)


def resnet(in_channels: int, n_classes: int, *, width: int = 16, blocks=(2, 2, 2),
           compress_rate=0.0, preserve_energy=None, fft_size="fast", dropout: float = 0.0,
           dtype="float32", seed: int = 0) -> Sequential:
    """A small ResNet of basic blocks, ResNet-18's design at a CPU-friendly size.

    A stem ``Conv2d(in, width, 3, padding=1) -> BatchNorm2d -> ReLU``, then one
    stage per entry of ``blocks`` with ``width * 2**i`` channels, each a run of
    basic blocks ``Residual(conv3x3 -> BN -> ReLU -> conv3x3 -> BN, shortcut)``
    followed by a :class:`~blconv.nn.ReLU` (after the sum).  The first block of
    every stage but the first has stride 2 and a projection shortcut
    ``Conv2d(1x1, stride 2) -> BatchNorm2d``; other shortcuts are the identity.
    Then ``GlobalAvgPool -> [Dropout] -> Linear``.  Convs have no bias.

    Parameters
    ----------
    in_channels : int
    n_classes : int
    width : int, default 16
        Channels of the stem and first stage (ResNet-18 uses 64).
    blocks : tuple of int, default (2, 2, 2)
        Basic blocks per stage (ResNet-18: (2, 2, 2, 2)).
    compress_rate, preserve_energy, fft_size, dropout, dtype, seed
        As in :func:`fcn1d`.  A per-layer list has
        ``1 + 2 * sum(blocks) + len(blocks) - 1`` entries, in :func:`conv_layers`
        order (stem; per block its two convs, then its projection if any).

    Returns
    -------
    Sequential
        Logits (N, n_classes); spatial size shrinks by 2 per stage after the first.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.models import conv_layers, resnet
    >>> model = resnet(3, 10, width=4, blocks=(1, 1))
    >>> model(np.ones((2, 3, 8, 8), dtype=np.float32)).shape, len(conv_layers(model))
    ((2, 10), 6)
    """
    fn = "resnet"
    kwargs = dict(in_channels=check_int(fn, "in_channels", in_channels),
                  n_classes=check_int(fn, "n_classes", n_classes),
                  width=check_int(fn, "width", width),
                  blocks=_int_list(fn, "blocks", blocks), compress_rate=_rate_spec(compress_rate),
                  preserve_energy=_rate_spec(preserve_energy), fft_size=_fft_size(fn, fft_size),
                  dropout=_dropout(fn, dropout), dtype=_dtype(fn, dtype), seed=_seed(fn, seed))
    init, drop = _rngs(kwargs["seed"])
    dt, fs, w = kwargs["dtype"], kwargs["fft_size"], kwargs["width"]

    def conv(c_in, c_out, k, stride=1):
        return Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False, fft_size=fs,
                      dtype=dt, rng=init)

    layers = [conv(kwargs["in_channels"], w, 3), BatchNorm2d(w, dtype=dt), ReLU()]
    c_in = w
    for stage, n_blocks in enumerate(kwargs["blocks"]):
        c_out = w * 2 ** stage
        for i in range(n_blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            body = Sequential(conv(c_in, c_out, 3, stride), BatchNorm2d(c_out, dtype=dt), ReLU(),
                              conv(c_out, c_out, 3), BatchNorm2d(c_out, dtype=dt))
            shortcut = None
            if stride != 1 or c_in != c_out:
                shortcut = Sequential(conv(c_in, c_out, 1, stride), BatchNorm2d(c_out, dtype=dt))
            layers += [Residual(body, shortcut), ReLU()]
            c_in = c_out
    layers.append(GlobalAvgPool())
    head = Linear(c_in, kwargs["n_classes"], dtype=dt, rng=init)
    return _finish(fn, layers, kwargs, compress_rate, preserve_energy, kwargs["dropout"], drop,
                   head)


#: The builders :func:`build` knows, by name.
BUILDERS = {"fcn1d": fcn1d, "cnn2d": cnn2d, "resnet": resnet}


def build(spec: dict) -> Sequential:
    """Rebuild a model from its ``spec`` (same architecture, same initial weights).

    Parameters
    ----------
    spec : dict
        ``{"builder": name, "kwargs": {...}}``, as a model's ``spec`` attribute
        (possibly after a JSON round trip).

    Returns
    -------
    Sequential
        A fresh model; load trained weights with ``load_state_dict`` or use
        :func:`blconv.train.load`.

    Raises
    ------
    ValueError
        For an unknown builder (the message lists the known ones) or a
        malformed spec.

    Examples
    --------
    >>> import json
    >>> from blconv.models import build, cnn2d
    >>> spec = json.loads(json.dumps(cnn2d(1, 10, width=4).spec))
    >>> build(spec).spec == spec
    True
    """
    if not isinstance(spec, dict) or set(spec) != {"builder", "kwargs"} \
            or not isinstance(spec["kwargs"], dict):
        raise ValueError(f"build: spec must be a dict {{'builder': str, 'kwargs': dict}}, "
                         f"got {spec!r}")
    name = spec["builder"]
    if name not in BUILDERS:
        raise ValueError(f"build: unknown builder {name!r}; known builders: "
                         f"{', '.join(sorted(BUILDERS))}")
    return BUILDERS[name](**spec["kwargs"])


# --- compression settings ----------------------------------------------------------------------
def conv_layers(model: Module) -> list:
    """The band-limited conv layers of ``model``, depth first (the per-layer list order).

    Parameters
    ----------
    model : Module

    Returns
    -------
    list of Conv1d or Conv2d

    Examples
    --------
    >>> from blconv.models import conv_layers, fcn1d
    >>> [type(c).__name__ for c in conv_layers(fcn1d(1, 2, channels=(2, 2, 2)))]
    ['Conv1d', 'Conv1d', 'Conv1d']
    """
    if not isinstance(model, Module):
        raise TypeError(f"conv_layers: model must be a blconv.nn.Module, "
                        f"got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, (Conv1d, Conv2d))]


def _per_layer(fn: str, name: str, value, n: int) -> list:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{fn}: {name} must be one value or a list with one entry per "
                             f"conv layer ({n}), got a list of {len(value)}")
        return list(value)
    return [value] * n


def _band_json(band: Band | None):
    return None if band is None else {"fft_shape": list(band.fft_shape), "keep": list(band.keep)}


def _band_from_json(where: str, value, d: int) -> Band | None:
    """A frozen band of ``d`` axes, given as a :class:`Band`, ``{"fft_shape": [...], "keep":
    [...]}`` or None."""
    if value is None:
        return None
    if isinstance(value, Band):
        value = {"fft_shape": list(value.fft_shape), "keep": list(value.keep)}
    ok = (isinstance(value, dict) and set(value) == {"fft_shape", "keep"}
          and all(isinstance(value[k], (list, tuple)) and value[k]
                  and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                          for v in value[k]) for k in ("fft_shape", "keep"))
          and len(value["fft_shape"]) == len(value["keep"]))
    if not ok:
        raise ValueError(f"{where}: frozen_band must be None, a blconv.Band or "
                         f"{{'fft_shape': [ints], 'keep': [ints]}} of equal lengths, got {value!r}")
    n, k = value["fft_shape"], value["keep"]
    if len(n) != d or not all(m >= 1 and 1 <= j <= m // 2 + 1 for m, j in zip(n, k)):
        raise ValueError(f"{where}: frozen_band must have one entry per spatial axis ({d}), "
                         f"fft_shape >= 1 and keep in 1..fft_shape // 2 + 1, got "
                         f"fft_shape={list(n)}, keep={list(k)}")
    return Band.from_keep(n, k)


def _apply(fn: str, model: Module, compress_rate, preserve_energy, frozen_band=None) -> dict:
    layers = conv_layers(model)
    previous = {"compress_rate": [c.compress_rate for c in layers],
                "preserve_energy": [c.preserve_energy for c in layers]}
    if any(c.frozen_band is not None for c in layers):
        previous["frozen_band"] = [_band_json(c.frozen_band) for c in layers]
    if compress_rate is None and preserve_energy is None and frozen_band is None:
        return previous
    checked = None
    if compress_rate is not None or preserve_energy is not None:
        # giving only one of the two resets the other: rate 0 / no energy target
        rates = _per_layer(fn, "compress_rate", 0.0 if compress_rate is None else compress_rate,
                           len(layers))
        energies = _per_layer(fn, "preserve_energy", preserve_energy, len(layers))
        checked = []
        for i, (c, e) in enumerate(zip(rates, energies)):
            where = f"{fn} (conv layer {i})"
            c = check_rate(where, c)
            checked.append((c, check_energy(where, e, c)))
    bands = [None] * len(layers)
    if frozen_band is not None:
        given = _per_layer(fn, "frozen_band", frozen_band, len(layers)) \
            if isinstance(frozen_band, (list, tuple)) else [frozen_band] * len(layers)
        bands = [_band_from_json(f"{fn} (conv layer {i})", b, 1 if isinstance(c, Conv1d) else 2)
                 for i, (b, c) in enumerate(zip(given, layers))]
    for i, layer in enumerate(layers):       # all validated first: no partial update
        if checked is not None:
            layer.compress_rate, layer.preserve_energy = checked[i]
        layer.frozen_band = bands[i]
    return previous


def set_compression(model: Module, *, compress_rate=None, preserve_energy=None,
                    frozen_band=None) -> dict:
    """Set the band of every band-limited conv layer; return the previous settings.

    Parameters
    ----------
    model : Module
    compress_rate : float or list of float, optional
        One rate for every conv layer or one per layer (:func:`conv_layers`
        order).  Given alone, ``preserve_energy`` is reset to ``None``.
    preserve_energy : float or list of (float or None), optional
        Energy target per layer; given alone, ``compress_rate`` is reset to 0.
        A layer may have an energy target only with rate 0.
    frozen_band : list of (Band, dict or None), optional
        A fixed band per layer (:attr:`blconv.nn.Conv1d.frozen_band`, as
        :func:`blconv.nn.calibrate` sets), a :class:`~blconv.Band` or its JSON
        form ``{"fft_shape": [...], "keep": [...]}``; ``None`` entries unfreeze.
        Setting ``compress_rate`` or ``preserve_energy`` without it unfreezes
        every layer: the new policy applies.

    Returns
    -------
    dict
        ``{"compress_rate": [...], "preserve_energy": [...]}``, one entry per
        layer, as before the call, plus ``"frozen_band"`` (JSON forms or
        ``None``) when a layer had a frozen band: ``set_compression(model,
        **previous)`` restores them.  With no argument nothing changes (a
        getter).

    Raises
    ------
    ValueError
        For a list of the wrong length or an invalid value (nothing is changed).

    Examples
    --------
    >>> from blconv.models import fcn1d, set_compression
    >>> model = fcn1d(1, 2, channels=(2, 2, 2))
    >>> old = set_compression(model, compress_rate=[0.1, 0.2, 0.3])
    >>> set_compression(model, preserve_energy=0.9)["compress_rate"]
    [0.1, 0.2, 0.3]
    >>> _ = set_compression(model, **old)
    >>> set_compression(model)
    {'compress_rate': [0.0, 0.0, 0.0], 'preserve_energy': [None, None, None]}
    """
    return _apply("set_compression", model, compress_rate, preserve_energy, frozen_band)
