"""What drawing one regulariser mask costs: ``rnnkit.engine.masks.bernoulli`` (one key from torch's generator, the
bits from a counter-based hash: compiled, and its PyTorch twin used before the extension is loaded or on a GPU)
against the 16-bit lanes it replaced (four uniform 16-bit integers from each 64-bit draw of torch's generator),
``torch.rand(...) < p`` and ``bernoulli_``, for a (35, 20, 200) zoneout mask and an 800 x 200 weight-drop mask;
one thread, each drawer alone, medians of 30 calls after 2 warm-ups (``common.medians``):

    python benchmarks/mask_draw.py
"""
import torch
from common import medians

from rnnkit.engine import build, masks

SHAPES = {"zoneout (35, 20, 200)": (35, 20, 200), "weight drop (800, 200)": (800, 200)}


def lanes(shape, p: float) -> torch.Tensor:
    """The 16-bit lanes (rnnkit before the hash): four uniform 16-bit integers from each 64-bit draw."""
    n = torch.Size(shape).numel()
    bits = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(1 << 63), None)
    return bits.view(torch.int16)[:n].view(shape) < round(p * (1 << 16)) - (1 << 15)


def main() -> None:
    torch.set_num_threads(1)
    build.extension()
    cpu = torch.device("cpu")
    key = torch.tensor(12345)
    for name, shape in SHAPES.items():
        drawers = {"hash": lambda: masks.bernoulli(shape, 0.3, cpu, torch.bool),
                   "twin": lambda: masks._bernoulli_torch(shape, key, round(0.3 * 2**32), 1.0, torch.bool),
                   "lanes": lambda: lanes(shape, 0.3),
                   "rand": lambda: torch.rand(shape) < 0.3,
                   "bernoulli_": lambda: torch.empty(shape, dtype=torch.bool).bernoulli_(0.3)}
        # each alone: interleaved, the twin's passes over 1-2 MB would leave the next drawer's caches cold
        hashed, twin, lane, rand, old = (medians({k: f}, rounds=30)[k] for k, f in drawers.items())
        print(f"{name}: hash {hashed:.3f} ms (PyTorch twin {twin:.3f}), 16-bit lanes {lane:.3f} ms, "
              f"rand < p {rand:.3f} ms, bernoulli_ {old:.3f} ms (lanes / hash {lane / hashed:.1f}x)")


if __name__ == "__main__":
    main()
