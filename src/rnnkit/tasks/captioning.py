"""Image captioning for the shared trainer: images with all their captions, teacher forcing, BLEU on validation.

A caption of words ``w_1 .. w_n`` is trained as ``inputs = <eos> w_1 .. w_n`` → ``targets = w_1 .. w_n <eos>``:
``<eos>`` doubles as the start symbol (Karpathy's START/END token), padding is ignored by the loss. A batch holds
``batch_size`` images and *all* their captions, so each image goes through the encoder once per batch.

Validation: the encoder's batch-norm statistics recomputed on training batches (PreciseBN), then the
teacher-forced loss over every caption, then a caption generated for every image (greedy or
beam search from :mod:`rnnkit.decoding.beam`) scored by BLEU-1..4 (sacrebleu, corpus level, against all the
image's reference captions, lower-cased words without punctuation) and by exact match (the generated caption
equals one of the references). The best checkpoint is the one with the highest BLEU-4.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Tokenizer, WordTokenizer, tokenizer_from_dict
from ..data.images import caption_words, load_caption_set, load_images, normalize
from ..decoding.beam import Hypothesis, search
from ..models.captioner import CaptionConfig, CaptionModel, ImageFeatures, caption_loss
from ..training import distributed as dist
from ..training.modes import evaluating
from .runs import load_task_run

PAD = -100        # target id the loss ignores


@dataclass
class CaptionSet:
    """Images in memory and their reference captions (already :func:`~rnnkit.data.images.caption_words`-normalised)."""

    images: Tensor                 # uint8 (N, 3, S, S)
    captions: list[list[str]]      # references of image i, each "word word word"
    names: list[str]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.captions) or len(self.names) != len(self.captions):
            raise ValueError(f"{len(self.images)} images, {len(self.captions)} caption lists and {len(self.names)} "
                             f"names: one of each per image is needed")

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def from_raw(cls, images: Tensor, captions: Sequence[Sequence[str]], names: Sequence[str]) -> "CaptionSet":
        """Normalise raw captions (lower case, words only)."""
        return cls(images, [[" ".join(caption_words(c)) for c in caps] for caps in captions], list(names))


def build_caption_tokenizer(captions: Sequence[Sequence[str]], min_freq: int = 1,
                            max_vocab: int | None = None) -> WordTokenizer:
    """A word vocabulary from normalised training captions (``<eos>`` and ``<unk>`` first)."""
    return WordTokenizer.build("\n".join(c for caps in captions for c in caps), min_freq=min_freq,
                               max_vocab=max_vocab)


def encode_captions(tokenizer: Tokenizer, captions: Sequence[str]) -> tuple[Tensor, Tensor]:
    """``(inputs, targets)`` each (T, M): ``<eos> w_1 .. w_n`` and ``w_1 .. w_n <eos>``, padded (PAD in targets)."""
    ids = [tokenizer.encode(c + "\n") for c in captions]       # words + <eos>
    eos = tokenizer.vocab.index("<eos>")
    T = max(len(s) for s in ids)
    inputs = torch.full((T, len(ids)), eos, dtype=torch.long)
    targets = torch.full((T, len(ids)), PAD, dtype=torch.long)
    for m, s in enumerate(ids):
        inputs[1:len(s), m] = torch.tensor(s[:-1], dtype=torch.long)
        targets[:len(s), m] = torch.tensor(s, dtype=torch.long)
    return inputs, targets


def bleu_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-1..4 (0-100, sacrebleu) of ``hypotheses[i]`` against all of ``references[i]``."""
    from sacrebleu.metrics import BLEU
    width = max(len(r) for r in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    return {f"bleu{n}": float(BLEU(max_ngram_order=n).corpus_score(list(hypotheses), streams).score)
            for n in range(1, 5)}


def exact_match(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Fraction of hypotheses equal to one of their references."""
    return sum(h in set(refs) for h, refs in zip(hypotheses, references)) / max(len(hypotheses), 1)


# ---------------------------------------------------------------------------------------------- generation

def _step_fn(model: CaptionModel):
    """The decoding module's step interface over the captioner: log-probabilities, not logits."""
    def step(tokens: Tensor, state):
        logits, state = model.step(tokens, state)
        return F.log_softmax(logits.float(), dim=-1), state
    return step


@torch.no_grad()
def generate(model: CaptionModel, images: Tensor, tokenizer: Tokenizer, beam: int = 1, alpha: float = 0.0,
             max_len: int | None = None, batch_size: int = 100, device: torch.device | str = "cpu",
             trace: bool = False) -> list[Hypothesis]:
    """One hypothesis per uint8 image (N, 3, S, S): greedy (``beam`` 1) or beam search from
    :func:`rnnkit.decoding.beam.search`; with ``trace`` each carries its attention weights (words, grid cells)."""
    eos = tokenizer.vocab.index("<eos>")
    max_len = max_len or model.config.max_length
    out: list[Hypothesis] = []
    with evaluating(model):
        for i in range(0, len(images), batch_size):
            chunk = normalize(images[i:i + batch_size].to(device))
            state = model.start(chunk)
            out.extend(search(_step_fn(model), state, len(chunk), bos=eos, eos=eos, max_len=max_len,
                              beam_size=beam, alpha=alpha, trace=(lambda s: s.weights) if trace else None,
                              device=device))
    return out


def words(tokenizer: Tokenizer, hypothesis: Hypothesis) -> str:
    return " ".join(tokenizer.vocab[i] for i in hypothesis.tokens)


# ---------------------------------------------------------------------------------------------- the task

class CaptionTask:
    """Train a :class:`~rnnkit.models.captioner.CaptionModel` on ``train``; validate on ``valid``.

    ``train`` is a :class:`CaptionSet`, or a function of the (1-based) epoch returning that epoch's set (fresh
    synthetic scenes every epoch: nothing is seen twice). ``cache_features`` (with a frozen encoder) runs the
    encoder once over the training images and trains the decoder on the stored features. ``beam`` is the search
    used for validation captions.
    """

    name = "caption"
    metric = "bleu4"
    higher_is_better = True

    def __init__(self, tokenizer: Tokenizer, train: CaptionSet | Callable[[int], CaptionSet], valid: CaptionSet, *,
                 batch_size: int, device: torch.device | str = "cpu", seed: int = 0, beam: int = 1,
                 alpha: float = 0.0, cache_features: bool = False, eval_batch_size: int = 100,
                 recalibrate_batches: int = 20, model_config: dict | None = None, data: dict | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.fresh = train if callable(train) else None
        if self.fresh is not None and cache_features:
            raise ValueError("cache_features needs a fixed training set, not fresh scenes every epoch")
        self.tokenizer, self.valid = tokenizer, valid
        self.train, self.train_epoch = (self.fresh(1), 1) if self.fresh is not None else (train, None)
        self.batch_size, self.seed, self.beam, self.alpha = batch_size, seed, beam, alpha
        self.device = torch.device(device)
        self.cache_features, self.eval_batch_size = cache_features, eval_batch_size
        self.recalibrate_batches = recalibrate_batches
        self.model_config, self.data = model_config or {}, data or {}
        self.features: ImageFeatures | None = None

    # ---------------------------------------------------------------- trainer protocol

    def steps_per_epoch(self) -> int:
        per_rank = len(self.train) // dist.world_size()        # dist.share's count, the same on every rank
        return -(-per_rank // self.batch_size)

    def _order(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return dist.share(torch.randperm(len(self.train), generator=g))   # each rank its own images

    def batches(self, epoch: int, start: int) -> Iterator[tuple]:
        if self.fresh is not None and epoch != self.train_epoch:
            self.train, self.train_epoch = self.fresh(epoch), epoch
        order = self._order(epoch)
        for b in range(start, self.steps_per_epoch()):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if len(idx) == 0:
                return
            captions, image_index = [], []
            for k, i in enumerate(idx.tolist()):
                captions.extend(self.train.captions[i])
                image_index.extend([k] * len(self.train.captions[i]))
            inputs, targets = encode_captions(self.tokenizer, captions)
            yield (idx, inputs.to(self.device), targets.to(self.device),
                   torch.tensor(image_index, device=self.device))

    def _cache(self, model: nn.Module) -> ImageFeatures:
        core = getattr(model, "module", model)
        if not core.config.freeze_encoder:
            raise ValueError("cache_features needs a frozen encoder (freeze_encoder=True): a trained encoder's "
                             "features change at every step")
        pooled, grids = [], []
        with torch.no_grad():
            for i in range(0, len(self.train), self.eval_batch_size):
                f = core.encode(normalize(self.train.images[i:i + self.eval_batch_size].to(self.device)))
                pooled.append(f.pooled)
                grids.append(f.grid)
        return ImageFeatures(torch.cat(pooled), None if grids[0] is None else torch.cat(grids))

    def loss(self, model: nn.Module, batch: tuple) -> tuple[Tensor, Tensor, int]:
        idx, inputs, targets, image_index = batch
        if self.cache_features:
            if self.features is None:
                self.features = self._cache(model)
            source = self.features.index(idx.to(self.device))
        else:
            source = normalize(self.train.images[idx].to(self.device))
        logits = model(source, inputs, image_index)
        loss = caption_loss(logits, targets, PAD)
        return loss, loss.detach(), int((targets != PAD).sum())

    def _recalibration_batches(self) -> Iterator[Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(self.train), generator=g)
        size = max(self.batch_size, 2)                      # batch statistics need two images (--batch-size 1)
        for b in range(self.recalibrate_batches):
            idx = order[b * size:(b + 1) * size]
            if len(idx) < 2:
                return
            yield normalize(self.train.images[idx].to(self.device))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        core = getattr(model, "module", model)
        if self.recalibrate_batches:
            core.recalibrate_norm(self._recalibration_batches())      # fresh batch-norm statistics (PreciseBN)
        return evaluate_captions(core, self.valid, self.tokenizer, self.device, self.beam, self.alpha,
                                 self.eval_batch_size)

    def progress(self, loss: float) -> dict[str, str]:
        return {}

    def run_config(self) -> dict:
        return {"task": self.name, "model": self.model_config, "tokenizer": self.tokenizer.to_dict(),
                "data": self.data}

    def state_dict(self) -> dict:
        return {}                      # the batch order is a function of (seed, epoch); nothing else is carried

    def load_state_dict(self, state: dict) -> None:
        pass


@torch.no_grad()
def evaluate_captions(model: CaptionModel, data: CaptionSet, tokenizer: Tokenizer, device: torch.device | str = "cpu",
                      beam: int = 1, alpha: float = 0.0, batch_size: int = 100) -> dict[str, float]:
    """Teacher-forced loss over every reference, then BLEU-1..4 and exact match of generated captions."""
    total, count = 0.0, 0
    with evaluating(model):
        for i in range(0, len(data), batch_size):
            caps, image_index = [], []
            for k, refs in enumerate(data.captions[i:i + batch_size]):
                caps.extend(refs)
                image_index.extend([k] * len(refs))
            inputs, targets = encode_captions(tokenizer, caps)
            logits = model(normalize(data.images[i:i + batch_size].to(device)), inputs.to(device),
                           torch.tensor(image_index, device=device))
            targets = targets.to(device)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                           ignore_index=PAD, reduction="sum"))
            count += int((targets != PAD).sum())
        hyps = [words(tokenizer, h) for h in generate(model, data.images, tokenizer, beam, alpha,
                                                      batch_size=batch_size, device=device)]
    return {"loss": total / max(count, 1), **bleu_scores(hyps, data.captions),
            "exact": exact_match(hyps, data.captions), "images": len(data)}


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[CaptionModel, Tokenizer, dict]:
    """``(model in eval mode, tokenizer, config)`` of a ``caption`` run."""
    def build(config: dict, where: Path):
        return CaptionModel(CaptionConfig.from_dict(config["model"])), (tokenizer_from_dict(config["tokenizer"],
                                                                                             source=where),)
    model, (tokenizer,), config = load_task_run(run_dir, "caption", "captioning", build, device)
    return model, tokenizer, config


load_captioner = load_run


def evaluate_run(run_dir: str | Path, images: str | Path, captions: str | Path, format: str | None = None,
                 beam: int = 1) -> str:
    """``rnnkit eval`` of a ``caption`` run on the images in ``images`` with the captions file ``captions``
    (``flickr8k`` or ``coco``; None: guessed): BLEU-1..4, exact match and loss, as one line."""
    model, tokenizer, config = load_run(run_dir)
    items = load_caption_set(images, captions, format, skip_bad=None)        # (eval has no --skip-bad)
    pixels, items = load_images(items, model.config.image_size)
    data = CaptionSet.from_raw(pixels, [i.captions for i in items], [i.name for i in items])
    m = evaluate_captions(model, data, tokenizer, beam=beam)
    return (f"{captions}: {len(data)} images, beam {beam}: BLEU-1 {m['bleu1']:.2f}, BLEU-2 {m['bleu2']:.2f}, "
            f"BLEU-3 {m['bleu3']:.2f}, BLEU-4 {m['bleu4']:.2f}; exact match {100 * m['exact']:.1f}%; "
            f"loss {m['loss']:.4f} nats/word")
