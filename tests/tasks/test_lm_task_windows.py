"""LanguageModelTask: truncated BPTT (no gradient across windows), carried state, evaluation over the stream."""
from __future__ import annotations

import math

import pytest
import torch

from rnnkit.data import CharTokenizer, WordTokenizer
from rnnkit.models.language_model import LanguageModel, LMConfig, detach_state, lm_loss
from rnnkit.tasks.language_modeling import LanguageModelTask, evaluate_stream


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from a second intra-op thread, and the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

TEXT = "".join(f"{i} little pigs went {'to' if i % 3 else 'from'} market\n" for i in range(12))


def _setup(cell="lstm", bptt=5, batch_size=3, eval_batch_size=1, dropout=0.0, sum_over_time=False, seed=0):
    torch.manual_seed(seed)
    tok = CharTokenizer.build(TEXT)
    ids = torch.tensor(tok.encode(TEXT))
    task = LanguageModelTask(tok, "char", ids[:300], ids[300:], batch_size=batch_size, bptt=bptt,
                             eval_batch_size=eval_batch_size, sum_over_time=sum_over_time)
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, cell=cell, embed_size=6, hidden_size=10,
                                   num_layers=2, dropout=dropout, engine="python"))
    return task, model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_no_gradient_crosses_a_window_boundary(cell):
    task, model = _setup(cell)
    embeddings = []
    hook = model.embedding.register_forward_hook(lambda m, i, out: embeddings.append(out))
    windows = task.batches(1, 0)
    obj1, _, _ = task.loss(model, next(windows))
    carried = task.hidden
    for s in (carried if isinstance(carried, tuple) else (carried,)):
        assert s.grad_fn is None and not s.requires_grad
        assert s.shape == (2, 3, 10) and s.abs().sum() > 0      # a real state is carried, not zeros
    obj2, _, _ = task.loss(model, next(windows))
    hook.remove()
    emb1, emb2 = embeddings
    g1, g2 = torch.autograd.grad(obj2, [emb1, emb2], allow_unused=True)
    assert g1 is None                                           # window 2's loss does not reach window 1
    assert g2 is not None and g2.abs().sum() > 0

    # control: without the detach, the same gradient is not zero, so the check above can fail
    model.zero_grad()
    x1, _ = task.train.window(0)
    x2, y2 = task.train.window(1)
    emb_hold = []
    hook = model.embedding.register_forward_hook(lambda m, i, out: emb_hold.append(out))
    _, state = model(x1)
    logits, _ = model(x2, state)
    hook.remove()
    (g_leak,) = torch.autograd.grad(lm_loss(logits, y2), [emb_hold[0]])
    assert g_leak.abs().sum() > 0


def test_state_is_carried_between_windows_and_reset_each_epoch():
    task, model = _setup(bptt=4)
    windows = list(task.train)
    _ = [task.loss(model, b) for b in task.batches(1, 0)]
    # carried through all windows = the model run once over the whole column block
    with torch.no_grad():
        _, full_state = model(task.train.data[:-1])
    for a, b in zip(task.hidden, full_state):
        assert torch.allclose(a, b, atol=1e-6)
    # mid-epoch resume keeps the carried state; a new epoch starts from zeros
    kept = task.hidden
    next(task.batches(1, len(windows) - 1))
    assert task.hidden is kept
    next(task.batches(2, 0))
    assert task.hidden is None


def test_loss_values_and_sum_over_time():
    task, model = _setup(bptt=5, sum_over_time=False)
    x, y = task.train.window(0)
    obj, shown, n = task.loss(model, (x, y))
    with torch.no_grad():
        logits, _ = model(x)
    manual = -torch.log_softmax(logits, -1).gather(-1, y.unsqueeze(-1)).mean()
    assert obj.item() == pytest.approx(manual.item(), rel=1e-6)
    assert shown.item() == pytest.approx(obj.item()) and n == y.numel() == 15
    task2, _ = _setup(bptt=5, sum_over_time=True)
    obj2, shown2, _ = task2.loss(model, (x, y))
    assert obj2.item() == pytest.approx(5 * manual.item(), rel=1e-6)     # summed over the 5 unrolled steps
    assert shown2.item() == pytest.approx(manual.item(), rel=1e-6)        # displayed per token


@pytest.mark.parametrize("bptt", [3, 7, 1000])
def test_evaluation_covers_every_token_with_carried_state(bptt):
    task, model = _setup(bptt=bptt, eval_batch_size=1)
    model.train()
    m = task.evaluate(model)
    assert model.training                              # mode restored
    valid = task.valid.data[:, 0]
    with torch.no_grad():
        model.eval()
        logits, _ = model(valid[:-1].unsqueeze(1))     # one pass over the whole text
    manual = lm_loss(logits, valid[1:].unsqueeze(1)).item()
    assert m["tokens"] == len(valid) - 1
    assert m["loss"] == pytest.approx(manual, rel=1e-5)
    assert m["bpc"] == pytest.approx(manual / math.log(2), rel=1e-5)


def test_word_level_reports_perplexity_and_progress_fields():
    tok = WordTokenizer.build(TEXT)
    ids = torch.tensor(tok.encode(TEXT))
    task = LanguageModelTask(tok, "word", ids[:60], ids[60:], batch_size=2, bptt=4)
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, embed_size=4, hidden_size=6, num_layers=1,
                                   engine="python"))
    m = evaluate_stream(model, task.valid, torch.device("cpu"), "word")
    assert m["ppl"] == pytest.approx(math.exp(m["loss"]))
    assert "bpc" not in m
    assert task.progress(math.log(100.0)) == {"ppl": "100.0"}
    assert _setup()[0].progress(2 * math.log(2)) == {"bpc": "2.000"}
    cfg = task.run_config()
    assert cfg["task"] == "lm" and cfg["level"] == "word" and cfg["tokenizer"] == tok.to_dict()


def test_task_state_round_trip():
    task, model = _setup()
    task.loss(model, task.train.window(0))
    state = task.state_dict()
    other, _ = _setup()
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.hidden, task.hidden))
    other.load_state_dict({"hidden": list(task.hidden)})    # torch.load may give a list back
    assert isinstance(other.hidden, tuple)
    other.load_state_dict({"hidden": None})
    assert other.hidden is None
    assert detach_state(None) is None
