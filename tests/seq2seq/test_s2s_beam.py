"""Greedy and beam search driven by hand-made log-probabilities, and beam 1 == greedy on a real model."""
import math

import pytest
import torch

from rnnkit.decoding import beam_search, greedy_search, length_penalty, search
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.seq2seq import decode_encoded

EOS, A, B, C = 0, 1, 2, 3
V = 4


class PrefixState:
    """The step interface's state: one (item, prefix) per row, and reorder()."""

    def __init__(self, rows):
        self.rows = rows                      # list of (item, tuple of tokens read so far, started)

    def reorder(self, indices):
        assert indices.dtype == torch.long
        return PrefixState([self.rows[i] for i in indices.tolist()])


def make_step(tables, default=None, calls=None):
    """Log-probabilities from ``tables[item][prefix] = {token: p}``; unlisted tokens share what is left."""
    def step(tokens, state):
        out, rows = [], []
        for tok, (item, prefix, started) in zip(tokens.tolist(), state.rows):
            prefix = prefix + (tok,) if started else prefix
            rows.append((item, prefix, True))
            dist = tables[item].get(prefix, default or {A: 1.0})
            rest = [t for t in range(V) if t not in dist]
            left = max(1e-12, 1.0 - sum(dist.values()))
            probs = [dist.get(t, left / len(rest) if rest else 0.0) for t in range(V)]
            out.append([math.log(max(p, 1e-30)) for p in probs])
        if calls is not None:
            calls.append(len(rows))
        return torch.tensor(out, dtype=torch.float64), PrefixState(rows)
    return step


def start(n=1):
    return PrefixState([(i, (), False) for i in range(n)])


# the greedy trap: a (0.6) then a/b/c (~1/3 each) loses to b (0.4) then c (0.9)
TRAP = {(): {A: 0.6, B: 0.4}, (A,): {A: 0.36, B: 0.34, C: 0.3}, (A, A): {EOS: 1.0}, (A, B): {EOS: 1.0},
        (A, C): {EOS: 1.0}, (B,): {C: 0.9, A: 0.1}, (B, C): {EOS: 1.0}, (B, A): {EOS: 1.0}}


def test_beam_search_finds_the_known_best_sequence_that_greedy_misses():
    step = make_step([TRAP])
    greedy = greedy_search(step, start(), 1, EOS, EOS, max_len=10)[0]
    assert greedy.tokens == [A, A] and greedy.finished
    assert greedy.log_prob == pytest.approx(math.log(0.6 * 0.36), abs=1e-6)
    best = beam_search(step, start(), 1, EOS, EOS, max_len=10, beam_size=2, alpha=0.0, n_best=2)[0]
    assert best[0].tokens == [B, C] and best[0].finished
    assert best[0].log_prob == pytest.approx(math.log(0.4 * 0.9), abs=1e-6)
    assert best[0].score >= best[1].score
    assert best[1].tokens == [A, A]


def test_beam_of_one_equals_greedy_on_hand_made_tables():
    tables = [TRAP, {(): {B: 0.7, EOS: 0.3}, (B,): {C: 0.5, A: 0.4}, (B, C): {EOS: 0.8}}]
    greedy = greedy_search(make_step(tables), start(2), 2, EOS, EOS, max_len=6)
    beam = beam_search(make_step(tables), start(2), 2, EOS, EOS, max_len=6, beam_size=1)
    for g, b in zip(greedy, beam):
        assert b[0].tokens == g.tokens and b[0].finished == g.finished
        assert b[0].log_prob == pytest.approx(g.log_prob, abs=1e-9)


def test_each_input_of_a_batch_gets_its_own_best():
    other = {(): {C: 0.5, A: 0.5 - 1e-6}, (C,): {EOS: 0.9}, (A,): {A: 0.5, EOS: 0.4}}
    out = beam_search(make_step([other, TRAP]), start(2), 2, EOS, EOS, max_len=10, beam_size=3)
    assert out[0][0].tokens == [C]
    assert out[1][0].tokens == [B, C]


