"""Labelled text for classification: TSV/CSV/JSONL files, label sets, text encoding and padded batches.

A file holds one example per row: a text column and a label column, chosen by name (GLUE's SST-2 is
``sentence<TAB>label``). Labels are kept as strings (``1`` and ``"positive"`` alike); a :class:`LabelSet`
gives them ids in a fixed order and is saved with the model. Every problem in a file is a :class:`DataError`
naming the file and the line.

Batches group sentences of similar length (:mod:`.buckets`) so that little of a batch is padding.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from torch import Tensor

from .bpe import BPETokenizer
from .buckets import pad
from .errors import DataError, Source
from .special import EOS, PAD, UNK
from .text import decode_text
from .tokenizer_dict import tokenizer_from_dict
from .tokenizers import Tokenizer, WordTokenizer

__all__ = ["FORMATS", "Table", "LabelledData", "LabelSet", "TextEncoder", "read_table", "read_labelled",
           "detect_format", "iter_batches"]

FORMATS = ("tsv", "csv", "jsonl", "lines")
_SHOWN = 10


def detect_format(path: str | PathLike[str], fmt: str = "auto") -> str:
    """``tsv`` / ``csv`` / ``jsonl`` by the file's extension (``.json`` counts as JSONL), else ``lines``."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise DataError(f"unknown format {fmt!r}; expected auto or one of {FORMATS}", path)
        return fmt
    suffix = Path(path).suffix.lower()
    return {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix, "lines")


# ---------------------------------------------------------------------------------------------- raw tables


@dataclass
class Table:
    """The rows of a file as read: ``columns`` (the header, or the keys seen in JSONL), ``rows`` (one dict per
    row), ``lines`` (the 1-based line each row starts on), the ``format`` and the ``source`` path."""

    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int]
    format: str
    source: str

    def where(self, i: int) -> str:
        return f"{self.source}, line {self.lines[i]}"


def _read_bytes(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a data file", path) from None
    except OSError as err:
        raise DataError(f"cannot read the file ({err.strerror or err})", path) from None
    text = decode_text(data, path)
    return text[1:] if text.startswith("\ufeff") else text


def read_table(path: str | PathLike[str], fmt: str = "auto") -> Table:
    """Read a TSV/CSV file with a header row, a JSONL file (one object per line), or plain lines (one text per
    line, column ``text``). Blank lines are skipped; a malformed row is a DataError naming its line."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    text = _read_bytes(path)
    src = str(path)
    if fmt == "lines":
        rows, lines = [], []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                rows.append({"text": line})
                lines.append(n)
        return Table(["text"], rows, lines, fmt, src)
    if fmt == "jsonl":
        return _read_jsonl(text, src)
    delimiter = "\t" if fmt == "tsv" else ","
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL      # GLUE's TSVs have bare quotes
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    header: list[str] | None = None
    rows, lines = [], []
    end = 0
    try:
        for fields in reader:
            line, end = end + 1, reader.line_num          # the line a row starts on (a quoted field may span lines)
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                if len(set(header)) != len(header):
                    raise DataError(f"line {line}: the header repeats a column name: {header}", src)
                continue
            if len(fields) != len(header):
                raise DataError(f"line {line}: {len(fields)} fields, but the header has {len(header)} "
                                f"({', '.join(header)})", src)
            rows.append(dict(zip(header, fields)))
            lines.append(line)
    except csv.Error as err:
        raise DataError(f"line {reader.line_num}: not valid {fmt.upper()} ({err})", src) from None
    if header is None:
        raise DataError(f"no header row; a {fmt.upper()} file starts with the column names", src)
    return Table(header, rows, lines, fmt, src)


def _read_jsonl(text: str, src: str) -> Table:
    rows, lines, columns = [], [], {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"line {n}: not valid JSON ({err.msg}, column {err.colno})", src) from None
        if not isinstance(obj, dict):
            raise DataError(f"line {n}: expected a JSON object, got {type(obj).__name__}", src)
        rows.append(obj)
        lines.append(n)
        columns.update(dict.fromkeys(obj))
    return Table(list(columns), rows, lines, "jsonl", src)


# ---------------------------------------------------------------------------------------------- labelled data


@dataclass
class LabelledData:
    """Texts and their labels (strings; ``None`` everywhere for unlabelled data) with each row's line."""

    texts: list[str]
    labels: list[str] | None
    lines: list[int]
    source: str
    table: Table | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.texts)


