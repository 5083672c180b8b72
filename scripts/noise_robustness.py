"""Test accuracy under additive Gaussian input noise, for models trained at several rates.

The experiment of notebook 05_robustness.ipynb at full size: for each dataset, models
trained at compress rates 0, 0.5 and 0.85 (3 seeds) are tested, at their own rate, on the
test set plus sigma * N(0, 1) noise (the inputs are normalised: z-normalised series,
digits scaled to [0, 1]); one fixed noise draw per dataset, the same for every model.
Writes a JSON list of records (dataset, model, seed, noise_sigma, train_compress_rate,
test_compress_rate, test_accuracy) for blconv.viz.plot_noise_robustness.

Usage: python scripts/noise_robustness.py OUT.json [DATASET ...]
(default digits GunPoint ItalyPowerDemand)
"""
import json
import sys
import time

import numpy as np

from blconv.data import load_dataset
from blconv.models import cnn2d, fcn1d
from blconv.optim import SGD, CosineLR
from blconv.train import evaluate, fit

RATES = [0.0, 0.5, 0.85]
SEEDS = [0, 1, 2]
SIGMAS = [0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
SETTINGS = {   # dataset: (model, width, epochs, batch size) -- the recipes of docs/results.md
    "digits": ("cnn2d", 32, 30, 32),
    "GunPoint": ("fcn1d", 128, 100, 8),
    "ItalyPowerDemand": ("fcn1d", 128, 100, 8),
}


def build(model_name, n_classes, width, rate, seed):
    if model_name == "cnn2d":
        return cnn2d(1, n_classes, width=width, compress_rate=rate, seed=seed)
    return fcn1d(1, n_classes, channels=(width, 2 * width, width), compress_rate=rate,
                 seed=seed)


def main(out, datasets):
    records = []
    for name in datasets:
        model_name, width, epochs, batch = SETTINGS[name]
        train, test = load_dataset(name)
        noise = np.random.default_rng(1234).standard_normal(test.x.shape)
        noisy = [test.replace(x=test.x + s * noise) for s in SIGMAS]
        for rate in RATES:
            for seed in SEEDS:
                t0 = time.perf_counter()
                model = build(model_name, train.n_classes, width, rate, seed)
                opt = SGD(model, lr=0.01, momentum=0.9, weight_decay=5e-4)
                fit(model, train, epochs=epochs, batch_size=batch, optimizer=opt,
                    scheduler=CosineLR(opt, t_max=epochs), seed=seed, progress=False)
                accs = [evaluate(model, data)["accuracy"] for data in noisy]
                records += [dict(dataset=name, model=model_name, seed=seed, noise_sigma=s,
                                 train_compress_rate=rate, test_compress_rate=rate,
                                 test_accuracy=a) for s, a in zip(SIGMAS, accs)]
                shown = ", ".join(f"{s:g}: {100 * a:.0f}" for s, a in zip(SIGMAS, accs))
                print(f"{name} rate {rate:.2f} seed {seed} ({time.perf_counter() - t0:.0f} s): "
                      f"accuracy % at sigma {shown}", flush=True)
                with open(out, "w", encoding="utf-8") as f:
                    json.dump(records, f, indent=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or list(SETTINGS))
