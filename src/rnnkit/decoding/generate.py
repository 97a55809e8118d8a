"""Text generation from a language model: the prime is fed once, then one token at a time, state carried."""
from __future__ import annotations

from typing import Iterator

import torch

from ..data import DataError, Tokenizer
from .sampling import sample_next


def generate(model, tokenizer: Tokenizer, prime: str = "", length: int = 200, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             device: torch.device | str = "cpu") -> Iterator[str]:
    """An iterator over ``length`` generated tokens as text pieces.

    The prime is checked here, before anything is generated: symbols the vocabulary lacks → DataError listing
    them. A word-level prime that doesn't end a line continues its sentence (no ``<eos>`` is fed after it).
    """
    unknown = tokenizer.unknown(prime) if prime else []
    if unknown:
        shown = ", ".join(repr(s) for s in unknown[:20])
        raise DataError(f"the prime has {len(unknown)} symbol(s) the model's vocabulary lacks: {shown}", "--prime")
    ids = tokenizer.encode(prime) if prime else [_start_token(tokenizer)]
    eos = getattr(tokenizer, "eos_id", None)
    if prime and eos is not None and not prime.endswith("\n") and len(ids) > 1 and ids[-1] == eos:
        ids = ids[:-1]
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed if seed is not None else torch.seed() % 2**63)
    return _continue(model, tokenizer, ids, length, temperature, top_k, top_p, generator, device)


def _continue(model, tokenizer, ids, length, temperature, top_k, top_p, generator, device) -> Iterator[str]:
    model.eval()
    with torch.no_grad():
        logits, state = model(torch.tensor(ids, dtype=torch.long, device=device).unsqueeze(1))   # the prime, once
        logits = logits[-1]
        for i in range(length):
            token = sample_next(logits.cpu(), temperature, top_k, top_p, generator)
            yield _piece(tokenizer, int(token))
            if i + 1 < length:
                logits, state = model.step(token.to(device), state)


def _start_token(tokenizer: Tokenizer) -> int:
    """With no prime: a line break (char level) or ``<eos>`` (word level), i.e. the start of a line."""
    for symbol in ("\n", "<eos>"):
        if symbol in tokenizer.vocab:
            return tokenizer.vocab.index(symbol)
    return 0


def _piece(tokenizer: Tokenizer, token: int) -> str:
    """The text of one token as it streams: words get a following space, line ends none."""
    text = tokenizer.decode([token])
    word_level = getattr(tokenizer, "eos_id", None) is not None
    return text + " " if word_level and not text.endswith("\n") else text
