#!/bin/bash
# The automatic product choice's two profiles against torch.nn on this CPU, every cell, the five shapes.
cd "$(dirname "$0")" 2>/dev/null || true
C=(--config "mkl-first=(-1,16777216,4194304,2097152,262144,1)" --config "by-shape=(-1,16777216,4194304,2097152,262144,0)")
echo "# $(date -u) $(git rev-parse --short HEAD) $(grep -m1 'model name' /proc/cpuinfo) load: $(cut -d' ' -f1-3 /proc/loadavg)"
for m in lstm gru gru_reset_after rnn_tanh; do
  python engine_ab.py $m --shapes "[(35, 20, 200), (200, 4, 128), (100, 32, 256)]" --rounds 25 "${C[@]}"
  python engine_ab.py $m --shapes "[(100, 64, 512), (50, 128, 1024)]" --rounds 5 "${C[@]}"
done
python engine_ab.py lstm --forward-only --rounds 15 "${C[@]}"
echo "# end $(date -u) load: $(cut -d' ' -f1-3 /proc/loadavg)"
