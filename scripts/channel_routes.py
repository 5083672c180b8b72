"""Time the two routes of a 1D layer's channel products against each other and PyTorch.

blconv runs the channel products of a 1D band-limited correlation either per retained
frequency (complex GEMMs, ``blconv._channels``) or as real GEMMs over the filter taps
(``blconv._taps``), choosing from the shapes (taps x batch within ``MAX_TAPS_BATCH``, or
``MAX_TAPS_BATCH_ONE_THREAD`` over a one-thread BLAS).  This script forces each route in
turn and prints medians of interleaved repeats of forward+backward, with
``torch.nn.functional.conv1d`` beside them (``--length 427``: OSULeaf's series)::

    python scripts/channel_routes.py --threads 2 --layers fcn2 fcn3 --batches 8 16 32

Needs PyTorch (``pip install torch``).
"""
import argparse
import time
import warnings

import numpy as np
import threadpoolctl
import torch

import blconv
from blconv import _taps

LAYERS = {  # C_in, C_out, taps: the FCN's layers (padding "same")
    "fcn1": (1, 128, 8), "fcn2": (128, 256, 5), "fcn3": (256, 128, 3),
}


def _timer(x, w, dy, rate, max_taps_batch):
    def run():
        _taps.MAX_TAPS_BATCH = _taps.MAX_TAPS_BATCH_ONE_THREAD = max_taps_batch
        _, ctx = blconv.conv1d_forward(x, w, padding="same", compress_rate=rate)
        blconv.conv1d_backward(dy, ctx)
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    p.add_argument("--batches", nargs="+", type=int, default=[8, 16, 32])
    p.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.5, 0.75])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--length", type=int, default=150, help="the series' length (UCR: 150)")
    args = p.parse_args()
    threadpoolctl.threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Using padding='same'")
    rng = np.random.default_rng(0)
    saved = _taps.MAX_TAPS_BATCH, _taps.MAX_TAPS_BATCH_ONE_THREAD
    print("layer batch taps*batch rate: per-frequency ms, taps ms, torch ms, taps/per-frequency")
    for name in args.layers:
        c, o, k = LAYERS[name]
        length = args.length
        for n in args.batches:
            x = rng.standard_normal((n, c, length)).astype(np.float32)
            w = (rng.standard_normal((o, c, k)) / np.sqrt(c * k)).astype(np.float32)
            dy = rng.standard_normal((n, o, length)).astype(np.float32)
            xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
            dyt = torch.from_numpy(dy)

            def torch_run():
                torch.nn.functional.conv1d(xt, wt, padding="same").backward(dyt)
            for rate in args.rates:
                runs = {"freq": _timer(x, w, dy, rate, 0), "taps": _timer(x, w, dy, rate, 10**9),
                        "torch": torch_run}
                times = {key: [] for key in runs}
                for _ in range(args.repeats + 1):                 # the first round warms up
                    for key, f in runs.items():
                        t0 = time.perf_counter()
                        f()
                        times[key].append(time.perf_counter() - t0)
                med = {key: 1e3 * float(np.median(v[1:])) for key, v in times.items()}
                print(f"{name} {n:3d} {n * k:4d} {rate:.2f}: {med['freq']:7.1f} {med['taps']:7.1f} "
                      f"{med['torch']:7.1f}  {med['taps'] / med['freq']:.2f}", flush=True)
    _taps.MAX_TAPS_BATCH, _taps.MAX_TAPS_BATCH_ONE_THREAD = saved


if __name__ == "__main__":
    main()
