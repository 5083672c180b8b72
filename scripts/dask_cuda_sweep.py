"""A sweep on a dask-cuda cluster (one worker per GPU) with ``device="gpu"``.

What ``docs/cluster.md`` describes, as a script: ``python scripts/dask_cuda_sweep.py OUT``.
``python scripts/dask_cuda_sweep.py OUT cpu`` checks the script on a CPU cluster.
It also runs the same sweep in-process on the GPU and reports whether the records agree.
"""
import json
import sys
import time

import blconv


def main(out, device="gpu"):
    from distributed import Client, LocalCluster
    if device == "gpu":
        try:
            from dask_cuda import LocalCUDACluster as Cluster
        except ImportError:
            print("dask_cuda_sweep: skipped: dask-cuda is not installed (pip install dask-cuda)")
            return
    else:                               # a check of this script where there is no GPU
        def Cluster(**kw):
            return LocalCluster(n_workers=1, threads_per_worker=1, **kw)

    spec = dict(datasets=["GunPoint"], rates=[0, 0.5], seeds=[0], epochs=5, device=device)
    t0 = time.perf_counter()
    with Cluster(dashboard_address=None) as cluster, Client(cluster) as client:
        print("cluster:", len(client.scheduler_info()["workers"]), "worker(s)",
              [w.get("name") for w in client.scheduler_info()["workers"].values()])
        on_cluster = blconv.sweep(spec, client=client, out_dir=f"{out}/cluster", progress=False)
    t1 = time.perf_counter()
    here = blconv.sweep(spec, out_dir=f"{out}/here", progress=False)
    t2 = time.perf_counter()

    def key(r):
        return (r["train_compress_rate"], r["test_compress_rate"])

    a = {key(r): r["test_accuracy"] for r in on_cluster}
    b = {key(r): r["test_accuracy"] for r in here}
    print(json.dumps({"cluster_s": round(t1 - t0, 1), "in_process_s": round(t2 - t1, 1),
                      "records": len(a), "failures": len(on_cluster.failures),
                      "same_accuracies": a == b,
                      "accuracy": {f"{k[0]}->{k[1]}": v for k, v in sorted(a.items())}},
                     indent=1))
    return 0 if a == b and a and not on_cluster.failures else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
