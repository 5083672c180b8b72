"""Dense, activation, reshaping, dropout and container layers."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _backend as B
from .._validation import check_int
from ._base import (
    Module,
    check_bool,
    check_dtype,
    check_input,
    check_module,
    check_rng,
    generator_from_state,
    init_uniform,
    np_dtype,
)

__all__ = ["Dropout", "Flatten", "GlobalAvgPool", "Linear", "ReLU", "Residual", "Sequential"]


def _zero(x, xp):
    # 0-d zero of x's dtype and device, for xp.where
    return xp.zeros((), dtype=x.dtype, device=B.device(x))


class Linear(Module):
    """Affine map ``y = x @ w.T + b``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output features.
    bias : bool, default True
        Whether to learn ``b``.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters (the input must match).
    rng : numpy.random.Generator or int or None
        Source of the initial values (a seed, or fresh entropy for ``None``).

    Notes
    -----
    ``params``: ``w`` of shape (out_features, in_features) and ``b`` of shape
    (out_features,), both U(-1/sqrt(in_features), 1/sqrt(in_features)) as in
    PyTorch.  Input (N, in_features), output (N, out_features).

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import Linear
    >>> layer = Linear(4, 3, rng=0)
    >>> layer(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype="float32", rng=None):
        super().__init__()
        self.in_features = check_int("Linear", "in_features", in_features)
        self.out_features = check_int("Linear", "out_features", out_features)
        self.bias = check_bool("Linear", "bias", bias)
        dt, rng = check_dtype("Linear", dtype), check_rng("Linear", rng)
        bound = 1.0 / math.sqrt(in_features)
        self._params["w"] = init_uniform(rng, bound, (out_features, in_features), dt)
        if bias:
            self._params["b"] = init_uniform(rng, bound, (out_features,), dt)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    def forward(self, x):
        w, b = self._params["w"], self._params.get("b")
        B.namespace(x, w, fn="Linear", names=("x", "w"))
        check_input("Linear", x, (2,), f"(N, in_features={self.in_features})",
                     dtype=w.dtype)
        if x.shape[1] != self.in_features:
            raise ValueError(f"Linear: x.shape[1] must be in_features ({self.in_features}), "
                             f"got shape {tuple(x.shape)}")
        self._cache = x
        y = x @ w.T
        return y if b is None else y + b

    def backward(self, dy):
        x = self._take_cache()
        xp = B.namespace(dy, x, fn="Linear.backward", names=("dy", "x"))
        self._grads["w"] = dy.T @ x
        if self.bias:
            self._grads["b"] = xp.sum(dy, axis=0)
        return dy @ self._params["w"]

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias}"


class ReLU(Module):
    """Rectified linear unit ``y = max(x, 0)``; the gradient at 0 is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import ReLU
    >>> ReLU()(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """

    def forward(self, x):
        xp = B.namespace(x, fn="ReLU", names=("x",))
        self._cache = x > 0               # only the sign pattern is kept for the backward
        return xp.maximum(x, _zero(x, xp))   # NaN propagates through maximum, as in PyTorch

    def backward(self, dy):
        mask = self._take_cache()
        xp = B.namespace(dy, fn="ReLU.backward", names=("dy",))
        if B.is_numpy(xp) and np.isfinite(dy).all():
            # NumPy's where is 3-8x slower than a product with the mask, which gives the
            # same values (zeros aside, whose sign may differ) where dy is finite
            return dy * mask
        return xp.where(mask, dy, _zero(dy, xp))


