"""Command line of blconv: ``python -m blconv [command]`` (also the ``blconv`` script).

With no command it runs the default sweep: ``fcn1d`` on GunPoint trained at
compress rates 0, 0.5 and 0.75 and tested at each, printing the accuracy table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import warnings

import numpy as np

from ._argtypes import (compress_rate, energy_fraction, non_negative_float, positive_float,
                        positive_int)

__all__ = ["main", "build_parser"]

# the docstring above is reStructuredText for the API pages; --help shows plain text
DESCRIPTION = """\
Band-limited convolution: train and test CNNs whose convolutions keep only the
low-frequency part of the spectra. Run as 'blconv COMMAND' or 'python -m blconv COMMAND'.

With no command it runs the default sweep: fcn1d on GunPoint trained at
compress rates 0, 0.5 and 0.75 and tested at each, printing the accuracy table."""


def _out_dir(path, kind):
    if path:
        return path
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{kind}-{stamp}")


# --- commands --------------------------------------------------------------------------
def _sweep(args) -> int:
    import logging

    from . import experiments as E
    from .results import format_failures
    datasets = E.resolve_datasets(args.datasets, ucr_dir=args.ucr_dir)
    runs = E.make_runs(datasets, args.rates, args.seeds, test_rates=args.test_rates,
                       energies=args.energies or (), model=args.model, epochs=args.epochs,
                       batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                       weight_decay=args.weight_decay, device=args.device,
                       width=args.width, ucr_dir=args.ucr_dir)
    out = _out_dir(args.out, "sweep")
    shown = ", ".join(datasets[:6]) + (f", ... ({len(datasets)} datasets)"
                                       if len(datasets) > 6 else "")
    print(f"blconv sweep: {len(runs)} runs ({shown}; train rates {args.rates}; seeds "
          f"{args.seeds}; {args.epochs} epochs) -> {out} (again with --out {out} to resume)",
          flush=True)
    t0 = time.perf_counter()
    # the library describes the cluster it starts or connects to at INFO level: shown here
    log, shown_here = logging.getLogger("blconv.dist"), logging.StreamHandler(sys.stdout)
    shown_here.setFormatter(logging.Formatter("blconv %(message)s"))
    level = log.level
    log.addHandler(shown_here)
    log.setLevel(logging.INFO)
    try:
        # --no-progress: plain lines (a line per run, a summary every 30 s) instead of a bar
        result = E.sweep(runs, client=args.scheduler, workers=args.workers, out_dir=out,
                         threads=args.threads, progress="lines" if args.no_progress else True)
    except ImportError as e:
        print(f"blconv sweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nblconv sweep: interrupted; the finished runs are in "
              f"{os.path.join(out, 'runs')}: the same command with --out {out} resumes",
              file=sys.stderr)
        return 130
    finally:
        log.removeHandler(shown_here)
        log.setLevel(level)
    if result:
        print("\n" + E.format_table(result))
    seconds = time.perf_counter() - t0
    print(f"\n{len(result)} records of {len(runs) - len(result.failures)} runs "
          f"({result.executed} run now, {result.skipped} already done) in {seconds:.0f} s; "
          f"written to {os.path.join(out, 'results.json')} and results.csv")
    if result.failures:
        print(f"blconv sweep: {len(result.failures)} of {len(runs)} runs failed "
              f"(tracebacks in {os.path.join(out, 'failures.json')}):", file=sys.stderr)
        print(format_failures(result.failures), file=sys.stderr)
        return 1
    return 0


def _train(args) -> int:
    from . import experiments as E
    from . import train as T
    run = E.Run(dataset=args.dataset, model=args.model, train_compress_rate=args.compress_rate,
                train_preserve_energy=args.preserve_energy, seed=args.seed, epochs=args.epochs,
                batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                weight_decay=args.weight_decay, device=args.device, width=args.width,
                ucr_dir=args.ucr_dir)
    if args.calibrate_each_epoch and args.preserve_energy is None:
        raise ValueError("--calibrate-each-epoch needs --preserve-energy")
    tr, te, name, model, opt, sched = E.prepare(run)
    data_info = E.describe_training_data(run.dataset, tr)
    out = _out_dir(args.out, "train")
    os.makedirs(out, exist_ok=True)
    callbacks = [T.Calibrate(model, tr)] if args.calibrate_each_epoch else []
    hist = T.fit(model, tr, te, epochs=run.epochs, batch_size=run.batch_size, optimizer=opt,
                 scheduler=sched, seed=run.seed, progress=not args.no_progress, monitor="loss",
                 checkpoint_dir=os.path.join(out, "checkpoints"), resume=args.resume,
                 data_info=data_info, callbacks=callbacks)
    result = {"run": run.to_dict(), "history": hist.to_dict()}
    if run.train_preserve_energy is not None:
        # the band of each batch, then one band per layer from the whole training set
        result["test_per_batch"] = per_batch = T.evaluate(
            model, te, preserve_energy=run.train_preserve_energy)
        from .nn import calibrate
        calibrate(model, tr)
    T.save(model, os.path.join(out, "model.npz"), data_info=data_info)
    result["test"] = ev = T.evaluate(model, te)
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump(result, f, indent=1)
    if run.train_preserve_energy is not None:
        print(f"{name} on {run.dataset}: test accuracy {100 * ev['accuracy']:.1f}% with the "
              f"bands calibrated on the training set (effective compression "
              f"{ev['effective_rate']:.3f}), {100 * per_batch['accuracy']:.1f}% with per-batch "
              f"bands ({per_batch['effective_rate']:.3f}); calibrated model saved to "
              f"{os.path.join(out, 'model.npz')}")
        return 0
    print(f"{name} on {run.dataset}: test accuracy {100 * ev['accuracy']:.1f}% "
          f"(effective compression {ev['effective_rate']:.3f}); model saved to "
          f"{os.path.join(out, 'model.npz')}")
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"


def _extent(shape) -> str:
    """``length 427`` for a series, ``8x8`` for an image."""
    return f"length {shape[0]}" if len(shape) == 1 else "x".join(str(n) for n in shape)


def _describe(name: str, n_classes: int, in_channels: int, shape) -> str:
    """``OSULeaf (6 classes, 1 channel, length 427)``."""
    return (f"{name} ({_plural(n_classes, 'class')}, {_plural(in_channels, 'channel')}, "
            f"{_extent(shape)})")


def _check_fit(path: str, model, trained, name: str, test) -> None:
    """Refuse a test set whose classes, channels or dimensionality the model was not built for.

    The model's own layers decide (they also do for a checkpoint without a record); a
    different length or size is allowed: every model of blconv.models pools globally.
    """
    from ._record import model_io
    io = model_io(model)
    shape = test.x.shape[2:]
    want = {"classes": io["n_outputs"], "channels": io["in_channels"], "ndim": io["ndim"]}
    if trained is not None:
        for key, value in (("classes", trained["n_classes"]),
                           ("channels", trained["in_channels"]),
                           ("ndim", len(trained["shape"]))):
            if want[key] is None:
                want[key] = value
    differ = []
    if want["classes"] is not None and test.n_classes != want["classes"]:
        differ.append(_plural(test.n_classes, "class"))
    if want["channels"] is not None and test.x.shape[1] != want["channels"]:
        differ.append(_plural(test.x.shape[1], "channel"))
    if want["ndim"] is not None and len(shape) != want["ndim"]:
        differ.append(f"{len(shape)}-D inputs ({_extent(shape)})")
    if differ:
        if trained is not None:
            was = f"the checkpoint was trained on {_describe(**_trained_args(trained))}"
        else:
            known = [_plural(want["classes"], "class") if want["classes"] else None,
                     _plural(want["channels"], "channel") if want["channels"] else None,
                     f"{want['ndim']}-D inputs" if want["ndim"] else None]
            was = (f"the checkpoint's model has {', '.join(k for k in known if k)} ({path} "
                   f"has no training record)")
        raise ValueError(f"{was}; {name} has {' and '.join(differ)}")
    if trained is not None and (name != trained["name"]
                                or list(shape) != list(trained["shape"])):
        print(f"blconv eval: note: the checkpoint was trained on "
              f"{_describe(**_trained_args(trained))}; evaluating on "
              f"{_describe(name, test.n_classes, test.x.shape[1], shape)}", file=sys.stderr)


def _trained_args(trained: dict) -> dict:
    return {k: trained[k] for k in ("name", "n_classes", "in_channels", "shape")}


def _eval(args) -> int:
    from . import experiments as E
    from . import train as T
    from .checkpoint import NoRecordWarning, load_checkpoint
    path = args.checkpoint
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoRecordWarning)          # no record: said below
        ck = load_checkpoint(path)
    trained = ck.record["data"] if ck.record is not None else None
    if ck.record is None:
        lacks = f"{path} has no training record (written by an older blconv)"
    elif trained is None:
        lacks = f"{path} records no training data (saved without data_info)"
    else:
        lacks = f"{path} records training data without a name"
    name = args.dataset
    if name is None:
        if trained is None or not trained["name"]:
            raise ValueError(f"{lacks}, so it does not say what it was trained on: pass "
                             f"--dataset NAME")
        name = trained["name"]
    _, te = E.load_dataset(name, ucr_dir=args.ucr_dir)
    _check_fit(path, ck.model, trained, name, te)
    if trained is None:
        print(f"blconv eval: note: {lacks}: {name} was checked against the model's layers "
              f"only", file=sys.stderr)
    te = te.replace(x=te.x.astype(np.float32))
    print(f"{name}: test split, {len(te)} examples")
    print(f"{'test rate':>9} {'effective':>9} {'accuracy %':>10}")
    for rate in args.test_rates:
        ev = T.evaluate(ck.model, te, compress_rate=rate)
        print(f"{rate:9.2f} {ev['effective_rate']:9.3f} {100 * ev['accuracy']:10.1f}")
    return 0


def _data_list(args) -> int:
    from .data import DATASETS, data_home, default_ucr_dir, list_datasets, list_ucr
    from .data.home import ENV, UCR_ARCHIVE_URL
    from importlib.util import find_spec

    from .data.mnist1d import MNIST1D_HINT, cache_path
    home = data_home()
    source = f"${ENV}" if os.environ.get(ENV) else f"default; set ${ENV} to move it"
    print(f"data home: {home} ({source})")
    shipped = set(list_ucr())
    kinds = {"digits": "shipped (8x8 images)", "freq-low": "generated on the fly",
             "freq-high": "generated on the fly"}
    print("\ndatasets blconv knows:")
    for name in DATASETS:
        if name in shipped:
            what = "shipped (UCR)"
        elif name.startswith("mnist1d"):
            path = cache_path(shuffled=name.endswith("shuffled"))
            what = (f"generated, cached: {path}" if os.path.isfile(path) else
                    f"generated on first use into {path}" if find_spec("mnist1d") else
                    f"generated on first use; needs the mnist1d package: {MNIST1D_HINT}")
        else:
            what = kinds.get(name, "")
        print(f"  {name:<18}{what}")
    ucr = default_ucr_dir()
    where = home / "UCR"
    if ucr is None:
        print(f"\nUCR archive: none at {where}: download the archive from {UCR_ARCHIVE_URL} "
              f"and unpack it there (so that {where}/Adiac/Adiac_TRAIN.tsv exists), or pass "
              f"--ucr-dir")
    else:
        names = list_datasets(ucr)
        print(f"\nUCR archive at {where} (the default --ucr-dir): {len(names)} datasets")
        line = " "
        for name in names:
            if len(line) + len(name) > 88:
                print(line)
                line = " "
            line += f" {name}"
        if names:
            print(line)
    generated = home / "generated"
    files = sorted(p for p in generated.glob("*.npz")) if generated.is_dir() else []
    print(f"\ncached generated datasets in {generated}: "
          + (", ".join(f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)" for p in files)
             if files else "none"))
    return 0


# --- parser ----------------------------------------------------------------------------
def _ucr_dir_option(p):
    p.add_argument("--ucr-dir", default=None, metavar="PATH",
                   help="a UCR archive on disk, for datasets that are not shipped (default: "
                   "the data home's UCR folder, $BLCONV_DATA/UCR, when it exists; "
                   "BLCONV_DATA defaults to ~/.cache/blconv)")


def _common_training(p, *, epochs, no_progress="no progress bars"):
    p.add_argument("--model", default="auto", choices=["auto", "fcn1d", "cnn2d", "resnet"],
                   help="architecture (auto: fcn1d for series, cnn2d for images)")
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs (default {epochs})")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                   help="sgd: SGD, momentum 0.9, cosine-annealed lr (default); adam: the "
                   "published FCN recipe, Adam with the lr halved after 50 epochs without a "
                   "lower training loss (down to 1e-4)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default 0.01 for sgd, 0.001 for adam)")
    p.add_argument("--weight-decay", type=non_negative_float, default=None, metavar="WD",
                   help="L2 weight decay (default 5e-4 for sgd, 0 for adam)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="batch size (default 8)")
    p.add_argument("--width", type=positive_int, default=None,
                   help="model width (fcn1d: channels W, 2W, W, default 128 as in the paper; "
                   "cnn2d and resnet: base width)")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"],
                   help="cpu (NumPy) or gpu (CuPy; needs the gpu-cuda12 or gpu-cuda13 "
                   "extra)")
    _ucr_dir_option(p)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: a new folder under ./runs)")
    p.add_argument("--no-progress", action="store_true", help=no_progress)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from . import experiments as E
    p = argparse.ArgumentParser(
        prog="blconv", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
        epilog="datasets: " + ", ".join(E.DATASETS) + " (or any UCR dataset with --ucr-dir)")
    p.add_argument("--version", action="version", version=f"blconv {__version__}")
    sub = p.add_subparsers(dest="command", metavar="command")

    s = sub.add_parser("sweep", help="train at several compress rates, test at several, "
                       "over seeds; write results.json/.csv", description=(
                           "Train one model per (dataset, train rate, seed) and evaluate it at "
                           "every test rate (band-limited inference)."))
    s.add_argument("--datasets", nargs="+", default=["GunPoint"], metavar="NAME",
                   help="datasets to sweep, by space or comma; 'all': every UCR dataset "
                   "shipped, or every one under --ucr-dir (default GunPoint; see below)")
    s.add_argument("--rates", nargs="+", type=compress_rate, default=[0.0, 0.5, 0.75],
                   help="training compress rates (default 0 0.5 0.75)")
    s.add_argument("--energies", nargs="*", type=energy_fraction, default=[],
                   help="also train with preserve_energy at these fractions")
    s.add_argument("--test-rates", nargs="+", type=compress_rate, default=None,
                   help="test compress rates (default: the training rates)")
    s.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds (default 0)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="run on a local Dask cluster of N processes (needs the dist "
                       "extra; default: one run after another in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster of this scheduler (tcp://host:8786)")
    s.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="BLAS and FFT threads of each run (default: all cores in this "
                   "process, 1 per Dask worker); results do not depend on it")
    _common_training(s, epochs=100, no_progress="plain lines instead of a progress bar: one "
                     "per finished run and a summary every 30 s (also when stdout is not a "
                     "terminal)")
    s.set_defaults(func=_sweep)

    t = sub.add_parser("train", help="train one model and save it",
                       description="Train one model; save model.npz, history.json and "
                       "per-epoch checkpoints (resumable) in the output directory.")
    t.add_argument("--dataset", default="GunPoint", metavar="NAME",
                   help="dataset to train on (default GunPoint)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--compress-rate", type=compress_rate, default=0.0,
                   help="fraction of spectral coefficients discarded (default 0)")
    g.add_argument("--preserve-energy", type=energy_fraction, default=None,
                   help="keep the smallest band holding this fraction of input energy, "
                   "chosen per batch in training; at the end each layer's band is chosen "
                   "from the whole training set and frozen in the saved model")
    t.add_argument("--calibrate-each-epoch", action="store_true",
                   help="with --preserve-energy: freeze the bands on the training set after "
                   "every epoch, so that later epochs train with the bands of inference")
    t.add_argument("--seed", type=int, default=0, help="seed of weights and shuffles")
    t.add_argument("--resume", action="store_true", help="continue from the output "
                   "directory's last checkpoint")
    _common_training(t, epochs=100)
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="evaluate a saved model at several test rates")
    e.add_argument("checkpoint", help="a model.npz written by 'blconv train'")
    e.add_argument("--dataset", default=None, metavar="NAME",
                   help="dataset whose test split is used (default: the one the checkpoint "
                   "was trained on); its classes, channels and dimensionality must be the "
                   "model's")
    e.add_argument("--test-rates", nargs="+", type=compress_rate, default=[0.0, 0.25, 0.5, 0.75],
                   help="compress rates to evaluate at (default 0 0.25 0.5 0.75)")
    _ucr_dir_option(e)
    e.set_defaults(func=_eval)

    d = sub.add_parser("data", help="the datasets: shipped, and found in the data home",
                       description="Where blconv finds its datasets. The data home is "
                       "$BLCONV_DATA (default ~/.cache/blconv): a copy of the UCR archive in "
                       "its UCR folder, generated datasets cached in its generated folder.")
    dsub = d.add_subparsers(dest="data_command", metavar="action", required=True)
    dl = dsub.add_parser("list", help="list the shipped datasets and what is on disk",
                         description="List the datasets blconv ships or generates, the UCR "
                         "datasets found in the data home, and the cached generated ones.")
    dl.set_defaults(func=_data_list)

    from . import bench
    from .bench import demo
    demo.add_parser(sub)
    bench.add_parser(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv or ["sweep"])
    if getattr(args, "ucr_dir", "") is None:
        from .data import default_ucr_dir
        args.ucr_dir = default_ucr_dir()
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"blconv {args.command}: error: {e}", file=sys.stderr)
        return 2
