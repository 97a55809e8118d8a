"""The special tokens every tokenizer shares: end of line or sentence, unknown, and padding."""
from __future__ import annotations

EOS = "<eos>"   # the end of a line (Mikolov's PTB convention) or of a sentence
UNK = "<unk>"   # a word or piece outside the vocabulary
PAD = "<pad>"   # filler after the end of a shorter sequence in a batch
