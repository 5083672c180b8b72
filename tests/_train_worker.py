"""A training run for tests/test_faults.py, meant to be killed (run as a subprocess).

Usage::

    python tests/_train_worker.py CHECKPOINT_DIR [--epochs 3] [--resume]
                                  [--hold-at EPOCH:BATCH] [--hold-in-save {write,replace}:K]

It trains a tiny :func:`blconv.models.fcn1d` (dropout, per-layer rates, SGD with
momentum and weight decay, a cosine schedule) on a tiny frequency task with
:func:`blconv.train.fit` and ``checkpoint_dir``, and prints one flushed line per
training batch, ``batch <epoch> <batch>`` (both from 1, after the forward and the
loss, before the step), so that the parent knows where the run is.

``--hold-at E:B`` prints ``holding`` at batch ``B`` of epoch ``E`` and then waits (in
the middle of the epoch) to be killed.  ``--hold-in-save MODE:K`` waits inside the
``K``-th checkpoint save after printing ``saving``: ``write`` after half of the archive
reached the temporary file, ``replace`` with the temporary file complete but not yet
renamed over ``last.npz``.  A worker that is not killed within 60 s exits with status
3, so a broken test never leaves it running.  A finished run prints ``done``.
"""
import argparse
import io
import os
import sys
import time

HOLD_SECONDS = 60.0


def _hold(word: str) -> None:
    print(word, flush=True)
    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.02)
    sys.exit(3)


def _pair(text: str, first=int):
    a, b = text.split(":")
    return first(a), int(b)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint_dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hold-at", type=_pair)
    parser.add_argument("--hold-in-save", type=lambda s: _pair(s, str))
    args = parser.parse_args(argv)

    import numpy as np

    import blconv.train as T
    from blconv.data import make_frequency_task
    from blconv.models import fcn1d
    from blconv.optim import SGD, CosineLR

    train, _ = make_frequency_task("low", n_samples=64, n_test=8, length=48, seed=0)
    model = fcn1d(1, 2, channels=(4, 4, 4), dropout=0.3, compress_rate=[0.0, 0.25, 0.5],
                  seed=4)
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-3)
    sched = CosineLR(opt, t_max=4)

    where = {"epoch": 0, "batch": 0}
    path = os.path.join(args.checkpoint_dir, "last.npz")
    if args.resume and os.path.exists(path):
        where["epoch"] = T.load_checkpoint(path).state["epoch"]

    real_batches, real_ce = T.batches, T.cross_entropy

    def batches(*a, **kw):                       # fit asks for one shuffled order per epoch
        where["epoch"] += 1
        where["batch"] = 0
        return real_batches(*a, **kw)

    def cross_entropy(logits, y):                # one call per training batch (no val set)
        out = real_ce(logits, y)
        where["batch"] += 1
        print(f"batch {where['epoch']} {where['batch']}", flush=True)
        if args.hold_at == (where["epoch"], where["batch"]):
            _hold("holding")
        return out

    T.batches, T.cross_entropy = batches, cross_entropy

    if args.hold_in_save is not None:
        mode, k = args.hold_in_save
        saves = {"n": 0}
        real_savez, real_replace = np.savez, os.replace

        def savez(f, **arrays):
            saves["n"] += 1
            if mode != "write" or saves["n"] != k:
                return real_savez(f, **arrays)
            buf = io.BytesIO()
            real_savez(buf, **arrays)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])      # half the archive is on the disk
            f.flush()
            os.fsync(f.fileno())
            _hold("saving")

        def replace(src, dst, *a, **kw):
            if mode == "replace" and saves["n"] == k:
                _hold("saving")                  # the temporary file is complete
            return real_replace(src, dst, *a, **kw)

        np.savez, os.replace = savez, replace

    T.fit(model, train, epochs=args.epochs, batch_size=16, optimizer=opt, scheduler=sched,
          seed=11, progress=False, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
