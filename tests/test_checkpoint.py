"""blconv.checkpoint: save, load and restore of model, optimizer and scheduler states; the
training record; atomic, pickle-free files."""
import json
import os
import re
import struct

import numpy as np
import pytest

import blconv
from blconv.checkpoint import (RECORD_VERSION, NoRecordWarning, describe_data, load_checkpoint,
                               restore, save)
from blconv.data import Dataset
from blconv.models import fcn1d
from blconv.nn import Linear, Sequential, cross_entropy
from blconv.optim import SGD, CosineLR, StepLR
from blconv.train import FORMAT_VERSION, fit, load
from helpers import assert_same_arrays, snapshot, tiny


# --- save and load ---------------------------------------------------------------------------
def test_npz_needs_no_pickle_and_has_the_documented_layout(tmp_path):
    model = tiny()
    opt = SGD(model, lr=0.1, momentum=0.9)
    sched = CosineLR(opt, t_max=3)
    _, dl = cross_entropy(model(np.ones((2, 1, 16), np.float32)), np.array([0, 1]))
    model.backward(dl)
    opt.step()
    path = tmp_path / "c.npz"
    save(model, path, optimizer=opt, scheduler=sched)
    with np.load(path, allow_pickle=False) as z:
        files = set(z.files)
        meta = json.loads(z["__meta__"].tobytes().decode("utf-8"))
        assert z["__meta__"].dtype == np.uint8
        assert all(z[k].dtype == np.float32 for k in files - {"__meta__"})
    assert {f"params/{k}" for k in model.params} <= files
    assert {f"buffers/{k}" for k in model.buffers} <= files
    assert {f"optimizer/momentum_buffers/{k}" for k in model.params} <= files
    assert meta["format"] == "blconv-checkpoint" and meta["version"] == FORMAT_VERSION
    assert meta["spec"] == model.spec and meta["scheduler"]["class"] == "CosineLR"
    assert meta["optimizer"]["scalars"]["lr"] == 0.1


def test_truncated_and_pickled_files_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    save(tiny(), good)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"load_checkpoint: {bad}"):
            load(bad)
    obj = tmp_path / "object.npz"
    with np.load(good, allow_pickle=False) as z:
        arrays = dict(z)
    arrays["params/0.w"] = np.array([{"evil": 1}], dtype=object)
    np.savez(obj, **arrays)
    with pytest.raises(ValueError, match=f"{obj}.*object array"):
        load(obj)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match=f"{other} has no '__meta__' entry"):
        load(other)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load(tmp_path / "missing.npz")


def test_checkpoint_for_another_model_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    save(tiny(), path)
    with pytest.raises(ValueError, match=f"load_checkpoint: {path} does not fit the model"):
        load_checkpoint(path, model=tiny(channels=(4, 4, 5)))
    hand = Sequential(Linear(2, 2, rng=0))
    save(hand, path)
    with pytest.raises(ValueError, match="holds no model spec"):
        load(path)
    assert load_checkpoint(path, model=Sequential(Linear(2, 2, rng=1))).spec is None


@pytest.mark.parametrize("where", ["replace", "write"])
def test_a_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where):
    path = tmp_path / "last.npz"
    old = tiny(seed=1)
    save(old, path)
    new = tiny(seed=2)

    def crash(*args, **kwargs):
        if where == "write":          # half the archive reaches the disk, then the writer dies
            args[0].write(b"PK\x03\x04 partial")
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash) if where == "replace" else \
        monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save(new, path)
    monkeypatch.undo()
    assert_same_arrays(snapshot(load(path)), snapshot(old))
    assert os.listdir(tmp_path) == ["last.npz"]            # the temporary file is gone


