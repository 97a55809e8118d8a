"""Character- and word-level tokenizers for language modelling.

Both map text to a list of integer ids through a fixed vocabulary learned from
the training text, and back. The vocabulary is the whole state, so a tokenizer
round-trips through a JSON-serialisable dict (stored in a run's config.json).

* :class:`CharTokenizer`: one id per character; the vocabulary is the sorted
  set of characters of the training text. It has no unknown symbol, so text
  with a character outside the vocabulary is always rejected.
* :class:`WordTokenizer`: whitespace-separated words plus ``<eos>`` at each line
  end (Mikolov's PTB convention); rare or unseen words become ``<unk>``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from .errors import DataError, Source
from .special import EOS, UNK

__all__ = ["Tokenizer", "CharTokenizer", "WordTokenizer", "EOS", "UNK"]

_SHOWN = 20  # unknown symbols listed in an error message


class Tokenizer:
    """Shared machinery: a vocabulary list ``itos`` and its inverse ``stoi``."""

    kind: ClassVar[str] = ""
    unk_token: ClassVar[str | None] = None  # the fallback symbol, if any

    def __init__(self, vocab: Sequence[str]) -> None:
        self._itos = list(vocab)
        self._stoi = {s: i for i, s in enumerate(self._itos)}
        if len(self._stoi) != len(self._itos):
            raise DataError(f"{self.kind} vocabulary has duplicate entries")
        if not self._itos:
            raise DataError(f"{self.kind} vocabulary is empty")

    # -- to be provided by subclasses ------------------------------------------------
    def symbols(self, text: str) -> list[str]:
        """Split ``text`` into the symbols that get one id each."""
        raise NotImplementedError

    def join(self, symbols: Iterable[str]) -> str:
        """Inverse of :meth:`symbols` (up to whitespace normalisation)."""
        raise NotImplementedError

    @classmethod
    def build(cls, text: str, **options: Any) -> "Tokenizer":
        """Learn a vocabulary from training text."""
        raise NotImplementedError

    # -- common interface ------------------------------------------------------------
    @property
    def vocab(self) -> tuple[str, ...]:
        """The vocabulary in id order."""
        return tuple(self._itos)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def unknown(self, text: str) -> list[str]:
        """The distinct symbols of ``text`` missing from the vocabulary, in order of appearance."""
        return [s for s in dict.fromkeys(self.symbols(text)) if s not in self._stoi]

    def encode(self, text: str, strict: bool = False, source: Source = None) -> list[int]:
        """Map ``text`` to ids.

        Unknown symbols raise :class:`DataError` listing them when ``strict`` is true
        or when the tokenizer has no fallback (char level); otherwise they map to
        the fallback ``<unk>``. ``source`` names the file in the error.
        """
        symbols = self.symbols(text)
        stoi = self._stoi
        try:
            return [stoi[s] for s in symbols]
        except KeyError:
            pass
        missing = self.unknown(text)
        if strict or self.unk_token is None:
            shown = ", ".join(repr(s) for s in missing[:_SHOWN])
            more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
            raise DataError(
                f"{len(missing)} {self.kind}(s) not in the {self.vocab_size}-symbol "
                f"vocabulary: {shown}{more}",
                source,
            ) from None
        unk = stoi[self.unk_token]
        return [stoi.get(s, unk) for s in symbols]

    def decode(self, ids: Iterable[int]) -> str:
        """Map ids (a list or a tensor) back to text; ids outside the vocabulary raise DataError."""
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise DataError(
                f"id {bad[0]} out of range for a {self.kind} vocabulary of size {self.vocab_size}"
            )
        return self.join(self._itos[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; inverse of :func:`~rnnkit.data.tokenizer_dict.tokenizer_from_dict`."""
        return {"type": self.kind, "vocab": list(self._itos)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: Source = None) -> "Tokenizer":
        """Rebuild a tokenizer saved by :meth:`to_dict`."""
        if d.get("type") != cls.kind:
            raise DataError(f"expected a tokenizer of type {cls.kind!r}, got {d.get('type')!r}", source)
        vocab = d.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(s, str) for s in vocab):
            raise DataError("tokenizer 'vocab' must be a list of strings", source)
        try:
            return cls(vocab)
        except DataError as err:
            raise DataError(err.problem, source) from None

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._itos == self._itos  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(Tokenizer):
    """One id per character; vocabulary = sorted set of the training text's characters."""

    kind = "char"

    def symbols(self, text: str) -> list[str]:
        return list(text)

    def join(self, symbols: Iterable[str]) -> str:
        return "".join(symbols)

    def unknown(self, text: str) -> list[str]:
        # set difference is much faster than a per-character scan on MB-sized text
        missing = set(text) - self._stoi.keys()
        return [c for c in dict.fromkeys(text) if c in missing] if missing else []

    def encode(self, text: str, strict: bool = False, source: Source = None) -> list[int]:
        if set(text) <= self._stoi.keys():
            return [self._stoi[c] for c in text]
        return super().encode(text, strict, source)

    @classmethod
    def build(cls, text: str, **options: Any) -> "CharTokenizer":
        """Vocabulary = ``sorted(set(text))``."""
        if options:
            raise TypeError(f"CharTokenizer.build takes no options, got {sorted(options)}")
        if not text:
            raise DataError("cannot build a character vocabulary from empty text")
        return cls(sorted(set(text)))


