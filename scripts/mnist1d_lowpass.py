"""Is MNIST-1D's loss under band-limiting a loss of information in the input band?

Trains the full-spectrum fcn1d (the recipe of docs/results.md's MNIST-1D sweep: Adam,
20 epochs, batch 64, width 32) on MNIST-1D whose series were low-passed to the band the
first layer keeps at a compress rate (same FFT size, same kept frequencies), and tests
it on equally low-passed test series.  If that model does as badly as the band-limited
one, the information is gone from the input band itself; if it does as well as the
full-spectrum model, the loss comes from band-limiting the hidden layers.

Usage: python scripts/mnist1d_lowpass.py [RATE ...]   (default 0.5 0.75; seeds 0 1 2)
"""
import json
import sys

import numpy as np

import blconv
from blconv import runs
from blconv import train as T


def lowpass(x, rate):
    """``x`` restricted to the frequencies the first layer keeps at ``rate`` ("same", k=8)."""
    band = blconv.band_for(x.shape, (1, x.shape[1], 8), padding="same", compress_rate=rate)
    n, k = band.fft_shape[0], band.keep[0]
    spectrum = np.fft.rfft(x, n=n, axis=-1)
    spectrum[..., k:] = 0
    return np.fft.irfft(spectrum, n=n, axis=-1)[..., :x.shape[-1]]


def main(rates):
    out = []
    for rate in rates:
        for seed in (0, 1, 2):
            run = runs.Run(dataset="mnist1d", optimizer="adam", epochs=20, batch_size=64,
                           width=32, seed=seed, test_rates=(0.0,))
            tr, te, _, model, opt, sched = runs.prepare(run)
            tr, te = tr.replace(x=lowpass(tr.x, rate)), te.replace(x=lowpass(te.x, rate))
            T.fit(model, tr, epochs=run.epochs, batch_size=run.batch_size, optimizer=opt,
                  scheduler=sched, seed=seed, progress=False, monitor="loss")
            acc = T.evaluate(model, te)["accuracy"]
            out.append({"lowpass_rate": rate, "seed": seed, "test_accuracy": acc})
            print(f"low-pass to the c={rate} band, seed {seed}: {100 * acc:.1f}%", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [0.5, 0.75])
