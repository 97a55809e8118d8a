"""Greedy search and beam search for any decoder that produces one token at a time.

The step interface
------------------
A decoder plugs in through two things, nothing else (the translation model and an image captioner alike)::

    step(tokens, state) -> (log_probs, new_state)
        tokens     LongTensor (B,)    the previous token of each of the B rows (hypotheses)
        log_probs  Tensor (B, V)      log-probabilities of the next token (log_softmax of the logits)
        new_state  the decoder state after reading ``tokens``

    state.reorder(indices) -> state
        indices    LongTensor (B',)   rows to keep, in this order; rows may repeat (B' may differ from B)

The search keeps its own bookkeeping on the CPU and hands ``tokens`` and ``indices`` over on ``device``
(the decoder's device; CPU by default). ``reorder`` is how the search expands each of the N inputs into K
beams at the start (``indices = [0,0,..,0, 1,1,..,1, ...]``, K each) and follows the surviving hypotheses
after every step.
The state is otherwise opaque: any object with ``reorder`` works (fairseq and OpenNMT use the same idea).
The first call gets ``bos`` as ``tokens``; the search never looks inside the state except through the optional
``trace(state) -> Tensor (B, ...)`` hook, called after every step to record something per step and
hypothesis (the attention weights, for a plot); the records follow the hypotheses through the reordering.

Lengths and scores
------------------
``max_len`` counts generated tokens, the EOS included; a hypothesis that reaches it without EOS ends there
(``finished=False``). A hypothesis' ``log_prob`` is the sum of its tokens' log-probabilities (EOS included);
beam search ranks finished hypotheses by ``score = log_prob / lp(length)`` with Wu et al.'s (2016) length
penalty ``lp(L) = ((5 + L) / 6) ** alpha``: ``alpha = 0`` ranks by the plain sum (which favours short outputs),
``alpha = 1`` is close to the average per token.

Beam search keeps K live hypotheses per input. Each step takes the 2K best continuations; those that end in EOS
and rank among the top K are finished, the K best others live on (fairseq's rule). An input is done when it has K
finished hypotheses or reaches its maximum length. With K = 1 this is greedy search, token for token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import Tensor

__all__ = ["Hypothesis", "DecoderStateLike", "StepFunction", "greedy_search", "beam_search", "search",
           "length_penalty"]


class DecoderStateLike(Protocol):
    def reorder(self, indices: Tensor) -> "DecoderStateLike": ...


StepFunction = Callable[[Tensor, Any], "tuple[Tensor, Any]"]


@dataclass
class Hypothesis:
    """One output sequence. ``tokens``: the generated ids without the final EOS; ``finished``: it ended with
    EOS (else the maximum length stopped it); ``trace``: the per-step records (steps, ...) or None."""

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool
    trace: Tensor | None = None

    @property
    def length(self) -> int:
        """Generated tokens, the EOS included."""
        return len(self.tokens) + (1 if self.finished else 0)


def length_penalty(length: int, alpha: float) -> float:
    """Wu et al. 2016: ``((5 + length) / 6) ** alpha`` (1 for ``alpha = 0``)."""
    return 1.0 if alpha == 0 else ((5.0 + length) / 6.0) ** alpha


def _per_item(value: int | Sequence[int] | Tensor, n: int, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.long).flatten()
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{name} must be one value or one per input ({n}), got {t.numel()}")
    return t.clone()


def _check(batch_size: int, beam_size: int = 1) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {beam_size}")


@torch.no_grad()
def greedy_search(step: StepFunction, state: Any, batch_size: int, bos: int | Sequence[int] | Tensor, eos: int,
                  max_len: int | Sequence[int] | Tensor, trace: Callable[[Any], Tensor] | None = None,
                  device: torch.device | str = "cpu") -> list[Hypothesis]:
    """The most likely next token at every step, for ``batch_size`` inputs at once (rows of ``state``)."""
    _check(batch_size)
    tokens = _per_item(bos, batch_size, "bos")
    limit = _per_item(max_len, batch_size, "max_len")
    done = torch.zeros(batch_size, dtype=torch.bool)
    ended_with_eos = torch.zeros(batch_size, dtype=torch.bool)
    lengths = torch.zeros(batch_size, dtype=torch.long)
    log_prob = torch.zeros(batch_size, dtype=torch.float64)
    generated, records = [], []
    tokens = tokens.to(device)
    for t in range(int(limit.max())):
        log_probs, state = step(tokens, state)
        best, nxt = log_probs.max(dim=-1)
        nxt_cpu, best_cpu = nxt.cpu(), best.double().cpu()
        active = ~done
        log_prob += torch.where(active, best_cpu, torch.zeros_like(best_cpu))
        lengths += active.long()
        generated.append(nxt_cpu)
        if trace is not None:
            records.append(trace(state).detach().cpu())
        is_eos = active & (nxt_cpu == eos)
        ended_with_eos |= is_eos
        done |= is_eos | (t + 1 >= limit)
        tokens = nxt
        if bool(done.all()):
            break
    steps = torch.stack(generated, dim=1) if generated else torch.zeros(batch_size, 0, dtype=torch.long)
    out = []
    for n in range(batch_size):
        L = int(lengths[n])
        ids = steps[n, :L].tolist()
        finished = bool(ended_with_eos[n])
        if finished:
            ids = ids[:-1]
        tr = torch.stack([r[n] for r in records[:L]]) if records else None
        lp = float(log_prob[n])
        out.append(Hypothesis(ids, lp, lp, finished, tr))
    return out


@torch.no_grad()
def beam_search(step: StepFunction, state: Any, batch_size: int, bos: int | Sequence[int] | Tensor, eos: int,
                max_len: int | Sequence[int] | Tensor, beam_size: int = 5, alpha: float = 0.0, n_best: int = 1,
                trace: Callable[[Any], Tensor] | None = None, device: torch.device | str = "cpu"
                ) -> list[list[Hypothesis]]:
    """The ``n_best`` hypotheses per input, best first, by ``log_prob / lp(length)`` (module docstring).

    ``state`` has one row per input (``batch_size`` rows); it is expanded to ``beam_size`` rows per input here.
    """
    _check(batch_size, beam_size)
    N, K = batch_size, beam_size
    n_best = min(max(1, n_best), K)
    limit = _per_item(max_len, N, "max_len")
    state = state.reorder(torch.arange(N).repeat_interleave(K).to(device))
    tokens = _per_item(bos, N, "bos").repeat_interleave(K)
    scores = torch.full((N, K), float("-inf"), dtype=torch.float64)
    scores[:, 0] = 0.0                                       # only the first beam of each input is live at first
    history = torch.zeros(N, K, 0, dtype=torch.long)
    records: Tensor | None = None
    finished: list[list[Hypothesis]] = [[] for _ in range(N)]
    done = [False] * N
    rows = torch.arange(N).unsqueeze(1)
    for t in range(int(limit.max())):
        log_probs, state = step(tokens.to(device), state)
        V = log_probs.shape[-1]
        cand = (scores.unsqueeze(2) + log_probs.double().cpu().view(N, K, V)).view(N, K * V)
        width = min(2 * K, K * V)
        top, idx = cand.topk(width, dim=1)                   # (N, 2K), best first
        beam, tok = idx // V, idx % V
        cand_history = history[rows, beam]                   # (N, 2K, t)
        if trace is not None:
            now = trace(state).detach().cpu()
            now = now.view(N, K, *now.shape[1:])[rows, beam].unsqueeze(2)
            cand_records = now if records is None else torch.cat([records[rows, beam], now], dim=2)
        is_eos = tok == eos
        at_limit = (t + 1 >= limit).unsqueeze(1)
        ranks = torch.arange(width).unsqueeze(0)
        final = ((is_eos | at_limit) & (ranks < K) & torch.isfinite(top))
        for n, j in final.nonzero().tolist():
            if done[n]:
                continue
            ended = bool(is_eos[n, j])
            ids = cand_history[n, j].tolist() + ([] if ended else [int(tok[n, j])])
            lp = float(top[n, j])
            tr = cand_records[n, j] if trace is not None else None
            finished[n].append(Hypothesis(ids, lp, lp / length_penalty(t + 1, alpha), ended, tr))
        for n in range(N):
            if not done[n] and (len(finished[n]) >= K or bool(at_limit[n, 0])):
                done[n] = True
        if all(done):
            break
        live = top.masked_fill(is_eos, float("-inf"))
        scores, pos = live.topk(K, dim=1)                    # the K best continuations that did not end
        for n in range(N):
            if done[n]:
                scores[n] = float("-inf")
        chosen = beam.gather(1, pos)
        tokens = tok.gather(1, pos).view(-1)
        history = torch.cat([cand_history[rows, pos], tokens.view(N, K, 1)], dim=2)
        if trace is not None:
            records = cand_records[rows, pos]
        state = state.reorder((rows * K + chosen).view(-1).to(device))
    return [sorted(hyps, key=lambda h: -h.score)[:n_best] for hyps in finished]


def search(step: StepFunction, state: Any, batch_size: int, bos, eos: int, max_len, beam_size: int = 1,
           alpha: float = 0.0, trace: Callable[[Any], Tensor] | None = None,
           device: torch.device | str = "cpu") -> list[Hypothesis]:
    """The best hypothesis per input: greedy search for ``beam_size`` 1, else beam search."""
    if beam_size == 1:
        return greedy_search(step, state, batch_size, bos, eos, max_len, trace, device)
    return [h[0] for h in beam_search(step, state, batch_size, bos, eos, max_len, beam_size, alpha, 1, trace,
                                      device)]

