"""Parallel text for sequence to sequence: reading aligned pairs, one tokenizer per side, length buckets.

A corpus is a list of ``(source, target)`` sentence pairs, read from two line-aligned files or from one TSV
(``source<TAB>target`` per line). Each side has a :class:`SequenceTokenizer` that turns a sentence into ids
ending in that side's end-of-sentence id, and ids back into detokenized text::

    "Zwei Männer laufen."  --word level, lowercase-->  zwei männer laufen .  <eos>   -> [57, 31, 402, 3, 0]
    "03/03/15"             --char level------------->  0 3 / 0 3 / 1 5 \\n           (``\\n`` is the char EOS)

The decoder starts from the end-of-sentence id as its "beginning of sentence" input (fairseq does the same), so
a side needs no extra symbols; padding positions are never read (masks and lengths say where a sentence ends).

Batches are bucketed by length: pairs are shuffled, sorted by length (the sort is stable, so pairs of equal
length stay shuffled), cut into batches of similar lengths, and the batches are shuffled — little padding,
a different order every epoch, the same order for the same ``(seed, epoch)`` (an exact resume).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from os import PathLike
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from .errors import DataError, Source
from .text import read_text
from .bpe import BPETokenizer
from .buckets import pad
from .special import EOS, PAD
from .tokenizers import CharTokenizer, WordTokenizer

__all__ = ["SequenceTokenizer", "ParallelBatch", "read_parallel", "read_tsv", "encode_pairs", "filter_by_length",
           "collate", "pretokenize", "detokenize", "text_lines", "LEVELS"]

LEVELS = ("word", "char", "bpe")
_SHOWN = 5                     # line numbers listed in an error message

# words (with inner hyphens or apostrophes: "t-shirt", "man's") and single punctuation marks
_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


def pretokenize(text: str, lowercase: bool = False) -> list[str]:
    """Word-level symbols: words and punctuation marks split apart (``"bushes."`` -> ``bushes``, ``.``)."""
    return _WORD.findall(text.lower() if lowercase else text)


def detokenize(words: Iterable[str]) -> str:
    """Join word-level symbols into text: no space before closing punctuation or after an opening bracket.

    Straight double quotes alternate between opening and closing. Good enough for BLEU, whose own tokenizer
    splits punctuation off again.
    """
    out: list[str] = []
    quote_open = attach = False
    for w in words:
        if w == '"' and quote_open and out:
            out[-1] += w                      # closing quote: onto the word before
            quote_open = False
        elif attach and out:
            out[-1] += w                      # the word after an opening quote
            attach = False
        else:
            out.append(w)
            if w == '"':
                quote_open = attach = True
    text = " ".join(out)
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))


# ---------------------------------------------------------------------------------------------- tokenizers

class SequenceTokenizer:
    """One side of a parallel corpus: sentence -> ids ending in :attr:`eos_id`, and ids -> sentence.

    ``level``: ``word`` (words and punctuation split by :func:`pretokenize`, a :class:`WordTokenizer` vocabulary
    with ``<eos>``/``<unk>``; rare words become ``<unk>``), ``char`` (a :class:`CharTokenizer` over the training
    characters plus ``\\n``, which serves as EOS; an unseen character is an error) or ``bpe`` (the words of
    :func:`pretokenize` cut into pieces by the shared :class:`~rnnkit.data.bpe.BPETokenizer`, whose merges are
    learnt from the training sentences with Hugging Face ``tokenizers``). ``lowercase`` applies before
    tokenizing, at training and translation time alike.
    """

    def __init__(self, level: str, inner: Any, lowercase: bool = False) -> None:
        if level not in LEVELS:
            raise DataError(f"unknown tokenizer level {level!r}; expected one of {LEVELS}")
        self.level, self.inner, self.lowercase = level, inner, bool(lowercase)
        self.eos_id = inner.vocab.index("\n" if level == "char" else EOS)

    # -- building ------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, lines: Sequence[str], level: str = "word", lowercase: bool = False, min_freq: int = 1,
              max_vocab: int | None = None, bpe_vocab_size: int = 8000) -> "SequenceTokenizer":
        """Learn the vocabulary of one side (or of both, for a shared vocabulary) from training sentences."""
        if level not in LEVELS:
            raise DataError(f"unknown tokenizer level {level!r}; expected one of {LEVELS}")
        if lowercase:
            lines = [line.lower() for line in lines]
        if level == "word":
            text = "\n".join(" ".join(pretokenize(line)) for line in lines)
            return cls(level, WordTokenizer.build(text, min_freq=min_freq, max_vocab=max_vocab), lowercase)
        if level == "char":
            return cls(level, CharTokenizer.build("\n".join(lines) + "\n"), lowercase)
        text = "\n".join(" ".join(pretokenize(line)) for line in lines)
        return cls(level, BPETokenizer.build(text, vocab_size=bpe_vocab_size, min_freq=min_freq), lowercase)

    # -- use -----------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.inner.vocab_size

    def _prepare(self, text: str) -> str:
        text = " ".join(text.split())               # one line, single spaces
        return text.lower() if self.lowercase else text

    def pieces(self, text: str) -> list[str]:
        """The symbols ``text`` becomes, without the EOS (labels for an attention plot)."""
        text = self._prepare(text)
        if self.level == "word":
            return pretokenize(text)
        if self.level == "char":
            return list(text)
        return self.inner.symbols(" ".join(pretokenize(text)))

    def encode(self, text: str, source: Source = None) -> list[int]:
        """Ids of ``text``'s symbols followed by :attr:`eos_id`."""
        text = self._prepare(text)
        if self.level == "word":
            words = pretokenize(text)
            if not words:
                return [self.eos_id]
            return self.inner.encode(" ".join(words), source=source)             # WordTokenizer adds <eos>
        if self.level == "char":
            return self.inner.encode(text + "\n", source=source)
        return self.inner.encode(" ".join(pretokenize(text))) + [self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first EOS (exclusive), detokenized."""
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        if self.level == "word":
            return detokenize(self.inner.vocab[i] for i in ids)
        if self.level == "char":
            return self.inner.decode(ids)
        return detokenize(self.inner.decode(ids).split())          # pieces -> words -> text

    @property
    def never_emitted(self) -> list[int]:
        """Ids no target holds, so a decoder must never choose them: the BPE vocabulary's ``<pad>`` (targets are
        padded with :data:`PAD_TARGET`, not with it); an undertrained model would otherwise print it."""
        return [self.inner.vocab.index(PAD)] if PAD in self.inner.vocab else []

    def symbols(self, ids: Iterable[int]) -> list[str]:
        """The vocabulary entry of every id (no detokenization), e.g. for plot labels."""
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        vocab = self.inner.vocab
        return ["<eos>" if i == self.eos_id else vocab[i] for i in ids]

    # -- saving --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "inner": self.inner.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: Source = None) -> "SequenceTokenizer":
        if not isinstance(d, Mapping) or d.get("level") not in LEVELS or "inner" not in d:
            raise DataError("not a saved sequence tokenizer (expected keys level, lowercase, inner)", source)
        level = d["level"]
        if level == "word":
            inner = WordTokenizer.from_dict(d["inner"], source)
        elif level == "char":
            inner = CharTokenizer.from_dict(d["inner"], source)
            if "\n" not in inner.vocab:
                raise DataError("a char-level sequence tokenizer needs '\\n' (its EOS) in the vocabulary", source)
        else:
            inner = BPETokenizer.from_dict(d["inner"], source)
        return cls(level, inner, bool(d.get("lowercase", False)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SequenceTokenizer) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        return (f"SequenceTokenizer(level={self.level!r}, vocab_size={self.vocab_size}, "
                f"lowercase={self.lowercase})")


# ---------------------------------------------------------------------------------------------- reading

def text_lines(text: str) -> list[str]:
    """The lines of a sentence file: split at ``\n`` only (not at form feeds, U+0085 or U+2028, where
    ``str.splitlines`` also breaks), a final newline ending the last line, a CR before the newline dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _check_empty(pairs: Sequence[tuple[str, str]], source: Source, first_line: int = 1) -> None:
    empty = [i + first_line for i, (s, t) in enumerate(pairs) if not s.strip() or not t.strip()]
    if empty:
        shown = ", ".join(str(n) for n in empty[:_SHOWN]) + (" ..." if len(empty) > _SHOWN else "")
        raise DataError(f"{len(empty)} empty line pair(s) (an empty source or target) at line(s) {shown}; "
                        f"every line needs text on both sides — remove those lines", source)


