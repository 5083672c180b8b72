"""The layer base class, device moves and the checks shared by every layer.

A layer holds three flat dicts of arrays: ``params`` (trained), ``grads`` (same
keys, *overwritten* by every :meth:`Module.backward`) and ``buffers`` (state
that is not trained, such as BatchNorm's running statistics).  Containers
(:class:`~blconv.nn.Sequential`, :class:`~blconv.nn.Residual`) expose their
children's entries under dotted keys, ``"0.w"`` or ``"3.body.1.running_mean"``.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from .. import _backend as B

__all__ = ["Module", "to_device"]


class Module:
    """Base of every layer: parameters, their gradients, buffers and the mode.

    Subclasses implement ``forward(x) -> y`` (caching what the backward needs,
    in training and in eval mode alike, so input gradients are available in
    both) and ``backward(dy) -> dx`` (which writes ``grads`` and releases the
    cache: one backward per forward).

    Attributes
    ----------
    training : bool
        ``True`` after :meth:`train` (the default), ``False`` after :meth:`eval`.

    Notes
    -----
    ``params``, ``grads`` and ``buffers`` of a container are fresh flat dicts
    whose arrays are shared with the layers: in-place updates of the arrays
    (as :class:`blconv.optim.SGD` does) reach the layers, while replacing an
    entry of the returned dict does not; use :meth:`load_state_dict` for that.

    A forward leaves state behind for the backward (``_cache``, and a conv
    layer's ``last_band``); a subclass that keeps more names it in
    ``_FORWARD_STATE``, which :meth:`mode` saves and restores.  A layer that
    draws random numbers (:class:`~blconv.nn.Dropout`) returns its generator's
    state from ``_rng_state()`` and takes it back in ``_set_rng_state(state)``,
    which carries it through :meth:`state_dict` and :meth:`load_state_dict`.

    Examples
    --------
    >>> from blconv.nn import Linear, ReLU, Sequential
    >>> model = Sequential(Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    >>> sorted(model.params)
    ['0.b', '0.w', '2.b', '2.w']
    >>> model.eval().training, model[0].training
    (False, False)
    """

    #: Attributes a forward overwrites (restored by :meth:`mode`).
    _FORWARD_STATE: tuple = ("_cache",)

    def __init__(self):
        self._params: dict = {}
        self._grads: dict = {}
        self._buffers: dict = {}
        self._cache = None
        self.training = True

    # --- structure -----------------------------------------------------------------
    def children(self) -> list[tuple[str, Module]]:
        """``(name, layer)`` pairs of the direct sub-layers (none for a leaf layer)."""
        return []

    def modules(self):
        """Iterate over this layer and every sub-layer, depth first."""
        yield self
        for _, child in self.children():
            yield from child.modules()

    def named_modules(self, prefix: str = ""):
        """Iterate over ``(dotted name, layer)`` pairs, depth first: ``("", self)`` first.

        The names are those of the keys of :attr:`params`: ``"0"``, ``"3.body.1"``.

        Examples
        --------
        >>> from blconv.nn import Linear, ReLU, Residual, Sequential
        >>> model = Sequential(Linear(2, 2, rng=0), Residual(Sequential(ReLU())))
        >>> [name for name, _ in model.named_modules()]
        ['', '0', '1', '1.body', '1.body.0']
        """
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def _slots(self, attr: str, prefix: str = ""):
        # (dotted key, owning dict, local key) for every entry of ``attr`` in the tree
        for k in getattr(self, attr):
            yield prefix + k, getattr(self, attr), k
        for name, child in self.children():
            yield from child._slots(attr, f"{prefix}{name}.")

    def _collect(self, attr: str) -> dict:
        if not self.children():
            return getattr(self, attr)
        return {key: d[k] for key, d, k in self._slots(attr)}

    @property
    def params(self) -> dict:
        """Trained arrays, keyed ``"w"``, ``"b"`` (dotted for containers)."""
        return self._collect("_params")

    @property
    def grads(self) -> dict:
        """Gradients of the last backward, with the keys of :attr:`params` (zeros before)."""
        return self._collect("_grads")

    @property
    def buffers(self) -> dict:
        """Untrained state saved in checkpoints (``running_mean``, ``running_var``)."""
        return self._collect("_buffers")

    # --- mode, gradients, state ----------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this layer and all sub-layers; returns ``self``."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``); returns ``self``."""
        return self.train(False)

    @contextlib.contextmanager
    def mode(self, training: bool):
        """Run a ``with`` block in training or eval mode, then put every layer back as it was.

        Parameters
        ----------
        training : bool
            The mode of this layer and all sub-layers inside the block.

        Yields
        ------
        Module
            ``self``.

        Raises
        ------
        TypeError
            When ``training`` is not True or False.

        Notes
        -----
        On leaving the block (also through an exception) each layer gets back
        its own mode (a model of mixed modes stays mixed) and what its last
        forward left behind: the cache kept for the backward and a conv
        layer's ``last_band``.  Parameters and buffers are not touched:
        BatchNorm's running statistics do move in a forward in training mode.

        Examples
        --------
        >>> import numpy as np
        >>> from blconv.nn import Dropout, Linear, Sequential
        >>> model = Sequential(Linear(3, 2, rng=0), Dropout(0.5, rng=0))
        >>> model[1].eval().training
        False
        >>> with model.mode(training=True):
        ...     y = model(np.ones((1, 3), dtype=np.float32))
        ...     model[1].training
        True
        >>> model[0].training, model[1].training
        (True, False)
        """
        if not isinstance(training, bool):
            raise TypeError(f"{type(self).__name__}.mode: training must be True or False, "
                            f"got {training!r}")
        saved = [(m, m.training, {a: getattr(m, a) for a in m._FORWARD_STATE})
                 for m in self.modules()]
        self.train(training)
        try:
            yield self
        finally:
            for m, was_training, state in saved:
                m.training = was_training
                for a, v in state.items():
                    setattr(m, a, v)

    def zero_grad(self) -> None:
        """Reset every gradient to zeros (not needed between steps: backward overwrites)."""
        for _, d, k in self._slots("_grads"):
            xp = B.namespace(d[k], fn=f"{type(self).__name__}.zero_grad")
            d[k] = xp.zeros_like(d[k])

    def state_dict(self) -> dict:
        """``{"params": {key: array}, "buffers": {key: array}}`` (arrays not copied).

        A model with layers that draw random numbers (:class:`~blconv.nn.Dropout`)
        adds ``"rng": {layer name: generator state}``, the
        ``bit_generator.state`` dicts of their NumPy generators keyed by
        :meth:`named_modules` names, so that a restored model draws the same
        masks.

        Examples
        --------
        >>> from blconv.nn import BatchNorm1d, Dropout, Linear, Sequential
        >>> {k: sorted(v) for k, v in BatchNorm1d(3).state_dict().items()}
        {'params': ['b', 'w'], 'buffers': ['running_mean', 'running_var']}
        >>> state = Sequential(Linear(2, 2, rng=0), Dropout(0.5, rng=1)).state_dict()
        >>> sorted(state["rng"]), state["rng"]["1"]["bit_generator"]
        (['1'], 'PCG64')
        """
        state = {"params": dict(self.params), "buffers": dict(self.buffers)}
        rng = {name: m._rng_state() for name, m in self.named_modules()
               if m._rng_state() is not None}
        if rng:
            state["rng"] = rng
        return state

    def load_state_dict(self, state: dict) -> None:
        """Replace params and buffers by copies of ``state``'s arrays (and generator states).

        Each array is moved to the namespace and device of the entry it replaces
        and cast to its dtype; keys and shapes must match exactly.  The optional
        ``"rng"`` entry sets the generator of each layer it names (layers it
        does not name keep theirs).  Everything is checked before anything is
        replaced.

        Raises
        ------
        ValueError
            On missing or unexpected keys, a shape mismatch, or a generator
            state for a layer without a generator or of an unknown kind.
        """
        name = type(self).__name__
        if not isinstance(state, dict) or not {"params", "buffers"} <= set(state) \
                or not set(state) <= {"params", "buffers", "rng"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}.load_state_dict: state must be a dict with keys "
                             f"['buffers', 'params'] (and optionally 'rng'), got {got}")
        replace = []
        for part, attr in (("params", "_params"), ("buffers", "_buffers")):
            slots = {key: (d, k) for key, d, k in self._slots(attr)}
            given = state[part]
            if set(given) != set(slots):
                raise ValueError(f"{name}.load_state_dict: {part} keys differ; missing "
                                 f"{sorted(set(slots) - set(given))}, unexpected "
                                 f"{sorted(set(given) - set(slots))}")
            for key, (d, k) in slots.items():
                old = d[k]
                new = np.array(B.to_numpy(given[key]), dtype=np_dtype(old), copy=True)
                if new.shape != tuple(old.shape):
                    raise ValueError(f"{name}.load_state_dict: {part}[{key!r}] must have shape "
                                     f"{tuple(old.shape)}, got {new.shape}")
                xp = B.namespace(old, fn=f"{name}.load_state_dict")
                replace.append((d, k, B.asarray(new, xp=xp, like=old)))
        generators = self._generators(name, state.get("rng", {}))
        for d, k, new in replace:
            d[k] = new
        for m, st in generators:
            m._set_rng_state(st)

    def _generators(self, owner: str, rng) -> list:
        """``(layer, generator state)`` pairs of an ``"rng"`` entry, checked."""
        if not isinstance(rng, dict):
            raise ValueError(f"{owner}.load_state_dict: rng must be a dict of generator "
                             f"states, got {type(rng).__name__}")
        modules = dict(self.named_modules())
        out = []
        for key, st in rng.items():
            m = modules.get(key)
            if m is None or m._rng_state() is None:
                raise ValueError(f"{owner}.load_state_dict: rng[{key!r}] matches no layer "
                                 f"with a generator (a Dropout)")
            kind = st.get("bit_generator") if isinstance(st, dict) else None
            if kind not in _BIT_GENERATORS:
                raise ValueError(f"{owner}.load_state_dict: rng[{key!r}] has unknown bit "
                                 f"generator {kind!r}; expected one of {list(_BIT_GENERATORS)}")
            out.append((m, st))
        return out

    def _rng_state(self):
        """The state of this layer's own random generator, or ``None`` without one."""
        return None

    def _set_rng_state(self, state: dict) -> None:
        raise NotImplementedError

    # --- forward / backward ----------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def _take_cache(self):
        # the forward's record for this backward, released so memory is freed
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}: backward needs a preceding forward "
                               f"(each backward releases the forward's cache)")
        cache, self._cache = self._cache, None
        return cache

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = self.children()
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({n}): " + repr(c).replace("\n", "\n  ") for n, c in kids]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def to_device(model: Module, target, device=None) -> Module:
    """Move every param, grad and buffer of ``model`` to another device, in place.

    Parameters
    ----------
    model : Module
        Any layer or container.
    target : {"cpu", "gpu"} or module
        ``"cpu"``: NumPy arrays.  ``"gpu"``: CuPy arrays.  A namespace module with
        ``asarray`` (``numpy``, ``cupy``, ``array_api_strict``): its arrays.
    device : optional
        For ``"gpu"``, the CUDA device index (default: CuPy's current device);
        for a namespace module, one of its devices (default: its default one).

    Returns
    -------
    Module
        ``model`` itself, for chaining.  Cached forwards are dropped.

    Raises
    ------
    ValueError
        For an unknown ``target``, or a ``device`` with ``"cpu"``.
    RuntimeError
        For ``"gpu"`` without CuPy.

    Notes
    -----
    Layers are always built on the host (NumPy, from a NumPy ``Generator``) and
    moved with this function; create the optimizer after the move, or move its
    buffers along with :meth:`blconv.optim.SGD.to` (or ``Adam.to``).

    Examples
    --------
    >>> from blconv.nn import Linear, to_device
    >>> type(to_device(Linear(2, 2, rng=0), "cpu").params["w"]).__name__
    'ndarray'
    """
    convert = converter("to_device", target, device)
    for m in model.modules():
        for d in (m._params, m._grads, m._buffers):
            for k in d:
                d[k] = convert(d[k])
        m._cache = None
    return model


