"""What a trained language model's units do: hidden states per token, per layer and unit, and their correlation
with simple features of the text (Karpathy, Johnson & Fei-Fei 2015 found a cell that tracks quotes this way).

:func:`lm_activations` feeds a text to the model one token at a time (evaluation mode, ``h_0 = 0``) and keeps,
after each token ``t``: every layer's ``h_t``, for an LSTM also ``tanh(C_t)`` (the cell state squashed to
``[-1, 1]``, as the papers show it), and the model's top-k predictions for token ``t+1``.

Features of the text, each the value *after reading* token ``t`` (so an opening quote is already inside):

* ``inside "..."`` and ``inside '...'`` — 1 between a quote and its closing twin (a single quote opened on a
  line closes at the end of that line: apostrophes in prose shouldn't leave the state stuck);
* ``line position`` — characters since the last newline (0 on the newline itself);
* ``inside brackets`` — 1 when at least one ``(``, ``[`` or ``{`` is open; ``bracket depth`` — how many.

:func:`correlations` gives Pearson's r between every unit and every feature; :func:`most_correlated` the top
units by ``|r|``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .steppers import layer_stepper

FEATURES = ("inside \"...\"", "inside '...'", "line position", "inside brackets", "bracket depth")
OPEN, CLOSE = "([{", ")]}"


@dataclass
class Activations:
    """Hidden states of a text: ``layers[name]`` is (T, H) for the T tokens; ``top_ids``/``top_probs`` (T, k)
    are the model's most likely next tokens after each token (``None`` for models that don't predict one)."""

    tokens: list[str]
    ids: list[int]
    layers: dict[str, np.ndarray]
    top_ids: np.ndarray | None = None
    top_probs: np.ndarray | None = None
    vocab: list[str] = field(default_factory=list)
    dropped: int = 0                 # characters of the text not in the vocabulary, left out


def _display(tokenizer) -> list[str]:
    return list(tokenizer.vocab)


def encodable(tokenizer, text: str) -> tuple[str, int]:
    """``text`` without the characters a character-level vocabulary doesn't have (and how many were dropped);
    word-level tokenizers map unknown words to ``<unk>`` themselves."""
    if getattr(tokenizer, "kind", "") != "char":
        return text, 0
    vocab = set(tokenizer.vocab)
    kept = "".join(c for c in text if c in vocab)
    return kept, len(text) - len(kept)


@torch.no_grad()
def lm_activations(model, tokenizer, text: str, *, top_k: int = 5, max_tokens: int | None = None) -> Activations:
    """Step the language model over ``text`` and record every layer's state after every token."""
    text, dropped = encodable(tokenizer, text)
    ids = tokenizer.encode(text)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if not ids:
        raise ValueError("the text has no tokens the model knows")
    vocab = _display(tokenizer)
    tokens = [vocab[i] for i in ids]
    was_training = model.training
    model.eval()
    try:
        stepper = layer_stepper(model.rnn)                 # any stack: plain, AWD's levels, minimal cells
        weight = next(model.parameters())
        x = torch.tensor(ids, dtype=torch.long, device=weight.device)
        emb = model.embedding(x.unsqueeze(1))                                  # (T, 1, E)
        state = stepper.init(1, emb)
        states = []
        for t in range(len(ids)):
            state = stepper.step(emb[t], state)
            states.append(state)
        L = len(stepper.hidden(state))
        layers: dict[str, np.ndarray] = {}
        for k in range(L):
            layers[f"layer {k + 1} h"] = torch.stack([s[k][0] for s in states]).float().cpu().numpy()
            if stepper.cell_state:
                c = torch.stack([s[L + k][0] for s in states])
                layers[f"layer {k + 1} tanh(c)"] = torch.tanh(c).float().cpu().numpy()
        logits = model.decoder(torch.stack([s[L - 1][0] for s in states]))    # (T, V)
        k = min(top_k, logits.shape[1])
        probs, top = torch.softmax(logits.float(), dim=1).topk(k, dim=1)
    finally:
        model.train(was_training)
    return Activations(tokens, list(ids), layers, top.cpu().numpy(), probs.cpu().numpy(), vocab, dropped)


# --------------------------------------------------------------------------------------------- features

def text_features(tokens: list[str], level: str = "char") -> dict[str, np.ndarray]:
    """Each feature of :data:`FEATURES` after each token (see the module docstring). Word-level tokens count
    as their characters followed by a space; ``<eos>`` as a newline."""
    double = single = False
    column = depth = 0
    out = {name: np.zeros(len(tokens), dtype=np.float32) for name in FEATURES}
    for t, token in enumerate(tokens):
        chars = "\n" if token == "<eos>" else (token + " " if level == "word" else token)
        for ch in chars:
            if ch == "\n":
                column = 0
                single = False
            else:
                column += 1
            if ch == '"' and not single:
                double = not double
            elif ch == "'" and not double:
                single = not single
            elif ch in OPEN and not (double or single):
                depth += 1
            elif ch in CLOSE and not (double or single):
                depth = max(0, depth - 1)
        out["inside \"...\""][t] = double
        out["inside '...'"][t] = single
        out["line position"][t] = column if chars != "\n" else 0
        out["inside brackets"][t] = depth > 0
        out["bracket depth"][t] = depth
    return out


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson's r of every column of ``values`` (T, H) with ``feature`` (T,); 0 where either is constant."""
    v = values.astype(np.float64) - values.mean(axis=0, keepdims=True)
    f = feature.astype(np.float64) - feature.mean()
    denom = np.sqrt((v * v).sum(axis=0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v * f[:, None]).sum(axis=0) / denom
    return np.where(denom > 1e-12, r, 0.0)


def most_correlated(layers: dict[str, np.ndarray], features: dict[str, np.ndarray],
                    top: int = 10) -> dict[str, list[dict]]:
    """For each feature, the ``top`` units (over all layers) by ``|r|``: ``{"layer", "unit", "r"}``; no units
    for a feature that doesn't vary over the text (nothing to correlate with)."""
    names = list(layers)
    out = {}
    for fname, f in features.items():
        rows = []
        if np.ptp(f) == 0:
            out[fname] = rows
            continue
        for li, name in enumerate(names):
            r = correlations(layers[name], f)
            for u in np.argsort(-np.abs(r))[:top]:
                rows.append({"layer": li, "unit": int(u), "r": float(r[u])})
        rows.sort(key=lambda d: -abs(d["r"]))
        out[fname] = rows[:top]
    return out
