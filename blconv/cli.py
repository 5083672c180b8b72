"""Command line: ``python -m blconv <command>`` (also the ``blconv`` script)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]


def _demo(args) -> int:
    """One realistic layer at several compress rates: error, time, bytes kept."""
    from . import conv2d_backward, conv2d_forward, reference
    rng = np.random.default_rng(args.seed)
    n, c, h = args.batch, args.channels, args.size
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    exact = reference.correlate(x.astype(np.float64), w.astype(np.float64), padding=1)
    dy = rng.standard_normal(exact.shape).astype(np.float32)
    print(f"blconv demo: conv2d, batch {n}, {c}->{c} channels, {h}x{h}, 3x3, padding 1, float32")
    print(f"{'compress_rate':>13} {'effective':>9} {'rel. error':>10} {'fwd+bwd ms':>10} "
          f"{'ctx bytes':>10}")
    for rate in args.rates:
        times = []
        for _ in range(args.repeats + 1):
            t0 = time.perf_counter()
            y, ctx = conv2d_forward(x, w, padding=1, compress_rate=rate)
            conv2d_backward(dy, ctx)
            times.append(time.perf_counter() - t0)
        err = np.linalg.norm(y - exact) / np.linalg.norm(exact)
        print(f"{rate:13.2f} {ctx.band.effective_rate:9.3f} {err:10.2e} "
              f"{1e3 * np.median(times[1:]):10.1f} {ctx.nbytes:10d}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blconv", description=__doc__)
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="error, time and memory of one layer per compress rate")
    d.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    d.add_argument("--channels", type=int, default=64, help="channels in and out (default 64)")
    d.add_argument("--size", type=int, default=32, help="image height and width (default 32)")
    d.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75],
                   help="compress rates to run (default 0 0.25 0.5 0.75)")
    d.add_argument("--repeats", type=int, default=3, help="timed repeats after a warm-up")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        args = parser.parse_args(["demo"])
    return args.func(args)