def read_parallel(src: str | PathLike[str], tgt: str | PathLike[str]) -> list[tuple[str, str]]:
    """Pairs from two line-aligned UTF-8 files; different line counts or an empty side are a DataError."""
    src_lines, tgt_lines = text_lines(read_text(src)), text_lines(read_text(tgt))
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"the files are not aligned: {src} has {len(src_lines):,} lines but {tgt} has "
                        f"{len(tgt_lines):,}; line i of one must translate line i of the other",
                        f"{src} / {tgt}")
    pairs = list(zip(src_lines, tgt_lines))
    _check_empty(pairs, f"{src} / {tgt}")
    return pairs


def read_tsv(path: str | PathLike[str]) -> list[tuple[str, str]]:
    """Pairs from ``source<TAB>target`` lines; a line without exactly one tab or with an empty side is an error."""
    lines = text_lines(read_text(path))
    bad = [i + 1 for i, line in enumerate(lines) if line.count("\t") != 1]
    if bad:
        shown = ", ".join(str(n) for n in bad[:_SHOWN]) + (" ..." if len(bad) > _SHOWN else "")
        raise DataError(f"{len(bad)} line(s) without exactly one tab (source<TAB>target) at line(s) {shown}", path)
    pairs = [tuple(line.split("\t")) for line in lines]
    _check_empty(pairs, path)
    return pairs            # type: ignore[return-value]


