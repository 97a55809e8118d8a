"""Every model trains under autocast (``--bf16`` on a GPU); CPU autocast everywhere, CUDA's too where there is one.

A Linear under autocast returns bfloat16 while embeddings stay float32: the captioner's initial state from its
image bridge met float32 word vectors and the layer refused the mixed dtypes. rnnkit's layers run the
recurrence in their parameters' dtype under autocast, casting what comes in.
"""
from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.models.captioner import CaptionConfig, CaptionModel
from rnnkit.models.classifier import Classifier, ClassifierConfig
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def _backward_runs(model, loss):
    loss.float().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-torch"])
def test_models_train_under_autocast(cell, device):
    torch.manual_seed(0)
    cap = CaptionModel(CaptionConfig(vocab_size=11, widths=[4, 8], hidden_size=8, embed_size=6, cell=cell))
    lm = LanguageModel(LMConfig(vocab_size=10, embed_size=8, hidden_size=8, num_layers=2, cell=cell))
    s2s = Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, embed_size=6, hidden_size=8, cell=cell))
    clf = Classifier(ClassifierConfig(vocab_size=9, num_classes=2, embed_size=6, hidden_size=8, cell=cell))
    for model in (cap, lm, s2s, clf):
        model.to(device)
    tokens = torch.randint(1, 9, (5, 2), device=device)
    lengths = torch.tensor([5, 3])
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        outputs = {
            cap: cap(torch.randn(2, 3, 32, 32, device=device), torch.randint(0, 11, (4, 2), device=device)),
            lm: lm(tokens)[0],
            s2s: s2s(tokens, lengths, torch.randint(0, 9, (4, 2), device=device)),
            clf: clf(tokens.t(), lengths),                                  # batch-first
        }
    for model, out in outputs.items():
        _backward_runs(model, out.float().square().mean())


def test_a_layer_under_autocast_runs_in_its_parameters_dtype():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 3, 2)
    x, h0, c0 = torch.randn(5, 2, 4), torch.randn(2, 2, 3), torch.randn(2, 2, 3)
    want, _ = layer(x.bfloat16().float(), (h0.bfloat16().float(), c0))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got, (h_n, c_n) = layer(x.bfloat16(), (h0.bfloat16(), c0))
        step_out, _ = layer.step(x[0].bfloat16(), (h0.bfloat16(), c0))
    assert got.dtype == h_n.dtype == torch.float32
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(step_out, want[0])
