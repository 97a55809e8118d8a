"""Language-model data: reading corpora, tokenizing, and truncated-BPTT batching."""

from .batching import BPTTStream, batchify
from .datasets import CORPORA, corpus_names, default_cache_dir, load_named
from .errors import DataError
from .splits import holdout_tail
from .stdlib_corpus import StdlibCorpus, build_stdlib_corpus
from .text import decode_text, read_text
from .tokenizers import EOS, UNK, CharTokenizer, Tokenizer, WordTokenizer, tokenizer_from_dict

__all__ = [
    "BPTTStream",
    "CORPORA",
    "CharTokenizer",
    "DataError",
    "EOS",
    "StdlibCorpus",
    "Tokenizer",
    "UNK",
    "WordTokenizer",
    "batchify",
    "build_stdlib_corpus",
    "corpus_names",
    "decode_text",
    "default_cache_dir",
    "holdout_tail",
    "load_named",
    "read_text",
    "tokenizer_from_dict",
]
