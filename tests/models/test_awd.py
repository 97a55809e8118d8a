"""AWD-LSTM's model-side pieces, each by itself on tiny sizes (rnnkit.models.awd)."""
from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from rnnkit.models.awd import (LockedDropout, activation_regularisation, embedding_dropout,
                               temporal_activation_regularisation, variable_bptt)


def test_embedding_dropout_zeroes_whole_words_and_rescales():
    torch.manual_seed(0)
    emb = nn.Embedding(50, 8)
    words = torch.arange(50).repeat(3, 1).t()                           # (50, 3): every word in every column
    out = embedding_dropout(emb, words, 0.4, training=True)
    zero_rows = (out == 0).all(-1)                                      # (50, 3)
    assert torch.equal(zero_rows, zero_rows[:, :1].expand_as(zero_rows))  # a word is dropped everywhere or nowhere
    dropped = zero_rows[:, 0]
    assert 0 < dropped.sum() < 50
    torch.testing.assert_close(out[~dropped, 0], emb.weight[~dropped].detach() / 0.6)
    assert torch.equal(embedding_dropout(emb, words, 0.4, training=False), emb(words))


def test_locked_dropout_shares_the_mask_over_time():
    torch.manual_seed(0)
    drop = LockedDropout(0.5)
    out = drop(torch.ones(7, 4, 100))
    assert torch.equal(out == 0, (out[:1] == 0).expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert abs((out[0] == 0).float().mean().item() - 0.5) < 0.07
    x = torch.randn(3, 2, 5)
    assert torch.equal(drop.eval()(x), x)


def test_ar_and_tar_equal_their_formulas():
    h = torch.tensor([[[1.0, 2.0]], [[3.0, -1.0]], [[0.0, 1.0]]])       # (T=3, N=1, H=2)
    assert activation_regularisation(h, 2.0).item() == pytest.approx(2.0 * (1 + 4 + 9 + 1 + 0 + 1) / 6)
    # differences: (2, -3), (-3, 2) -> squares 4, 9, 9, 4 -> mean 6.5
    assert temporal_activation_regularisation(h, 1.0).item() == pytest.approx(6.5)


def test_variable_bptt_lengths():
    rng = random.Random(0)
    lengths = [variable_bptt(70, rng) for _ in range(2000)]
    assert min(lengths) >= 5
    half = sum(1 for n in lengths if n < 52) / len(lengths)
    assert 0.02 < half < 0.09                                            # about 5% of windows near bptt/2
    full = [n for n in lengths if n >= 52]
    assert abs(sum(full) / len(full) - 70) < 1
