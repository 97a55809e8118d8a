"""The captioner: the image sets the decoder's first state, the previous word is the next input, one step
interface for greedy and beam search, teacher forcing equal to stepping, a frozen encoder stays frozen."""
import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.images import normalize
from rnnkit.data.shapes import make_shapes
from rnnkit.decoding.beam import beam_search, greedy_search
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


def test_cap_first_step_is_the_equations_by_hand():
    """h_0, c_0 = tanh(W_init f + b) (h first, then c); one LSTM step on the <eos> embedding; the output layer."""
    model = _model(cell="lstm")
    images = _images(2)
    with torch.no_grad():
        logits, state = model.step(torch.zeros(2, dtype=torch.long), model.start(images))
        f = F.adaptive_avg_pool2d(model.encoder(images), 2).flatten(1)
        h0, c0 = torch.tanh(model.init_state(f)).split(12, dim=1)
        W_ih, W_hh, b_ih, b_hh = model.rnn.layer_weights(0, 0)
        i, f_, g, o = (model.embedding.weight[0] @ W_ih.T + b_ih + h0 @ W_hh.T + b_hh).chunk(4, dim=1)
        c1 = torch.sigmoid(f_) * c0 + torch.sigmoid(i) * torch.tanh(g)
        h1 = torch.sigmoid(o) * torch.tanh(c1)
        torch.testing.assert_close(state.h[0], h1)
        torch.testing.assert_close(state.c[0], c1)
        torch.testing.assert_close(logits, h1 @ model.out.weight.T + model.out.bias)


def test_cap_beam_one_is_greedy_and_a_full_beam_finds_the_best_captions():
    """Beam size 1 is greedy search token for token; a beam as wide as the vocabulary keeps every prefix of one
    word, so with two words at most its three best are the best of all captions, scored by hand."""
    model = _model(cell="gru")
    images = normalize(make_shapes(3, seed=6, image_size=32).images)
    with torch.no_grad():
        greedy = greedy_search(_step_fn(model), model.start(images), 3, bos=0, eos=0, max_len=6)
        one = beam_search(_step_fn(model), model.start(images), 3, bos=0, eos=0, max_len=6, beam_size=1)
        assert [h[0].tokens for h in one] == [h.tokens for h in greedy]
        assert [h[0].log_prob for h in one] == pytest.approx([h.log_prob for h in greedy], abs=1e-9)
        best = beam_search(_step_fn(model), model.start(images), 3, bos=0, eos=0, max_len=2, beam_size=V,
                           n_best=3)
        first, state = _step_fn(model)(torch.zeros(3, dtype=torch.long), model.start(images))   # (3, V)
        for n in range(3):
            captions = [([], True, float(first[n, 0]))]                      # <eos> at once
            for w in range(1, V):
                row = state.reorder(torch.tensor([n]))
                second, _ = _step_fn(model)(torch.tensor([w]), row)
                captions += [([w] if v == 0 else [w, v], v == 0, float(first[n, w] + second[0, v]))
                             for v in range(V)]
            top = sorted(captions, key=lambda c: -c[2])[:3]
            assert [h.tokens for h in best[n]] == [c[0] for c in top]
            assert [h.finished for h in best[n]] == [c[1] for c in top]
            assert [h.log_prob for h in best[n]] == pytest.approx([c[2] for c in top], abs=1e-5)


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


def _stand_in_resnet():
    """A TorchvisionResNet without torchvision: load_pretrained's mapping of torchvision's names (conv1, bn1,
    layer1..4) onto the body's indices, on small stand-in modules."""
    from rnnkit.models.captioner import TorchvisionResNet
    enc = TorchvisionResNet.__new__(TorchvisionResNet)
    torch.nn.Module.__init__(enc)
    enc.name = "resnet18"
    enc.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                   torch.nn.MaxPool2d(2), *(torch.nn.Conv2d(4, 4, 1) for _ in range(4)))
    return enc


def _torchvision_names(enc):
    """enc's weights under torchvision's names, plus an fc layer that load_pretrained ignores."""
    names = ["conv1", "bn1", None, None, "layer1", "layer2", "layer3", "layer4"]
    state = {f"{names[int(k.split('.')[1])]}.{k.split('.', 2)[2]}": v.clone() for k, v in enc.state_dict().items()}
    return {**state, "fc.weight": torch.randn(10, 4)}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_cap_encoder_weights_load_by_torchvision_names(tmp_path, suffix):
    from safetensors.torch import save_file
    source, target = _stand_in_resnet(), _stand_in_resnet()
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    path = tmp_path / f"resnet18{suffix}"
    state = _torchvision_names(source)
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    target.load_pretrained(path)
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_cap_encoder_weights_errors_name_the_file(tmp_path):
    from rnnkit.data.errors import DataError
    enc = _stand_in_resnet()
    state = _torchvision_names(enc)
    path = tmp_path / "w.pth"
    torch.save({**state, "layer2.weight": torch.zeros(8, 4, 1, 1)}, path)
    with pytest.raises(DataError, match=r"w\.pth: not torchvision resnet18 weights \(tensors of another shape: "
                                        r"body\.5\.weight \(8, 4, 1, 1\), expected \(4, 4, 1, 1\)\)"):
        enc.load_pretrained(path)
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, path)
    with pytest.raises(DataError, match=r"w\.pth: not torchvision resnet18 weights \(missing \['body\.7\.bias'"):
        enc.load_pretrained(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(DataError, match=r"w\.pth: not torchvision resnet18 weights \(no name-to-tensor mapping\)"):
        enc.load_pretrained(path)
    path.write_bytes(b"truncated")
    with pytest.raises(DataError, match=r"w\.pth: corrupt or not torchvision resnet18 weights \(unreadable: "):
        enc.load_pretrained(path)
