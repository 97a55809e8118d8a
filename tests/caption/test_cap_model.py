"""The captioner: the image sets the decoder's first state, the previous word is the next input, one step
interface for greedy and beam search, teacher forcing equal to stepping, a frozen encoder stays frozen."""
import pytest
import torch

from rnnkit.data.images import normalize
from rnnkit.data.shapes import make_shapes
from rnnkit.decoding.beam import beam_search
from rnnkit.models.captioner import CaptionConfig, CaptionModel
from rnnkit.tasks.captioning import _step_fn, encode_captions, generate

V = 11


def _model(**kw) -> CaptionModel:
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, widths=[8, 16], image_size=32, embed_size=8, hidden_size=12, max_length=6)
    return CaptionModel(CaptionConfig(**{**cfg, **kw})).eval()


def _images(n=2, size=32):
    return normalize(make_shapes(n, seed=5, image_size=size).images)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-torch", "rnn"])
def test_cap_image_sets_first_state(cell):
    model = _model(cell=cell, num_layers=2)
    images = _images(2)
    first = torch.zeros(2, dtype=torch.long)                       # the same first word for both images
    with torch.no_grad():
        logits, _ = model.step(first, model.start(images))
        assert not torch.allclose(logits[0], logits[1], atol=1e-4)   # another image, other first-step logits
        model.init_state.weight.zero_()
        model.init_state.bias.zero_()
        state = model.start(images)
        assert state.h.abs().max() == 0 and (state.c is None or state.c.abs().max() == 0)
        logits, _ = model.step(first, state)
    assert torch.equal(logits[0], logits[1])                         # no projection: the image can't matter


def test_cap_state_shapes():
    model = _model(cell="lstm", num_layers=2, attention="bahdanau")
    state = model.start(_images(3))
    assert state.h.shape == (2, 3, 12) and state.c.shape == (2, 3, 12)
    assert state.keys.shape == (3, 8 * 8, 16)                      # 32 px → 16×16 after the stem → 8×8 grid
    picked = state.reorder(torch.tensor([2, 2, 0]))
    assert torch.equal(picked.h[:, 1], state.h[:, 2]) and torch.equal(picked.keys[2], state.keys[0])


@pytest.mark.parametrize("cell, attention", [("lstm", "none"), ("gru", "none"), ("lstm", "bahdanau"),
                                             ("gru-torch", "luong-general")])
def test_cap_teacher_forcing_equals_stepping(cell, attention):
    model = _model(cell=cell, attention=attention, num_layers=2)
    images = _images(3)
    inputs, _ = encode_captions(_tok(), ["a b c", "c", "b b"])
    with torch.no_grad():
        whole = model(images, inputs)
        state, steps = model.start(images), []
        for t in range(inputs.shape[0]):
            logits, state = model.step(inputs[t], state)
            steps.append(logits)
    assert whole.shape == (inputs.shape[0], 3, V)
    torch.testing.assert_close(whole, torch.stack(steps), rtol=1e-5, atol=1e-5)


def _tok():
    from rnnkit.data import WordTokenizer
    return WordTokenizer(["<eos>", "<unk>", "a", "b", "c", "d", "e", "f", "g", "h", "i"])


def test_cap_sampled_word_is_next_input():
    model = _model(attention="bahdanau")
    fed, produced = [], []
    original = model.step

    def spy(tokens, state):
        fed.append(tokens.clone())
        logits, state = original(tokens, state)
        produced.append(logits.argmax(-1))
        return logits, state

    model.step = spy
    raw = make_shapes(3, seed=5, image_size=32).images
    hyps = generate(model, raw, _tok(), beam=1, max_len=6)
    assert torch.equal(fed[0], torch.zeros(3, dtype=torch.long))          # <eos> starts every caption
    for t in range(1, len(fed)):
        assert torch.equal(fed[t], produced[t - 1])                        # what was chosen is what is fed
    for n, hyp in enumerate(hyps):
        chosen = [int(p[n]) for p in produced]
        assert hyp.tokens == chosen[:len(hyp.tokens)]


def test_cap_beam_one_is_greedy_and_beam_is_best():
    model = _model(cell="gru")
    raw = make_shapes(4, seed=6, image_size=32).images
    greedy = generate(model, raw, _tok(), beam=1, max_len=6)
    one = generate(model, raw, _tok(), beam=1, max_len=6)
    assert [h.tokens for h in greedy] == [h.tokens for h in one]
    wide = generate(model, raw, _tok(), beam=4, max_len=6)
    for g, w in zip(greedy, wide):
        if g.finished and w.finished:
            assert w.log_prob >= g.log_prob - 1e-6                          # the wider search finds no worse
    state = model.start(normalize(raw))
    best = beam_search(_step_fn(model), state, 4, bos=0, eos=0, max_len=6, beam_size=3, n_best=3)
    assert all(len(b) >= 1 for b in best)


def test_cap_attention_trace_per_word():
    model = _model(attention="bahdanau")
    raw = make_shapes(2, seed=5, image_size=32).images
    hyps = generate(model, raw, _tok(), beam=2, max_len=5, trace=True)
    for h in hyps:
        assert h.trace.shape == (h.length, 64)
        torch.testing.assert_close(h.trace.sum(-1), torch.ones(h.length))


def test_cap_frozen_encoder():
    model = _model(freeze_encoder=True, norm="batch").train()
    assert not model.encoder.training and model.embedding.training
    stats = model.encoder.body[1].running_mean.clone()
    inputs, targets = encode_captions(_tok(), ["a b", "c"])
    model(_images(2), inputs).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.init_state.weight.grad is not None
    assert torch.equal(model.encoder.body[1].running_mean, stats)


def test_cap_config_errors():
    with pytest.raises(ValueError, match="unknown attention 'soft'"):
        CaptionConfig(vocab_size=5, attention="soft")
    with pytest.raises(ValueError, match="luong-dot attention needs hidden_size == the encoder's channels"):
        _model(attention="luong-dot")
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="encoder 'resnet18' needs torchvision, which is not installed"):
            _model(encoder="resnet18")
    else:
        model = _model(encoder="resnet18", image_size=64)
        assert model.start(_images(1, 64)).h.shape == (1, 1, 12)


def test_cap_config_round_trip():
    cfg = CaptionConfig(vocab_size=7, widths=[4, 8], attention="bahdanau")
    assert CaptionConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg


def test_cap_recalibrated_batch_norm_matches_batch_statistics():
    model = _model(norm="batch")
    for m in model.encoder.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)                                 # stale statistics
            m.running_var.fill_(0.01)
    images = _images(8)
    with torch.no_grad():
        batch_stats = model.encoder.train()(images)
        assert model.recalibrate_norm([images])                      # one batch: its own statistics
        model.eval()
        torch.testing.assert_close(model.encoder(images), batch_stats, rtol=0, atol=0.02)
    assert model.encoder.body[1].momentum == 0.1
    assert not _model(norm="group").recalibrate_norm([images])