class WordTokenizer(Tokenizer):
    """Whitespace words, ``<eos>`` at each line end, ``<unk>`` for rare/unseen words.

    Ids 0 and 1 are ``<eos>`` and ``<unk>``; the other words follow by decreasing
    training frequency, ties broken alphabetically, so the vocabulary is
    deterministic.
    """

    kind = "word"
    unk_token = UNK

    def __init__(self, vocab: Sequence[str]) -> None:
        super().__init__(vocab)
        for special in (EOS, UNK):
            if special not in self._stoi:
                raise DataError(f"word vocabulary lacks the special token {special}")

    @property
    def eos_id(self) -> int:
        return self._stoi[EOS]

    @property
    def unk_id(self) -> int:
        return self._stoi[UNK]

    def symbols(self, text: str) -> list[str]:
        """Words of each line plus ``<eos>``; a final line without newline counts too."""
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        out: list[str] = []
        for line in lines:
            out.extend(line.split())
            out.append(EOS)
        return out

    def join(self, symbols: Iterable[str]) -> str:
        lines, words = [], []
        for s in symbols:
            if s == EOS:
                lines.append(" ".join(words) + "\n")
                words = []
            else:
                words.append(s)
        return "".join(lines) + " ".join(words)

    @classmethod
    def build(
        cls, text: str, min_freq: int = 1, max_vocab: int | None = None, **options: Any
    ) -> "WordTokenizer":
        """Keep words seen at least ``min_freq`` times, at most ``max_vocab`` entries in all.

        ``max_vocab`` caps :attr:`vocab_size` including ``<eos>`` and ``<unk>``
        (PTB: ``max_vocab=10000``). Dropped words become ``<unk>`` when encoding.
        """
        if options:
            raise TypeError(f"WordTokenizer.build got unexpected options {sorted(options)}")
        if min_freq < 1:
            raise DataError(f"min_freq must be >= 1, got {min_freq}")
        if max_vocab is not None and max_vocab < 2:
            raise DataError(f"max_vocab must be >= 2 (room for {EOS} and {UNK}), got {max_vocab}")
        counts = Counter(text.split())
        if not counts:
            raise DataError("cannot build a word vocabulary from text without words")
        for special in (EOS, UNK):
            counts.pop(special, None)
        kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_vocab is not None:
            kept = kept[: max_vocab - 2]
        return cls([EOS, UNK, *kept])
