"""Command line of the benchmark: ``python -m blconv bench`` and ``python -m blconv.bench``."""
from __future__ import annotations

import argparse
import json
import sys

from .._argtypes import compress_rate, int_at_least, non_negative_float
from .layers import DEFAULT_LAYERS, DEFAULT_RATES, LAYERS, METHODS, QUICK_BATCH
from .measure import run_benchmark
from .report import format_table, format_targets

__all__ = ["add_parser", "main"]


def _add_arguments(p):
    p.add_argument("--layers", nargs="+", choices=list(LAYERS), default=list(DEFAULT_LAYERS),
                   metavar="NAME", help=f"layers to run, of {' '.join(LAYERS)} (default: "
                                        f"{' '.join(DEFAULT_LAYERS)})")
    p.add_argument("--rates", nargs="+", type=compress_rate, default=list(DEFAULT_RATES),
                   help="blconv compress rates (default 0 0.25 0.5 0.75)")
    p.add_argument("--repeats", type=int_at_least(1), default=5,
                   help="timed repeats of blconv and torch (default 5)")
    p.add_argument("--peer-repeats", type=int_at_least(1), default=None,
                   help="timed repeats of the slow reference and fftconvolve peers "
                        "(default 3; 1 with --quick)")
    p.add_argument("--peer-budget", type=non_negative_float, default=20.0,
                   help="seconds of timed calls after which a slow peer takes no further "
                        "repeat on a layer (default 20)")
    p.add_argument("--warmup", type=int_at_least(0), default=1,
                   help="untimed rounds of blconv and torch before timing (default 1)")
    p.add_argument("--pause", type=non_negative_float, default=0.25,
                   help="seconds slept when the timed method changes, so that BLAS threads "
                        "spinning after a NumPy call do not slow the next one (default 0.25)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   metavar="METHOD", help=f"methods to run (default all: {' '.join(METHODS)})")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--quick", action="store_true",
                   help=f"batch {QUICK_BATCH} for every layer, 1 peer repeat (smoke test)")
    p.add_argument("--batch", type=int_at_least(1), default=None, help="override every batch size")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: blconv on CuPy and torch on CUDA (default cpu)")
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="threads for torch and the FFTs (default: usable cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", default=None, help="also write the results here")
    return p


def _description():
    """Plain text for --help (the package docstring is reStructuredText for the API pages)."""
    return ("Benchmark of band-limited convolution against its peers (reference, "
            "fftconvolve, torch) on the paper's layers: time and peak memory of "
            "forward+backward per compress rate.")


def _run(args) -> int:
    methods = [m for m in args.methods if not (args.no_torch and m == "torch")]
    batch = args.batch if args.batch is not None else (QUICK_BATCH if args.quick else None)
    peer_repeats = args.peer_repeats or (1 if args.quick else 3)
    try:
        result = run_benchmark(args.layers, rates=args.rates, repeats=args.repeats,
                               peer_repeats=peer_repeats, peer_budget=args.peer_budget,
                               warmup=args.warmup, pause=args.pause,
                               methods=methods, device=args.device, batch=batch,
                               threads=args.threads, seed=args.seed,
                               log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, RuntimeError) as e:
        print(f"blconv bench: error: {e}", file=sys.stderr)
        return 2
    h = result["header"]
    print(f"blconv {h['blconv']} ({h['git'] or 'no git'}) bench on {h['cpu']} "
          f"({h['cores_usable']} cores, {h['threads']} threads), device {h['device']}"
          + (f" ({h['gpu']})" if h.get("gpu") else ""))
    print(f"python {h['python']}, numpy {h['numpy']}, scipy {h['scipy']}, "
          f"torch {h['torch'] or '-'}, float32; medians of the timed repeats (n)")
    for note in result["notes"]:
        print(f"note: {note}")
    print(format_table(result))
    print(format_targets(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def add_parser(subparsers):
    """Register the ``bench`` sub-command on an ``argparse`` sub-parsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``bench`` parser; its ``func`` default takes the parsed arguments and
        returns the exit code.
    """
    p = subparsers.add_parser("bench", help="time blconv against its peers on the paper's layers",
                              description=_description())
    _add_arguments(p)
    p.set_defaults(func=_run)
    return p


def main(argv=None) -> int:
    """``python -m blconv.bench [options]``: the ``bench`` sub-command on its own.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0, or 2 for bad options (argparse exits with 2 itself for those
        it checks).
    """
    p = _add_arguments(argparse.ArgumentParser(prog="blconv bench",
                                               description=_description()))
    return _run(p.parse_args(sys.argv[1:] if argv is None else argv))

