"""blconv.optim: SGD and Adam against PyTorch's recurrences written out, schedules against
closed forms."""
import math

import numpy as np
import pytest

import blconv
from blconv.nn import BatchNorm1d, Linear, Sequential, cross_entropy
from blconv.optim import SGD, Adam, CosineLR, ReduceLROnPlateau, StepLR


class Holder:
    """A minimal 'model': fixed params, grads set by the test."""

    def __init__(self, **params):
        self.params = params
        self.grads = {k: np.zeros_like(v) for k, v in params.items()}


def _small_model():
    return Sequential(Linear(3, 4, rng=0), BatchNorm1d(4), Linear(4, 2, rng=1))


def _batches():
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((6, 3)).astype(np.float32), rng.integers(0, 2, 6))
            for _ in range(5)]


def _train(model, opt, data):
    for x, y in data:
        _, dlogits = cross_entropy(model(x), y)
        model.backward(dlogits)
        opt.step()


def _trajectory(optimizer, hyper, p0, grads):
    """The parameter after each step of ``optimizer(**hyper)`` fed ``grads``."""
    model = Holder(w=p0.copy())
    opt = optimizer(model, **hyper)
    got = []
    for g in grads:
        model.grads["w"] = g.copy()
        opt.step()
        got.append(model.params["w"].copy())
    return np.array(got)


def reference_sgd(p, grads, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
                  weight_decay=0.0):
    """torch.optim.SGD's documented update, one scalar at a time, in float64."""
    p, buf, out = float(p), None, []
    for t, g in enumerate(grads):
        g = g + weight_decay * p
        if momentum:
            buf = g if t == 0 else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p)
    return out


def test_sgd_nesterov_hand_unrolled():
    # p0 = 1, g = 0.5 each step, lr 0.1, mu 0.9, Nesterov:
    #   b1 = 0.5,                  p1 = 1 - 0.1 * (0.5 + 0.45)       = 0.905
    #   b2 = 0.9 * 0.5 + 0.5 = .95, p2 = 0.905 - 0.1 * (0.5 + 0.855)  = 0.7695
    model = Holder(w=np.array([1.0]))
    opt = SGD(model, lr=0.1, momentum=0.9, nesterov=True)
    model.grads["w"] = np.array([0.5])
    opt.step()
    np.testing.assert_allclose(model.params["w"], [0.905], rtol=1e-15)
    opt.step()
    np.testing.assert_allclose(model.params["w"], [0.7695], rtol=1e-15)


def test_sgd_weight_decay_and_dampening_hand_unrolled():
    # p0 = 2, g = (1, -1), lr 0.5, wd 0.1, mu 0.5, dampening 0.5:
    #   G1 = 1 + 0.2 = 1.2,  b1 = 1.2,                       p1 = 2 - 0.6       = 1.4
    #   G2 = -1 + 0.14 = -0.86, b2 = 0.6 + 0.5 * -0.86 = 0.17, p2 = 1.4 - 0.085 = 1.315
    model = Holder(w=np.array([2.0]))
    opt = SGD(model, lr=0.5, momentum=0.5, dampening=0.5, weight_decay=0.1)
    for g, expected in ((1.0, 1.4), (-1.0, 1.315)):
        model.grads["w"] = np.array([g])
        opt.step()
        np.testing.assert_allclose(model.params["w"], [expected], rtol=1e-14)


@pytest.mark.parametrize("hyper", [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=5e-4),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
], ids=["plain", "wd", "momentum", "momentum-dampening-wd", "nesterov-wd"])
def test_sgd_matches_reference_recurrence(hyper):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5)
    grads = rng.standard_normal((6, 5))
    got = _trajectory(SGD, hyper, p0, grads)
    for i in range(5):
        np.testing.assert_allclose(got[:, i],
                                   reference_sgd(p0[i], grads[:, i], **hyper), rtol=1e-13)


def test_sgd_updates_model_params_in_place_and_keeps_float32():
    model = Sequential(Linear(3, 4, rng=0), BatchNorm1d(4), Linear(4, 2, rng=1))
    w = model.params["0.w"]
    before = w.copy()
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32), np.arange(5) % 2
    for _ in range(2):
        _, dlogits = cross_entropy(model(x), y)
        model.backward(dlogits)
        opt.step()
    assert model.params["0.w"] is w and not np.array_equal(w, before)
    assert {a.dtype for a in model.params.values()} == {np.dtype(np.float32)}
    assert {a.dtype for a in opt.momentum_buffers.values()} == {np.dtype(np.float32)}
    assert sorted(opt.momentum_buffers) == sorted(model.params)