def encode_pairs(pairs: Sequence[tuple[str, str]], src_tok: SequenceTokenizer, tgt_tok: SequenceTokenizer,
                 source: Source | tuple[Source, Source] = None) -> list[tuple[list[int], list[int]]]:
    """Both sides as ids (each ending in its EOS). ``source`` names where the pairs come from, one name or one
    per side; a symbol a side's vocabulary lacks (char level) is an error naming that side's file and the pair."""
    src_source, tgt_source = source if isinstance(source, tuple) else (source, source)
    encoded = []
    for i, (s, t) in enumerate(pairs, 1):
        try:
            encoded.append((src_tok.encode(s, src_source), tgt_tok.encode(t, tgt_source)))
        except DataError as e:
            raise DataError(f"pair {i:,}: {e.problem}", e.source) from None
    return encoded


def filter_by_length(encoded: Sequence[tuple[list[int], list[int]]], max_src_len: int | None = None,
                     max_tgt_len: int | None = None) -> tuple[list[int], int]:
    """Indices of the pairs whose sides (EOS included) fit the limits, and how many were dropped."""
    keep = [i for i, (s, t) in enumerate(encoded)
            if (max_src_len is None or len(s) <= max_src_len) and (max_tgt_len is None or len(t) <= max_tgt_len)]
    return keep, len(encoded) - len(keep)


# ---------------------------------------------------------------------------------------------- batching

@dataclass
class ParallelBatch:
    """A padded batch, time-major. ``src`` (S, N) with ``src_lengths`` (N,); the decoder reads ``tgt_in``
    (T, N) = EOS-as-BOS followed by the target, and predicts ``tgt_out`` (T, N) = the target followed by EOS,
    padded with ``-100`` (ignored by the loss). ``index`` (N,) are the pairs' positions in the corpus."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    tgt_lengths: Tensor
    index: Tensor

    def to(self, device: torch.device | str) -> "ParallelBatch":
        return ParallelBatch(*(t.to(device) for t in (self.src, self.src_lengths, self.tgt_in, self.tgt_out,
                                                       self.tgt_lengths, self.index)))

    @property
    def tokens(self) -> int:
        return int(self.tgt_lengths.sum())


PAD_TARGET = -100


def collate(encoded: Sequence[tuple[list[int], list[int]]], indices: Sequence[int], tgt_eos: int) -> ParallelBatch:
    """The batch of pairs ``indices`` (source padded with its last id; targets as :class:`ParallelBatch`)."""
    srcs = [encoded[i][0] for i in indices]
    tgts = [encoded[i][1] for i in indices]
    src, src_lengths = pad(srcs, 0)
    tgt_in, tgt_lengths = pad([[tgt_eos] + t[:-1] for t in tgts], tgt_eos)
    tgt_out, _ = pad(tgts, PAD_TARGET)
    return ParallelBatch(src, src_lengths, tgt_in, tgt_out, tgt_lengths, torch.as_tensor(list(indices)))


def iterate(encoded: Sequence[tuple[list[int], list[int]]], batches: Sequence[Sequence[int]], tgt_eos: int,
            start: int = 0) -> Iterator[ParallelBatch]:
    """Collated batches from batch ``start`` on."""
    for b in batches[start:]:
        yield collate(encoded, b, tgt_eos)
