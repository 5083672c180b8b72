"""Time blconv's band-limited transposed convolution against PyTorch's, on the CPU.

Forward+backward (the input's, the filters' and the bias's gradients) of the upsampling
layers of a DCGAN generator and a U-Net decoder, float32: ``blconv.conv_transpose2d_forward``
/ ``_backward`` on NumPy arrays at compress rates 0, 0.5 and 0.75, and
``torch.nn.functional.conv_transpose2d`` with autograd, in one process, interleaved
round by round; medians of the rounds, and each blconv time over torch's::

    OMP_WAIT_POLICY=PASSIVE python scripts/transpose_bench.py --json docs/results/transpose_cpu.json

Needs PyTorch (``pip install torch``).  The machine (CPU, libraries, thread counts and
the environment that changes them) is recorded in the JSON.
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch

import blconv
from blconv.bench.machine import machine_info

# name: (C_in, C_out, input size, kernel, stride, padding); batch from --batch
LAYERS = {
    "dcgan-8to16": (256, 128, 8, 4, 2, 1),
    "dcgan-16to32": (128, 64, 16, 4, 2, 1),
    "unet-16to32": (128, 64, 16, 2, 2, 0),
    "unet-32to64": (64, 32, 32, 2, 2, 0),
}
RATES = (0.0, 0.5, 0.75)


def _blconv_step(x, w, b, s, p, rate):
    z = blconv.conv_transpose2d(x, w, b, stride=s, padding=p)
    dz = np.random.default_rng(1).standard_normal(z.shape).astype(np.float32)

    def run():
        _, ctx = blconv.conv_transpose2d_forward(x, w, b, stride=s, padding=p,
                                                 compress_rate=rate)
        blconv.conv_transpose2d_backward(dz, ctx)
    return run


def _torch_step(x, w, b, s, p):
    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    dz = torch.randn(torch.nn.functional.conv_transpose2d(xt, wt, bt, stride=s,
                                                          padding=p).shape)

    def run():
        z = torch.nn.functional.conv_transpose2d(xt, wt, bt, stride=s, padding=p)
        torch.autograd.grad(z, (xt, wt, bt), dz)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2, help="torch's and blconv's FFT threads")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    blconv.set_fft_workers(args.threads)
    rng = np.random.default_rng(0)
    records = []
    for name in args.layers:
        ci, co, n, k, s, p = LAYERS[name]
        x = rng.standard_normal((args.batch, ci, n, n)).astype(np.float32)
        w = (rng.standard_normal((ci, co, k, k)) / np.sqrt(ci * k * k)).astype(np.float32)
        b = np.zeros(co, np.float32)
        steps = {f"blconv c={r}": _blconv_step(x, w, b, s, p, r) for r in RATES}
        steps["torch"] = _torch_step(x, w, b, s, p)
        times = {m: [] for m in steps}
        for fn in steps.values():                 # warm-up: caches, plans, thread pools
            fn()
        for _ in range(args.rounds):
            for m, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                times[m].append(time.perf_counter() - t0)
        med = {m: statistics.median(t) for m, t in times.items()}
        out = (n - 1) * s - 2 * p + k
        print(f"{name}: {ci}->{co}, {n}x{n} -> {out}x{out}, k{k} s{s} p{p}, batch {args.batch}")
        for m, t in med.items():
            ratio = "" if m == "torch" else f"  {t / med['torch']:.2f}x torch"
            print(f"  {m:13s} {1e3 * t:8.2f} ms{ratio}")
        records.append(dict(layer=name, c_in=ci, c_out=co, size=n, kernel=k, stride=s,
                            padding=p, batch=args.batch, rounds=args.rounds,
                            median_s=med, times_s=times))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine_info(threads=args.threads), records=records), f,
                      indent=1)


if __name__ == "__main__":
    main()
