#!/usr/bin/env bash
# The GPU check of issue 16, one prepared run for a lent device (about 6 minutes): the regularisers' tests on the
# GPU (the CUDA-graph loop against the Python loop and the autograd twin, gradcheck, mask statistics), then
# `rnnkit bench --regularised --device cuda`: each option set's training step beside cuDNN's plain LSTM.
#   benchmarks/gpu_regularised.sh [OUTDIR]      (default benchmarks/results; the device tool passes $OUT)
# Runs from a checkout with the machine's own python3 and torch; nothing is installed.
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
SECONDS=0
timeout 240 python3 -m pytest -p no:cacheprovider -q -rfE tests/engine/test_graphed_regularised.py \
    tests/layers/test_regularisers.py tests/engine/test_graphed.py 2>&1 | tee "$out/gpu-regularised-tests.log" | tail -8
echo "tests: ${SECONDS}s"
timeout 300 python3 -m rnnkit.cli.main bench --regularised --device cuda \
    --out "$out/bench-regularised-cuda.md" 2>&1 | tail -70
echo "total: ${SECONDS}s"