def test_sgd_state_dict_resumes_exactly():
    batches = _batches()
    a = _small_model()
    opt_a = SGD(a, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    _train(a, opt_a, batches[:3])
    model_state = {k: {n: np.array(v) for n, v in d.items()} for k, d in a.state_dict().items()}
    opt_state = opt_a.state_dict()
    opt_state["momentum_buffers"] = {k: np.array(v) for k, v in opt_state["momentum_buffers"].items()}
    _train(a, opt_a, batches[3:])

    b = _small_model()
    opt_b = SGD(b, lr=1.0)
    b.load_state_dict(model_state)
    opt_b.load_state_dict(opt_state)
    assert (opt_b.lr, opt_b.momentum, opt_b.nesterov) == (0.1, 0.9, True)
    _train(b, opt_b, batches[3:])
    for k in a.params:
        np.testing.assert_array_equal(b.params[k], a.params[k])

    with pytest.raises(ValueError, match=r"SGD.load_state_dict: momentum buffer 'x' matches no"):
        opt_b.load_state_dict({**opt_state, "momentum_buffers": {"x": np.zeros(2)}})
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: state lacks \['lr'\]"):
        opt_b.load_state_dict({k: v for k, v in opt_state.items() if k != "lr"})


def test_sgd_load_state_dict_moves_buffers_to_the_params_namespace():
    xs = pytest.importorskip("array_api_strict")
    model = Holder(w=xs.asarray([1.0, 2.0], dtype=xs.float32))
    opt = SGD(model, lr=0.1, momentum=0.5)
    opt.load_state_dict({**opt.state_dict(), "momentum_buffers": {"w": np.array([1.0, 1.0])}})
    buf = opt.momentum_buffers["w"]
    assert type(buf) is type(model.params["w"]) and buf.dtype == xs.float32
    model.grads["w"] = xs.asarray([0.0, 2.0], dtype=xs.float32)
    opt.step()                                      # b = 0.5 * 1 + g; p -= 0.1 * b
    np.testing.assert_allclose(blconv.to_numpy(model.params["w"]), [0.95, 1.75], rtol=1e-6)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lr=-1), ValueError, r"^SGD: lr must be > 0, got -1$"),
    (dict(lr=0), ValueError, r"^SGD: lr must be > 0, got 0$"),
    (dict(lr="0.1"), TypeError, r"SGD: lr must be a real number, got '0.1'"),
    (dict(lr=0.1, momentum=-0.5), ValueError, r"SGD: momentum must be >= 0, got -0.5"),
    (dict(lr=0.1, weight_decay=-1e-4), ValueError, r"SGD: weight_decay must be >= 0"),
    (dict(lr=0.1, nesterov=True), ValueError,
     r"SGD: nesterov needs momentum > 0 and dampening == 0, got momentum=0.0, dampening=0.0"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "SGD: nesterov needs momentum > 0 and dampening == 0"),
    (dict(lr=0.1, nesterov=1), TypeError, "SGD: nesterov must be True or False, got 1"),
], ids=["lr-negative", "lr-zero", "lr-str", "momentum", "wd", "nesterov-no-momentum",
        "nesterov-dampening", "nesterov-int"])
def test_sgd_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SGD(Holder(w=np.zeros(2)), **kwargs)


def test_sgd_needs_a_model():
    with pytest.raises(TypeError, match="SGD: model must have 'params' and 'grads'"):
        SGD({"w": np.zeros(2)}, lr=0.1)
    model = Holder(w=np.zeros(2))
    del model.grads["w"]
    with pytest.raises(ValueError, match="SGD: model.grads has no entry 'w'"):
        SGD(model, lr=0.1).step()


