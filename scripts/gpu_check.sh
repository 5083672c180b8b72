#!/bin/bash
# The GPU checks in one call, for any machine with an NVIDIA GPU:
#   the GPU test suite, the GPU benchmark against PyTorch/cuDNN (the CIFAR layers at
#   batch 32 and 128, the ImageNet stages at batch 64), one ResNet-18 training step
#   through blconv.torch against plain torch (and a torch.profiler table of each),
#   NumPy-vs-CuPy first steps, a CuPy training run and a dask-cuda sweep; each step's
#   output in its own file.
#
# Usage, from the repository root:
#   scripts/gpu_check.sh [OUT_DIR]          (default: $OUT, else ./gpu-out)
#
# Needs: Python with blconv's dependencies, CuPy for the machine's CUDA
# (pip install -e ".[gpu]"), PyTorch with CUDA for the benchmark peer, pytest, and
# dask-cuda for the last step (skipped with a message when missing).  Where packages
# cannot be installed from an index, put their wheels in a folder and set
# BLCONV_WHEELS=that/folder: they are installed into /tmp/site first.
OUT=${1:-${OUT:-gpu-out}}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -n "${BLCONV_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$BLCONV_WHEELS"/*.whl || exit 1
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
step 120 bench_gpu_b128 python3 -m blconv bench --device gpu --batch 128 --repeats 20 \
  --warmup 3 --pause 0 --layers resnet-first resnet64 resnet128 resnet256 resnet512 \
  --rates 0 0.5 0.75 --json "$OUT/bench_gpu_b128.json"
tail -25 "$OUT/bench_gpu_b128.txt"
step 120 bench_gpu_imagenet python3 -m blconv bench --device gpu --repeats 20 --warmup 3 \
  --pause 0 --layers imagenet64 imagenet128 imagenet256 imagenet512 --rates 0 0.5 0.75 \
  --json "$OUT/bench_gpu_imagenet.json"
tail -20 "$OUT/bench_gpu_imagenet.txt"
step 180 resnet18_step python3 scripts/cifar_resnet18.py --bench --device cuda \
  --batch-size 128 --rates 0 0.5 0.75 --repeats 10 --json "$OUT/resnet18_step.json" \
  --profile "$OUT/resnet18_profile.txt"
tail -12 "$OUT/resnet18_step.txt"
step 60 first_steps python3 scripts/first_steps.py 10
tail -13 "$OUT/first_steps.txt"
step 110 train_gpu python3 -m blconv train --device gpu --compress-rate 0.5 --no-progress \
  --out /tmp/train_gpu
cp /tmp/train_gpu/history.json "$OUT/train_gpu_history.json" 2>/dev/null; tail -6 "$OUT/train_gpu.txt"
step 80 dask_cuda python3 scripts/dask_cuda_sweep.py /tmp/dask_cuda gpu
tail -15 "$OUT/dask_cuda.txt"
