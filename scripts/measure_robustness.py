"""Print the error figures quoted in docs/robustness.md (not a test module).

Run from the repository root::

    python scripts/measure_robustness.py

Everything is seeded; the figures depend only on the BLAS / FFT libraries.
"""
import sys
import time


def _rel(a, b):
    import numpy as np
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _max_rel(a, b):
    import numpy as np
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def scale():
    import numpy as np

    import blconv
    rng = np.random.default_rng(0)
    print("## float32 against float64 (norm-wise relative error; max-abs / max in brackets)")
    print("| case | route | y | dx | dw | seconds f64 / f32 |")
    cases = [("512x512, 2->2 ch, 3x3, same", 2, (1, 2, 512, 512), (2, 2, 3, 3),
              dict(padding="same")),
             ("512x512, 2->2 ch, 3x3, same, c=0.5", 2, (1, 2, 512, 512), (2, 2, 3, 3),
              dict(padding="same", compress_rate=0.5)),
             ("512x512, 2->2 ch, 15x15, same", 2, (1, 2, 512, 512), (2, 2, 15, 15),
              dict(padding="same")),
             ("L=10^6, 1 ch, k=1001, valid", 1, (1, 1, 10**6), (1, 1, 1001), {}),
             ("L=10^6, 1 ch, k=1001, same, c=0.5", 1, (1, 1, 10**6), (1, 1, 1001),
              dict(padding="same", compress_rate=0.5))]
    for name, d, xs, ws, kw in cases:
        fwd = blconv.conv1d_forward if d == 1 else blconv.conv2d_forward
        bwd = blconv.conv1d_backward if d == 1 else blconv.conv2d_backward
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        for route in (["matrix", "fft"] if d == 2 else ["fft"]):
            with blconv.transform(route):
                t0 = time.perf_counter()
                y64, c64 = fwd(x, w, **kw)
                dy = rng.standard_normal(y64.shape)
                g64 = bwd(dy, c64)
                t1 = time.perf_counter()
                y32, c32 = fwd(x.astype(np.float32), w.astype(np.float32), **kw)
                g32 = bwd(dy.astype(np.float32), c32)
                t2 = time.perf_counter()
            cells = [f"{_rel(a, b):.1e} [{_max_rel(a, b):.1e}]"
                     for a, b in ((y32, y64), (g32[0], g64[0]), (g32[1], g64[1]))]
            print(f"| {name} | {route} | " + " | ".join(cells) +
                  f" | {t1 - t0:.2f} / {t2 - t1:.2f} |")


def dynamic_range():
    import numpy as np

    import blconv
    from blconv import reference
    rng = np.random.default_rng(1)
    L, k = 1024, 9
    print("\n## one signal: first half ~1e6, second half ~1e-6 (L=1024, k=9, valid)")
    print("| dtype | route | rel. error, large half | rel. error, small half | "
          "max abs error, small half / max abs y |")
    x = rng.standard_normal((1, 1, L))
    x[..., :L // 2] *= 1e6
    x[..., L // 2:] *= 1e-6
    w = rng.standard_normal((1, 1, k))
    ref = reference.correlate(x, w)
    big, small = slice(0, L // 2 - k + 1), slice(L // 2, None)
    for dtype in (np.float64, np.float32):
        for route in ("matrix", "fft"):
            with blconv.transform(route):
                y = blconv.conv1d(x.astype(dtype), w.astype(dtype)).astype(np.float64)
            print(f"| {dtype.__name__} | {route} | {_rel(y[..., big], ref[..., big]):.1e} | "
                  f"{_rel(y[..., small], ref[..., small]):.1e} | "
                  f"{np.abs(y[..., small] - ref[..., small]).max() / np.abs(ref).max():.1e} |")
    exact = reference.correlate(x[..., L // 2:], w)
    print(f"spatial reference, small half vs the small half alone: "
          f"{_rel(ref[..., small], exact):.1e}")
    print("\n## the same magnitudes in separate samples / separate groups (fft route)")
    for dtype in (np.float64, np.float32):
        xs = rng.standard_normal((2, 1, L))
        xs[0] *= 1e6
        xs[1] *= 1e-6
        ys = blconv.conv1d(xs.astype(dtype), w.astype(dtype))
        rs = reference.correlate(xs, w)
        xg = rng.standard_normal((1, 2, L))
        xg[:, 0] *= 1e6
        xg[:, 1] *= 1e-6
        wg = rng.standard_normal((2, 1, k))
        yg = blconv.conv1d(xg.astype(dtype), wg.astype(dtype), groups=2)
        rg = reference.correlate(xg, wg, groups=2)
        print(f"{dtype.__name__}: samples {_rel(ys[0], rs[0]):.1e} / {_rel(ys[1], rs[1]):.1e}; "
              f"groups {_rel(yg[:, 0], rg[:, 0]):.1e} / {_rel(yg[:, 1], rg[:, 1]):.1e}")


def main() -> int:
    scale()
    dynamic_range()
    return 0


if __name__ == "__main__":
    sys.exit(main())
