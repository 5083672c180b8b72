"""Where and with what the benchmark ran: machine, versions, git revision, load."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys

import numpy as np
import scipy
import threadpoolctl

from .. import __version__

__all__ = ["loadavg", "machine_info", "usable_cores"]


#: Environment variables that change how fast the thread pools run, recorded when set:
#: the BLAS kernel and cache size, thread counts, and how long idle OpenMP (PyTorch's)
#: and OpenBLAS workers spin before sleeping (docs/pytorch.md, "Speed on a CPU").
ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
       "MKL_NUM_THREADS", "BLCONV_FFT_WORKERS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
       "OPENBLAS_THREAD_TIMEOUT")


def machine_info(*, device="cpu", threads=None):
    """Where and with what the benchmark ran: a JSON-ready dict.

    Parameters
    ----------
    device : {'cpu', 'gpu'}
    threads : int, optional
        Threads given to the methods (recorded as is).

    Returns
    -------
    dict
        CPU model, core counts, Python/NumPy/SciPy/PyTorch/CuPy versions, the git
        revision of blconv (``+dirty`` with uncommitted changes), BLAS and
        thread pools (from threadpoolctl), BLAS-related environment variables,
        the GPU name when ``device='gpu'``, and the UTC date.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(),
            "cores_usable": usable_cores(),
            "threads": threads, "platform": platform.platform(),
            "python": platform.python_version(), "blconv": __version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "torch": None, "cupy": None,
            "env": {k: os.environ[k] for k in ENV if k in os.environ},
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    info["git"] = _git_revision()
    for mod in ("torch", "cupy"):
        if mod in sys.modules:
            info[mod] = getattr(sys.modules[mod], "__version__", "?")
    info["blas"] = [{k: p.get(k) for k in ("user_api", "internal_api", "version",
                                            "num_threads", "architecture", "filepath")}
                    for p in threadpoolctl.threadpool_info()]
    if device == "gpu" and "cupy" in sys.modules:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return info


def _git_revision():
    """``<commit>`` or ``<commit>+dirty`` of a git checkout holding blconv, else None."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))    # blconv/
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", here],
                               capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def loadavg():
    """1-minute load average (other processes compete for the cores), or None."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def usable_cores():
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