# --- Adam -----------------------------------------------------------------------------------
def reference_adam(p, grads, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam's documented update (amsgrad off), one scalar at a time, in float64."""
    (b1, b2), p, m, v, out = betas, float(p), 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (math.sqrt(v / (1 - b2 ** t)) + eps)
        out.append(p)
    return out


def test_adam_hand_unrolled():
    # p0 = 1, g = (0.5, -1), lr 0.1, betas (0.5, 0.5), eps negligible:
    #   m1 = 0.25, v1 = 0.125; m^ = 0.25 / 0.5 = 0.5, v^ = 0.125 / 0.5 = 0.25; p1 = 1 - 0.1 = 0.9
    #   m2 = 0.125 - 0.5 = -0.375, v2 = 0.0625 + 0.5 = 0.5625; m^ = -0.375 / 0.75 = -0.5,
    #   v^ = 0.5625 / 0.75 = 0.75;                     p2 = 0.9 + 0.1 * 0.5 / sqrt(0.75)
    model = Holder(w=np.array([1.0]))
    opt = Adam(model, lr=0.1, betas=(0.5, 0.5), eps=1e-300)
    for g, expected in ((0.5, 0.9), (-1.0, 0.9 + 0.05 / math.sqrt(0.75))):
        model.grads["w"] = np.array([g])
        opt.step()
        np.testing.assert_allclose(model.params["w"], [expected], rtol=1e-15)
    assert opt.step_count == 2


@pytest.mark.parametrize("hyper", [
    dict(),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.01, betas=(0.0, 0.5), eps=1e-3),
    dict(lr=0.01, betas=[0.8, 0.0]),
], ids=["defaults", "wd", "no-momentum-eps", "no-second-moment"])
def test_adam_matches_reference_recurrence(hyper):
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(5)
    grads = rng.standard_normal((7, 5)) * np.array([1e-4, 1e-2, 1, 10, 1e3])
    got = _trajectory(Adam, hyper, p0, grads)
    for i in range(5):
        np.testing.assert_allclose(got[:, i],
                                   reference_adam(p0[i], grads[:, i], **hyper), rtol=1e-13)


def test_adam_state_dict_resumes_exactly_and_keeps_float32():
    batches = _batches()
    a = _small_model()
    opt_a = Adam(a, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3)
    _train(a, opt_a, batches[:3])
    model_state = {k: {n: np.array(v) for n, v in d.items()} for k, d in a.state_dict().items()}
    opt_state = {k: ({n: np.array(x) for n, x in v.items()} if isinstance(v, dict) else v)
                 for k, v in opt_a.state_dict().items()}
    opt_state["betas"] = list(opt_state["betas"])          # as a JSON checkpoint returns it
    _train(a, opt_a, batches[3:])
    assert {x.dtype for x in opt_a.exp_avg_sq.values()} == {np.dtype(np.float32)}

    b = _small_model()
    opt_b = Adam(b)
    b.load_state_dict(model_state)
    opt_b.load_state_dict(opt_state)
    assert (opt_b.lr, opt_b.betas, opt_b.step_count) == (0.01, (0.8, 0.99), 3)
    _train(b, opt_b, batches[3:])
    for k in a.params:
        np.testing.assert_array_equal(b.params[k], a.params[k])
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: exp avg sq '0.w' must have "
                                         r"shape \(4, 3\), got \(2,\)"):
        opt_b.load_state_dict({**opt_state, "exp_avg_sq": {"0.w": np.zeros(2)}})
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state lacks \['step_count'\]"):
        opt_b.load_state_dict({k: v for k, v in opt_state.items() if k != "step_count"})


def test_adam_in_another_namespace():
    xs = pytest.importorskip("array_api_strict")
    model = Holder(w=xs.asarray([1.0, 2.0], dtype=xs.float32))
    opt = Adam(model, lr=0.5)
    model.grads["w"] = xs.asarray([-3.0, 0.25], dtype=xs.float32)
    opt.step()                                      # first step: p -= lr * sign(g)
    assert type(model.params["w"]) is type(opt.exp_avg["w"])
    np.testing.assert_allclose(blconv.to_numpy(model.params["w"]), [1.5, 1.5], rtol=1e-6)


@pytest.mark.parametrize("make", [lambda m: SGD(m, lr=0.1, momentum=0.9),
                                  lambda m: Adam(m, lr=0.1)], ids=["sgd", "adam"])