def _label_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def read_labelled(path: str | PathLike[str], text_column: str = "sentence", label_column: str | None = "label",
                  fmt: str = "auto", labelled: bool = True) -> LabelledData:
    """Texts and labels of a TSV/CSV/JSONL file, columns chosen by name.

    ``labelled=False`` reads texts only (the label column may be absent); a ``lines`` file is always unlabelled
    and has its text in column ``text``. A missing column, an empty text or a missing label is a DataError
    naming the file and line.
    """
    table = read_table(path, fmt)
    src = table.source
    if table.format == "lines" and labelled:                  # an extension that names no table format
        raise DataError(f"labelled examples come as TSV, CSV or JSONL, told apart by the extension (.tsv, .csv, "
                        f".jsonl); {Path(path).suffix or 'no extension'!r} is none of them (rename the file; "
                        f"rnnkit train classify and predict also take --format tsv|csv|jsonl)", src)
    if table.format == "lines":
        text_column = "text"
    if not table.rows:
        raise DataError("no examples (only a header or blank lines)", src)
    if text_column not in table.columns:
        raise DataError(f"{_header_where(table)}: no text column {text_column!r}; the columns are "
                        f"{table.columns} (choose one with --text-column)", src)
    if labelled and label_column not in table.columns:
        raise DataError(f"{_header_where(table)}: no label column {label_column!r}; the columns are "
                        f"{table.columns} (choose one with --label-column)", src)
    texts, labels = [], ([] if labelled else None)
    for row, line in zip(table.rows, table.lines):
        text = row.get(text_column)
        if text_column not in row:
            raise DataError(f"line {line}: no {text_column!r} field", src)
        if not isinstance(text, str) or not text.strip():
            what = "empty" if isinstance(text, str) or text is None else f"not a string ({type(text).__name__})"
            raise DataError(f"line {line}: the text ({text_column!r}) is {what}", src)
        texts.append(text.strip())
        if labelled:
            label = _label_text(row.get(label_column))
            if label is None:
                raise DataError(f"line {line}: no label ({label_column!r} is missing or empty)", src)
            labels.append(label)
    return LabelledData(texts, labels, list(table.lines), src, table)


def _header_where(table: Table) -> str:
    return "line 1 (header)" if table.format in ("tsv", "csv") else f"line {table.lines[0]}"


# ---------------------------------------------------------------------------------------------- label sets


def _sort_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


class LabelSet:
    """The classes a model knows, in id order: numbers numerically first, then other names alphabetically."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = [str(n) for n in names]
        self._ids = {n: i for i, n in enumerate(self.names)}
        if len(self._ids) != len(self.names):
            raise DataError(f"the label set repeats a label: {self.names}")
        if len(self.names) < 2:
            raise DataError(f"a classifier needs at least two classes, got {self.names}")

    @classmethod
    def from_labels(cls, labels: Sequence[str], source: Source = None) -> "LabelSet":
        """The set of ``labels``; a single class is an error (nothing to tell apart)."""
        names = sorted(set(labels), key=_sort_key)
        if not names:
            raise DataError("no labels", source)
        if len(names) < 2:
            raise DataError(f"only one class: every example has the label {names[0]!r}; a classifier needs at "
                            f"least two classes", source)
        return cls(names)

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and other.names == self.names

    def __repr__(self) -> str:
        return f"LabelSet({self.names})"

    def encode(self, data: LabelledData) -> list[int]:
        """Ids of ``data``'s labels; a label outside the set is a DataError naming the file and line."""
        if data.labels is None:
            raise DataError("the data has no labels", data.source)
        ids = []
        for label, line in zip(data.labels, data.lines):
            i = self._ids.get(label)
            if i is None:
                shown = ", ".join(repr(n) for n in self.names[:_SHOWN])
                more = f" and {len(self.names) - _SHOWN} more" if len(self.names) > _SHOWN else ""
                raise DataError(f"line {line}: unknown label {label!r}; the model knows {shown}{more}",
                                data.source)
            ids.append(i)
        return ids

    def to_list(self) -> list[str]:
        return list(self.names)


# ---------------------------------------------------------------------------------------------- text encoding