def test_length_penalty_prefers_the_longer_hypothesis_only_when_asked():
    table = {(): {EOS: 0.52, A: 0.48}, (A,): {B: 0.95, C: 0.05 - 1e-9}, (A, B): {EOS: 1.0}, (A, C): {EOS: 1.0}}
    plain = beam_search(make_step([table]), start(), 1, EOS, EOS, max_len=10, beam_size=2, alpha=0.0)[0][0]
    assert plain.tokens == [] and plain.finished
    normalised = beam_search(make_step([table]), start(), 1, EOS, EOS, max_len=10, beam_size=2, alpha=1.0)[0][0]
    assert normalised.tokens == [A, B]
    assert normalised.score == pytest.approx(math.log(0.48 * 0.95) / length_penalty(3, 1.0), abs=1e-6)
    assert length_penalty(3, 1.0) == pytest.approx(8 / 6) and length_penalty(7, 0.0) == 1.0


def test_max_length_stops_hypotheses_that_never_end():
    never = {}                                   # every prefix: A with probability 1
    for search_fn in (lambda: greedy_search(make_step([never]), start(), 1, EOS, EOS, max_len=4)[0],
                      lambda: beam_search(make_step([never]), start(), 1, EOS, EOS, max_len=4, beam_size=3)[0][0]):
        h = search_fn()
        assert h.tokens == [A, A, A, A] and not h.finished and h.length == 4
    # per-input limits
    out = greedy_search(make_step([never, never]), start(2), 2, EOS, EOS, max_len=[2, 5])
    assert [len(h.tokens) for h in out] == [2, 5]


def test_search_stops_as_soon_as_every_input_is_done():
    calls = []
    greedy_search(make_step([{(): {EOS: 1.0}}], calls=calls), start(), 1, EOS, EOS, max_len=50)
    assert calls == [1]
    calls = []
    beam_search(make_step([TRAP], calls=calls), start(), 1, EOS, EOS, max_len=50, beam_size=2)
    assert len(calls) == 3 and all(c == 2 for c in calls)      # K rows per input


def test_trace_follows_the_hypotheses_through_reordering():
    def trace(state) -> torch.Tensor:
        return torch.tensor([float(prefix[-1]) if prefix else -1.0 for _, prefix, _ in state.rows])

    for h in beam_search(make_step([TRAP]), start(), 1, EOS, EOS, max_len=10, beam_size=3, n_best=3,
                         trace=trace)[0]:
        # step t records the token read at step t: BOS (no prefix yet), then the hypothesis' own tokens
        assert h.trace.tolist() == [-1.0] + [float(t) for t in h.tokens]
    g = greedy_search(make_step([TRAP]), start(), 1, EOS, EOS, max_len=10, trace=trace)[0]
    assert g.trace.tolist() == [-1.0, float(A), float(A)]


def test_bad_search_arguments():
    with pytest.raises(ValueError, match="beam size"):
        beam_search(make_step([TRAP]), start(), 1, EOS, EOS, max_len=3, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(make_step([TRAP]), start(2), 2, EOS, EOS, max_len=[1, 2, 3])


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_beam_of_one_equals_greedy_on_a_model(attention):
    torch.manual_seed(3)
    model = Seq2Seq(Seq2SeqConfig(9, 7, tgt_eos_id=0, embed_size=8, hidden_size=8, attention=attention,
                                  cell="lstm")).eval()
    sources = [[3, 4, 5, 0], [2, 0], [8, 7, 6, 5, 4, 0]]
    greedy = decode_encoded(model, sources, beam=1, max_len=12)
    with torch.no_grad():
        state = model.encode(*_padded(sources))
        from rnnkit.tasks.seq2seq import log_prob_step
        beam = beam_search(log_prob_step(model), state, 3, 0, 0, max_len=12, beam_size=1)
        via_search = search(log_prob_step(model), model.encode(*_padded(sources)), 3, 0, 0, 12, beam_size=1)
    for g, b, s in zip(greedy, beam, via_search):
        assert b[0].tokens == g[0].tokens == s.tokens
        assert b[0].log_prob == pytest.approx(g[0].log_prob, abs=1e-5)


def _padded(sources):
    from rnnkit.data.buckets import pad
    return pad(sources, 0)
