"""Accuracy against effective compression: fixed rates and the energy policy, per-batch and
calibrated bands, one panel per dataset (docs/_static/energy_vs_rates.png).

Usage: python scripts/plot_energy_vs_rates.py OUT.png RECORDS.json [RECORDS.json ...]
"""
import collections
import json
import sys

import numpy as np
from matplotlib.figure import Figure

out, paths = sys.argv[1], sys.argv[2:]
recs = [r for p in paths for r in json.load(open(p, encoding="utf-8"))]
fig = Figure(figsize=(13, 3.9), layout="constrained")
axs = fig.subplots(1, 3)
for ax, d in zip(axs, ["GunPoint","ItalyPowerDemand","digits"]):
    fixed=collections.defaultdict(list); energy=collections.defaultdict(list)
    for r in recs:
        if r['dataset']!=d: continue
        if r['train_preserve_energy'] is None and r['test_compress_rate']==r['train_compress_rate']:
            fixed[r['train_compress_rate']].append((r['effective_rate'], r['test_accuracy']))
        elif r['train_preserve_energy'] is not None and r['test_compress_rate']==0.0:
            energy[r['train_preserve_energy']].append((r['effective_rate'], r['test_accuracy'],
                                                       r['calibrated_effective_rate'], r['calibrated_accuracy']))
    f=np.array([np.mean(fixed[c],0) for c in sorted(fixed)]); fs=np.array([np.std(fixed[c],0,ddof=1) for c in sorted(fixed)])
    ax.errorbar(f[:,0], 100*f[:,1], yerr=100*fs[:,1], marker='o', label='fixed rate 0, 0.25, 0.5, 0.75', capsize=3)
    for E in sorted(energy):
        a=np.array(energy[E]); m=a.mean(0); s=a.std(0,ddof=1)
        ax.errorbar(m[0], 100*m[1], yerr=100*s[1], marker='s', ls='none', capsize=3, color='C1',
                    label='energy, per-batch band' if E==min(energy) else None)
        ax.plot(m[2], 100*m[3], marker='s', mfc='none', ms=11, color='C2', ls='none',
                label='energy, calibrated band' if E==min(energy) else None)
        ax.annotate(f"E={E:g}", (m[0], 100*m[1]), xytext=(4, -12), textcoords='offset points', fontsize='x-small')
    ax.set_xlabel('effective compression (mean over layers)'); ax.set_ylabel('test accuracy (%)')
    ax.set_title(f"{d}, 3 seeds", fontsize='medium'); ax.grid(alpha=0.3); ax.legend(fontsize='x-small', loc='lower left')
fig.savefig(out, dpi=90)