# --- the training record ----------------------------------------------------------------------
def _rewrite_meta(src, dst, change):
    """Copy checkpoint ``src`` to ``dst`` with ``change(meta)`` applied to its JSON description."""
    with np.load(src, allow_pickle=False) as z:
        arrays = dict(z)
    meta = json.loads(arrays["__meta__"].tobytes().decode("utf-8"))
    change(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(dst, **arrays)


def test_the_training_record_round_trips(tmp_path):
    x = np.zeros((5, 1, 30))
    data = Dataset(x, np.array([0, 1, 2, 1, 0]), ("a", "b", "c"), "toy")
    info = describe_data(data, name="toy-v2", normalisation={"method": "znorm", "ddof": 1})
    model = fcn1d(1, 3, channels=(2, 2, 2), compress_rate=[0.0, 0.5, 0.0],
                  preserve_energy=[None, None, 0.9], fft_size="pow2")
    path = tmp_path / "m.npz"
    save(model, path, data_info=info)
    expected = {
        "version": RECORD_VERSION, "blconv": blconv.__version__,
        "data": {"name": "toy-v2", "n_classes": 3, "classes": ["a", "b", "c"],
                 "in_channels": 1, "shape": [30],
                 "normalisation": {"method": "znorm", "ddof": 1}},
        "layers": [{"layer": "0", "type": "Conv1d", "compress_rate": 0.0,
                    "preserve_energy": None, "fft_size": "pow2", "frozen_band": None},
                   {"layer": "3", "type": "Conv1d", "compress_rate": 0.5,
                    "preserve_energy": None, "fft_size": "pow2", "frozen_band": None},
                   {"layer": "6", "type": "Conv1d", "compress_rate": 0.0,
                    "preserve_energy": 0.9, "fft_size": "pow2", "frozen_band": None}]}
    assert load_checkpoint(path).record == expected
    with np.load(path, allow_pickle=False) as z:              # documented: __meta__["record"]
        assert json.loads(z["__meta__"].tobytes().decode("utf-8"))["record"] == expected
    save(model, path, data_info=data)                          # a Dataset: its own name
    assert load_checkpoint(path).record["data"] == {**expected["data"], "name": "toy",
                                                     "normalisation": None}
    save(model, path)
    assert load_checkpoint(path).record["data"] is None


def test_the_record_of_an_image_model_has_the_image_size(tmp_path):
    from blconv.models import cnn2d
    data = Dataset(np.zeros((2, 3, 6, 5)), np.array([0, 1]), ("a", "b"), "img")
    path = tmp_path / "m.npz"
    save(cnn2d(3, 2, width=2), path, data_info=data)
    record = load_checkpoint(path).record
    assert (record["data"]["in_channels"], record["data"]["shape"]) == (3, [6, 5])
    assert [layer["type"] for layer in record["layers"]] == ["Conv2d", "Conv2d"]


@pytest.mark.parametrize("data_info, error, match", [
    (Dataset(np.zeros((3, 1, 9)), np.array([0, 1, 2]), ("a", "b", "c"), "three"), ValueError,
     r"save: data_info describes 'three' with 3 classes, but the model has 2"),
    (Dataset(np.zeros((2, 2, 9)), np.array([0, 1]), ("a", "b"), "two"), ValueError,
     r"save: data_info describes 'two' with 2 input channels, but the model has 1"),
    (Dataset(np.zeros((2, 1, 4, 4)), np.array([0, 1]), ("a", "b"), "img"), ValueError,
     r"save: data_info describes 'img' with 2 spatial dimensions, but the model has 1"),
    ({"name": "toy"}, TypeError, r"save: data_info must be a Dataset or a describe_data\(\) "
                                 r"mapping with keys \['name', 'n_classes'"),
], ids=["classes", "channels", "dimensions", "mapping"])
def test_save_refuses_data_info_that_does_not_fit_the_model(tmp_path, data_info, error, match):
    with pytest.raises(error, match=match):
        save(tiny(), tmp_path / "m.npz", data_info=data_info)
    assert not (tmp_path / "m.npz").exists()


def test_describe_data_refuses_bad_arguments():
    data = Dataset(np.zeros((2, 1, 9)), np.array([0, 1]), ("a", "b"), "two")
    with pytest.raises(TypeError, match="describe_data: data must be a blconv.data.Dataset, "
                                        "got ndarray"):
        describe_data(data.x)
    with pytest.raises(TypeError, match="describe_data: normalisation must be a dict or None, "
                                        "got str"):
        describe_data(data, normalisation="znorm")
    with pytest.raises(TypeError, match="describe_data: normalisation must hold JSON types"):
        describe_data(data, normalisation={"mean": np.zeros(2)})


def test_a_checkpoint_without_the_record_loads_and_says_what_it_lacks(tmp_path):
    model = tiny(seed=4)
    new, old = tmp_path / "new.npz", tmp_path / "old.npz"
    save(model, new, data_info=Dataset(np.zeros((2, 1, 9)), np.array([0, 1]), ("a", "b")))
    _rewrite_meta(new, old, lambda meta: meta.pop("record"))     # as older blconv wrote it
    with pytest.warns(NoRecordWarning, match=rf"load_checkpoint: {old} has no training record "
                                             rf"\(written by an older blconv\): its dataset"):
        back = load(old)
    assert_same_arrays(snapshot(back), snapshot(model))
    with pytest.warns(NoRecordWarning, match=rf"load_checkpoint: {old} has no training record"):
        ck = load_checkpoint(old)
    assert ck.record is None and ck.version == FORMAT_VERSION == 1


@pytest.mark.parametrize("record, problem", [
    ([], "it must be an object with version, blconv, data and layers"),
    ({"version": 0, "blconv": "0.1.0", "data": None, "layers": []}, "version must be an int"),
    ({"version": 1, "blconv": "0.1.0", "data": None, "layers": {}}, "layers must be a list"),
    ({"version": 1, "blconv": "0.1.0", "data": {"name": "x"}, "layers": []},
     "data must be null or an object with keys"),
    ({"version": 1, "blconv": "0.1.0", "layers": [],
      "data": {"name": "x", "n_classes": "2", "classes": [], "in_channels": 1, "shape": [9],
               "normalisation": None}}, "data must hold a str name, int n_classes"),
], ids=["not-an-object", "version", "layers", "data-keys", "data-types"])
def test_a_malformed_record_is_refused_naming_the_file(tmp_path, record, problem):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    save(tiny(), good)
    _rewrite_meta(good, bad, lambda meta: meta.update(record=record))
    with pytest.raises(ValueError, match=rf"load_checkpoint: {bad} has a malformed training "
                                         rf"record: {problem}"):
        load_checkpoint(bad)


# --- restore ---------------------------------------------------------------------------------
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
    for k, a in snapshot(model).items():
        np.testing.assert_array_equal(snapshot(fresh)[k], a, err_msg=k)
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
    before, rng = snapshot(fresh), fresh[-2].rng.bit_generator.state
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
    for k, a in snapshot(fresh).items():
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


# --- hostile checkpoints --------------------------------------------------------------------
def _tiny():
    return fcn1d(1, 2, channels=(2, 2, 2), seed=1)


@pytest.fixture
def checkpoint(tmp_path):
    model = _tiny()
    path = tmp_path / "good.npz"
    save(model, path)
    return path, {k: np.array(v) for k, v in {**model.params, **model.buffers}.items()}


def _snapshot(model):
    return {k: np.array(v) for k, v in {**model.params, **model.buffers}.items()}


def _central_directory(data: bytes) -> int:
    end = data.rfind(b"PK\x05\x06")
    return struct.unpack("<I", data[end + 16:end + 20])[0]


def test_every_flipped_byte_is_refused_naming_the_path_or_changes_nothing(tmp_path, checkpoint):
    """Single-byte corruption anywhere in the archive's members (zip headers, .npy headers,
    array data): refused with a ValueError naming the file, or (for bytes the zip reader
    ignores, such as time stamps) loaded with exactly the saved arrays.  The central
    directory is covered by the test below."""
    good, saved = checkpoint
    data = good.read_bytes()
    bad = tmp_path / "flipped.npz"
    outcomes = {"refused": 0, "identical": 0}
    for offset in range(0, _central_directory(data), 11):
        bad.write_bytes(data[:offset] + bytes([data[offset] ^ 0x55]) + data[offset + 1:])
        try:
            model = load(bad)
        except ValueError as e:
            assert str(bad) in str(e), (offset, str(e))
            outcomes["refused"] += 1
            continue
        assert sorted(_snapshot(model)) == sorted(saved), offset
        for k, a in _snapshot(model).items():
            np.testing.assert_array_equal(a, saved[k], err_msg=f"byte {offset}: {k}")
        outcomes["identical"] += 1
    assert outcomes["refused"] > outcomes["identical"] > 0


@pytest.mark.parametrize("field, value", [
    ("version needed", b"\x78\x00"),          # "zip file version 12.0"
    ("flags", b"\x01\x00"),                   # encrypted: "password required"
    ("flags", b"\x40\x00"),                   # strong encryption
    ("method", b"\x63\x00"),                  # compression method 99
], ids=["version", "encrypted", "strong-encryption", "method"])
def test_corrupted_central_directory_is_refused_naming_the_path(tmp_path, checkpoint, field,
                                                                value):
    good, _ = checkpoint
    data = bytearray(good.read_bytes())
    at = _central_directory(data) + {"version needed": 6, "flags": 8, "method": 10}[field]
    data[at:at + 2] = value
    bad = tmp_path / "cd.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load(bad)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04", bytes(range(256)) * 8],
                         ids=["empty", "zip-magic-only", "garbage"])
