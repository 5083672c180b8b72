"""Faults in training and in the files it reads: kills, torn writes and hostile data files.

Kills are real: ``tests/_train_worker.py`` runs :func:`blconv.train.fit` in a
subprocess that prints a line per batch, and the test sends it SIGKILL or SIGTERM
in the middle of an epoch, or while it is inside a checkpoint save.  What
``tests/test_train.py`` and ``tests/test_data.py`` already check in-process
(truncation, object arrays, the documented malformed-file messages) is not
repeated here; hostile checkpoint files are in ``tests/test_checkpoint.py``.
"""
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from blconv.data import load_ucr
from blconv.train import load, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_train_worker.py")
EPOCHS = 3
TIMEOUT = 120          # seconds a worker may take before the test gives up on it

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


# --- the worker ---------------------------------------------------------------------------
def _start(ckdir, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                        if env.get("PYTHONPATH") else []))
    # one thread everywhere: light on a shared machine, and every run does the same arithmetic
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               BLCONV_FFT_WORKERS="1")
    return subprocess.Popen([sys.executable, str(WORKER), str(ckdir), "--epochs", str(EPOCHS),
                             *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _read_until(proc, word):
    """The worker's lines up to and including ``word``; fails if it ends or stalls first."""
    timer = threading.Timer(TIMEOUT, proc.kill)
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-1] == word:
                return lines
    finally:
        timer.cancel()
    proc.wait()
    raise AssertionError(f"the worker ended (status {proc.returncode}) before printing "
                         f"{word!r}:\n" + "\n".join(lines[-20:]))


def _kill(proc, sig):
    proc.send_signal(sig)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -sig, f"worker status {proc.returncode}, expected -{sig}"


def _run_to_end(ckdir, *args):
    proc = _start(ckdir, *args)
    lines = _read_until(proc, "done")
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0
    return [ln for ln in lines if ln.startswith("batch ")]


def _arrays(path):
    """Every array of a checkpoint, the JSON description decoded, as ``(arrays, state)``."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = arrays.pop("__meta__")
    return arrays, json.loads(meta.tobytes().decode("utf-8"))["state"]


def _assert_same_run(path, reference):
    arrays, state = _arrays(path)
    ref_arrays, ref_state = reference
    assert sorted(arrays) == sorted(ref_arrays)
    for k in ref_arrays:                   # params, buffers and momentum: bit for bit
        np.testing.assert_array_equal(arrays[k], ref_arrays[k], err_msg=k)
    assert state["epoch"] == ref_state["epoch"] == EPOCHS
    for name in ("loss", "accuracy", "lr", "effective_rate"):
        assert state["history"][name] == ref_state["history"][name], name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The final checkpoint of an uninterrupted run with the same seed."""
    ckdir = tmp_path_factory.mktemp("uninterrupted")
    lines = _run_to_end(ckdir)
    assert len(lines) == EPOCHS * 4                  # 64 examples in batches of 16
    return _arrays(ckdir / "last.npz")


# --- kills ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_mid_epoch_and_resumed_ends_with_the_uninterrupted_weights(tmp_path, reference,
                                                                          sig):
    proc = _start(tmp_path, "--hold-at", "2:2")
    lines = _read_until(proc, "holding")
    assert lines[-2] == "batch 2 2"                          # half-way through epoch 2
    _kill(proc, sig)
    assert load_checkpoint(tmp_path / "last.npz").state["epoch"] == 1
    resumed = _run_to_end(tmp_path, "--resume")
    assert resumed[0] == "batch 2 1"                         # epoch 2 is trained again, whole
    _assert_same_run(tmp_path / "last.npz", reference)


@pytest.mark.parametrize("where", ["write", "replace"])
def test_killed_inside_a_checkpoint_save_keeps_the_previous_one(tmp_path, reference, where):
    """Killed half-way through writing the archive, or before renaming it over last.npz."""
    path = tmp_path / "last.npz"
    proc = _start(tmp_path, "--hold-in-save", f"{where}:2")     # the save after epoch 2
    _read_until(proc, "saving")
    before = path.read_bytes()                                 # epoch 1's checkpoint
    temporary = [p for p in tmp_path.iterdir() if p.name != "last.npz"]
    assert len(temporary) == 1 and temporary[0].name.startswith(".last.npz.")
    _kill(proc, signal.SIGKILL)
    assert path.read_bytes() == before                         # not replaced, not torn
    ck = load_checkpoint(path)
    assert ck.state["epoch"] == 1
    # a kill leaves the temporary file behind (no code runs after SIGKILL); it is inert
    assert temporary[0].exists()
    if where == "write":
        with pytest.raises(ValueError, match=re.escape(str(temporary[0]))):
            load(temporary[0])
    resumed = _run_to_end(tmp_path, "--resume")
    assert resumed[0] == "batch 2 1"
    _assert_same_run(path, reference)


# --- hostile dataset files ------------------------------------------------------------------
def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


GOOD_TSV = b"".join(b"%d\t%s\n" % (i % 2, b"\t".join(b"%.3f" % (0.5 * j + i) for j in range(20)))
                    for i in range(40))
GOOD_TS = (b"@problemName T\n@univariate true\n@classLabel true 0 1\n@data\n"
           + b"".join(b"%s:%d\n" % (b",".join(b"%.2f" % (0.1 * j) for j in range(20)), i % 2)
                      for i in range(40)))


@pytest.mark.parametrize("suffix, data, line, message", [
    # a download cut off in the middle of the last record
    (".tsv", GOOD_TSV[:GOOD_TSV.rfind(b"\t") - 2], 40, r"expected 21 tab-separated columns"),
    (".ts", GOOD_TS[:GOOD_TS.rfind(b",") + 1], 44, r"got no ':'"),
    # binary junk inside a record (decoded with replacement characters, never a crash)
    (".tsv", GOOD_TSV.replace(b"\t", b"\t\xff\xfe\x00", 1), 1, r"value 1 is not a number"),
], ids=["tsv-cut", "ts-cut", "tsv-binary"])
def test_damaged_file_names_file_and_line(tmp_path, suffix, data, line, message):
    bad = _write(tmp_path / "D" / f"D_TRAIN{suffix}", data)
    _write(tmp_path / "D" / f"D_TEST{suffix}", GOOD_TSV if suffix == ".tsv" else GOOD_TS)
    with pytest.raises(ValueError, match=rf"^load_ucr: {re.escape(str(bad))}: line {line}: "
                                         rf".*{message}"):
        load_ucr("D", path=tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "not-gzip", "bad-crc"])
def test_damaged_gzip_names_the_file(tmp_path, damage):
    packed = gzip.compress(GOOD_TSV)
    data = {"truncated": packed[:len(packed) // 2], "not-gzip": b"\x1f\x8b\x08junk" * 4,
            "bad-crc": packed[:-8] + bytes(8)}[damage]
    bad = _write(tmp_path / "G_TRAIN.tsv.gz", data)
    _write(tmp_path / "G_TEST.tsv.gz", gzip.compress(GOOD_TSV))
    with pytest.raises(ValueError, match=rf"^load_ucr: {re.escape(str(bad))}"):
        load_ucr("G", path=tmp_path)


def test_byte_order_mark_is_not_part_of_the_first_label(tmp_path):
    _write(tmp_path / "B_TRAIN.tsv", b"\xef\xbb\xbf" + GOOD_TSV)    # as Windows editors save
    _write(tmp_path / "B_TEST.tsv", GOOD_TSV)
    train, _ = load_ucr("B", path=tmp_path)
    assert train.classes == ("0", "1")
