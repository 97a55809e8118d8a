"""Subword tokens: byte-pair encoding learnt from the training text with the Hugging Face ``tokenizers`` library.

Nothing is downloaded: the merges are learnt from the text given to :meth:`BPETokenizer.build`. Words are
split at whitespace first (like :class:`~rnnkit.data.WordTokenizer`), then into pieces; a piece that continues
a word starts with ``##`` (``unbelievable`` → ``un ##believ ##able``), so :meth:`decode` puts the words back
together. A character never seen in training becomes ``<unk>``.

The whole state is the library's tokenizer JSON, which :meth:`to_dict` stores next to the vocabulary, so a run's
``config.json`` carries its tokenizer and :func:`~rnnkit.data.tokenizer_dict.tokenizer_from_dict` rebuilds it.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

from .errors import DataError, Source
from .special import EOS, PAD, UNK
from .tokenizers import Tokenizer

__all__ = ["BPETokenizer", "CONTINUATION"]

CONTINUATION = "##"
SPECIALS = (PAD, UNK, EOS)


def _hf():
    try:
        import tokenizers
    except ImportError:  # pragma: no cover - a declared dependency
        raise DataError("the BPE tokenizer needs the 'tokenizers' package (pip install tokenizers)") from None
    return tokenizers


class BPETokenizer(Tokenizer):
    """Byte-pair encoding over whitespace-separated words; ids 0, 1, 2 are ``<pad>``, ``<unk>``, ``<eos>``."""

    kind = "bpe"
    unk_token = UNK

    def __init__(self, tokenizer_json: str) -> None:
        hf = _hf()
        try:
            self._hf = hf.Tokenizer.from_str(tokenizer_json)
        except Exception as err:   # the library raises a bare Exception for malformed JSON
            raise DataError(f"not a valid Hugging Face tokenizer JSON ({err})") from None
        self._json = tokenizer_json
        vocab = self._hf.get_vocab(with_added_tokens=True)
        itos = [""] * len(vocab)
        for piece, i in vocab.items():
            if not 0 <= i < len(itos) or itos[i]:
                raise DataError("the BPE vocabulary's ids are not 0..V-1")
            itos[i] = piece
        super().__init__(itos)
        for special in SPECIALS:
            if special not in self._stoi:
                raise DataError(f"BPE vocabulary lacks the special token {special}")

    @classmethod
    def build(cls, text: str, vocab_size: int = 8000, min_freq: int = 2, **options: Any) -> "BPETokenizer":
        """Learn at most ``vocab_size`` pieces (special tokens and single characters included) from ``text``;
        a merge needs a pair seen ``min_freq`` times."""
        if options:
            raise TypeError(f"BPETokenizer.build got unexpected options {sorted(options)}")
        if vocab_size < len(SPECIALS) + 1:
            raise DataError(f"vocab_size must be > {len(SPECIALS)}, got {vocab_size}")
        if min_freq < 1:
            raise DataError(f"min_freq must be >= 1, got {min_freq}")
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            raise DataError("cannot learn BPE merges from text without words")
        hf = _hf()
        model = hf.models.BPE(unk_token=UNK, continuing_subword_prefix=CONTINUATION)
        tok = hf.Tokenizer(model)
        tok.pre_tokenizer = hf.pre_tokenizers.WhitespaceSplit()
        trainer = hf.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                         special_tokens=list(SPECIALS), continuing_subword_prefix=CONTINUATION,
                                         show_progress=False)
        tok.train_from_iterator(lines, trainer=trainer, length=len(lines))
        return cls(tok.to_str())

    # -- Tokenizer interface ------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return self._stoi[PAD]

    @property
    def unk_id(self) -> int:
        return self._stoi[UNK]

    def symbols(self, text: str) -> list[str]:
        return self._hf.encode(text, add_special_tokens=False).tokens

    def join(self, symbols: Iterable[str]) -> str:
        words: list[str] = []
        for s in symbols:
            if s.startswith(CONTINUATION) and words:
                words[-1] += s[len(CONTINUATION):]
            elif s == EOS:
                words.append("\n")
            else:
                words.append(s)
        return " ".join(words).replace(" \n ", "\n").replace(" \n", "\n")

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` the pieces cannot cover (they would become ``<unk>``)."""
        enc = self._hf.encode(text, add_special_tokens=False)
        return list(dict.fromkeys(text[a:b] for (a, b), i in zip(enc.offsets, enc.ids) if i == self.unk_id))

    def encode(self, text: str, strict: bool = False, source: Source = None) -> list[int]:
        ids = self._hf.encode(text, add_special_tokens=False).ids
        if strict and self.unk_id in ids:
            missing = self.unknown(text)
            raise DataError(f"{len(missing)} piece(s) not in the {self.vocab_size}-piece BPE vocabulary: "
                            f"{', '.join(repr(s) for s in missing[:20])}", source)
        return ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of many texts at once (the library encodes them in parallel)."""
        return [e.ids for e in self._hf.encode_batch(list(texts), add_special_tokens=False)]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "vocab": list(self._itos), "tokenizer_json": json.loads(self._json)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: Source = None) -> "BPETokenizer":
        if d.get("type") != cls.kind:
            raise DataError(f"expected a tokenizer of type {cls.kind!r}, got {d.get('type')!r}", source)
        spec = d.get("tokenizer_json")
        if not isinstance(spec, (dict, str)):
            raise DataError("a bpe tokenizer needs its 'tokenizer_json'", source)
        try:
            tok = cls(spec if isinstance(spec, str) else json.dumps(spec))
        except DataError as err:
            raise DataError(err.problem, source) from None
        if "vocab" in d and list(d["vocab"]) != list(tok.vocab):
            raise DataError("the bpe 'vocab' does not match its 'tokenizer_json'", source)
        return tok
