"""Sampling: filters keep only the allowed tokens, temperature 0 is argmax, seeds reproduce, the prime runs once."""
from __future__ import annotations


import pytest
import torch

from rnnkit.data import CharTokenizer, DataError, WordTokenizer
from rnnkit.decoding import filter_logits, generate, sample_next
from rnnkit.models.language_model import LanguageModel, LMConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from a second intra-op thread, and the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# probabilities 0.4, 0.25, 0.15, 0.1, 0.06, 0.04 in a shuffled order
PROBS = torch.tensor([0.1, 0.4, 0.04, 0.25, 0.06, 0.15])
LOGITS = PROBS.log().unsqueeze(0)


def _kept(logits):
    return set(torch.nonzero(torch.isfinite(logits[0])).flatten().tolist())


def test_top_k_keeps_the_k_largest():
    assert _kept(filter_logits(LOGITS, top_k=1)) == {1}
    assert _kept(filter_logits(LOGITS, top_k=3)) == {1, 3, 5}
    assert _kept(filter_logits(LOGITS, top_k=6)) == set(range(6))
    assert _kept(filter_logits(LOGITS, top_k=100)) == set(range(6))
    assert _kept(filter_logits(LOGITS)) == set(range(6))
    out = filter_logits(LOGITS, top_k=3)
    assert torch.equal(out[0, [1, 3, 5]], LOGITS[0, [1, 3, 5]])       # kept logits unchanged


@pytest.mark.parametrize("top_p, allowed", [(0.3, {1}), (0.5, {1, 3}), (0.6, {1, 3}), (0.7, {1, 3, 5}),
                                            (0.82, {1, 3, 5, 0}), (0.95, {1, 3, 5, 0, 4}),
                                            (0.999, set(range(6))), (1.0, set(range(6)))])
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, allowed):
    assert _kept(filter_logits(LOGITS, top_p=top_p)) == allowed


def test_top_k_and_top_p_together_and_per_row():
    assert _kept(filter_logits(LOGITS, top_k=2, top_p=0.95)) == {1, 3}
    assert _kept(filter_logits(LOGITS, top_k=4, top_p=0.5)) == {1, 3}
    rows = torch.stack([LOGITS[0], LOGITS[0].flip(0)])
    out = filter_logits(rows, top_k=2)
    assert _kept(out[:1]) == {1, 3} and _kept(out[1:]) == {4, 2}


def test_sampling_never_draws_outside_the_allowed_set():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    logits = torch.randn(64, 50) * 3
    for top_k, top_p in [(5, None), (None, 0.3), (10, 0.5), (1, None)]:
        allowed = torch.isfinite(filter_logits(logits / 1.5, top_k, top_p))   # the set at this temperature
        counts = torch.zeros_like(logits)
        for _ in range(200):
            tokens = sample_next(logits, 1.5, top_k, top_p, g)
            counts[torch.arange(64), tokens] += 1
        assert counts[~allowed].sum() == 0
        if top_k:
            assert (allowed.sum(-1) <= top_k).all()
        if top_k == 1:
            assert torch.equal(counts.argmax(-1), logits.argmax(-1))
    # the allowed set is visited: top-k 5 at a high temperature sees more than one token per row
    counts = torch.zeros_like(logits)
    for _ in range(200):
        counts[torch.arange(64), sample_next(logits, 5.0, 5, None, g)] += 1
    assert ((counts > 0).sum(-1) >= 3).all()


def test_sample_next_frequencies_follow_the_probabilities():
    g = torch.Generator().manual_seed(1)
    draws = sample_next(LOGITS.expand(20000, 6), 1.0, generator=g)
    freq = torch.bincount(draws, minlength=6).float() / 20000
    assert torch.allclose(freq, PROBS, atol=0.015)


def test_temperature_zero_is_argmax_and_negative_is_refused():
    logits = torch.randn(10, 30)
    assert torch.equal(sample_next(logits, 0.0), logits.argmax(-1))
    assert torch.equal(sample_next(logits, 0.0, top_k=3, top_p=0.2), logits.argmax(-1))
    assert torch.equal(sample_next(logits * 1e4, 1.0), logits.argmax(-1))     # a very peaked distribution
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, -1.0)


@pytest.mark.parametrize("temperature", [1e-39, 1e-45, 1e-300])
def test_a_tiny_temperature_is_greedy_not_a_crash(temperature):
    """QA: float32 logits divided by 1e-39 overflowed to inf, and the softmax gave NaN (multinomial raised)."""
    logits = torch.randn(10, 30) * 5
    logits[:, 7] = float("-inf")                                        # a banned token stays banned
    for top_k, top_p in ((None, None), (5, 0.9)):
        assert torch.equal(sample_next(logits, temperature, top_k, top_p), logits.argmax(-1))


