"""How much of a layer's forward+backward its per-frequency channel products take, beside PyTorch.

The per-frequency route (``blconv._channels``) multiplies, at each retained frequency,
an ``(N x C_in)`` slice of the input's spectrum by a ``(C_in x C_out)`` slice of the
filters' (complex GEMMs; the filters' slices are made per block of frequencies), once
in the forward and twice in the backward.  This script times, for each layer and rate,
forward+backward through blconv (the route it picks, and the per-frequency route
forced) and the part of it spent in those products and the filter slices, with
``torch.nn.functional.conv{1,2}d`` beside them, and prints each against the issue's
target ratio to torch.  When the products alone exceed the target's time, no change to
the transforms or layouts can meet it on this BLAS.

Each configuration sleeps ``--pause`` seconds before an untimed call and its timed call,
so that the threads a method leaves spinning (OpenBLAS's after NumPy's GEMMs, OpenMP's
after torch's) do not slow the next method; the figures are the fastest of ``--repeats``
interleaved rounds::

    python scripts/channel_floor.py --layers resnet64 resnet128 fcn2 fcn3 --repeats 11

Needs PyTorch (``pip install torch``).
"""
import argparse
import json
import time
import warnings
from dataclasses import replace

from blconv import _channels, _taps, settings
from blconv.bench.configs import blconv_configs, torch_config
from blconv.bench.layers import LAYERS
from blconv.bench.machine import usable_cores
from blconv.bench.measure import _inputs

#: Target ratios to torch's forward+backward: (c = 0, c = 0.5).
TARGETS = {"resnet128": (0.60, 0.30)}
DEFAULT_TARGET = (0.85, 0.45)


class _Clock:
    """Seconds spent inside the wrapped functions since the last reset."""

    def __init__(self):
        self.spent = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - t0
        return timed


def _instrument(clock):
    """Count the channel products and the filter slices (``Filters`` builds and blocks)."""
    for name in ("forward", "backward", "dw"):
        setattr(_channels, name, clock.wrap(getattr(_channels, name)))
    _channels.Filters.__init__ = clock.wrap(_channels.Filters.__init__)
    taps_use = _taps.use
    route = {"taps": True}
    _taps.use = lambda **kw: route["taps"] and taps_use(**kw)
    return route


def _configs(layer, rates, route, threads):
    """``(route, rate, forward_backward)``: the benchmark's torch configuration, then
    blconv's at each rate, on the 1D layers with the route it picks and forced."""
    data = _inputs(layer, 0)
    configs = [("torch", None, torch_config(layer, data, gpu=False, repeats=1,
                                            threads=threads).forward_backward)]
    routes = ("picked", "per-frequency") if layer.dim == 1 else ("per-frequency",)
    for cfg in blconv_configs(layer, data, rates, gpu=False, repeats=1):
        for r in routes:
            def run(fwd_bwd=cfg.forward_backward, taps=r == "picked"):
                route["taps"] = taps
                fwd_bwd()
            configs.append((r, cfg.rate, run))
    return configs


def _layer(name, args, clock, route):
    """Time one layer's configurations, print them and return their records."""
    out = []
    layer = LAYERS[name] if args.batch is None else replace(LAYERS[name], batch=args.batch)
    configs = _configs(layer, args.rates, route, args.threads)
    total = {key[:2]: [] for key in configs}
    products = {key[:2]: [] for key in configs}
    for _ in range(args.repeats):
        for method, rate, run in configs:
            time.sleep(args.pause)
            run()
            clock.spent = 0.0
            t0 = time.perf_counter()
            run()
            total[method, rate].append(time.perf_counter() - t0)
            products[method, rate].append(clock.spent)
    t_torch = min(total["torch", None])
    print(f"{name}: torch {1e3 * t_torch:.1f} ms (fastest of {args.repeats})")
    for (method, rate), times in total.items():
        if method == "torch":
            continue
        target = TARGETS.get(name, DEFAULT_TARGET)[0 if rate == 0 else 1]
        t, ch = min(times), min(products[method, rate])
        part = (f"channel products {1e3 * ch:5.1f} ms = {ch / t_torch:.2f}x torch" if ch
                else "the taps route")
        print(f"  {method:13s} c={rate:.2f}: {1e3 * t:6.1f} ms = {t / t_torch:.2f}x torch;"
              f" {part} (target {target:.2f}x = {1e3 * target * t_torch:.1f} ms)")
        out.append({"layer": name, "route": method, "rate": rate, "ms": 1e3 * t,
                    "channel_products_ms": 1e3 * ch if ch else None,
                    "torch_ms": 1e3 * t_torch, "target_ratio": target})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", nargs="+", default=["resnet64", "resnet128", "fcn2", "fcn3"],
                   choices=sorted(LAYERS))
    p.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.5])
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--pause", type=float, default=0.25)
    p.add_argument("--batch", type=int, help="override every layer's batch size")
    p.add_argument("--threads", type=int, default=usable_cores(),
                   help="threads for torch and blconv's FFTs (default: usable cores)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    warnings.filterwarnings("ignore", message="Using padding='same'")
    clock = _Clock()
    route = _instrument(clock)
    out = []
    with settings.fft_workers(args.threads):
        for name in args.layers:
            out += _layer(name, args, clock, route)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "records": out}, f, indent=1)


if __name__ == "__main__":
    main()
