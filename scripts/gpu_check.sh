#!/bin/bash
# The GPU checks, in one call on a lent GPU machine (see docs/benchmarks.md):
# the GPU test suite, the GPU benchmark against torch/cuDNN, NumPy-vs-CuPy first steps,
# a CuPy training run, and a dask-cuda sweep.  Wheels that the machine lacks travel in .whl/ (carried).
# Writes its logs under $OUT (or ./gpu-out).
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
  python3 -c "import sys, numpy, scipy, cupy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'cupy', cupy.__version__, 'torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())"
} 2>&1 | tee "$OUT/env.txt"
step() { local t=$1 name=$2; shift 2; echo "== $name"; local s=$SECONDS
  timeout "$t" "$@" > "$OUT/$name.txt" 2>&1; echo "rc=$? ${name} $((SECONDS - s)) s" | tee -a "$OUT/env.txt"; }
step 180 gpu_tests python3 -m pytest -m gpu -q -p no:cacheprovider -o addopts="" tests/
tail -3 "$OUT/gpu_tests.txt"
step 130 bench_gpu python3 -m blconv bench --device gpu --repeats 30 --warmup 3 --pause 0 \
  --json "$OUT/bench_gpu.json"
tail -40 "$OUT/bench_gpu.txt"
step 60 first_steps python3 scripts/first_steps.py 10
tail -13 "$OUT/first_steps.txt"
step 110 train_gpu python3 -m blconv train --device gpu --compress-rate 0.5 --no-progress \
  --out /tmp/train_gpu
cp /tmp/train_gpu/history.json "$OUT/train_gpu_history.json" 2>/dev/null; tail -6 "$OUT/train_gpu.txt"
step 80 dask_cuda python3 scripts/dask_cuda_sweep.py /tmp/dask_cuda gpu
tail -15 "$OUT/dask_cuda.txt"
