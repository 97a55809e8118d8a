"""The classifier: padding invariance, each pooling against a hand computation, learning a separable set."""
import itertools

import pytest
import torch

from rnnkit.data import LabelSet, TextEncoder
from rnnkit.models.classifier import POOLINGS, Classifier, ClassifierConfig
from rnnkit.tasks.classification import ClassificationTask, confusion_matrix, macro_f1, predict_ids, scores
from rnnkit.training import TrainConfig, Trainer

V, PAD_ID = 20, 0


def model(pooling="max", bidirectional=True, cell="lstm", layers=1, **kw):
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=V, num_classes=3, cell=cell, embed_size=6, hidden_size=5, num_layers=layers,
                           bidirectional=bidirectional, pooling=pooling, dropout=0.3, pad_id=PAD_ID,
                           engine="python", **kw)
    return Classifier(cfg).eval()


SENTENCES = [[3, 4, 5], [6, 7, 8, 9, 10, 11], [12], [13, 14, 15, 16]]


def padded(sentences=SENTENCES):
    T = max(map(len, sentences))
    tokens = torch.full((len(sentences), T), PAD_ID, dtype=torch.long)
    for i, s in enumerate(sentences):
        tokens[i, :len(s)] = torch.tensor(s)
    return tokens, torch.tensor([len(s) for s in sentences])


@pytest.mark.parametrize("pooling, bidirectional, cell", [
    *((p, b, "lstm") for p, b in itertools.product(POOLINGS, (False, True))),
    ("last", True, "gru"), ("attention", True, "gru-torch"), ("max", True, "rnn"),
])
def test_same_logits_alone_or_in_a_padded_batch(pooling, bidirectional, cell):
    m = model(pooling, bidirectional, cell, layers=2)
    tokens, lengths = padded()
    batch = m(tokens, lengths)
    for i, s in enumerate(SENTENCES):
        alone = m(torch.tensor([s]), torch.tensor([len(s)]))
        torch.testing.assert_close(batch[i:i + 1], alone, atol=1e-6, rtol=1e-5)
    # whatever the padding holds (here: real word ids), the result is the same
    noisy = tokens.masked_fill(torch.arange(tokens.shape[1]) >= lengths.unsqueeze(1), 7)
    torch.testing.assert_close(m(noisy, lengths), batch, atol=1e-6, rtol=1e-5)


def test_pooling_matches_a_hand_computation():
    tokens, lengths = padded()
    for bidirectional in (False, True):
        for pooling in POOLINGS:
            m = model(pooling, bidirectional)
            with torch.no_grad():
                states, h_n = m.encode(tokens, lengths)
                pooled, weights = m.pool(states, h_n, lengths)
            H = m.config.hidden_size
            for n, s in enumerate(SENTENCES):
                L = len(s)
                # the encoder alone on the unpadded sentence, as a reference for its states
                with torch.no_grad():
                    own, _ = m.rnn(m.embedding(torch.tensor([s])))
                own = own[0]                                                   # (L, D*H)
                torch.testing.assert_close(states[n, :L], own, atol=1e-6, rtol=1e-5)
                if pooling == "last":
                    want = own[L - 1, :H] if not bidirectional else torch.cat([own[L - 1, :H], own[0, H:]])
                elif pooling == "max":
                    want = torch.stack([torch.tensor([max(float(own[t, k]) for t in range(L))])
                                        for k in range(own.shape[1])]).reshape(-1)
                elif pooling == "mean":
                    want = sum(own[t] for t in range(L)) / L
                else:
                    a = m.attention
                    with torch.no_grad():
                        q = a.query_proj(m.query)
                        e = torch.stack([a.v(torch.tanh(q + a.key_proj(own[t])))[0] for t in range(L)])
                    w = torch.exp(e - e.max()) / torch.exp(e - e.max()).sum()
                    torch.testing.assert_close(weights[n, :L], w, atol=1e-6, rtol=1e-5)
                    assert (weights[n, L:] == 0).all()                      # padding gets no weight
                    want = sum(w[t] * own[t] for t in range(L))
                torch.testing.assert_close(pooled[n], want, atol=1e-6, rtol=1e-5, msg=f"{pooling} {n}")


def test_last_pooling_bidirectional_is_forward_last_valid_and_backward_first():
    m = model("last", True, layers=2)
    tokens, lengths = padded()
    with torch.no_grad():
        states, h_n = m.encode(tokens, lengths)
        pooled, _ = m.pool(states, h_n, lengths)
    H = m.config.hidden_size
    for n, L in enumerate(lengths.tolist()):
        torch.testing.assert_close(pooled[n, :H], states[n, L - 1, :H])
        torch.testing.assert_close(pooled[n, H:], states[n, 0, H:])


def test_dropout_only_in_training_and_config_round_trip():
    m = model("attention")
    tokens, lengths = padded()
    torch.testing.assert_close(m(tokens, lengths), m(tokens, lengths))
    m.train()
    torch.manual_seed(1)
    assert not torch.allclose(m(tokens, lengths), m(tokens, lengths))
    cfg = m.config
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown pooling"):
        ClassifierConfig(vocab_size=5, num_classes=2, pooling="median")


def test_metrics_against_a_hand_count():
    predicted = [0, 1, 1, 2, 2, 2, 0]
    target = [0, 1, 2, 2, 2, 0, 1]
    m = confusion_matrix(predicted, target, 3)
    assert m.tolist() == [[1, 0, 1], [1, 1, 0], [0, 1, 2]]
    # F1 per class: 0: 2*1/(2+1+1)=0.5, 1: 2*1/(2+1+1)=0.5, 2: 2*2/(4+1+1)=2/3
    assert macro_f1(m) == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)
    probs = torch.nn.functional.one_hot(torch.tensor(predicted), 3).float() * 0.8 + 0.2 / 3
    s = scores(probs, torch.tensor(target), 3)
    assert s["accuracy"] == pytest.approx(4 / 7) and s["examples"] == 7


def test_learns_a_tiny_separable_set_to_full_training_accuracy(tmp_path):
    g = torch.Generator().manual_seed(0)
    filler = ["the", "film", "was", "a", "story", "of", "it", "plot"]
    texts, labels = [], []
    for i in range(48):
        words = [filler[j] for j in torch.randint(0, len(filler), (int(torch.randint(2, 7, (1,), generator=g)),),
                                                   generator=g)]
        cue = ["good", "bad", "fine"][i % 3]
        words.insert(int(torch.randint(0, len(words) + 1, (1,), generator=g)), cue)
        texts.append(" ".join(words))
        labels.append(["pos", "neg", "meh"][i % 3])
    enc = TextEncoder.build(texts, "word")
    ls = LabelSet.from_labels(labels)
    ids = enc.encode_all(texts)
    y = [ls.names.index(label) for label in labels]
    torch.manual_seed(0)
    m = Classifier(ClassifierConfig(vocab_size=enc.vocab_size, num_classes=3, embed_size=16, hidden_size=16,
                                    pooling="attention", pad_id=enc.pad_id, engine="python"))
    task = ClassificationTask(enc, ls, ids, y, ids, y, batch_size=8, seed=0)
    cfg = TrainConfig(lr=1e-2, epochs=25, patience=None, device="cpu", log_every=1000)
    trainer = Trainer(m, task, cfg, tmp_path / "run", quiet=True)
    trainer.fit()
    probs, _ = predict_ids(m, ids, enc.pad_id)
    assert (probs.argmax(1) == torch.tensor(y)).float().mean().item() == 1.0
    assert trainer.best == 1.0
