"""SGD, Adam and learning-rate schedules (PyTorch's semantics).

The optimizer reads ``model.params`` and ``model.grads`` (same keys) at every
``step()`` and updates the parameter arrays in place; schedulers read and
write the optimizer's ``lr`` attribute.

Every scheduler steps once per epoch with ``step(metric)``: the value of the
epoch's monitored metric (:func:`blconv.train.fit` passes its ``monitor``
entry of the epoch's history row).  :class:`ReduceLROnPlateau` needs it; the
epoch-counting schedules (:class:`StepLR`, :class:`CosineLR`) take it and
ignore it, so one call fits them all.

Examples
--------
>>> import numpy as np
>>> from blconv.nn import Linear, cross_entropy
>>> from blconv.optim import SGD, StepLR
>>> model = Linear(3, 2, rng=0)
>>> opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=5e-4)
>>> sched = StepLR(opt, step_size=2)
>>> for epoch in range(4):
...     loss, dlogits = cross_entropy(model(np.ones((4, 3), dtype=np.float32)), np.zeros(4, int))
...     _ = model.backward(dlogits)
...     opt.step()
...     sched.step()
>>> round(opt.lr, 6)
0.001
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import _backend as B
from ._validation import check_int
from .nn._base import converter, np_dtype

__all__ = ["SGD", "Adam", "CosineLR", "ReduceLROnPlateau", "StepLR"]


def _real(owner: str, name: str, value, *, low: float, strict: bool = False,
          high: float = math.inf) -> float:
    """A real number >= low (> low when strict) and < high."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    v = float(value)
    if math.isnan(v) or v < low or (strict and v == low) or v >= high:
        cmp = ">" if strict else ">="
        upper = f" and < {high:g}" if high < math.inf else ""
        raise ValueError(f"{owner}: {name} must be {cmp} {low:g}{upper}, got {value!r}")
    return v


