"""The generation step: microseconds per token of a 2-layer LSTM advanced one token at a time, batch 1, as
``rnnkit sample`` does, against torch.nn's LSTM called per step and the bare matrix-vector products."""
from __future__ import annotations

import statistics
from typing import Callable

import torch

from ..layers import LSTM
from ..models.language_model import LanguageModel, LMConfig
from .timing import Run, compare


def generation_rows(H: int = 512, layers: int = 2, vocab: int = 65, steps: int = 200,
                    device: str = "cpu") -> list[str]:
    """Microseconds per generated token, batch 1: the stack alone and a whole character-level model step."""
    torch.manual_seed(0)
    ours = LSTM(H, H, layers, device=device).eval()
    python = LSTM(H, H, layers, engine="python", device=device).eval()
    python.load_state_dict(ours.state_dict())
    theirs = ours.to_torch().eval()
    x, zeros = torch.randn(1, H, device=device), torch.zeros(layers, 1, H, device=device)
    state = (zeros, zeros)
    weights = [w for k in range(layers) for w in ours.layer_weights(k, 0)[:2]]
    lm = LanguageModel(LMConfig(vocab_size=vocab, embed_size=H, hidden_size=H, num_layers=layers)).to(device).eval()
    token = torch.tensor([1], device=device)
    lm_state = lm.step(token)[1]
    one_call = "one captured CUDA graph" if device == "cuda" else "one compiled call"
    runs: dict[str, Callable[[], object]] = {
        "torch.nn.LSTM called per step": lambda: theirs(x.unsqueeze(0), state),
        "rnnkit layer.step, Python cell equations (engine='python')": lambda: python.step(x, state),
        f"rnnkit layer.step, {one_call}": lambda: ours.step(x, state),
        f"the {2 * layers} matrix-vector products alone (torch.mv)": lambda: [torch.mv(w, x[0]) for w in weights],
        f"rnnkit LanguageModel.step, vocabulary {vocab} (embedding, stack, decoder)": lambda: lm.step(token, lm_state),
    }
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def repeated(f: Callable[[], object]) -> Run:
        def run(train: bool) -> None:
            for _ in range(steps):
                f()
            sync()
        return run

    with torch.no_grad():
        times = compare({k: repeated(f) for k, f in runs.items()}, False, 3.0, names=tuple(runs))
    base = statistics.median(times["torch.nn.LSTM called per step"])
    rows = ["| what | µs per token | ×torch.nn |", "|---|---|---|"]
    for name, t in times.items():
        us = statistics.median(t) / steps * 1e6
        rows.append(f"| {name} | {us:,.0f} | {statistics.median(t) / base:.2f}× |")
    return rows
