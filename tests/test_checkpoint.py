"""blconv.checkpoint: save, load and restore of model, optimizer and scheduler states."""
import numpy as np
import pytest

from blconv.checkpoint import load_checkpoint, restore, save
from blconv.models import fcn1d
from blconv.nn import Linear, Sequential, cross_entropy
from blconv.optim import SGD, CosineLR, StepLR


def _snapshot(model):
    return {k: np.array(v) for k, v in {**model.params, **model.buffers}.items()}


def _trained(seed=3):
    """A model with dropout, an SGD with momentum buffers and a cosine schedule, one step on."""
    model = fcn1d(1, 2, channels=(2, 2, 2), dropout=0.3, seed=seed)
    opt = SGD(model, lr=0.1, momentum=0.9)
    sched = CosineLR(opt, t_max=4)
    x, y = np.random.default_rng(0).standard_normal((4, 1, 16)).astype(np.float32), [0, 1, 0, 1]
    _, dlogits = cross_entropy(model(x), np.array(y))
    model.backward(dlogits)
    opt.step()
    sched.step()
    return model, opt, sched, x


def test_restore_loads_the_whole_training_state_into_existing_objects(tmp_path):
    model, opt, sched, x = _trained()
    path = tmp_path / "ck.npz"
    save(model, path, optimizer=opt, scheduler=sched, state={"epoch": 1})
    fresh = fcn1d(1, 2, channels=(2, 2, 2), dropout=0.3, seed=3)
    fresh[-2].rng.random(50)                          # another point of the mask stream
    fopt = SGD(fresh, lr=0.5, momentum=0.9)
    fsched = CosineLR(fopt, t_max=4)
    seen = []
    ck = restore(path, fresh, optimizer=fopt, scheduler=fsched, validate=seen.append)
    assert ck.model is fresh and ck.state == {"epoch": 1} and seen == [{"epoch": 1}]
    for k, a in _snapshot(model).items():
        np.testing.assert_array_equal(_snapshot(fresh)[k], a, err_msg=k)
    for k, a in opt.momentum_buffers.items():
        np.testing.assert_array_equal(fopt.momentum_buffers[k], a, err_msg=k)
    assert (fopt.lr, fsched.state_dict()) == (opt.lr, sched.state_dict())
    model.train(), fresh.train()
    np.testing.assert_array_equal(fresh(x), model(x))   # the same dropout masks from here on


def test_restore_refuses_before_loading_anything(tmp_path):
    model, opt, sched, _ = _trained()
    path = tmp_path / "ck.npz"
    save(model, path, optimizer=opt, scheduler=sched, state={"seed": 1})
    fresh = fcn1d(1, 2, channels=(2, 2, 2), dropout=0.3, seed=3)
    before, rng = _snapshot(fresh), fresh[-2].rng.bit_generator.state
    fopt = SGD(fresh, lr=0.5, momentum=0.9)

    def refuse(state):
        raise ValueError(f"mine: seed {state['seed']}")

    cases = [
        (dict(optimizer=fopt, scheduler=StepLR(fopt, 1)),
         rf"^restore: scheduler is StepLR but checkpoint {path} holds the state of CosineLR$"),
        (dict(optimizer=fopt), r"^restore: scheduler is None but checkpoint .* holds the state "
                               r"of CosineLR$"),
        (dict(scheduler=CosineLR(fopt, t_max=4)), r"^restore: optimizer is None but "),
        (dict(optimizer=fopt, scheduler=CosineLR(fopt, t_max=4), validate=refuse),
         r"^mine: seed 1$"),
        (dict(optimizer=fopt, caller="resume_run"), r"^resume_run: scheduler is None but "),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            restore(path, fresh, **kwargs)
    other = fcn1d(1, 2, channels=(2, 2, 3), dropout=0.3, seed=3)
    with pytest.raises(ValueError, match=rf"^fit: checkpoint {path} was written for another "
                                         rf"model; its spec"):
        restore(path, other, caller="fit")
    with pytest.raises(TypeError, match=r"^restore: model must be a blconv.nn.Module, got str$"):
        restore(path, "model")
    assert fopt.lr == 0.5 and fopt.momentum_buffers == {}
    assert fresh[-2].rng.bit_generator.state == rng
    for k, a in _snapshot(fresh).items():
        np.testing.assert_array_equal(a, before[k], err_msg=k)


def test_restore_into_a_hand_built_model(tmp_path):
    model = Sequential(Linear(3, 2, rng=0))
    path = tmp_path / "ck.npz"
    save(model, path)
    other = Sequential(Linear(3, 2, rng=1))
    ck = restore(path, other)
    assert ck.spec is None and ck.optimizer is None and ck.record["data"] is None
    np.testing.assert_array_equal(other.params["0.w"], model.params["0.w"])
    with pytest.raises(ValueError, match=rf"^restore: {path} does not fit the model: "):
        restore(path, Sequential(Linear(3, 3, rng=0)))


def test_the_saved_generator_states_are_the_state_dicts(tmp_path):
    model, _, _, _ = _trained()
    path = tmp_path / "m.npz"
    save(model, path)
    assert load_checkpoint(path).model.state_dict()["rng"] == model.state_dict()["rng"]
