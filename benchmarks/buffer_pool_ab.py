"""The compiled engine's buffer pool on and off: a 2-layer LSTM's training step, plain, with layer norm, and with
recurrent dropout + weight drop + zoneout, 25 steps each after 2 warm-ups (medians, 2 threads), one configuration
at a time (unlike ``rnnkit bench --regularised``, which interleaves them in one process). The pool is read once per
process, so each setting runs in its own:

    for i in 1 2; do RNNKIT_BUFFER_POOL_MB=0 python benchmarks/buffer_pool_ab.py off; \
        python benchmarks/buffer_pool_ab.py on; done
"""
import sys

import torch
from common import medians

from rnnkit.layers.recurrent import LSTM

CONFIGS = {"plain": {}, "layer_norm": dict(layer_norm=True),
           "rd + wd + zoneout": dict(recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1)}


def main() -> None:
    torch.set_num_threads(2)
    out = []
    for T, N, H in [(200, 4, 128), (35, 20, 200)]:
        torch.manual_seed(0)
        x, g = torch.randn(T, N, H), torch.randn(T, N, H)
        for name, kw in CONFIGS.items():
            layer = LSTM(H, H, 2, engine="compiled", **kw).train()
            step = medians({name: lambda: layer(x)[0].backward(g)}, rounds=25)[name]   # this one alone
            out.append(f"{(T, N, H)} {name} {step:.1f} ms")
    print(f"pool {sys.argv[1] if len(sys.argv) > 1 else '?'}: " + " | ".join(out))


if __name__ == "__main__":
    main()
