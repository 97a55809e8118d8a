"""The seq2seq model: the equations by hand, shapes, masking, the decoder state, source reversal, scheduled
sampling, the loss, and a copy task learnt to 100%."""
import random

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from rnnkit.data.buckets import bucket_batches, pad
from rnnkit.data.parallel import iterate
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig, Seq2SeqDecoderState, seq2seq_loss
from rnnkit.tasks.seq2seq import decode_encoded
from rnnkit.training.checkpoint import load_weights


def tiny(**kw):
    base = dict(src_vocab_size=11, tgt_vocab_size=9, tgt_eos_id=0, embed_size=6, hidden_size=5)
    return Seq2Seq(Seq2SeqConfig(**{**base, **kw}))


SOURCES = [[3, 4, 5, 6, 0], [7, 8, 0], [2, 0]]
TARGETS_IN = torch.tensor([[0, 0, 0], [5, 6, 7], [4, 3, 2], [1, 1, 1]])


@pytest.mark.parametrize("cell", ["gru", "lstm", "gru-torch"])
@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong-dot", "luong-general"])
def test_shapes_and_padding_is_never_attended(cell, attention):
    torch.manual_seed(0)
    dec = 10 if attention == "luong-dot" else 7
    model = tiny(cell=cell, attention=attention, decoder_hidden_size=dec, decoder_layers=2, dropout=0.1).eval()
    src, lengths = pad(SOURCES, 0)
    logits = model(src, lengths, TARGETS_IN)
    assert logits.shape == (4, 3, 9)
    state = model.encode(src, lengths)
    assert state.memory.shape == (3, 5, 10) and state.mask.tolist()[2] == [True, True, False, False, False]
    _, state = model.step(torch.zeros(3, dtype=torch.long), state)
    if attention == "none":
        assert state.attention is None
    else:
        torch.testing.assert_close(state.attention.sum(-1), torch.ones(3))
        assert torch.all(state.attention[~state.mask] == 0)
    # padding values never matter: change the padded ids and nothing moves
    src2 = src.clone()
    src2[~state.mask.t()] = 9
    torch.testing.assert_close(model(src2, lengths, TARGETS_IN), logits)


def test_forward_equals_stepping_one_token_at_a_time():
    torch.manual_seed(1)
    model = tiny(attention="luong-general", decoder_layers=2).eval()
    src, lengths = pad(SOURCES, 0)
    logits = model(src, lengths, TARGETS_IN)
    state = model.encode(src, lengths)
    for t in range(TARGETS_IN.shape[0]):
        step_logits, state = model.step(TARGETS_IN[t], state)
        torch.testing.assert_close(step_logits, logits[t])


def test_reorder_selects_rows_of_every_part_of_the_state():
    torch.manual_seed(2)
    model = tiny(cell="lstm", decoder_layers=2).eval()
    src, lengths = pad(SOURCES, 0)
    state = model.encode(src, lengths)
    _, state = model.step(torch.tensor([0, 0, 0]), state)
    idx = torch.tensor([2, 2, 0])
    r = state.reorder(idx)
    assert isinstance(r, Seq2SeqDecoderState) and len(r) == 3
    for name in ("feed", "memory", "cache", "mask", "summary", "attention"):
        torch.testing.assert_close(getattr(r, name), getattr(state, name)[idx])
    assert isinstance(r.hidden, tuple) and r.hidden[0].shape == (2, 3, 10)       # (h, c), each (layers, B, H)
    for before, after in zip(state.hidden, r.hidden):
        torch.testing.assert_close(after, before[:, idx])
    # stepping the reordered state equals reordering the stepped state
    a, _ = model.step(torch.tensor([4, 5, 6])[idx], r)
    b, _ = model.step(torch.tensor([4, 5, 6]), state)
    torch.testing.assert_close(a, b[idx])