def test_to_moves_every_buffer_and_keeps_its_values(make):
    xs = pytest.importorskip("array_api_strict")
    model = Holder(w=np.array([1.0, 2.0], np.float32), b=np.array([0.5], np.float32))
    opt = make(model)
    model.grads = {"w": np.array([0.5, -1.0], np.float32), "b": np.array([2.0], np.float32)}
    opt.step()
    saved = {b: {k: np.array(a) for k, a in getattr(opt, b).items()} for b in opt._BUFFERS}
    assert opt.to(xs) is opt
    for b in opt._BUFFERS:
        assert sorted(getattr(opt, b)) == ["b", "w"]
        for k, a in getattr(opt, b).items():
            assert type(a).__module__.startswith("array_api_strict")
            np.testing.assert_array_equal(blconv.to_numpy(a), saved[b][k])
    opt.to("cpu")
    assert all(type(a) is np.ndarray for b in opt._BUFFERS for a in getattr(opt, b).values())
    name = type(opt).__name__
    with pytest.raises(ValueError, match=rf"^{name}.to: target must be 'cpu', 'gpu' or an "
                                         rf"array namespace, got 'tpu'$"):
        opt.to("tpu")
    with pytest.raises(ValueError, match=rf"^{name}.to: target 'cpu' takes no device"):
        opt.to("cpu", device=0)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lr=0), ValueError, r"^Adam: lr must be > 0, got 0$"),
    (dict(betas=0.9), TypeError, r"^Adam: betas must be a pair of real numbers, got 0.9$"),
    (dict(betas=(0.9, 1.0)), ValueError, r"^Adam: betas\[1\] must be >= 0 and < 1, got 1.0$"),
    (dict(betas=(-0.1, 0.9)), ValueError, r"^Adam: betas\[0\] must be >= 0 and < 1"),
    (dict(eps=0), ValueError, r"^Adam: eps must be > 0, got 0$"),
    (dict(weight_decay=-1), ValueError, r"^Adam: weight_decay must be >= 0, got -1$"),
], ids=["lr", "betas-scalar", "beta2-one", "beta1-negative", "eps", "wd"])
def test_adam_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Adam(Holder(w=np.zeros(2)), **kwargs)
    with pytest.raises(TypeError, match="Adam: model must have 'params' and 'grads'"):
        Adam({"w": np.zeros(2)})


# --- schedulers -----------------------------------------------------------------------------
def opt_with(lr):
    return SGD(Holder(w=np.zeros(1)), lr=lr)


