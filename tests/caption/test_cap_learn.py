"""Learning: a tiny synthetic set is learnt to 100% exact match; BLEU and exact match on hand-made examples."""
import pytest
import torch

from rnnkit.data.shapes import make_shapes
from rnnkit.models.captioner import CaptionConfig, CaptionModel
from rnnkit.tasks.captioning import (CaptionSet, CaptionTask, bleu_scores, build_caption_tokenizer, encode_captions,
                                     evaluate_captions, exact_match)


def test_cap_encode_captions_shift_and_pad():
    tok = build_caption_tokenizer([["a red circle", "a square"]])
    inputs, targets = encode_captions(tok, ["a red circle", "a square"])
    eos, a, red, circle, square = (tok.vocab.index(w) for w in ("<eos>", "a", "red", "circle", "square"))
    assert inputs.T.tolist() == [[eos, a, red, circle], [eos, a, square, eos]]
    assert targets.T.tolist() == [[a, red, circle, eos], [a, square, eos, -100]]


def test_cap_bleu_and_exact_match():
    refs = [["a small red circle", "a red circle"], ["a large blue square on the left"]]
    perfect = bleu_scores(["a small red circle", "a large blue square on the left"], refs)
    assert perfect == pytest.approx({"bleu1": 100.0, "bleu2": 100.0, "bleu3": 100.0, "bleu4": 100.0})
    assert exact_match(["a red circle", "a large blue square"], refs) == 0.5
    partial = bleu_scores(["a red circle", "a large green square"], refs)
    # unigrams 6 of 7 match; closest reference lengths 3 + 7 = 10 against 7 words: brevity penalty e^(1 - 10/7)
    assert partial["bleu1"] == pytest.approx(100 * 6 / 7 * 2.718281828 ** (1 - 10 / 7), abs=1e-3)
    assert partial["bleu1"] > partial["bleu2"] > partial["bleu4"] > 0


def test_cap_tiny_synthetic_set_learnt_exactly():
    """16 two-shape scenes: the captioner must reproduce every caption word for word."""
    torch.manual_seed(0)
    scenes = make_shapes(16, seed=11, image_size=32, max_objects=2)
    data = CaptionSet.from_raw(scenes.images, [[c] for c in scenes.captions], [str(i) for i in range(16)])
    tok = build_caption_tokenizer(data.captions)
    model = CaptionModel(CaptionConfig(vocab_size=tok.vocab_size, widths=[8, 16], image_size=32, pool=1,
                                       embed_size=16, hidden_size=64, max_length=12))
    task = CaptionTask(tok, data, data, batch_size=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    exact, step = 0.0, 0
    for step in range(1, 401):
        batch = next(task.batches(step, 0))
        objective, _, _ = task.loss(model, batch)
        opt.zero_grad()
        objective.backward()
        opt.step()
        if step % 25 == 0:
            exact = evaluate_captions(model, data, tok)["exact"]
            if exact == 1.0:
                break
    assert exact == 1.0, f"exact match {exact:.2f} after {step} steps"


@pytest.mark.parametrize("world", [2, 4])
def test_cap_every_rank_takes_as_many_batches(monkeypatch, world):
    """Under DDP each rank takes its own images, as many as every other rank, so that the ranks' epochs end at the
    same step (10 images on 4 ranks: 2 each, 2 left out this epoch; before, 3, 3, 2, 2: two batches or one)."""
    from rnnkit.training import distributed as dist
    scenes = make_shapes(10, seed=3, image_size=24, max_objects=1)
    data = CaptionSet.from_raw(scenes.images, [[c] for c in scenes.captions], [str(i) for i in range(10)])
    tok = build_caption_tokenizer(data.captions)
    monkeypatch.setattr(dist, "world_size", lambda: world)
    seen = []
    for rank in range(world):
        monkeypatch.setattr(dist, "rank", lambda rank=rank: rank)
        task = CaptionTask(tok, data, data, batch_size=2)
        batches = [b[0].tolist() for b in task.batches(1, 0)]
        assert len(batches) == task.steps_per_epoch() == -(-(10 // world) // 2)
        seen += [i for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 10 // world * world