def test_source_reversal_happens_before_the_encoder_and_nowhere_else():
    torch.manual_seed(3)
    reversed_model = tiny(reverse_source=True).eval()
    plain = tiny(reverse_source=False).eval()
    plain.load_state_dict(reversed_model.state_dict())
    src, lengths = pad(SOURCES, 0)
    seen = []
    reversed_model.encoder.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(args[0].clone()),
                                                     with_kwargs=True)
    logits = reversed_model(src, lengths, TARGETS_IN)
    by_hand, _ = pad([list(reversed(s)) for s in SOURCES], 0)      # EOS first, each within its own length
    assert by_hand[:, 0].tolist() == [0, 6, 5, 4, 3]
    torch.testing.assert_close(seen[0], reversed_model.src_embedding(by_hand))
    # the rest of the model sees the encoder's order: the plain model fed the reversed ids agrees exactly,
    # so neither the memory, the mask nor the attention undo the reversal
    torch.testing.assert_close(plain(by_hand, lengths, TARGETS_IN), logits)
    torch.testing.assert_close(reversed_model.encode(src, lengths).memory, plain.encode(by_hand, lengths).memory)
    assert not torch.allclose(plain(src, lengths, TARGETS_IN), logits)


def test_scheduled_sampling_at_ratio_one_feeds_the_models_own_greedy_words():
    """Every step after the first reads the model's own argmax instead of the reference (Bengio et al. 2015);
    ratio 0 is plain teacher forcing. Dropout 0, so training mode is deterministic."""
    torch.manual_seed(4)
    model = tiny().train()
    src, lengths = pad(SOURCES, 0)
    sampled = model(src, lengths, TARGETS_IN, sample_ratio=1.0)
    state, tokens, expected = model.encode(src, lengths), TARGETS_IN[0], []
    for _ in range(TARGETS_IN.shape[0]):
        logits, state = model.step(tokens, state)
        expected.append(logits)
        tokens = logits.argmax(-1)
    torch.testing.assert_close(sampled, torch.stack(expected))
    forced = model(src, lengths, TARGETS_IN, sample_ratio=0.0)
    assert not torch.allclose(sampled, forced)                      # its own words differ from the references
    torch.testing.assert_close(forced, model.eval()(src, lengths, TARGETS_IN))


def test_loss_is_the_mean_cross_entropy_of_the_real_targets_by_hand():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 5, generator=g)
    targets = torch.tensor([[1, 4], [0, -100], [-100, 2]])
    logp = F.log_softmax(logits, -1)
    real = [(t, n) for t in range(3) for n in range(2) if targets[t, n] != -100]
    nll = sum(-logp[t, n, targets[t, n]] for t, n in real) / len(real)
    spread = sum(-logp[t, n].mean() for t, n in real) / len(real)   # the uniform distribution's cross-entropy
    assert seq2seq_loss(logits, targets).item() == pytest.approx(nll.item(), rel=1e-6)
    assert seq2seq_loss(logits, targets, label_smoothing=0.2).item() == pytest.approx(
        (0.8 * nll + 0.2 * spread).item(), rel=1e-6)


def test_the_gradient_reaches_exactly_the_source_words_read():
    torch.manual_seed(4)
    model = tiny().train()
    src, lengths = pad(SOURCES, 0)
    targets = torch.tensor([[5, 6, 7], [4, 3, 0], [0, 0, -100], [-100, 1, -100]])
    seq2seq_loss(model(src, lengths, TARGETS_IN), targets).backward()
    rows = model.src_embedding.weight.grad.abs().sum(1)
    read = sorted({w for s in SOURCES for w in s})
    assert (rows[read] > 0).all()
    assert (rows[[w for w in range(11) if w not in read]] == 0).all()      # 1, 9, 10 appear in no source