def test_the_temperature_scales_the_probabilities_as_before():
    g = torch.Generator().manual_seed(2)
    draws = sample_next(LOGITS.expand(20000, 6) + 100.0, 2.0, generator=g)      # a shift changes nothing
    freq = torch.bincount(draws, minlength=6).float() / 20000
    assert torch.allclose(freq, (LOGITS / 2).softmax(-1), atol=0.015)


TEXT = "to be or not to be\nthat is the question\n"


@pytest.fixture
def char_lm():
    torch.manual_seed(3)
    tok = CharTokenizer.build(TEXT)
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, embed_size=8, hidden_size=16, num_layers=2,
                                   engine="python"))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)                         # sharper, less uniform predictions
    return model.eval(), tok


def test_greedy_generation_equals_argmax_by_hand(char_lm):
    model, tok = char_lm
    prime = "to be"
    got = "".join(generate(model, tok, prime, length=25, temperature=0))
    ids = tok.encode(prime)
    with torch.no_grad():
        for _ in range(25):                   # by hand: re-run the whole sequence each time
            logits, _ = model(torch.tensor(ids).unsqueeze(1))
            ids.append(int(logits[-1, 0].argmax()))
    assert got == tok.decode(ids[len(prime):])
    assert len(got) == 25


def test_prime_is_fed_once_then_one_token_per_step(char_lm):
    model, tok = char_lm
    lengths = []
    hook = model.register_forward_hook(lambda m, args, out: lengths.append(args[0].shape[0]))
    out = list(generate(model, tok, "that is", length=10, temperature=1.0, seed=0))
    hook.remove()
    assert len(out) == 10
    assert lengths[0] == len("that is") and all(n == 1 for n in lengths[1:]) and len(lengths) <= 11


def test_sampling_is_reproducible_with_a_seed(char_lm):
    model, tok = char_lm
    a = "".join(generate(model, tok, "the", 40, temperature=1.0, seed=7))
    b = "".join(generate(model, tok, "the", 40, temperature=1.0, seed=7))
    c = "".join(generate(model, tok, "the", 40, temperature=1.0, seed=8))
    assert a == b and len(a) == 40 and a != c
    k1 = "".join(generate(model, tok, "the", 40, temperature=1.0, top_k=2, top_p=0.9, seed=7))
    k2 = "".join(generate(model, tok, "the", 40, temperature=1.0, top_k=2, top_p=0.9, seed=7))
    assert k1 == k2
    assert set(a) <= set(tok.vocab)
    torch.manual_seed(0)
    # the global RNG is not what makes it reproducible
    assert "".join(generate(model, tok, "the", 40, temperature=1.0, seed=7)) == a


def test_no_prime_starts_at_a_line_break(char_lm):
    model, tok = char_lm
    got = "".join(generate(model, tok, "", 15, temperature=0))
    ids = [tok.vocab.index("\n")]
    with torch.no_grad():
        for _ in range(15):
            ids.append(int(model(torch.tensor(ids).unsqueeze(1))[0][-1, 0].argmax()))
    assert got == tok.decode(ids[1:])


def test_unknown_prime_characters_are_listed(char_lm):
    model, tok = char_lm
    with pytest.raises(DataError, match=r"2 symbol\(s\).*'X', 'z'") as err:
        list(generate(model, tok, "to Xbez", 5))
    assert str(err.value).startswith("--prime:")


def _word_lm():
    torch.manual_seed(0)
    tok = WordTokenizer.build("the cat sat on the mat\nthe dog sat on the log\n")
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, embed_size=6, hidden_size=8, num_layers=1,
                                   engine="python")).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5)
    return model, tok


def test_word_level_unknown_prime_words_are_listed():
    model, tok = _word_lm()
    with pytest.raises(DataError, match=r"'zebra', 'ate'"):
        list(generate(model, tok, "the zebra ate", 3))


def test_word_level_prime_is_continued_not_ended():
    model, tok = _word_lm()
    fed = []
    hook = model.register_forward_hook(lambda m, args, out: fed.append(args[0][:, 0].tolist()))
    list(generate(model, tok, "the cat", 3, temperature=0))
    hook.remove()
    assert fed[0] == [tok.vocab.index("the"), tok.vocab.index("cat")]
    # a prime that ends with a line break does end its sentence
    fed.clear()
    hook = model.register_forward_hook(lambda m, args, out: fed.append(args[0][:, 0].tolist()))
    list(generate(model, tok, "the cat\n", 3, temperature=0))
    hook.remove()
    assert fed[0] == [tok.vocab.index("the"), tok.vocab.index("cat"), tok.eos_id]
