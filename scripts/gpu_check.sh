#!/bin/bash
# The GPU checks, in parts sized for a short lease of an NVIDIA GPU machine:
#
#   core   (about 5 min)  the CUDA-graph and direct-cuBLAS tests first, then the whole
#                         GPU test suite; the errors of blconv (float32, TF32) and of
#                         cuDNN against float64; the GPU benchmark against PyTorch/cuDNN,
#                         eager blconv, blconv under CUDA graphs and with TF32 in one
#                         interleaved run: the CIFAR layers at batch 32 and 128, the
#                         ImageNet stages at batch 64
#   step   (about 2 min)  one CIFAR ResNet-18 training step through blconv.torch against
#                         plain torch at batch 128, eager and with graphs, and the
#                         torch.profiler table of each model
#   extra  (about 4 min)  NumPy-vs-CuPy first steps, a CuPy training run, a dask-cuda sweep
#   all    the three in order
#
# Usage, from the repository root:
#   scripts/gpu_check.sh [PART] [OUT_DIR]     (default: all; $OUT, else ./gpu-out)
#
# Every step's output goes to its own file in a work folder, which is packed into
# OUT_DIR/gpu-PART.tgz after each step (a run stopped by a time limit keeps what it
# finished); OUT_DIR/summary-PART.txt has the versions and each step's exit code and time.
#
# Needs: Python with blconv's dependencies, CuPy for the machine's CUDA
# (pip install -e ".[gpu]"), PyTorch with CUDA for the benchmark peer, pytest, and
# dask-cuda for the sweep (skipped with a message when missing).  Where packages
# cannot be installed from an index, put their wheels in a folder and set
# BLCONV_WHEELS=that/folder: they are installed into /tmp/site first.
PART=${1:-all}
OUT=${2:-${OUT:-gpu-out}}; mkdir -p "$OUT"
case "$PART" in core|step|extra|all) ;; *) echo "unknown part: $PART" >&2; exit 2 ;; esac
WORK=$(mktemp -d); SUMMARY="$OUT/summary-$PART.txt"
export PYTHONUNBUFFERED=1
if [ -n "${BLCONV_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$BLCONV_WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
  python3 -c "import sys, numpy, scipy, cupy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'cupy', cupy.__version__, 'cuda', cupy.cuda.runtime.runtimeGetVersion(), 'torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())"
  git log -1 --format='blconv at %h %s' 2>/dev/null
} 2>&1 | tee "$SUMMARY"
step() { local t=$1 name=$2; shift 2; echo "== $name"; local s=$SECONDS
  timeout "$t" "$@" > "$WORK/$name.txt" 2>&1
  echo "rc=$? ${name} $((SECONDS - s)) s" | tee -a "$SUMMARY"
  tar czf "$OUT/gpu-$PART.tgz" -C "$WORK" . ; }
BENCH="python3 -m blconv bench --device gpu --methods blconv blconv-graphs blconv-tf32 torch --pause 0 --warmup 3"

if [ "$PART" = core ] || [ "$PART" = all ]; then
  step 60 graph_tests python3 -m pytest -m gpu -q -p no:cacheprovider -o addopts="" \
    tests/test_graphs.py tests/test_cublas.py
  tail -3 "$WORK/graph_tests.txt"
  step 150 gpu_tests python3 -m pytest -m gpu -q -x -p no:cacheprovider -o addopts="" tests/
  tail -3 "$WORK/gpu_tests.txt"
  step 40 precision python3 scripts/precision.py --json "$WORK/precision.json"
  cat "$WORK/precision.txt"
  step 60 bench_gpu $BENCH --repeats 30 --rates 0 0.5 0.75 --json "$WORK/bench_gpu.json"
  tail -30 "$WORK/bench_gpu.txt"
  step 50 bench_gpu_b128 $BENCH --batch 128 --repeats 20 --rates 0 0.5 0.75 \
    --layers resnet-first resnet64 resnet128 resnet256 resnet512 --json "$WORK/bench_gpu_b128.json"
  tail -30 "$WORK/bench_gpu_b128.txt"
  step 50 bench_gpu_imagenet $BENCH --repeats 20 --rates 0 0.5 \
    --layers imagenet64 imagenet128 imagenet256 imagenet512 --json "$WORK/bench_gpu_imagenet.json"
  tail -24 "$WORK/bench_gpu_imagenet.txt"
fi
if [ "$PART" = step ] || [ "$PART" = all ]; then
  step 150 resnet18_step python3 scripts/cifar_resnet18.py --bench --device cuda \
    --batch-size 128 --rates 0 0.5 0.75 --repeats 10 --cuda-graphs \
    --json "$WORK/resnet18_step.json" --profile "$WORK/resnet18_profile.txt"
  tail -12 "$WORK/resnet18_step.txt"
fi
if [ "$PART" = extra ] || [ "$PART" = all ]; then
  step 60 first_steps python3 scripts/first_steps.py 10
  tail -13 "$WORK/first_steps.txt"
  step 110 train_gpu python3 -m blconv train --device gpu --compress-rate 0.5 --no-progress \
    --out "$WORK/train_gpu"
  tail -6 "$WORK/train_gpu.txt"
  step 80 dask_cuda python3 scripts/dask_cuda_sweep.py /tmp/dask_cuda gpu
  tail -15 "$WORK/dask_cuda.txt"
fi