def test_teacher_forced_logits_equal_the_equations_by_hand():
    """Tanh RNN encoder, linear bridge, input feeding, Luong's dot attention, one sentence at a time without
    padding: the docstring's equations written out with the model's own parameters."""
    torch.manual_seed(6)
    model = tiny(cell="rnn", bidirectional=False, attention="luong-dot").eval()
    src, lengths = pad(SOURCES, 0)
    logits = model(src, lengths, TARGETS_IN)
    P = dict(model.named_parameters())

    def rnn(x: torch.Tensor, h: torch.Tensor, pre: str) -> torch.Tensor:
        return torch.tanh(P[f"{pre}.weight_ih_l0"] @ x + P[f"{pre}.bias_ih_l0"]
                          + P[f"{pre}.weight_hh_l0"] @ h + P[f"{pre}.bias_hh_l0"])

    for n, sentence in enumerate(SOURCES):
        h, keys = torch.zeros(5), []
        for word in sentence:
            h = rnn(P["src_embedding.weight"][word], h, "encoder")
            keys.append(h)
        keys = torch.stack(keys)                                        # (S_n, K): no padding
        s = torch.tanh(P["bridge.weight"] @ h + P["bridge.bias"])
        feed = torch.zeros(5)
        for t in range(TARGETS_IN.shape[0]):
            s = rnn(torch.cat([P["tgt_embedding.weight"][TARGETS_IN[t, n]], feed]), s, "decoder")
            weights = torch.softmax(keys @ s, 0)
            feed = torch.tanh(P["combine.weight"] @ torch.cat([weights @ keys, s]))
            expected = P["output.weight"] @ feed + P["output.bias"]
            torch.testing.assert_close(logits[t, n], expected, rtol=1e-5, atol=1e-6)


def test_bad_configurations():
    with pytest.raises(ValueError, match="unknown attention"):
        tiny(attention="luong")
    with pytest.raises(ValueError, match="luong-dot"):
        tiny(attention="luong-dot", decoder_hidden_size=7)
    with pytest.raises(ValueError, match="shared vocabulary"):
        tiny(share_embeddings=True)


def test_a_tiny_copy_task_is_learnt_to_100_percent():
    """Copy sequences of 2-5 symbols (repeats included), fresh examples every epoch, the learning rate decayed; 60
    unseen ones must all come back exactly, with greedy and with beam search. Training stops as soon as they do
    (epoch 6 with this seed)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = random.Random(0)

    def make() -> list[int]:
        return [rng.randrange(1, 10) for _ in range(rng.randrange(2, 6))]

    test = [make() for _ in range(60)]
    model = Seq2Seq(Seq2SeqConfig(10, 10, tgt_eos_id=0, embed_size=32, hidden_size=64, attention="luong-general"))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    correct = 0
    for epoch in range(1, 15):
        data = [(s + [0], s + [0]) for s in (make() for _ in range(1000))]
        for group in opt.param_groups:
            group["lr"] = 5e-3 * 0.7 ** (epoch - 1)
        for batch in iterate(data, bucket_batches([(len(s), len(t)) for s, t in data], 32, shuffle=True,
                                                  epoch=epoch), 0):
            loss = seq2seq_loss(model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        outputs = decode_encoded(model, [s + [0] for s in test], beam=1)
        correct = sum(h[0].tokens == s and h[0].finished for h, s in zip(outputs, test))
        if correct == len(test):
            break
    assert correct == len(test), f"copied {correct}/{len(test)} after {epoch} epochs"
    beam = decode_encoded(model, [s + [0] for s in test], beam=3, alpha=1.0)
    assert all(h[0].tokens == s for h, s in zip(beam, test))


@pytest.mark.parametrize("cell", ["gru", "gru-torch", "lstm", "rnn"])
@pytest.mark.parametrize("feeding", [True, False])
@pytest.mark.parametrize("grad", [True, False])
def test_decoder_step_is_the_cell_equations_on_the_embedding_and_the_feed(cell, feeding, grad):
    """The decoder layer's ``step`` (the cell equations with autograd, or the compiled stepper without) equals
    the recurrence's step function layer by layer on ``[emb(y); h~]``, then attention and the output layer."""
    torch.manual_seed(5)
    model = tiny(cell=cell, input_feeding=feeding, attention="bahdanau", decoder_layers=2).eval()
    src, lengths = pad(SOURCES, 0)
    state = model.encode(src, lengths)
    state.feed = torch.randn_like(state.feed)
    tokens = torch.tensor([1, 2, 3])
    with torch.set_grad_enabled(grad):
        logits, new = model.step(tokens, state)
    rec = model.cell
    h0, c0 = rec.unpack(state.hidden)
    emb = model.tgt_embedding(tokens)
    x = torch.cat([emb, state.feed], dim=1) if feeding else emb
    hs, cs = [], []
    for k in range(2):
        h, c = rec.unpack(rec.step(x, rec.pack(h0[k], None if c0 is None else c0[k]),
                                   *model.decoder.layer_weights(k, 0)))
        hs.append(h)
        cs.append(c)
        x = h
    got_h, got_c = rec.unpack(new.hidden)
    torch.testing.assert_close(got_h, torch.stack(hs))
    if c0 is not None:
        torch.testing.assert_close(got_c, torch.stack(cs))
    context, _ = model.attention(x, state.memory, state.mask)
    attentional = torch.tanh(model.combine(torch.cat([context, x], dim=1)))
    torch.testing.assert_close(new.feed, attentional)
    torch.testing.assert_close(logits, model.output(attentional))