def test_step_lr_closed_form():
    opt = opt_with(0.5)
    sched = StepLR(opt, step_size=3, gamma=0.2)
    lrs = []
    for _ in range(10):
        sched.step()
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [0.5 * 0.2 ** (t // 3) for t in range(1, 11)], rtol=1e-15)


def test_cosine_lr_closed_form_and_endpoints():
    opt = opt_with(0.1)
    sched = CosineLR(opt, t_max=8, eta_min=0.001)
    lrs = []
    for _ in range(8):
        sched.step()
        lrs.append(opt.lr)
    ref = [0.001 + 0.099 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(1, 9)]
    np.testing.assert_allclose(lrs, ref, rtol=1e-14)
    assert lrs[3] == pytest.approx(0.0505) and lrs[-1] == pytest.approx(0.001)


def test_reduce_on_plateau_hand_traced():
    # patience 2, factor 0.5, rel threshold 0.1 (improvement means a < 0.9 * best), cooldown 1
    opt = opt_with(1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.1, cooldown=1, min_lr=0.2)
    metrics = [10, 9.5, 9.2, 9.1, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    # epoch:    1   2    3    4    5    6    7    8    9    10   11   12   13   14
    # best 10; 9.5, 9.2, 9.1 are not < 9: bad 1, 2, 3 > 2 -> lr 0.5, cooldown 1, bad 0
    # 8.0 < 9 -> best 8, bad 0, cooldown 1 -> 0 (bad stays 0)
    # bad 1, 2, 3 at epochs 6, 7, 8 -> lr 0.25 at epoch 8, cooldown 1
    # epoch 9: bad 1 then cooldown resets bad to 0; bad 1, 2, 3 at 10, 11, 12 -> lr 0.2 (min_lr)
    # epochs 13, 14: cooldown, then bad 1: lr stays 0.2
    expected = [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]
    got = []
    for m in metrics:
        sched.step(m)
        got.append(opt.lr)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert sched.best == 8.0 and sched.last_epoch == 14


def test_reduce_on_plateau_max_mode_abs_threshold_and_nan():
    opt = opt_with(0.1)
    sched = ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.05,
                              threshold_mode="abs")
    got = []
    for acc in [0.5, 0.56, 0.6, float("nan"), 0.7]:
        # 0.5 > -inf: best; 0.56 > 0.55: best; 0.6 not > 0.61: lr 0.01; nan is bad: 0.001;
        # 0.7 > 0.61: best
        sched.step(np.float64(acc))
        got.append(opt.lr)
    np.testing.assert_allclose(got, [0.1, 0.1, 0.01, 0.001, 0.001], rtol=1e-12)


def test_reduce_on_plateau_equal_metric_is_no_improvement():
    opt = opt_with(1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.0)
    sched.step(1.0)
    sched.step(1.0)                                 # not < best: bad epoch > patience 0
    assert opt.lr == 0.5 and sched.best == 1.0


def test_every_scheduler_takes_the_epochs_metric():
    # one call, step(metric), fits every schedule: the epoch counters ignore the metric
    for make in (lambda o: StepLR(o, step_size=2, gamma=0.5), lambda o: CosineLR(o, t_max=5)):
        plain, given = opt_with(1.0), opt_with(1.0)
        a, b = make(plain), make(given)
        for metric in (3.0, 1.0, float("nan"), 2.0, 0.5):
            a.step()
            b.step(metric)
            assert given.lr == plain.lr
    opt = opt_with(1.0)
    sched = ReduceLROnPlateau(opt, patience=0, factor=0.5)
    for metric in (1.0, 2.0):
        sched.step(metric)
    assert opt.lr == 0.5
    with pytest.raises(TypeError):
        sched.step()


def test_scheduler_state_dicts_resume():
    opt = opt_with(1.0)
    sched = ReduceLROnPlateau(opt, patience=1)
    for m in [3.0, 2.0, 2.0]:
        sched.step(m)
    state, lr = sched.state_dict(), opt.lr
    opt2 = opt_with(lr)
    sched2 = ReduceLROnPlateau(opt2, patience=1)
    sched2.load_state_dict(state)
    for s, o in ((sched, opt), (sched2, opt2)):
        s.step(2.0)
    assert opt.lr == opt2.lr == 0.1
    step = StepLR(opt_with(1.0), step_size=2)
    step.step()
    step2 = StepLR(opt_with(1.0), step_size=5)
    step2.load_state_dict(step.state_dict())
    step2.step()
    assert step2.optimizer.lr == pytest.approx(0.1) and step2.last_epoch == 2
    assert "optimizer" not in step.state_dict()
    with pytest.raises(ValueError, match="CosineLR.load_state_dict: keys must be"):
        CosineLR(opt_with(1.0), t_max=3).load_state_dict(step.state_dict())


@pytest.mark.parametrize("make, exc, match", [
    (lambda o: StepLR(o, step_size=0), ValueError, "StepLR: step_size must be >= 1, got 0"),
    (lambda o: StepLR(o, step_size=2, gamma=0), ValueError, "StepLR: gamma must be > 0"),
    (lambda o: CosineLR(o, t_max=2.5), TypeError, "CosineLR: t_max must be an int, got 2.5"),
    (lambda o: CosineLR(o, t_max=5, eta_min=-1), ValueError, "CosineLR: eta_min must be >= 0"),
    (lambda o: ReduceLROnPlateau(o, mode="lowest"), ValueError,
     r"ReduceLROnPlateau: mode must be one of \('min', 'max'\), got 'lowest'"),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be > 0 and < 1, got 1.0"),
    (lambda o: ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, "threshold_mode"),
    (lambda o: ReduceLROnPlateau(o, patience=-1), ValueError, "patience must be >= 0"),
    (lambda o: StepLR(object(), step_size=1), TypeError,
     "StepLR: optimizer must have an 'lr' attribute"),
], ids=["step-size", "gamma", "tmax-float", "eta-min", "mode", "factor", "threshold-mode",
        "patience", "not-an-optimizer"])
def test_scheduler_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make(opt_with(0.1))
