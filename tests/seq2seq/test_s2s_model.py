"""The seq2seq model: shapes, masking, the decoder state, source reversal, and a copy task learnt to 100%."""
import random

import pytest
import torch

from rnnkit.data.buckets import bucket_batches, pad
from rnnkit.data.parallel import iterate
from rnnkit.models.seq2seq import DecoderState, Seq2Seq, Seq2SeqConfig, seq2seq_loss
from rnnkit.tasks.seq2seq import decode_encoded


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
    assert isinstance(r, DecoderState) and len(r) == 3
    for name in ("feed", "memory", "cache", "mask", "summary", "attention"):
        torch.testing.assert_close(getattr(r, name), getattr(state, name)[idx])
    for before, after in zip(state.hidden, r.hidden):
        torch.testing.assert_close(after[0], before[0][idx])
        torch.testing.assert_close(after[1], before[1][idx])
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


def test_scheduled_sampling_and_label_smoothing_change_the_loss_but_keep_shapes():
    torch.manual_seed(4)
    model = tiny().train()
    src, lengths = pad(SOURCES, 0)
    targets = torch.tensor([[5, 6, 7], [4, 3, 0], [0, 0, -100], [-100, 1, -100]])
    torch.manual_seed(0)
    ss = model(src, lengths, TARGETS_IN, sample_ratio=1.0)
    assert ss.shape == (4, 3, 9)
    loss = seq2seq_loss(ss, targets)
    smooth = seq2seq_loss(ss, targets, label_smoothing=0.2)
    assert torch.isfinite(loss) and smooth.item() != pytest.approx(loss.item())
    loss.backward()
    assert model.src_embedding.weight.grad is not None


def test_bad_configurations():
    with pytest.raises(ValueError, match="unknown attention"):
        tiny(attention="luong")
    with pytest.raises(ValueError, match="luong-dot"):
        tiny(attention="luong-dot", decoder_hidden_size=7)
    with pytest.raises(ValueError, match="shared vocabulary"):
        tiny(share_embeddings=True)


def test_a_tiny_copy_task_is_learnt_to_100_percent():
    """Copy sequences of 2-5 symbols (repeats included), fresh examples every epoch, the learning rate decayed; 60 unseen ones must all come
    back exactly, with greedy and with beam search. Training stops as soon as they do (epoch 6 with this seed)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = random.Random(0)
    make = lambda: [rng.randrange(1, 10) for _ in range(rng.randrange(2, 6))]
    test = [make() for _ in range(60)]
    model = Seq2Seq(Seq2SeqConfig(10, 10, tgt_eos_id=0, embed_size=32, hidden_size=64, attention="luong-general"))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    correct = 0
    for epoch in range(1, 15):
        data = [(s + [0], s + [0]) for s in (make() for _ in range(1000))]
        for group in opt.param_groups:
            group["lr"] = 5e-3 * 0.7 ** (epoch - 1)
        for batch in iterate(data, bucket_batches([(len(s), len(t)) for s, t in data], 32, shuffle=True, epoch=epoch), 0):
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
def test_split_input_projection_equals_the_cell_on_the_concatenated_input(cell, feeding):
    """The first decoder layer's input matmul is split (embedding part precomputed); the cell itself agrees."""
    torch.manual_seed(5)
    model = tiny(cell=cell, input_feeding=feeding, attention="bahdanau").eval()
    src, lengths = pad(SOURCES, 0)
    state = model.encode(src, lengths)
    state.feed = torch.randn_like(state.feed)
    tokens = torch.tensor([1, 2, 3])
    emb = model.tgt_embedding(tokens)
    _, new = model._advance(model.embed_input(emb), state)
    x = torch.cat([emb, state.feed], dim=1) if feeding else emb
    expected = model.cells[0](x, state.hidden[0])
    got = new.hidden[0]
    for e, g in zip(expected if cell == "lstm" else [expected], got if cell == "lstm" else [got]):
        torch.testing.assert_close(g, e)
    logits = model(src, lengths, TARGETS_IN)
    assert logits.shape == (4, 3, 9) and torch.isfinite(logits).all()