def test_runs_saved_with_one_cell_per_decoder_layer_load_unchanged(tmp_path):
    """Before the decoder was one rnnkit layer, its weights were ``cells.{k}.weight_ih`` ...: same tensors."""
    torch.manual_seed(7)
    model = tiny(cell="lstm", decoder_layers=2)
    old = {}
    for name, t in model.state_dict().items():
        if name.startswith("decoder."):
            base, layer = name[len("decoder."):].rsplit("_l", 1)
            name = f"cells.{layer}.{base}"
        old[name] = t
    assert "cells.1.bias_hh" in old and not any(k.startswith("decoder.") for k in old)
    fresh = tiny(cell="lstm", decoder_layers=2)
    fresh.load_state_dict(old)                                           # resume.pt's way
    save_file({k: t.contiguous() for k, t in old.items()}, str(tmp_path / "model.safetensors"))
    loaded = tiny(cell="lstm", decoder_layers=2)
    load_weights(tmp_path, loaded)                                       # a run folder's way
    for name, t in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], t, rtol=0, atol=0)
        torch.testing.assert_close(loaded.state_dict()[name], t, rtol=0, atol=0)


@pytest.mark.parametrize("beam", [1, 3])
def test_ids_no_target_holds_are_never_decoded(beam):
    """A BPE target vocabulary holds <pad>, which no target contains: an undertrained decoder that prefers it
    (here its output bias) still never writes it, greedy or beam; the word level has none to ban."""
    from rnnkit.data.parallel import SequenceTokenizer
    lines = ["the cat sees a dog", "a big house runs", "the dog eats"] * 10
    tok = SequenceTokenizer.build(lines, level="bpe", bpe_vocab_size=40)
    pad_id = tok.inner.vocab.index("<pad>")
    assert tok.never_emitted == [pad_id]
    assert SequenceTokenizer.build(lines, level="word").never_emitted == []
    torch.manual_seed(0)
    model = tiny(tgt_vocab_size=tok.vocab_size, tgt_eos_id=tok.eos_id)
    with torch.no_grad():
        model.output.bias[pad_id] = 100.0
    assert all(t == pad_id for t in decode_encoded(model, SOURCES, beam=beam, max_len=4)[0][0].tokens)
    for hyps in decode_encoded(model, SOURCES, beam=beam, max_len=4, never=tok.never_emitted):
        assert pad_id not in hyps[0].tokens and hyps[0].tokens