class Flatten(Module):
    """Reshape (N, ...) to (N, prod(...)).

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import Flatten
    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def forward(self, x):
        xp = B.namespace(x, fn="Flatten", names=("x",))
        if x.ndim < 1:
            raise ValueError(f"Flatten: x must have a batch axis, got shape {tuple(x.shape)}")
        self._cache = tuple(x.shape)
        return xp.reshape(x, (x.shape[0], -1))

    def backward(self, dy):
        shape = self._take_cache()
        return B.namespace(dy, fn="Flatten.backward", names=("dy",)).reshape(dy, shape)


class Dropout(Module):
    """Inverted dropout: zero each entry with probability ``p``, scale the rest by 1/(1-p).

    Identity in eval mode.

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, in [0, 1].
    rng : numpy.random.Generator or int or None
        Source of the masks; a seed makes them reproducible.

    Notes
    -----
    Masks are drawn on the host from the NumPy ``Generator`` and moved to the
    input's namespace and device, so one seed gives the same masks on NumPy and
    CuPy (at the cost of a host-to-device copy of the mask per call).  The
    generator's state travels in :meth:`~blconv.nn.Module.state_dict` (entry
    ``"rng"``), so a model restored from a checkpoint draws the masks the
    original would have drawn next.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import Dropout
    >>> layer = Dropout(0.5, rng=0)
    >>> y = layer(np.ones(8))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> twin = Dropout(0.5, rng=1)
    >>> twin.load_state_dict(layer.state_dict())
    >>> bool(np.array_equal(twin(np.ones(8)), layer(np.ones(8))))
    True
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = check_rng("Dropout", rng)

    def forward(self, x):
        xp = B.namespace(x, fn="Dropout", names=("x",))
        if not self.training or self.p == 0.0:
            self._cache = "identity"
            return x
        keep = self.rng.random(tuple(x.shape)) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        mask = B.asarray((keep * scale).astype(np_dtype(x)), xp=xp, like=x)
        self._cache = mask
        return x * mask

    def backward(self, dy):
        mask = self._take_cache()
        return dy if isinstance(mask, str) else dy * mask

    def _rng_state(self) -> dict:
        return self.rng.bit_generator.state

    def _set_rng_state(self, state: dict) -> None:
        self.rng = generator_from_state(self.rng, state)

    def extra_repr(self):
        return f"p={self.p}"


class GlobalAvgPool(Module):
    """Mean over every spatial axis: (N, C, ...) to (N, C).

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import GlobalAvgPool
    >>> GlobalAvgPool()(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[1.5, 5.5]])
    """

    def forward(self, x):
        xp = B.namespace(x, fn="GlobalAvgPool", names=("x",))
        check_input("GlobalAvgPool", x, tuple(range(3, 8)), "(N, C, *spatial)")
        self._cache = tuple(x.shape)
        return xp.mean(x, axis=tuple(range(2, x.ndim)))

    def backward(self, dy):
        shape = self._take_cache()
        xp = B.namespace(dy, fn="GlobalAvgPool.backward", names=("dy",))
        count = math.prod(shape[2:])
        g = xp.reshape(dy / count, tuple(shape[:2]) + (1,) * (len(shape) - 2))
        return xp.asarray(xp.broadcast_to(g, shape), copy=True)


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse.

    Parameters
    ----------
    *layers : Module
        The layers, keyed ``"0"``, ``"1"``, ... in ``params``/``grads``/``buffers``
        (``"0.w"``, ``"3.body.1.running_mean"``).

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import Linear, ReLU, Sequential
    >>> model = Sequential(Linear(4, 8, rng=0), ReLU(), Linear(8, 2, rng=1))
    >>> y = model(np.ones((5, 4), dtype=np.float32))
    >>> dx = model.backward(np.ones_like(y))
    >>> dx.shape, sorted(model.grads), len(model)
    ((5, 4), ['0.b', '0.w', '2.b', '2.w'], 3)
    """

    def __init__(self, *layers: Module):
        super().__init__()
        self.layers = [check_module("Sequential", f"layers[{i}]", layer)
                       for i, layer in enumerate(layers)]

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]


class Residual(Module):
    """Residual block ``y = body(x) + projection(x)`` (``+ x`` without a projection).

    Parameters
    ----------
    body : Module
        The residual branch, keyed ``"body"``.
    projection : Module, optional
        The shortcut (e.g. a 1x1 strided ``Conv2d`` then ``BatchNorm2d``), keyed
        ``"projection"``; identity when omitted.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import Linear, ReLU, Residual, Sequential
    >>> block = Residual(Sequential(Linear(3, 3, rng=0), ReLU()))
    >>> block(np.zeros((2, 3), dtype=np.float32)).shape, sorted(block.params)
    ((2, 3), ['body.0.b', 'body.0.w'])
    """

    def __init__(self, body: Module, projection: Module | None = None):
        super().__init__()
        self.body = check_module("Residual", "body", body)
        self.projection = (None if projection is None
                           else check_module("Residual", "projection", projection))

    def children(self):
        kids = [("body", self.body)]
        return kids + ([("projection", self.projection)] if self.projection is not None else [])

    def forward(self, x):
        y = self.body.forward(x)
        s = x if self.projection is None else self.projection.forward(x)
        if tuple(y.shape) != tuple(s.shape):
            raise ValueError(f"Residual: body output shape {tuple(y.shape)} must equal the "
                             f"shortcut's {tuple(s.shape)}; give a projection")
        return y + s

    def backward(self, dy):
        dx = self.body.backward(dy)
        return dx + (dy if self.projection is None else self.projection.backward(dy))
