"""Data: reading corpora and labelled text, tokenizing (char, word, BPE), TBPTT and length-bucketed batching."""

from .batching import BPTTStream, batchify
from .bpe import BPETokenizer
from .datasets import CORPORA, corpus_names, default_cache_dir, load_named
from .errors import DataError
from .buckets import bucket_batches, pad
from .labelled import LabelledData, LabelSet, Table, TextEncoder, read_labelled, read_table
from .splits import holdout_tail
from .stdlib_corpus import StdlibCorpus, build_stdlib_corpus
from .text import decode_text, read_text
from .special import EOS, PAD, UNK
from .tokenizer_dict import tokenizer_from_dict
from .tokenizers import CharTokenizer, Tokenizer, WordTokenizer
from .images import CaptionedImage, load_caption_set, load_image, load_images, read_captions
from .shapes import ShapeScenes, make_shapes, write_shapes_folder
from .dates import dates_splits, generate_dates
from .parallel import ParallelBatch, SequenceTokenizer, encode_pairs, read_parallel, read_tsv

__all__ = [
    "BPETokenizer",
    "BPTTStream",
    "CORPORA",
    "CaptionedImage",
    "CharTokenizer",
    "DataError",
    "EOS",
    "LabelSet",
    "LabelledData",
    "PAD",
    "ParallelBatch",
    "SequenceTokenizer",
    "ShapeScenes",
    "StdlibCorpus",
    "Table",
    "TextEncoder",
    "Tokenizer",
    "UNK",
    "WordTokenizer",
    "batchify",
    "bucket_batches",
    "build_stdlib_corpus",
    "corpus_names",
    "dates_splits",
    "decode_text",
    "default_cache_dir",
    "encode_pairs",
    "generate_dates",
    "holdout_tail",
    "load_caption_set",
    "load_image",
    "load_images",
    "load_named",
    "make_shapes",
    "pad",
    "read_captions",
    "read_labelled",
    "read_parallel",
    "read_table",
    "read_text",
    "read_tsv",
    "tokenizer_from_dict",
    "write_shapes_folder",
]
