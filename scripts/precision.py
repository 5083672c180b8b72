"""The precision of both sides: blconv and PyTorch's convolution against float64.

For one ResNet layer (64 -> 64 channels, 3x3, 32x32, batch 32, padding 1) in float32,
the norm-wise relative error of ``y``, ``dx`` and ``dw`` against the same computation
in float64 on the host: blconv at compress rate 0 (exact correlation) as it is and
under :func:`blconv.tf32`, and ``torch.nn.functional.conv2d`` at PyTorch's defaults
(on CUDA its cuDNN convolutions may use TF32: ``torch.backends.cudnn.allow_tf32``) and
with TF32 off.  On the CPU (``--device cpu``) the TF32 rows equal the plain ones.

Usage: python scripts/precision.py [--device gpu|cpu] [--json PATH]
"""
import argparse
import json

import numpy as np

import blconv


def _err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 32, 32))
    w = rng.standard_normal((64, 64, 3, 3)) / 24.0
    dy = rng.standard_normal((32, 64, 32, 32))
    y64, ctx = blconv.conv2d_forward(x, w, padding=1)               # float64, host
    want = (y64,) + blconv.conv2d_backward(dy, ctx)[:2]
    rows = {}
    if args.device == "gpu":
        import cupy as xp
    else:
        xp = np
    xs, ws, dys = (xp.asarray(a.astype(np.float32)) for a in (x, w, dy))
    for name, tf32 in (("blconv float32", False), ("blconv tf32", True)):
        with blconv.tf32(tf32):
            y, c = blconv.conv2d_forward(xs, ws, padding=1)
            dx, dw, _ = blconv.conv2d_backward(dys, c)
        rows[name] = [_err(blconv.to_numpy(a), b) for a, b in zip((y, dx, dw), want)]
    try:
        import torch
        dev = "cuda" if args.device == "gpu" else "cpu"
        default = torch.backends.cudnn.allow_tf32
        for allow in (default, False) if default else (default,):
            torch.backends.cudnn.allow_tf32 = allow
            try:
                xt = torch.tensor(x, dtype=torch.float32, device=dev, requires_grad=True)
                wt = torch.tensor(w, dtype=torch.float32, device=dev, requires_grad=True)
                yt = torch.nn.functional.conv2d(xt, wt, padding=1)
                yt.backward(torch.tensor(dy, dtype=torch.float32, device=dev))
                got = [t.detach().cpu().numpy() for t in (yt, xt.grad, wt.grad)]
            finally:
                torch.backends.cudnn.allow_tf32 = default
            name = f"torch, cudnn.allow_tf32={allow}" + (" (default)" if allow == default else "")
            rows[name] = [_err(a, b) for a, b in zip(got, want)]
    except ImportError:
        pass
    print(f"norm-wise relative error against float64, resnet64 layer, batch 32, {args.device}")
    print(f"{'':<44}{'y':>10}{'dx':>10}{'dw':>10}")
    for name, errs in rows.items():
        print(f"{name:<44}" + "".join(f"{e:>10.2e}" for e in errs))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"device": args.device, "errors": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
