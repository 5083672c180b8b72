"""Train the paper's CIFAR-10 ResNet-18 in PyTorch with band-limited convolutions.

The model is plain PyTorch (the standard CIFAR variant of ResNet-18: a 3x3 stem, four
stages of two basic blocks with 64, 128, 256 and 512 channels, 11.2 M parameters);
``blconv.torch.convert(model, compress_rate=c)`` makes its twenty convolutions
band-limited, and everything else (torch's SGD with momentum 0.9 and weight decay
5e-4, a cosine learning-rate schedule from 0.1, random 4-pixel-padded crops and
horizontal flips) is ordinary PyTorch and NumPy.  The data are CIFAR-10's binary
files on disk, read by :func:`blconv.data.load_cifar10`::

    python scripts/cifar_resnet18.py --data ~/data/cifar-10-batches-bin --compress-rate 0.5
    python scripts/cifar_resnet18.py --data DIR --device cuda --epochs 200   # needs CuPy
    python scripts/cifar_resnet18.py --bench --json docs/results/torch_resnet18_cpu.json
    python scripts/cifar_resnet18.py --bench --device cuda --profile profile.txt

``--bench`` times one training step (forward, backward, SGD step) of the converted
model at compress rates 0, 0.5 and 0.75 against the same model in plain PyTorch, on
random data, and measures what each autograd graph keeps for the backward.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import blconv
import blconv.torch as bt
from blconv.bench import machine_info
from blconv.data import load_cifar10

# per-channel mean and standard deviation of CIFAR-10's training images (in [0, 1])
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)


# --- the model: plain PyTorch ----------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:                 # 1x1 projection
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 images: 3x3 stem without pooling, stages 64-128-256-512."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU())
        blocks, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def resnet18(num_classes=10):
    return ResNet18(num_classes)


# --- data --------------------------------------------------------------------------------
def augment(x, rng):
    """Random 32x32 crops of the images zero-padded by 4 pixels, each flipped with p=1/2.

    ``x``: ``(N, 3, 32, 32)`` in [0, 1]; one gather does both crop and flip.
    """
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    top, left = rng.integers(0, 9, size=(2, n))
    flip = rng.random(n) < 0.5
    cols = np.where(flip[:, None], np.arange(w)[::-1], np.arange(w)) + left[:, None]  # (N, W)
    rows = np.arange(h) + top[:, None]                                                # (N, H)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x):
    return (x - MEAN) / STD


def evaluate(model, data, device, batch_size=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(data.y), batch_size):
            x = torch.from_numpy(normalize(data.x[i:i + batch_size])).to(device)
            pred = model(x).argmax(1).cpu().numpy()
            correct += int((pred == data.y[i:i + batch_size]).sum())
    return correct / len(data.y)


def train(args):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device)
    train_set, test_set = load_cifar10(args.data)
    model = bt.convert(resnet18(), compress_rate=args.compress_rate).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                          weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(train_set.y) / args.batch_size)
    total = args.epochs * steps_per_epoch
    if args.max_steps is not None:
        total = min(total, args.max_steps)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    print(f"ResNet-18, compress rate {args.compress_rate}, {len(train_set.y)} training "
          f"images, batch {args.batch_size}, {total} steps on {device}")
    losses, steps, acc = [], 0, float("nan")
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(train_set.y))
        start, epoch_losses = time.perf_counter(), []
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            x = torch.from_numpy(normalize(augment(train_set.x[idx], rng))).to(device)
            y = torch.from_numpy(train_set.y[idx]).to(device)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            epoch_losses.append(loss.item())
            steps += 1
            if steps >= total:
                break
        losses += epoch_losses
        acc = evaluate(model, test_set, device)
        print(f"epoch {epoch + 1:3d}  loss {np.mean(epoch_losses):.4f}  test accuracy "
              f"{100 * acc:.2f}%  ({time.perf_counter() - start:.0f} s)", flush=True)
        if steps >= total:
            break
    return {"compress_rate": args.compress_rate, "steps": steps, "losses": losses,
            "test_accuracy": acc}


# --- benchmark -----------------------------------------------------------------------------
class SavedBytes:
    """Bytes of the tensors an autograd graph saves for backward, parameters excluded.

    ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor any operation
    saves: torch's own (a conv's input, batch norm's input and statistics, ReLU's
    output) and blconv's (the retained spectra).  A storage saved by several
    operations counts once; the parameters' storages are not counted (the model
    holds them anyway).
    """

    def __init__(self, model):
        self.exclude = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.storages = {}

    def _pack(self, t):
        s = t.untyped_storage()
        if s.data_ptr() not in self.exclude:
            self.storages[s.data_ptr()] = max(s.nbytes(), self.storages.get(s.data_ptr(), 0))
        return t

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hooks.__exit__(*exc)

    @property
    def total(self):
        return sum(self.storages.values())


def _conv_input_bytes(model, x):
    """Bytes of the distinct inputs of the model's convolutions (what torch's convs save).

    Each input is held until the end: under ``no_grad`` a dead activation's memory is
    reused at once, and a later input at the same address would otherwise count as the
    same storage."""
    seen = {}
    hooks = [m.register_forward_pre_hook(
        lambda m, inp: seen.__setitem__(inp[0].untyped_storage().data_ptr(), inp[0]))
        for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sum(t.untyped_storage().nbytes() for t in seen.values())


def bench(args):
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch_size, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (args.batch_size,), generator=gen).to(device)
    plain = resnet18().to(device)
    configs = {"torch": (plain, None)}
    for c in args.rates:
        configs[f"blconv c={c}"] = (bt.convert(copy.deepcopy(plain), compress_rate=c), c)
        if args.cuda_graphs:                 # the same model, its convolutions from graphs
            configs[f"blconv c={c} graphs"] = (bt.convert(copy.deepcopy(plain),
                                                          compress_rate=c), c)
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            for k, (m, _) in configs.items()}

    def step(key, timed=True):
        model, _ = configs[key]
        model.train()
        opt = opts[key]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with blconv.cuda_graphs(key.endswith(" graphs")):
            loss = F.cross_entropy(model(x), y)
        loss.backward()                      # under the forward's settings (blconv.torch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return t1 - t0, time.perf_counter() - t0

    rows = {}
    for key, (model, c) in configs.items():
        step(key)                                        # warm-up: caches, DFT matrices
        model.train()
        with SavedBytes(model) as saved:
            loss = F.cross_entropy(model(x), y)
        row = dict(compress_rate=c, graph_bytes=saved.total)
        if c is None:
            row["conv_bytes"] = _conv_input_bytes(model, x)
        else:
            row["conv_bytes"] = bt.saved_bytes(loss)
            convs = [m for m in model.modules() if isinstance(m, bt.Conv2d)]
            eff = [m.last_band.effective_rate for m in convs]
            row.update(effective_rate_min=min(eff), effective_rate_max=max(eff))
        del loss
        rows[key] = dict(row, fwd_bwd_s=[], step_s=[])
    if args.repeats < 1:
        for key, r in rows.items():
            print(key, {k: v for k, v in r.items() if not k.endswith("_s")})
        return rows
    for _ in range(args.repeats):                        # interleaved repeats
        for key in configs:
            fb, st = step(key)
            rows[key]["fwd_bwd_s"].append(fb)
            rows[key]["step_s"].append(st)
    base = rows["torch"]
    out = []
    for key, r in rows.items():
        r["fwd_bwd_median_s"] = statistics.median(r["fwd_bwd_s"])
        r["step_median_s"] = statistics.median(r["step_s"])
        r["step_vs_torch"] = r["step_median_s"] / base["step_median_s"]
        r["graph_vs_torch"] = r["graph_bytes"] / base["graph_bytes"]
        out.append(dict(model=key, **r))
    machine = machine_info(device="gpu" if device.type == "cuda" else "cpu",
                           threads=torch.get_num_threads())
    print(f"ResNet-18 (CIFAR), batch {args.batch_size}, {args.device}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}, median of {args.repeats} "
          f"interleaved repeats; {machine['cpu']}")
    print("| model | fwd+bwd s | step s | step / torch | graph MB | graph / torch | "
          "conv part MB | conv part / torch's |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        print(f"| {r['model']} | {r['fwd_bwd_median_s']:.2f} | {r['step_median_s']:.2f} | "
              f"{r['step_vs_torch']:.2f} | {r['graph_bytes'] / 1e6:.1f} | "
              f"{r['graph_vs_torch']:.2f} | {r['conv_bytes'] / 1e6:.1f} | "
              f"{r['conv_bytes'] / base['conv_bytes']:.2f} |")
    if args.profile:
        profile_steps(configs, step, args)
    record = dict(model="resnet18-cifar", batch_size=args.batch_size, device=args.device,
                  repeats=args.repeats, torch=torch.__version__, blconv=blconv.__version__,
                  numpy=np.__version__, python=platform.python_version(),
                  threads=torch.get_num_threads(), machine=platform.machine(),
                  machine_info=machine, rows=out)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
    return record


def profile_steps(configs, step, args, steps=3):
    """Where a training step's time goes: ``torch.profiler`` over ``steps`` steps of each
    model, its operators (with CUDA, the device kernels too) by total time, one
    table per model written to ``args.profile``."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    sort = "self_cpu_time_total"
    if args.device == "cuda":
        activities.append(ProfilerActivity.CUDA)
        sort = "self_cuda_time_total"
    with open(args.profile, "w", encoding="utf-8") as f:
        for key in configs:
            with profile(activities=activities) as prof:
                for _ in range(steps):
                    step(key)
            f.write(f"== {key}: {steps} steps, batch {args.batch_size}, {args.device}\n")
            f.write(prof.key_averages().table(sort_by=sort, row_limit=25) + "\n")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="CIFAR-10 binary directory (cifar-10-batches-bin or its "
                                  "parent)")
    p.add_argument("--compress-rate", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bench", action="store_true",
                   help="time a training step at --rates against plain torch instead")
    p.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.5, 0.75])
    p.add_argument("--repeats", type=int, default=5,
                   help="with --bench: timed steps per model (0: memory only)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="with --bench on cuda: also time each blconv model with its "
                        "convolutions replayed from CUDA graphs (blconv.cuda_graphs)")
    p.add_argument("--json", help="with --bench: write the measurements here")
    p.add_argument("--profile", help="with --bench: write a torch.profiler table of each "
                                     "model's steps here")
    args = p.parse_args(argv)
    if not args.bench and args.data is None:
        p.error("--data is required (unless --bench)")
    return args


def main(argv=None):
    args = parse(argv)
    return bench(args) if args.bench else train(args)


if __name__ == "__main__":
    main(sys.argv[1:])