def test_empty_or_garbage_file_is_refused_naming_the_path(tmp_path, content):
    bad = tmp_path / "last.npz"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=rf"load_checkpoint: {re.escape(str(bad))} is not a "
                                         rf"readable \.npz checkpoint"):
        load_checkpoint(bad)


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("key", ["params/0.w", "__meta__"])
def test_pickled_objects_are_refused_and_never_unpickled(tmp_path, checkpoint, key):
    good, _ = checkpoint
    marker = tmp_path / "unpickled"
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = np.array([_Payload(marker)], dtype=object)
    ckdir = tmp_path / "run"
    ckdir.mkdir()
    evil = ckdir / "last.npz"
    np.savez(evil, **arrays)
    with pytest.raises(ValueError, match=rf"{re.escape(str(evil))} holds an unreadable array "
                                         rf".*object array, which is never unpickled"):
        load(evil)
    model = _tiny()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=rf"^fit: {re.escape(str(evil))} .*object array"):
        fit(model, _task(), epochs=2, batch_size=8, optimizer=SGD(model, lr=0.1), seed=0,
            progress=False, checkpoint_dir=ckdir, resume=True)
    assert not marker.exists()
    assert all(np.array_equal(a, before[k]) for k, a in _snapshot(model).items())
    np.load(evil, allow_pickle=True)[key]          # the payload is live: pickle would run it
    assert marker.is_dir()


def _task():
    from blconv.data import make_frequency_task
    return make_frequency_task("low", n_samples=16, n_test=4, length=40, seed=0)[0]


def test_resume_from_a_truncated_checkpoint_is_refused_before_touching_the_model(tmp_path):
    model = _tiny()
    fit(model, _task(), epochs=1, batch_size=8, optimizer=SGD(model, lr=0.1), seed=0,
        progress=False, checkpoint_dir=tmp_path)
    path = tmp_path / "last.npz"
    path.write_bytes(path.read_bytes()[:-100])
    fresh = _tiny()
    before = _snapshot(fresh)
    opt = SGD(fresh, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=rf"^fit: {re.escape(str(path))} holds an unreadable "
                                         rf"array|^fit: {re.escape(str(path))} is not a "
                                         rf"readable"):
        fit(fresh, _task(), epochs=2, batch_size=8, optimizer=opt, seed=0, progress=False,
            checkpoint_dir=tmp_path, resume=True)
    assert all(np.array_equal(a, before[k]) for k, a in _snapshot(fresh).items())
    assert opt.momentum_buffers == {}
