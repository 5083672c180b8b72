"""The first SGD steps of the default run, on NumPy and on CuPy, side by side.

``python scripts/first_steps.py [STEPS]``: fcn1d on GunPoint (float32, compress rate
0.5, seed 0), the same batches on both devices; prints each step's loss on each and
their relative difference, next to the model's own float32 sensitivity: NumPy against
NumPy with the input scaled by ``1 + 2**-23`` (one rounding).  The devices agree when
their difference is of the size of that sensitivity.
"""
import sys

import numpy as np

import blconv
from blconv.experiments import Run, prepare
from blconv.nn import cross_entropy


def losses(device, steps, scale=1.0):
    tr, _, _, model, opt, _ = prepare(Run(dataset="GunPoint", train_compress_rate=0.5,
                                          seed=0, device=device))
    xp = np if device == "cpu" else __import__("cupy")
    order = np.random.default_rng(0).permutation(len(tr.y))
    out = []
    for s in range(steps):
        idx = order[(8 * s) % len(order):][:8]
        x, y = xp.asarray(tr.x[idx] * np.float32(scale)), xp.asarray(tr.y[idx])
        model.train()
        loss, dlogits = cross_entropy(model(x), y)
        model.backward(dlogits)
        opt.step()
        out.append(float(blconv.to_numpy(loss)))
    return out


def main(steps=10):
    cpu, gpu = losses("cpu", steps), losses("gpu", steps)
    nudged = losses("cpu", steps, scale=1 + 2.0 ** -23)
    print("step  numpy loss   cupy loss    cupy vs numpy   numpy vs nudged numpy")
    for i, (a, b, c) in enumerate(zip(cpu, gpu, nudged)):
        print(f"{i:4d}  {a:.7f}   {b:.7f}   {abs(a - b) / abs(a):.1e}         "
              f"{abs(a - c) / abs(a):.1e}")
    worst = max(abs(a - b) / abs(a) for a, b in zip(cpu, gpu))
    own = max(abs(a - c) / abs(a) for a, c in zip(cpu, nudged))
    print(f"largest relative difference over {steps} steps: cupy vs numpy {worst:.1e}, "
          f"numpy vs nudged numpy {own:.1e}")
    return 0 if worst <= max(1e-4, 10 * own) else 1


if __name__ == "__main__":
    raise SystemExit(main(*(int(a) for a in sys.argv[1:])))