class TextEncoder:
    """One text → token ids for a classifier, with no ``<eos>`` and with a ``<pad>`` id for batching.

    Wraps a word-level (:class:`WordTokenizer`, vocabulary ``<eos> <unk> <pad> words...``) or subword
    (:class:`rnnkit.data.bpe.BPETokenizer`) tokenizer and an optional lower-casing that applies before it.
    """

    def __init__(self, tokenizer: Tokenizer, lowercase: bool = False) -> None:
        if tokenizer.kind not in ("word", "bpe"):
            raise DataError(f"a classifier reads word or bpe tokens, not {tokenizer.kind!r}")
        if PAD not in tokenizer.vocab or UNK not in tokenizer.vocab:
            raise DataError(f"the {tokenizer.kind} vocabulary needs {PAD} and {UNK}")
        self.tokenizer, self.lowercase = tokenizer, bool(lowercase)
        self._stoi = {s: i for i, s in enumerate(tokenizer.vocab)}
        self.pad_id, self.unk_id = self._stoi[PAD], self._stoi[UNK]

    @classmethod
    def build(cls, texts: Sequence[str], kind: str = "word", lowercase: bool = False, min_freq: int = 1,
              max_vocab: int | None = None, vocab_size: int = 8000) -> "TextEncoder":
        """Learn the vocabulary from training ``texts``: words seen ``min_freq`` times (at most ``max_vocab``
        entries), or a BPE vocabulary of ``vocab_size`` pieces trained on them."""
        if lowercase:
            texts = [t.lower() for t in texts]
        if kind == "word":
            if max_vocab is not None and max_vocab < 3:
                raise DataError(f"max_vocab must be >= 3 (room for {EOS}, {UNK} and {PAD}), got {max_vocab}")
            base = WordTokenizer.build("\n".join(texts), min_freq=min_freq,
                                       max_vocab=None if max_vocab is None else max_vocab - 1)
            words = [w for w in base.vocab if w not in (EOS, UNK, PAD)]
            return cls(WordTokenizer([EOS, UNK, PAD, *words]), lowercase)
        if kind == "bpe":
            return cls(BPETokenizer.build("\n".join(texts), vocab_size=vocab_size, min_freq=min_freq), lowercase)
        raise DataError(f"unknown tokenizer {kind!r}; expected 'word' or 'bpe'")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def _prepare(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def pieces(self, text: str) -> list[str]:
        """The tokens ``text`` becomes, unknown ones shown as ``<unk>`` (what ``--explain`` prints)."""
        itos = self.tokenizer.vocab
        return [itos[i] for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        text = self._prepare(text)
        if self.tokenizer.kind == "word":
            stoi, unk = self._stoi, self.unk_id
            return [stoi.get(w, unk) for w in text.split()]
        return self.tokenizer.encode(text)

    def encode_all(self, texts: Sequence[str], source: Source = None,
                   lines: Sequence[int] | None = None) -> list[list[int]]:
        """Ids of every text; a text that yields no token at all is a DataError naming its line."""
        if self.tokenizer.kind == "bpe":
            out = self.tokenizer.encode_batch([self._prepare(t) for t in texts])
        else:
            out = [self.encode(t) for t in texts]
        for i, ids in enumerate(out):
            if not ids:
                where = f"line {lines[i]}: " if lines is not None else ""
                raise DataError(f"{where}the text {texts[i]!r} has no tokens", source)
        return out

    def unknown_rate(self, encoded: Sequence[Sequence[int]]) -> float:
        total = sum(len(s) for s in encoded)
        return sum(s.count(self.unk_id) for s in encoded) / max(total, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.to_dict(), "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: Source = None) -> "TextEncoder":
        if not isinstance(d, Mapping) or "tokenizer" not in d:
            raise DataError("text encoder needs a 'tokenizer' entry", source)
        try:
            return cls(tokenizer_from_dict(d["tokenizer"], source), bool(d.get("lowercase", False)))
        except DataError as err:
            raise DataError(err.problem, source) from None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TextEncoder) and other.lowercase == self.lowercase
                and other.tokenizer == self.tokenizer)

    def __repr__(self) -> str:
        return f"TextEncoder({self.tokenizer!r}, lowercase={self.lowercase})"


# ---------------------------------------------------------------------------------------------- batching

def iter_batches(encoded: Sequence[Sequence[int]], batches: Sequence[Sequence[int]],
                 pad_id: int) -> Iterator[tuple[list[int], Tensor, Tensor]]:
    """``(indices, tokens, lengths)`` for each batch of indices."""
    for idx in batches:
        tokens, lengths = pad([encoded[i] for i in idx], pad_id, batch_first=True)
        yield list(idx), tokens, lengths
