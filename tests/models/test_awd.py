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


def test_ntasgd_average_is_torchs_average_bit_for_bit():
    """NT-ASGD's foreach averaging (rnnkit.training.asgd.swa_average, the speed fix: torch's default runs one
    tensor at a time on the CPU) gives exactly torch's default AveragedModel numbers, tied weights and all."""
    from torch.optim.swa_utils import AveragedModel

    from rnnkit.models.language_model import LanguageModel, LMConfig
    from rnnkit.training.asgd import NTASGD, averaged_model

    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=30, embed_size=8, hidden_size=12, num_layers=3, awd=True,
                                   last_hidden_size=8, tie_weights=True, weight_drop=0.2, layer_dropout=0.1))
    model.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))    # an integer buffer too
    ours, torchs = averaged_model(model), AveragedModel(model, use_buffers=True)
    for _ in range(7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.steps_seen += 3
        ours.update_parameters(model)
        torchs.update_parameters(model)
    assert int(ours.n_averaged) == int(torchs.n_averaged) == 7
    for (name, a), (_, b) in zip(ours.state_dict().items(), torchs.state_dict().items()):
        assert torch.equal(a, b), name
    nt = NTASGD(model, nonmono=1)
    for loss in (2.0, 3.0, 2.5):                   # 2.5 is worse than the best before the last one
        nt.validated(loss)
    assert nt.averaging and nt.averaged.multi_avg_fn is not None


def test_awd_models_start_from_awds_initialisation_and_others_are_untouched():
    """``awd`` without ``init_range``: the (tied) embedding uniform in (-0.1, 0.1) and the decoder bias zero, as
    salesforce/awd-lstm-lm; the recurrent layers keep PyTorch's draw. With ``init_range``, and for other models,
    nothing changes."""
    from rnnkit.models.language_model import LanguageModel, LMConfig

    def build(**kw):
        torch.manual_seed(0)
        base = {"vocab_size": 400, "embed_size": 16, "hidden_size": 24, "num_layers": 3, "last_hidden_size": 16,
                "tie_weights": True}
        return LanguageModel(LMConfig(**{**base, **kw}))

    awd = build(awd=True)
    assert awd.embedding.weight.abs().max() <= 0.1 and awd.embedding.weight.std() > 0.05
    assert awd.decoder.weight is awd.embedding.weight and torch.equal(awd.decoder.bias, torch.zeros(400))
    for layer in awd.rnn.layers:                                    # PyTorch's (-1/sqrt(H), 1/sqrt(H))
        assert layer.weight_hh_l0.abs().max() <= 1 / layer.hidden_size ** 0.5
    plain = build(awd=False, last_hidden_size=None, embed_size=24)
    assert plain.embedding.weight.std() > 0.5                          # torch's N(0, 1), as before
    ranged = build(awd=True, init_range=0.05)
    assert all(p.abs().max() <= 0.05 for p in ranged.parameters()) and ranged.decoder.bias.abs().max() > 0
    with torch.no_grad():                                            # the first loss is about log(V)
        logits, _ = awd.eval()(torch.randint(0, 400, (5, 3)))
    assert abs(torch.log_softmax(logits, -1).mean().neg().item() - 6.0) < 0.1  # log(400) = 5.99
