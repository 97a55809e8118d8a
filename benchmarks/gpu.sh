#!/usr/bin/env bash
# The GPU check of issue 4, one prepared run for a lent device: the CUDA tests, the CUDA benchmark, then a
# language model trained end to end with each engine (benchmarks/gpu_lm.py).
#   benchmarks/gpu.sh [OUTDIR]      (default benchmarks/results; the device tool passes $OUT)
# Runs from a checkout with the machine's own python3 and torch; nothing is installed.
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/engine/test_graphed.py tests/layers 2>&1 \
    | tee "$out/gpu-tests.log" | tail -25
timeout 300 python3 benchmarks/engine.py --device cuda --out "$out/engine-cuda.md" 2>&1 | tail -28
timeout 240 python3 benchmarks/gpu_lm.py --steps 150 2>&1 | tee "$out/gpu-lm.md"
