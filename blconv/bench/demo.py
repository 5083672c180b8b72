"""``blconv demo``: one realistic layer at several compress rates, in seconds.

Prints, per compress rate, the effective compression, the error against the exact
(spatial, float64) correlation, the forward+backward time and the bytes kept for the
backward: what the band buys and what it costs, on a smooth image-like input.
"""
from __future__ import annotations

import time

import numpy as np

from .. import reference
from .._argtypes import compress_rate, positive_int
from ..conv import conv2d_backward, conv2d_forward

__all__ = ["add_parser", "run"]


def run(args) -> int:
    """One realistic layer at several compress rates: error, time, bytes kept."""
    rng = np.random.default_rng(args.seed)
    n, c, h = args.batch, args.channels, args.size
    # a smooth image-like input: white noise low-passed by a 5x5 box, plus a little noise
    noise = rng.standard_normal((n, c, h + 4, h + 4))
    k = np.ones(5) / 5
    smooth = np.apply_along_axis(lambda r: np.convolve(r, k, "valid"), -1, noise)
    smooth = np.apply_along_axis(lambda r: np.convolve(r, k, "valid"), -2, smooth)
    x = (smooth + 0.05 * rng.standard_normal(smooth.shape)).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    exact = reference.correlate(x.astype(np.float64), w.astype(np.float64), padding=1)
    dy = rng.standard_normal(exact.shape).astype(np.float32)
    print(f"blconv demo: conv2d, batch {n}, {c}->{c} channels, {h}x{h}, 3x3, padding 1, "
          f"float32, smooth random input")
    print(f"{'compress_rate':>13} {'effective':>9} {'rel. error':>10} {'fwd+bwd ms':>10} "
          f"{'ctx MB':>8}")
    for rate in args.rates:
        times = []
        for _ in range(args.repeats + 1):
            t0 = time.perf_counter()
            y, ctx = conv2d_forward(x, w, padding=1, compress_rate=rate)
            conv2d_backward(dy, ctx)
            times.append(time.perf_counter() - t0)
        err = np.linalg.norm(y - exact) / np.linalg.norm(exact)
        print(f"{rate:13.2f} {ctx.band.effective_rate:9.3f} {err:10.2e} "
              f"{1e3 * np.median(times[1:]):10.1f} {ctx.nbytes / 2**20:8.2f}")
    return 0


def add_parser(subparsers):
    """Register the ``demo`` sub-command on an ``argparse`` sub-parsers object."""
    d = subparsers.add_parser("demo", help="error, time and memory of one layer per compress rate")
    d.add_argument("--batch", type=positive_int, default=32, help="batch size (default 32)")
    d.add_argument("--channels", type=positive_int, default=64, help="channels in and out")
    d.add_argument("--size", type=positive_int, default=32, help="image height and width")
    d.add_argument("--rates", type=compress_rate, nargs="+", default=[0.0, 0.25, 0.5, 0.75],
                   help="compress rates (default 0 0.25 0.5 0.75)")
    d.add_argument("--repeats", type=positive_int, default=3, help="timed repeats after a warm-up")
    d.add_argument("--seed", type=int, default=0, help="seed of the random layer")
    d.set_defaults(func=run)
    return d
