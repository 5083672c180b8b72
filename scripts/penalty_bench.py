"""Time a WGAN-GP critic step with band-limited convolutions against PyTorch's, on the CPU.

The critic is DCGAN's discriminator for 32x32 images (three 4x4 stride-2 convolutions,
3->64->128->256, LeakyReLU, a linear output), converted by ``blconv.torch.convert`` at
compress rates 0, 0.5 and 0.75, beside the same model in plain PyTorch.  Three steps
each, float32: the plain loss's gradients (one backward), the gradient-penalised loss of
WGAN-GP (the critic's input gradient taken with ``create_graph=True``, then the
gradients of the loss with its penalty: a second-order backward through every layer),
and the input gradient alone (an adversarial attack's step) while the weights require
gradients.
In one process, interleaved round by round; medians of the rounds, and each time over
plain PyTorch's for the same step::

    OMP_WAIT_POLICY=PASSIVE python scripts/penalty_bench.py --json docs/results/penalty_cpu.json

Needs PyTorch (``pip install torch``).  The machine (CPU, libraries, thread counts and
the environment that changes them) is recorded in the JSON.
"""
import argparse
import copy
import json
import statistics
import time

import torch
from torch import nn

import blconv
import blconv.torch as bt
from blconv.bench.machine import machine_info

RATES = (0.0, 0.5, 0.75)


def critic():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(128, 256, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Flatten(), nn.Linear(256 * 4 * 4, 1))


def steps(model, real, fake):
    """``{"loss": step, "loss+penalty": step}`` for ``model``: each computes the
    parameters' gradients of the critic's loss, without and with the gradient penalty."""
    params = list(model.parameters())
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=torch.Generator().manual_seed(1))

    def loss():
        return model(fake).mean() - model(real).mean()

    def plain():
        torch.autograd.grad(loss(), params)

    def penalised():
        mixed = (eps * real + (1 - eps) * fake).requires_grad_()
        g = torch.autograd.grad(model(mixed).sum(), mixed, create_graph=True)[0]
        penalty = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
        torch.autograd.grad(loss() + 10 * penalty, params)

    def input_gradient():                 # an attack's step: the weights require gradients
        x = real.clone().requires_grad_()
        torch.autograd.grad(model(x).sum(), x)
    return {"loss": plain, "loss+penalty": penalised, "input gradient": input_gradient}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2, help="torch's and blconv's FFT threads")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    blconv.set_fft_workers(args.threads)
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(args.batch, 3, 32, 32, generator=gen) * 2 - 1
    fake = torch.rand(args.batch, 3, 32, 32, generator=gen) * 2 - 1
    models = {"torch": critic()}
    for r in RATES:
        models[f"blconv c={r}"] = bt.convert(copy.deepcopy(models["torch"]), compress_rate=r)
    runs = {(m, s): fn for m, model in models.items()
            for s, fn in steps(model, real, fake).items()}
    for fn in runs.values():                      # warm-up: caches, plans, thread pools
        fn()
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(t) for k, t in times.items()}
    print(f"WGAN-GP critic (DCGAN discriminator, 32x32), batch {args.batch}, float32")
    for s in ("loss", "loss+penalty", "input gradient"):
        print(f"  {s}:")
        for m in models:
            t = med[(m, s)]
            ratio = "" if m == "torch" else f"  {t / med[('torch', s)]:.2f}x torch"
            print(f"    {m:13s} {1e3 * t:8.1f} ms{ratio}")
    records = [dict(model=m, step=s, batch=args.batch, rounds=args.rounds,
                    median_s=med[(m, s)], times_s=times[(m, s)]) for m, s in runs]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine_info(threads=args.threads), records=records), f,
                      indent=1)


if __name__ == "__main__":
    main()