# --- helpers for the layers ---------------------------------------------------------------
#: NumPy bit generators whose state a layer's generator may be restored from.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def generator_from_state(current: np.random.Generator, state: dict) -> np.random.Generator:
    """A generator at ``state``: ``current`` itself when its bit generator is of that kind."""
    kind = state["bit_generator"]
    if type(current.bit_generator).__name__ == kind:
        current.bit_generator.state = state
        return current
    bits = getattr(np.random, kind)()
    bits.state = state
    return np.random.Generator(bits)


def np_dtype(a) -> np.dtype:
    """The NumPy dtype matching a float array of any namespace."""
    xp = B.namespace(a, fn="np_dtype", names=("a",))
    return np.dtype(np.float32) if a.dtype == xp.float32 else np.dtype(np.float64)


def converter(fn: str, target, device=None):
    """The function moving one array to ``target`` (see :func:`to_device`); errors name ``fn``."""
    if isinstance(target, str) and target == "cpu":
        if device is not None:
            raise ValueError(f"{fn}: target 'cpu' takes no device, got {device!r}")
        return B.to_numpy
    if isinstance(target, str) and target == "gpu":
        try:
            import cupy
        except ImportError as e:
            raise RuntimeError(f"{fn}: target 'gpu' needs CuPy, which is not installed") from e

        def convert(a):
            with cupy.cuda.Device(device):
                return cupy.asarray(a)
        return convert
    if not isinstance(target, str) and hasattr(target, "asarray"):
        def convert(a):
            host = B.to_numpy(a)
            return target.asarray(host) if device is None else target.asarray(host, device=device)
        return convert
    raise ValueError(f"{fn}: target must be 'cpu', 'gpu' or an array namespace, got {target!r}")


def check_module(fn: str, name: str, value) -> Module:
    """``value`` itself when it is a :class:`Module`; a TypeError naming ``fn`` and ``name`` if not."""
    if not isinstance(value, Module):
        raise TypeError(f"{fn}: {name} must be a blconv.nn.Module, got {type(value).__name__}")
    return value


def check_dtype(owner: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{owner}: dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def check_rng(owner: str, rng) -> np.random.Generator:
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"{owner}: rng must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(rng).__name__}")


def check_bool(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def init_uniform(rng: np.random.Generator, bound: float, shape, dtype: np.dtype) -> np.ndarray:
    """PyTorch's default init, U(-bound, bound), drawn in float64 then cast."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def check_input(owner: str, x, ndims: tuple[int, ...], layout: str, *, channels=None,
                 dtype=None) -> None:
    """``x.ndim`` in ``ndims``; ``x.shape[1] == channels``; ``x.dtype`` equal to ``dtype``."""
    if x.ndim not in ndims:
        raise ValueError(f"{owner}: x must have shape {layout}, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{owner}: x.shape[1] must be {channels}, got shape {tuple(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{owner}: x.dtype must equal the parameters' dtype ({dtype}), "
                        f"got {x.dtype}")
