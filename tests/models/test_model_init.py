"""One initialisation for every model: ``init_range`` first, then the forget-gate bias, so ``--init-range`` never
erases ``--forget-bias``; and one ``to_dict``/``from_dict`` for every configuration."""
import pytest
import torch

from rnnkit.layers.recurrent import RecurrentLayer
from rnnkit.models.captioner import CaptionConfig, CaptionModel
from rnnkit.models.classifier import Classifier, ClassifierConfig
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

R, BIAS = 0.05, 2.5          # a forget bias outside (-R, R): an init_range applied after it would show


def lm(**kw):
    return LanguageModel(LMConfig(vocab_size=9, embed_size=6, hidden_size=6, num_layers=2, **kw))


def classifier(**kw):
    return Classifier(ClassifierConfig(vocab_size=9, num_classes=3, embed_size=6, hidden_size=5, num_layers=2,
                                       pooling="attention", **kw))


def seq2seq(**kw):
    return Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=8, embed_size=6, hidden_size=5, encoder_layers=2,
                                 decoder_layers=2, **kw))


def captioner(**kw):
    return CaptionModel(CaptionConfig(vocab_size=9, widths=[4, 8], image_size=16, embed_size=6, hidden_size=5,
                                      num_layers=2, attention="bahdanau", **kw))


MODELS = {"lm": lm, "classifier": classifier, "seq2seq": seq2seq, "captioner": captioner}


def forget_biases(model):
    """The forget gate's total bias (bias_ih's forget block + bias_hh's) of every layer and direction."""
    out = []
    for layer in (m for m in model.modules() if isinstance(m, RecurrentLayer)):
        H = layer.hidden_size
        for k in range(layer.num_layers):
            for d in range(layer.num_directions):
                _, _, b_ih, b_hh = layer.layer_weights(k, d)
                out.append((b_ih[H:2 * H] + b_hh[H:2 * H]).detach())
    return out


@pytest.mark.parametrize("name", MODELS)
def test_init_range_then_forget_bias_on_every_model(name):
    torch.manual_seed(0)
    model = MODELS[name](cell="lstm", init_range=R, forget_bias=BIAS)
    biases = forget_biases(model)
    assert len(biases) == {"lm": 2, "classifier": 4, "seq2seq": 6, "captioner": 2}[name]   # 2 layers (x2 directions)
    for b in biases:
        torch.testing.assert_close(b, torch.full_like(b, BIAS), rtol=0, atol=0)
    cnn = {id(p) for p in getattr(model, "encoder").parameters()} if name == "captioner" else set()
    for pname, p in model.named_parameters():
        if id(p) in cnn:
            continue                                               # the captioner's CNN keeps its own init
        rest = p.detach().clone()
        if pname.startswith(("rnn.bias", "encoder.bias", "decoder.bias")):
            rest = torch.cat([rest[:rest.shape[0] // 4], rest[rest.shape[0] // 2:]])   # all but the forget block
        assert rest.abs().max() <= R, pname


@pytest.mark.parametrize("name", MODELS)
def test_forget_bias_without_init_range_and_none_for_cells_without_a_forget_gate(name):
    torch.manual_seed(0)
    plain = MODELS[name](cell="lstm")
    torch.manual_seed(0)
    biased = MODELS[name](cell="lstm", forget_bias=BIAS)
    for b in forget_biases(biased):
        torch.testing.assert_close(b, torch.full_like(b, BIAS), rtol=0, atol=0)
    changed = [n for n, p in biased.named_parameters() if not torch.equal(p, dict(plain.named_parameters())[n])]
    assert changed and all(".bias_" in n for n in changed)         # the same draw; only the forget blocks moved
    torch.manual_seed(0)
    gru = MODELS[name](cell="gru", forget_bias=BIAS)
    torch.manual_seed(0)
    assert all(torch.equal(p, q) for p, q in zip(gru.parameters(), MODELS[name](cell="gru").parameters()))


@pytest.mark.parametrize("config", [LMConfig(vocab_size=5, cell="gru", init_range=0.1),
                                    ClassifierConfig(vocab_size=5, num_classes=2, pooling="mean"),
                                    Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6, attention="none"),
                                    CaptionConfig(vocab_size=5, widths=[4], forget_bias=1.0)])
def test_configs_round_trip_and_ignore_unknown_keys(config):
    assert type(config).from_dict({**config.to_dict(), "from_a_newer_rnnkit": 1}) == config
    assert config.recurrence.name == config.cell
    with pytest.raises(ValueError, match="unknown cell 'lstmx'"):
        type(config).from_dict({**config.to_dict(), "cell": "lstmx"})
