"""LanguageModel: shapes, generation steps, initialisation, weight tying, and save → load equality."""
from __future__ import annotations

import pytest
import torch

from rnnkit.tasks.language_modeling import load_run as load_lm
from rnnkit.data import CharTokenizer
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.training.checkpoint import save_run


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from a second intra-op thread, and the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

TEXT = "abcabd abcabe\n"


def _model(**kw):
    cfg = dict(vocab_size=7, embed_size=8, hidden_size=12, num_layers=2, engine="python")
    cfg.update(kw)
    return LanguageModel(LMConfig(**cfg))


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-torch", "rnn", "rnn-relu"])
def test_shapes_and_step_equals_forward(cell):
    torch.manual_seed(0)
    model = _model(cell=cell).eval()
    x = torch.randint(0, 7, (6, 3))
    logits, state = model(x)
    assert logits.shape == (6, 3, 7)
    st = None
    for t in range(6):
        step_logits, st = model.step(x[t], st)
        assert torch.allclose(step_logits, logits[t], atol=1e-6)
    for a, b in zip(st if isinstance(st, tuple) else (st,), state if isinstance(state, tuple) else (state,)):
        assert torch.allclose(a, b, atol=1e-6)


def test_init_range_and_tied_weights():
    torch.manual_seed(0)
    m = _model(init_range=0.1, embed_size=12, tie_weights=True)
    assert all(p.abs().max() <= 0.1 for p in m.parameters())
    assert m.decoder.weight is m.embedding.weight
    assert m.rnn.weight_hh_l1.abs().max() > 0.09               # uniform over the whole range
    with pytest.raises(ValueError, match="embed_size == hidden_size"):
        LMConfig(vocab_size=7, embed_size=8, hidden_size=12, tie_weights=True)
    with pytest.raises(ValueError, match="unknown cell"):
        LMConfig(vocab_size=7, cell="transformer")


def test_dropout_only_in_training_mode():
    torch.manual_seed(0)
    m = _model(dropout=0.5)
    x = torch.randint(0, 7, (5, 2))
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])


def _flatten_like_cudnn(layer: torch.nn.Module) -> None:
    """Make every weight of ``layer`` a view into one buffer, as cuDNN's ``flatten_parameters`` does on a GPU."""
    params = list(layer.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()


@pytest.mark.parametrize("kw", [dict(cell="lstm"), dict(cell="gru", dropout=0.3),
                                dict(cell="lstm", tie_weights=True, embed_size=12, init_range=0.1),
                                dict(cell="lstm", tie_weights=True, embed_size=12, flat=True)],
                         ids=["lstm", "gru-dropout", "lstm-tied", "lstm-tied-flat-weights"])
def test_save_load_gives_the_same_logits(tmp_path, kw):
    torch.manual_seed(0)
    tok = CharTokenizer.build(TEXT)
    flat = kw.pop("flat", False)
    model = _model(vocab_size=tok.vocab_size, **kw)
    with torch.no_grad():                   # weights far from their initialisation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    if flat:                                # safetensors' save_model refused these (found on an H200)
        _flatten_like_cudnn(model.rnn)
    save_run(tmp_path, model, {"task": "lm", "level": "char", "model": model.config.to_dict(),
                               "tokenizer": tok.to_dict()})
    loaded, tokenizer, config = load_lm(tmp_path)
    assert not loaded.training
    assert tokenizer == tok and config["level"] == "char" and loaded.config == model.config
    if model.config.tie_weights:
        assert loaded.decoder.weight is loaded.embedding.weight
    x = torch.tensor(tok.encode(TEXT)).unsqueeze(1)
    model.eval()
    with torch.no_grad():
        expected, state = model(x)
        got, got_state = loaded(x)
    assert torch.equal(got, expected)
    for a, b in zip(got_state if isinstance(got_state, tuple) else (got_state,),
                    state if isinstance(state, tuple) else (state,)):
        assert torch.equal(a, b)
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
