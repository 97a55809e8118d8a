"""Sequence to sequence for the shared trainer: bucketed teacher-forced batches, BLEU/chrF validation.

Validation decodes every validation source (greedy, or beam search with ``eval_beam`` > 1), detokenizes,
and scores the output against the raw reference sentences with ``sacrebleu``: BLEU (13a tokenization) and
chrF. When the target tokenizer lowercases, the model can only write lowercase, so the scores are
case-insensitive (``sacrebleu -lc``) and say so in :func:`score_metric_names`. The trainer keeps the best
checkpoint by ``metric`` (BLEU by default; ``exact``, the share of outputs equal to their reference, for
synthetic tasks).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.errors import DataError
from ..data.buckets import bucket_batches, pad
from ..data.parallel import ParallelBatch, SequenceTokenizer, iterate, read_parallel
from ..decoding.beam import Hypothesis, beam_search, greedy_search
from ..models.seq2seq import Seq2Seq, Seq2SeqConfig, Seq2SeqDecoderState, seq2seq_loss
from ..training import distributed as dist
from ..training.modes import evaluating
from ..training.trainer import perplexity
from ..training.checkpoint import CheckpointError
from .runs import check_vocabulary, load_task_run

METRICS = ("bleu", "chrf", "exact", "loss")


# ---------------------------------------------------------------------------------------------- decoding

@dataclass
class Translation:
    """One decoded sentence: detokenized ``text``, target ``ids`` (no EOS), ``score`` (length-normalised
    log-probability), ``src_symbols``/``tgt_symbols`` (labels in the order the encoder read / the decoder wrote,
    EOS included) and ``attention`` (target steps, source steps) or None."""

    text: str
    ids: list[int]
    score: float
    src_symbols: list[str]
    tgt_symbols: list[str]
    attention: Tensor | None = None
    finished: bool = True


def default_max_len(src_len: int) -> int:
    """Generated tokens allowed for a source of ``src_len`` tokens (EOS included) when none is given."""
    return 2 * src_len + 10


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def log_prob_step(model: Seq2Seq, never: Sequence[int] = ()):
    """The model as a beam-search step function: ``(tokens (B,), state) -> (log_probs (B, V), state)``; the ids
    in ``never`` get probability 0 (:attr:`SequenceTokenizer.never_emitted`)."""
    banned = torch.tensor(list(never), dtype=torch.long, device=model_device(model)) if never else None
    def step(tokens: Tensor, state: Seq2SeqDecoderState):
        logits, state = model.step(tokens, state)
        logits = logits.float()
        if banned is not None:
            logits = logits.index_fill(-1, banned, -math.inf)
        return F.log_softmax(logits, dim=-1), state
    return step


@torch.no_grad()
def decode_encoded(model: Seq2Seq, sources: Sequence[Sequence[int]], beam: int = 1, alpha: float = 0.0,
                   max_len: int | None = None, batch_size: int = 128, with_attention: bool = False,
                   n_best: int = 1, never: Sequence[int] = ()) -> list[list[Hypothesis]]:
    """Decode id sequences (each ending in the source EOS) in length-sorted batches; results in input order;
    the target ids in ``never`` are never chosen."""
    device = model_device(model)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    results: list[list[Hypothesis]] = [[] for _ in sources]
    step = log_prob_step(model, never)
    trace = (lambda s: s.attention) if with_attention and model.attention is not None else None
    eos = model.config.tgt_eos_id
    with evaluating(model):
        for k in range(0, len(order), batch_size):
            chunk = order[k:k + batch_size]
            src, lengths = pad([sources[i] for i in chunk], 0)
            state = model.encode(src.to(device), lengths.to(device))
            limits = [max_len or default_max_len(int(n)) for n in lengths]
            if beam == 1:
                hyps = [[h] for h in greedy_search(step, state, len(chunk), eos, eos, limits, trace, device)]
            else:
                hyps = beam_search(step, state, len(chunk), eos, eos, limits, beam, alpha, n_best, trace, device)
            for i, h in zip(chunk, hyps):
                results[i] = h
    return results


def translate(model: Seq2Seq, src_tok: SequenceTokenizer, tgt_tok: SequenceTokenizer, sentences: Sequence[str],
              beam: int = 1, alpha: float = 0.0, max_len: int | None = None, batch_size: int = 64,
              with_attention: bool = False, source: str | None = None, n_best: int = 1
              ) -> list[list[Translation]]:
    """Translate raw sentences; ``n_best`` translations each, best first. A sentence the source vocabulary can't
    encode is a DataError naming ``source`` and the sentence's number (a file's line: one sentence a line)."""
    encoded = []
    for number, sentence in enumerate(sentences, 1):
        try:
            encoded.append(src_tok.encode(sentence, source=source))
        except DataError as e:
            raise DataError(f"sentence {number}: {e.problem}", source) from None
    hyps = decode_encoded(model, encoded, beam, alpha, max_len, batch_size, with_attention, n_best,
                          tgt_tok.never_emitted)
    out = []
    for ids, hs in zip(encoded, hyps):
        read = ids
        if model.config.reverse_source:       # the encoder read the sentence reversed, its EOS first
            read = list(reversed(ids))
        src_symbols = src_tok.symbols(read)
        out.append([Translation(tgt_tok.decode(h.tokens), h.tokens, h.score, src_symbols,
                                tgt_tok.symbols(h.tokens + ([tgt_tok.eos_id] if h.finished else [])),
                                None if h.trace is None else h.trace[:, : len(ids)],      # drop batch padding
                                h.finished) for h in hs])
    return out


# ---------------------------------------------------------------------------------------------- metrics

def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False) -> dict:
    """BLEU and chrF (sacrebleu, on detokenized text) and the exact-match share."""
    from sacrebleu.metrics import BLEU, CHRF
    hyps, refs = list(hypotheses), list(references)
    bleu = BLEU(lowercase=lowercase).corpus_score(hyps, [refs]).score
    chrf = CHRF(lowercase=lowercase).corpus_score(hyps, [refs]).score
    norm = (lambda s: " ".join(s.split()).lower()) if lowercase else (lambda s: " ".join(s.split()))
    exact = sum(norm(h) == norm(r) for h, r in zip(hyps, refs)) / max(1, len(refs))
    return {"bleu": bleu, "chrf": chrf, "exact": exact}


@torch.no_grad()
def teacher_forced_loss(model: Seq2Seq, encoded: Sequence[tuple[list[int], list[int]]], tgt_eos: int,
                        batch_size: int = 128) -> float:
    """Mean cross-entropy per target token (nats), in evaluation mode."""
    device = model_device(model)
    total, count = 0.0, 0
    batches = bucket_batches([(len(s), len(t)) for s, t in encoded], batch_size, shuffle=False)
    with evaluating(model):
        for batch in iterate(encoded, batches, tgt_eos):
            b = batch.to(device)
            logits = model(b.src, b.src_lengths, b.tgt_in)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), b.tgt_out.reshape(-1),
                                           ignore_index=-100, reduction="sum"))
            count += b.tokens
    return total / max(1, count)


# ---------------------------------------------------------------------------------------------- the task

class Seq2SeqTask:
    """Train on ``train`` (id pairs), validate on ``valid_pairs`` (raw text pairs; their ids in ``valid``)."""

    name = "seq2seq"

    def __init__(self, src_tok: SequenceTokenizer, tgt_tok: SequenceTokenizer,
                 train: Sequence[tuple[list[int], list[int]]], valid: Sequence[tuple[list[int], list[int]]],
                 valid_pairs: Sequence[tuple[str, str]], *, batch_size: int = 64, max_tokens: int | None = None,
                 seed: int = 0, label_smoothing: float = 0.0, scheduled_sampling: float = 0.0,
                 eval_beam: int = 1, eval_alpha: float = 0.0, eval_batch_size: int = 128, metric: str = "bleu",
                 device: torch.device | str = "cpu", model_config: dict | None = None, data: dict | None = None,
                 decoding: dict | None = None) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if not train:
            raise DataError("no training pairs left (check the length filters --max-src-len/--max-tgt-len)")
        if not valid:
            raise DataError("no validation pairs left (check the length filters --max-src-len/--max-tgt-len)")
        self.src_tok, self.tgt_tok = src_tok, tgt_tok
        self.train, self.valid, self.valid_pairs = list(train), list(valid), list(valid_pairs)
        self.batch_size, self.max_tokens, self.seed = batch_size, max_tokens, seed
        self.label_smoothing, self.scheduled_sampling = label_smoothing, scheduled_sampling
        self.eval_beam, self.eval_alpha, self.eval_batch_size = eval_beam, eval_alpha, eval_batch_size
        self.metric = metric
        self.higher_is_better = metric != "loss"
        self.device = torch.device(device)
        self.model_config, self.data, self.decoding = model_config or {}, data or {}, decoding or {}
        self._lengths = [(len(s), len(t)) for s, t in self.train]
        self._epoch_batches: tuple[int, list[list[int]]] | None = None

    def _batches_of(self, epoch: int) -> list[list[int]]:
        if self._epoch_batches is None or self._epoch_batches[0] != epoch:
            batches = bucket_batches(self._lengths, self.batch_size, shuffle=True, seed=self.seed, epoch=epoch,
                                     max_tokens=self.max_tokens)
            self._epoch_batches = (epoch, dist.share(batches))
        return self._epoch_batches[1]

    # ---------------------------------------------------------------- trainer protocol

    def steps_per_epoch(self) -> int:
        return len(self._batches_of(1))

    def batches(self, epoch: int, start: int) -> Iterator[ParallelBatch]:
        for batch in iterate(self.train, self._batches_of(epoch), self.tgt_tok.eos_id, start):
            yield batch.to(self.device)

    def loss(self, model: nn.Module, batch: ParallelBatch) -> tuple[Tensor, Tensor, int]:
        logits = model(batch.src, batch.src_lengths, batch.tgt_in, sample_ratio=self.scheduled_sampling)
        objective = seq2seq_loss(logits, batch.tgt_out, self.label_smoothing)
        shown = (objective if self.label_smoothing == 0 else
                 seq2seq_loss(logits.detach(), batch.tgt_out))
        return objective, shown.detach(), batch.tokens

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        loss = teacher_forced_loss(model, self.valid, self.tgt_tok.eos_id, self.eval_batch_size)
        hyps = decode_encoded(model, [s for s, _ in self.valid], self.eval_beam, self.eval_alpha,
                              batch_size=self.eval_batch_size, never=self.tgt_tok.never_emitted)
        texts = [self.tgt_tok.decode(h[0].tokens) for h in hyps]
        scores = corpus_scores(texts, [t for _, t in self.valid_pairs], lowercase=self.tgt_tok.lowercase)
        return {"loss": loss, "ppl": perplexity(loss), **scores}

    def progress(self, loss: float) -> dict[str, str]:
        return {"ppl": f"{perplexity(loss):.1f}"}

    def run_config(self) -> dict:
        return {"task": self.name, "model": self.model_config, "src_tokenizer": self.src_tok.to_dict(),
                "tgt_tokenizer": self.tgt_tok.to_dict(), "data": self.data,
                "decoding": {"beam": self.eval_beam, "alpha": self.eval_alpha, **self.decoding},
                "metric": self.metric, "case_insensitive": self.tgt_tok.lowercase}

    def state_dict(self) -> dict:
        return {}                      # the batch order is a function of (seed, epoch): nothing to carry

    def load_state_dict(self, state: dict) -> None:
        pass


# ---------------------------------------------------------------------------------------------- runs

def load_run(run_dir: str | Path, device: torch.device | str = "cpu"
             ) -> tuple[Seq2Seq, SequenceTokenizer, SequenceTokenizer, dict]:
    """``(model in eval mode, source tokenizer, target tokenizer, config)`` of a ``seq2seq`` run."""
    def build(config: dict, where: Path):
        model_config = Seq2SeqConfig.from_dict(config["model"])
        src_tok = SequenceTokenizer.from_dict(config["src_tokenizer"], source=where)
        tgt_tok = SequenceTokenizer.from_dict(config["tgt_tokenizer"], source=where)
        check_vocabulary(where, "source", src_tok.vocab_size, model_config.src_vocab_size)
        check_vocabulary(where, "target", tgt_tok.vocab_size, model_config.tgt_vocab_size)
        if model_config.tgt_eos_id != tgt_tok.eos_id:
            raise CheckpointError(f"{where}: the model's tgt_eos_id {model_config.tgt_eos_id} is not the target "
                                  f"tokenizer's end of sentence ({tgt_tok.eos_id}); the file is damaged")
        decoding_alpha(config, where)
        return Seq2Seq(model_config), (src_tok, tgt_tok)
    model, (src_tok, tgt_tok), config = load_task_run(run_dir, "seq2seq", "seq2seq", build, device)
    return model, src_tok, tgt_tok, config


load_seq2seq = load_run


def decoding_alpha(config: dict, where: str | Path = "config.json") -> float:
    """The run's length penalty (``config["decoding"]["alpha"]``, 0 when absent), checked."""
    decoding = config.get("decoding", {})
    alpha = decoding.get("alpha", 0.0) if isinstance(decoding, dict) else None
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha < 0:
        raise CheckpointError(f"{where}: \"decoding\" must hold a length penalty alpha >= 0, got "
                              f"{json.dumps(decoding)}; the file is damaged")
    return float(alpha)


def evaluate_run(run_dir: str | Path, src: str | Path, tgt: str | Path, beam: int = 1) -> str:
    """``rnnkit eval`` of a ``seq2seq`` run on the line-aligned files ``src`` and ``tgt``: BLEU, chrF and exact
    match of its translations (beam ``beam``, the run's length penalty), as one line."""
    pairs = read_parallel(src, tgt)
    model, src_tok, tgt_tok, config = load_run(run_dir)
    alpha = decoding_alpha(config)
    with torch.no_grad():
        results = translate(model, src_tok, tgt_tok, [s for s, _ in pairs], beam=beam, alpha=alpha, source=str(src))
    scores = corpus_scores([r[0].text for r in results], [t for _, t in pairs], lowercase=tgt_tok.lowercase)
    case = ", case-insensitive" if tgt_tok.lowercase else ""
    return (f"{src} -> {tgt}: {len(pairs):,} sentences, beam {beam}{case}: BLEU {scores['bleu']:.2f}, "
            f"chrF {scores['chrf']:.2f}, exact match {scores['exact']:.2%}")
