"""The records of a run, its compression ratios and ratios to torch, and their text."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["format_table", "format_targets", "layer_records", "target_ratios"]

_MB = 1e6


def layer_records(layer, configs, device):
    def med(ts):
        return 1e3 * float(np.median(ts))
    spatial = 4 * (math.prod(layer.x_shape) + math.prod(layer.w_shape))     # float32 data
    # each blconv method against itself at c = 0 (the peers against eager blconv's)
    bases = {c.method: c for c in configs if c.rate == 0.0}
    torch_cfg = next((c for c in configs if c.method == "torch"), None)
    out = []
    for c in configs:
        fb = med(c.fwdbwd_s)
        base = bases.get(c.method, bases.get("blconv"))
        out.append({
            "layer": layer.name, "dim": layer.dim, "batch": layer.batch, "c_in": layer.c_in,
            "c_out": layer.c_out, "size": layer.size, "kernel": layer.kernel,
            "stride": layer.stride, "padding": layer.padding, "bias": layer.bias,
            "device": device,
            "method": c.method, "rate": c.rate, "effective_rate": c.effective_rate,
            "repeats": len(c.fwdbwd_s), "fwd_ms": med(c.fwd_s), "fwdbwd_ms": fb,
            "fwd_ms_min": 1e3 * min(c.fwd_s), "fwdbwd_ms_min": 1e3 * min(c.fwdbwd_s),
            "fwd_ms_all": [1e3 * t for t in c.fwd_s],
            "fwdbwd_ms_all": [1e3 * t for t in c.fwdbwd_s],
            "ratio_blconv0": fb / med(base.fwdbwd_s) if base else None,
            "ratio_torch": fb / med(torch_cfg.fwdbwd_s) if torch_cfg else None,
            "nbytes": c.nbytes, "spatial_bytes": spatial, "peak_bytes": c.peak_bytes})
    return out


def target_ratios(records):
    """The ``targets`` of :func:`run_benchmark`: compression ratios and ratios to torch.

    Per layer, from the records: blconv's forward+backward time at c = 0.5 and 0.75
    over c = 0 (does the cost follow the retained coefficients?), its ``ctx.nbytes``
    at c = 0.5 over c = 0 and at c = 0.5 and 0 over the bytes of ``x`` and ``w`` (what
    a spatial convolution keeps for its backward, float32), and, where torch ran,
    blconv's time at c = 0.5 and 0 over torch's.  Time ratios come from the medians
    (``value``) and from the fastest repeats (``value_min``).  A ratio whose runs are
    missing is left out, or None where only its denominator is.
    """
    def rec(layer, method, rate=None):
        return next((r for r in records if r["layer"] == layer and r["method"] == method
                     and r["rate"] == rate), None)

    def ratio(a, b, key):
        return a[key] / b[key] if a and b and b[key] else None

    def timed(layer, what, a, b):
        return {"layer": layer, "what": what, "value": ratio(a, b, "fwdbwd_ms"),
                "value_min": ratio(a, b, "fwdbwd_ms_min")}

    out = []
    for layer in dict.fromkeys(r["layer"] for r in records):
        half, full = rec(layer, "blconv", 0.5), rec(layer, "blconv", 0.0)
        quarter, tch = rec(layer, "blconv", 0.75), rec(layer, "torch")
        out.append(timed(layer, "blconv fwd+bwd, c=0.5 / c=0", half, full))
        if quarter:
            out.append(timed(layer, "blconv fwd+bwd, c=0.75 / c=0", quarter, full))
        for method, name in (("blconv-graphs", "graphs"), ("blconv-tf32", "tf32")):
            g_half, g_full = rec(layer, method, 0.5), rec(layer, method, 0.0)
            if g_half or g_full:
                out.append(timed(layer, f"{name} fwd+bwd, c=0.5 / c=0", g_half, g_full))
                out.append(timed(layer, f"{name}(c=0.5) / eager(c=0.5), fwd+bwd", g_half,
                                 half))
                if tch:
                    out.append(timed(layer, f"{name}(c=0.5) / torch, fwd+bwd", g_half, tch))
        out.append({"layer": layer, "what": "ctx.nbytes, c=0.5 / c=0",
                    "value": ratio(half, full, "nbytes")})
        for r, name in ((half, "c=0.5"), (full, "c=0")):
            if r:
                out.append({"layer": layer, "what": f"ctx.nbytes, {name} / (x + w)",
                            "value": r["nbytes"] / r["spatial_bytes"]})
        if tch:
            out.append(timed(layer, "blconv(c=0.5) / torch, fwd+bwd", half, tch))
            out.append(timed(layer, "blconv(c=0) / torch, fwd+bwd", full, tch))
    return out


def _f(v, fmt, none="-"):
    return none if v is None else format(v, fmt)


def format_table(result):
    """The records of :func:`run_benchmark` as a fixed-width text table.

    Examples
    --------
    >>> print(format_table({"records": []}).splitlines()[0].split()[:3])
    ['layer', 'method', 'rate']
    """
    head = (f"{'layer':<13}{'method':<14}{'rate':>5}{'eff':>7}{'n':>3}{'fwd ms':>10}"
            f"{'fwd+bwd ms':>12}{'x blc0':>8}{'x torch':>8}{'ctx MB':>9}{'peak MB':>9}")
    lines = [head, "-" * len(head)]
    for r in result["records"]:
        lines.append(
            f"{r['layer']:<13}{r['method']:<14}{_f(r['rate'], '5.2f'):>5}"
            f"{_f(r['effective_rate'], '7.3f'):>7}{r['repeats']:>3}{r['fwd_ms']:>10.2f}"
            f"{r['fwdbwd_ms']:>12.2f}{_f(r['ratio_blconv0'], '8.2f'):>8}"
            f"{_f(r['ratio_torch'], '8.2f'):>8}"
            f"{_f(None if r['nbytes'] is None else r['nbytes'] / _MB, '9.2f'):>9}"
            f"{_f(None if r['peak_bytes'] is None else r['peak_bytes'] / _MB, '9.1f'):>9}")
    return "\n".join(lines)


def format_targets(result):
    """The ``targets`` of :func:`run_benchmark` (compression ratios and ratios to torch) as text.

    Time ratios are shown from the medians and, in brackets, from the fastest
    repeats (less sensitive to other processes on the machine).
    """
    lines = ["compression ratios and ratios to torch "
             "(lower is better; times: medians [fastest repeats]):"]
    for t in result["targets"]:
        extra = f" [{_f(t['value_min'], '.3f', 'n/a')}]" if "value_min" in t else ""
        lines.append(f"  {t['layer']:<13}{t['what']:<40}{_f(t['value'], '.3f', 'n/a')}{extra}")
    return "\n".join(lines)

