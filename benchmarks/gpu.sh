#!/usr/bin/env bash
# The GPU check of issue 4, one prepared run for a lent device: the whole test suite (CUDA tests included),
# the CUDA benchmark, a language model trained end to end with each engine (benchmarks/gpu_lm.py), then
# --bf16 training from the command line (a language model and a captioner).
#   benchmarks/gpu.sh [OUTDIR]                 (default benchmarks/results; the device tool passes $OUT)
# With --regularised, issue 16's check instead (about 6 minutes): the regularisers' tests on the GPU (the
# CUDA-graph loop against the Python loop and the autograd twin, gradcheck, mask statistics, a tiny AWD run), then
# `rnnkit bench --regularised --device cuda`: each option set's training step beside cuDNN's plain LSTM.
#   benchmarks/gpu.sh --regularised [OUTDIR]
# Runs from a checkout with the machine's own python3 and torch; nothing is installed.
set -uo pipefail
regularised=0
if [ "${1:-}" = "--regularised" ]; then regularised=1; shift; fi
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
SECONDS=0
if [ "$regularised" = 1 ]; then
    timeout 240 python3 -m pytest -p no:cacheprovider -rfE tests/engine/test_graphed_regularised.py \
        tests/layers/test_regularisers.py tests/engine/test_graphed.py tests/cli/test_cli_awd.py 2>&1 \
        | tee "$out/gpu-regularised-tests.log" | tail -8
    echo "tests: ${SECONDS}s"
    timeout 300 python3 -m rnnkit.cli.main bench --regularised --device cuda \
        --out "$out/bench-regularised-cuda.md" 2>&1 | tail -70
    echo "total: ${SECONDS}s"
    exit 0
fi
timeout 240 python3 -m pytest -p no:cacheprovider -rfE tests 2>&1 | tee "$out/gpu-tests.log" | tail -8
echo "suite: ${SECONDS}s"
timeout 100 python3 benchmarks/engine.py --device cuda --quick --out "$out/engine-cuda.md" 2>&1 | tail -20
timeout 120 python3 benchmarks/gpu_lm.py --steps 150 2>&1 | tee "$out/gpu-lm.md"
cli="python3 -m rnnkit.cli.main"
timeout 60 $cli train lm --dataset stdlib --cell gru --device cuda --bf16 --max-steps 40 --quiet \
    --out "$out/bf16-lm" 2>&1 | tail -4
timeout 60 $cli train caption --preset shapes --cell gru --device cuda --bf16 --max-steps 40 --quiet \
    --out "$out/bf16-caption" 2>&1 | tail -4
rm -f "$out"/bf16-*/*.safetensors
echo "total: ${SECONDS}s"
