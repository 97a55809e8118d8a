"""A quick A/B of the regularisers' cost in the compiled loop, for one shape: a 2-layer LSTM's training step,
plain, weight drop, zoneout, recurrent dropout + weight drop + zoneout and layer norm, interleaved one step each (as
``rnnkit bench --regularised`` does), 60 rounds after 2 warm-ups (``common.medians``), medians and ratios to
plain; 2 threads. Run it before and after a change to the engine (BENCHMARKS.md, "Where the time went"):

    python benchmarks/regularised_ab.py 35 20 200
    python benchmarks/regularised_ab.py 200 4 128
    python benchmarks/regularised_ab.py 35 20 200 60 --baseline /tmp/old   # this engine against /tmp/old's
    python benchmarks/regularised_ab.py 35 20 200 100 --kept 0             # layer norm keeping LN(x_t U) or not

``--baseline CHECKOUT`` builds the C++ engine of another checkout of rnnkit (``git worktree add /tmp/old
<commit>``) with this build's flags, loads it beside this one, and times both in the same rounds: this checkout's
Python drives both (so only for commits whose engine takes the same arguments), each step runs on the engine set
just before it, and the last column gives this engine's time over the baseline's per config. On this shared
machine separate processes differ by more than most changes; the same rounds in one process separate 1-2%.
``--kept STEPS`` adds layer norm with LN(x_t U) kept for that many leading steps instead of the default share
(``rnnkit.engine.ops.kept_input_steps``; 0: none, the backward recomputes every x_t U; ``T``: all).
"""
import argparse
from pathlib import Path

import torch
from common import engine_build, medians

from rnnkit.engine import build, ops
from rnnkit.layers.recurrent import LSTM

CONFIGS = {"plain": {}, "weight drop": dict(weight_drop=0.5), "zoneout": dict(zoneout=0.1),
           "rd + wd + zoneout": dict(recurrent_dropout=0.25, weight_drop=0.5, zoneout=0.1),
           "layer norm": dict(layer_norm=True)}


def baseline_build(checkout: Path):
    """The C++ engine of another checkout's sources, built once with this build's flags."""
    csrc = checkout / "src" / "rnnkit" / "engine" / "csrc"
    if not csrc.is_dir():
        raise SystemExit(f"{checkout}: no rnnkit checkout there (no {csrc})")
    return engine_build(csrc, build._flags())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("shape", type=int, nargs=3, help="T N H: steps, sequences, hidden units")
    p.add_argument("rounds", type=int, nargs="?", default=60)
    p.add_argument("--baseline", type=Path, help="another checkout whose engine to time in the same rounds")
    p.add_argument("--kept", type=int, help="also time layer norm keeping LN(x_t U) for this many leading steps")
    args = p.parse_args()
    torch.set_num_threads(2)
    T, N, H = args.shape
    torch.manual_seed(0)
    x, grad = torch.randn(T, N, H), torch.randn(T, N, H)
    layers = {name: LSTM(H, H, 2, engine="compiled", **kw).train() for name, kw in CONFIGS.items()}
    kept = {}
    if args.kept is not None:
        kept[f"layer norm, kept {args.kept}"] = args.kept
        layers[f"layer norm, kept {args.kept}"] = layers["layer norm"]
    default_kept = ops.kept_input_steps
    engines = {"": build.extension()}
    if args.baseline:
        engines["baseline "] = baseline_build(args.baseline)

    def run(engine, name):
        steps = kept.get(name)

        def step():
            build.state["module"] = engine
            ops.kept_input_steps = default_kept if steps is None else lambda *_: steps
            layers[name](x)[0].backward(grad)
        return step

    ms = medians({tag + name: run(engine, name) for tag, engine in engines.items() for name in layers}, args.rounds)
    ops.kept_input_steps = default_kept
    for tag in engines:
        print(f"{tag or 'this '}{(T, N, H)}", " | ".join(
            f"{name} {ms[tag + name]:.2f} ms ({ms[tag + name] / ms[tag + 'plain']:.3f}×)" for name in layers))
    if args.baseline:
        print("this ÷ baseline:", " | ".join(f"{name} {ms[name] / ms['baseline ' + name]:.3f}" for name in layers))
    build.state["module"] = engines[""]


if __name__ == "__main__":
    main()