class _Optimizer:
    """What SGD and Adam share: the model check, the step loop, the state dict.

    Subclasses name their scalar state in ``_HYPER`` and their per-parameter
    arrays (dicts keyed like ``params``) in ``_BUFFERS``, and implement
    ``_update(key, p, g)``, which returns the step to subtract from ``p``.
    """

    _HYPER: tuple = ()
    _BUFFERS: tuple = ()

    def _init_model(self, model) -> None:
        name = type(self).__name__
        if not (hasattr(model, "params") and hasattr(model, "grads")):
            raise TypeError(f"{name}: model must have 'params' and 'grads' dicts (a "
                            f"blconv.nn.Module), got {type(model).__name__}")
        self.model = model
        for b in self._BUFFERS:
            setattr(self, b, {})

    def _prepare(self) -> None:
        """Called once per :meth:`step`, before any parameter is updated."""

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        params, grads = self.model.params, self.model.grads
        self._prepare()
        for key, p in params.items():
            if key not in grads:
                raise ValueError(f"{type(self).__name__}: model.grads has no entry {key!r} "
                                 f"for the parameter")
            g = grads[key]
            if self.weight_decay:
                g = g + self.weight_decay * p
            p -= self._update(key, p, g)

    def zero_grad(self) -> None:
        """Zero the model's gradients (optional: every backward overwrites them)."""
        self.model.zero_grad()

    def to(self, target, device=None):
        """Move the per-parameter buffers (momentum, moments) to another device, in place.

        Call it with the arguments given to :func:`blconv.nn.to_device` when the
        model moves after the optimizer was built, so that the buffers stay on
        the device of their parameters.

        Parameters
        ----------
        target : {"cpu", "gpu"} or module
            As :func:`blconv.nn.to_device`.
        device : optional
            As :func:`blconv.nn.to_device`.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For an unknown ``target``, or a ``device`` with ``"cpu"``.
        RuntimeError
            For ``"gpu"`` without CuPy.

        Examples
        --------
        >>> import numpy as np
        >>> from blconv.nn import Linear, to_device
        >>> from blconv.optim import SGD
        >>> layer = Linear(2, 1, rng=0)
        >>> opt = SGD(layer, lr=0.1, momentum=0.9)
        >>> opt.step()                                # zero gradients: buffers of zeros
        >>> model = to_device(layer, "cpu")           # "gpu" with CuPy
        >>> type(opt.to("cpu").momentum_buffers["w"]).__name__
        'ndarray'
        """
        convert = converter(f"{type(self).__name__}.to", target, device)
        for b in self._BUFFERS:
            setattr(self, b, {k: convert(a) for k, a in getattr(self, b).items()})
        return self

    def state_dict(self) -> dict:
        """Hyperparameters, counters and per-parameter buffers.

        Returns
        -------
        dict
            The names of ``_HYPER`` as Python numbers, and each buffer dict
            ``{param key: array}`` (the arrays themselves, on the device; empty
            before the first step).
        """
        state = {k: getattr(self, k) for k in self._HYPER}
        state.update({b: dict(getattr(self, b)) for b in self._BUFFERS})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output; buffers move to each param's device and dtype.

        Raises
        ------
        ValueError
            For missing keys or buffers of unknown parameters or wrong shapes.
        """
        fn = f"{type(self).__name__}.load_state_dict"
        missing = (set(self._HYPER) | set(self._BUFFERS)) - set(state)
        if missing:
            raise ValueError(f"{fn}: state lacks {sorted(missing)}")
        params = self.model.params
        loaded = {}
        for b in self._BUFFERS:
            what = b.rstrip("s").replace("_", " ")
            loaded[b] = {}
            for key, a in state[b].items():
                if key not in params:
                    raise ValueError(f"{fn}: {what} {key!r} matches no parameter of the model")
                p = params[key]
                host = np.array(B.to_numpy(a), dtype=np_dtype(p), copy=True)
                if host.shape != tuple(p.shape):
                    raise ValueError(f"{fn}: {what} {key!r} must have shape "
                                     f"{tuple(p.shape)}, got {host.shape}")
                loaded[b][key] = B.asarray(host, xp=B.namespace(p, fn=fn), like=p)
        for k in self._HYPER:
            v = state[k]
            setattr(self, k, tuple(v) if isinstance(v, list) else v)   # JSON turns tuples to lists
        for b in self._BUFFERS:
            setattr(self, b, loaded[b])

    def __repr__(self):
        hyper = (k for k in self._HYPER if k != "step_count")
        return f"{type(self).__name__}(" + ", ".join(f"{k}={getattr(self, k)}" for k in hyper) + ")"


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

    Parameters
    ----------
    model : object with ``params`` and ``grads``
        Usually a :class:`blconv.nn.Module`; both are read afresh at every step
        (so layers may replace their ``grads`` arrays), and the ``params``
        arrays are updated in place.
    lr : float
        Learning rate, > 0; the attribute ``lr`` is what schedulers change.
    momentum : float, default 0
    dampening : float, default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float, default 0
        L2 penalty added to the gradient (coupled, as ``torch.optim.SGD``).

    Notes
    -----
    For each parameter ``p`` with gradient ``g``, exactly as ``torch.optim.SGD``:

    .. math::
        g &\\leftarrow g + \\lambda p \\\\
        b &\\leftarrow g \\text{ at the first step, else } \\mu b + (1 - \\tau) g \\\\
        g &\\leftarrow g + \\mu b \\text{ (Nesterov) or } b \\\\
        p &\\leftarrow p - \\eta g

    Momentum buffers live on each parameter's device, keyed like ``params``;
    :meth:`state_dict` holds the hyperparameters and ``"momentum_buffers"``.

    Examples
    --------
    >>> import numpy as np
    >>> from blconv.nn import Linear
    >>> from blconv.optim import SGD
    >>> layer = Linear(2, 1, bias=False, rng=0)
    >>> layer.params["w"][...] = 1.0
    >>> layer.grads["w"] = np.array([[0.5, -0.5]], dtype=np.float32)
    >>> opt = SGD(layer, lr=0.1, momentum=0.9)
    >>> opt.step(); opt.step(); layer.params["w"]
    array([[0.855, 1.145]], dtype=float32)
    """

    _HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay")
    _BUFFERS = ("momentum_buffers",)

    def __init__(self, model, *, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        self._init_model(model)
        self.lr = _real("SGD", "lr", lr, low=0.0, strict=True)
        self.momentum = _real("SGD", "momentum", momentum, low=0.0)
        self.dampening = _real("SGD", "dampening", dampening, low=0.0)
        self.weight_decay = _real("SGD", "weight_decay", weight_decay, low=0.0)
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(f"SGD: nesterov needs momentum > 0 and dampening == 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        self.nesterov = nesterov

    def _update(self, key, p, g):
        mu = self.momentum
        if mu:
            buf = self.momentum_buffers.get(key)
            if buf is None:
                xp = B.namespace(g, fn="SGD.step", names=(f"grads[{key!r}]",))
                buf = xp.asarray(g, copy=True)
            else:
                buf = mu * buf + (1.0 - self.dampening) * g
            self.momentum_buffers[key] = buf
            g = g + mu * buf if self.nesterov else buf
        return self.lr * g


class Adam(_Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction and optional L2 weight decay.

    The optimiser of the fully convolutional network's published UCR results
    (Wang et al., 2017; Fawaz et al., 2019), with ``lr=1e-3`` and
    :class:`ReduceLROnPlateau` on the training loss.

    Parameters
    ----------
    model : object with ``params`` and ``grads``
        As for :class:`SGD`; the ``params`` arrays are updated in place.
    lr : float, default 1e-3
        Learning rate, > 0; the attribute ``lr`` is what schedulers change.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0
        L2 penalty added to the gradient (coupled, as ``torch.optim.Adam``; not AdamW).

    Notes
    -----
    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``,
    exactly as ``torch.optim.Adam``:

    .. math::
        g &\\leftarrow g + \\lambda p \\\\
        m &\\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\quad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2 \\quad (m = v = 0 \\text{ before step 1}) \\\\
        p &\\leftarrow p - \\eta \\, \\frac{m / (1 - \\beta_1^t)}{\\sqrt{v / (1 - \\beta_2^t)} + \\epsilon}

    :meth:`state_dict` holds the hyperparameters, ``"step_count"`` (``t``) and
    the moment buffers ``"exp_avg"`` and ``"exp_avg_sq"``, keyed like ``params``.

    Examples
    --------
    The first step moves every weight by ``lr`` against the sign of its gradient:

    >>> import numpy as np
    >>> from blconv.nn import Linear
    >>> from blconv.optim import Adam
    >>> layer = Linear(2, 1, bias=False, rng=0)
    >>> layer.params["w"][...] = 1.0
    >>> layer.grads["w"] = np.array([[0.5, -2.0]], dtype=np.float32)
    >>> opt = Adam(layer, lr=0.25)
    >>> opt.step(); layer.params["w"]
    array([[0.75, 1.25]], dtype=float32)
    """

    _HYPER = ("lr", "betas", "eps", "weight_decay", "step_count")
    _BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(self, model, *, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self._init_model(model)
        self.lr = _real("Adam", "lr", lr, low=0.0, strict=True)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair of real numbers, got {betas!r}")
        self.betas = tuple(_real("Adam", f"betas[{i}]", b, low=0.0, high=1.0)
                           for i, b in enumerate(betas))
        self.eps = _real("Adam", "eps", eps, low=0.0, strict=True)
        self.weight_decay = _real("Adam", "weight_decay", weight_decay, low=0.0)
        self.step_count = 0

    def _prepare(self) -> None:
        self.step_count += 1
        b1, b2 = self.betas
        self._c1 = 1.0 - b1 ** self.step_count
        self._c2 = math.sqrt(1.0 - b2 ** self.step_count)

    def _update(self, key, p, g):
        b1, b2 = self.betas
        m, v = self.exp_avg.get(key), self.exp_avg_sq.get(key)
        if m is None:
            m, v = (1.0 - b1) * g, (1.0 - b2) * (g * g)
        else:
            m, v = b1 * m + (1.0 - b1) * g, b2 * v + (1.0 - b2) * (g * g)
        self.exp_avg[key], self.exp_avg_sq[key] = m, v
        xp = B.namespace(g, fn="Adam.step", names=(f"grads[{key!r}]",))
        return (self.lr / self._c1) * m / (xp.sqrt(v) / self._c2 + self.eps)


class _Scheduler:
    """Shared state handling: every attribute but the optimizer is the state.

    Subclasses implement ``step(metric)``, called once per epoch with the value
    of the epoch's monitored metric (which a schedule that counts epochs ignores).
    """

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"{type(self).__name__}: optimizer must have an 'lr' attribute "
                            f"(an SGD or Adam), got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.last_epoch = 0

    def state_dict(self) -> dict:
        """The scheduler's counters and settings as a dict of Python numbers."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (the optimizer's lr is restored by its own)."""
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"{type(self).__name__}.load_state_dict: keys must be "
                             f"{sorted(expected)}, got {sorted(state)}")
        vars(self).update(state)


class StepLR(_Scheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    After ``t`` calls of :meth:`step`, ``lr = base_lr * gamma ** (t // step_size)``
    (``base_lr``: the optimizer's lr at construction), as ``torch.optim.lr_scheduler.StepLR``.

    Parameters
    ----------
    optimizer : SGD or Adam
    step_size : int, >= 1
    gamma : float, default 0.1, > 0

    Examples
    --------
    >>> from blconv.nn import Linear
    >>> from blconv.optim import SGD, StepLR
    >>> opt = SGD(Linear(1, 1, rng=0), lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for _ in range(5):
    ...     sched.step(); lrs.append(opt.lr)
    >>> lrs
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = check_int("StepLR", "step_size", step_size, minimum=1)
        self.gamma = _real("StepLR", "gamma", gamma, low=0.0, strict=True)
        self.base_lr = float(optimizer.lr)

    def step(self, metric=None) -> None:
        """Advance one epoch and set the optimizer's lr (``metric`` is ignored)."""
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class CosineLR(_Scheduler):
    """Cosine annealing from the initial lr to ``eta_min`` over ``t_max`` epochs.

    After ``t`` calls of :meth:`step`,
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2``, the
    closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` (which, past
    ``t_max``, rises again along the same cosine).

    Parameters
    ----------
    optimizer : SGD or Adam
    t_max : int, >= 1
    eta_min : float, default 0, >= 0

    Examples
    --------
    >>> from blconv.nn import Linear
    >>> from blconv.optim import SGD, CosineLR
    >>> opt = SGD(Linear(1, 1, rng=0), lr=1.0)
    >>> sched = CosineLR(opt, t_max=2)
    >>> sched.step(); opt.lr
    0.5
    """

    def __init__(self, optimizer, t_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.t_max = check_int("CosineLR", "t_max", t_max, minimum=1)
        self.eta_min = _real("CosineLR", "eta_min", eta_min, low=0.0)
        self.base_lr = float(optimizer.lr)

    def step(self, metric=None) -> None:
        """Advance one epoch and set the optimizer's lr (``metric`` is ignored)."""
        self.last_epoch += 1
        cos = math.cos(math.pi * self.last_epoch / self.t_max)
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2


class ReduceLROnPlateau(_Scheduler):
    """Multiply the lr by ``factor`` when a metric stops improving for ``patience`` epochs.

    Parameters
    ----------
    optimizer : SGD or Adam
    mode : {"min", "max"}, default "min"
        Whether lower or higher metric values are better.
    factor : float, default 0.1, in (0, 1)
    patience : int, default 10
        Epochs without improvement tolerated; the lr drops on the next one.
    threshold : float, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
        An improvement is ``a < best * (1 - threshold)`` ("rel", mode "min"),
        ``a < best - threshold`` ("abs"); mirrored for "max".
    cooldown : int, default 0
        Epochs after a reduction during which bad epochs are not counted.
    min_lr : float, default 0
    eps : float, default 1e-8
        Reductions smaller than this are skipped.

    Notes
    -----
    Exactly ``torch.optim.lr_scheduler.ReduceLROnPlateau``: ``best`` starts at
    ``inf`` (``-inf`` for "max"); a NaN metric counts as a bad epoch.

    Examples
    --------
    >>> from blconv.nn import Linear
    >>> from blconv.optim import SGD, ReduceLROnPlateau
    >>> opt = SGD(Linear(1, 1, rng=0), lr=1.0)
    >>> sched = ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for loss in [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]:
    ...     sched.step(loss)
    >>> opt.lr
    0.25
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8):
        super().__init__(optimizer)
        name = "ReduceLROnPlateau"
        for arg, v, allowed in (("mode", mode, ("min", "max")),
                                ("threshold_mode", threshold_mode, ("rel", "abs"))):
            if v not in allowed:
                raise ValueError(f"{name}: {arg} must be one of {allowed}, got {v!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _real(name, "factor", factor, low=0.0, strict=True, high=1.0)
        self.patience = check_int(name, "patience", patience, minimum=0)
        self.threshold = _real(name, "threshold", threshold, low=0.0)
        self.cooldown = check_int(name, "cooldown", cooldown, minimum=0)
        self.min_lr = _real(name, "min_lr", min_lr, low=0.0)
        self.eps = _real(name, "eps", eps, low=0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, a: float) -> bool:
        best, t = self.best, self.threshold
        if self.mode == "min":
            return a < (best * (1 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (1 + t) if self.threshold_mode == "rel" else best + t)

    def step(self, metric) -> None:
        """Record one epoch's ``metric`` (a number or 0-d array) and maybe reduce the lr."""
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
