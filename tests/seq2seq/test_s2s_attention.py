"""Attention as the seq2seq decoder uses it: weights sum to one, padding gets zero, scores as by hand."""
import math

import pytest
import torch

from rnnkit.layers import SCORES, make_attention


@pytest.mark.parametrize("kind", ["bahdanau", "luong-dot", "luong-general"])
def test_weights_sum_to_one_and_are_zero_on_padding(kind):
    torch.manual_seed(0)
    N, S, K = 3, 5, 4
    attn = make_attention(kind, K, K)
    keys = torch.randn(N, S, K)
    query = torch.randn(N, K)
    lengths = torch.tensor([5, 3, 1])
    mask = torch.arange(S).unsqueeze(0) < lengths.unsqueeze(1)
    context, weights = attn(query, keys, mask, cache=attn.precompute(keys))
    assert weights.shape == (N, S) and context.shape == (N, K)
    torch.testing.assert_close(weights.sum(-1), torch.ones(N))
    assert torch.all(weights[~mask] == 0)
    assert torch.all(weights[mask] > 0)
    assert weights[2, 0].item() == pytest.approx(1.0)
    # the context is the weighted sum of the real keys only: padding keys may hold anything
    keys2 = keys.clone()
    keys2[~mask] = 1e6
    if kind == "luong-dot":      # the dot score reads the keys themselves; change padding values only
        context2, weights2 = attn(query, keys2, mask)
    else:
        context2, weights2 = attn(query, keys2, mask, cache=attn.precompute(keys))
    torch.testing.assert_close(weights2, weights)
    torch.testing.assert_close(context2, context)


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def test_bahdanau_against_hand_computation():
    attn = make_attention("bahdanau", 2, 2, attention_size=2)
    with torch.no_grad():
        attn.query_proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0]]))   # W_q (A, Q)
        attn.key_proj.weight.copy_(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))      # W_k (A, K)
        attn.key_proj.bias.copy_(torch.tensor([0.1, -0.2]))
        attn.v.weight.copy_(torch.tensor([[1.0, -2.0]]))
    q = [0.3, -0.6]
    ks = [[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]]
    # e_s = v . tanh(W_q q + W_k k_s + b)
    wq = [1.0 * q[0] + 0.0 * q[1], 0.5 * q[0] - 1.0 * q[1]]
    scores = []
    for k in ks:
        wk = [0.0 * k[0] + 1.0 * k[1] + 0.1, 2.0 * k[0] + 0.0 * k[1] - 0.2]
        scores.append(1.0 * math.tanh(wq[0] + wk[0]) - 2.0 * math.tanh(wq[1] + wk[1]))
    a = _softmax(scores)
    ctx = [sum(a[s] * ks[s][j] for s in range(3)) for j in range(2)]
    context, weights = attn(torch.tensor([q]), torch.tensor([ks]))
    torch.testing.assert_close(weights[0], torch.tensor(a), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(context[0], torch.tensor(ctx), atol=1e-6, rtol=1e-6)


def test_luong_dot_and_general_against_hand_computation():
    q = [1.0, -2.0]
    ks = [[0.5, 0.5], [2.0, 1.0], [-1.0, -1.0]]
    dot = make_attention("luong-dot", 2, 2)
    _, weights = dot(torch.tensor([q]), torch.tensor([ks]))
    expected = _softmax([q[0] * k[0] + q[1] * k[1] for k in ks])        # [-0.5, 0.0, 1.0]
    torch.testing.assert_close(weights[0], torch.tensor(expected), atol=1e-6, rtol=1e-6)

    general = make_attention("luong-general", 2, 3)
    W = [[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]]                              # q W k^T with W (Q, K)
    with torch.no_grad():
        general.weight.weight.copy_(torch.tensor(W))
    ks3 = [[1.0, 0.0, 1.0], [0.0, 2.0, -1.0]]
    scores = [sum(q[i] * W[i][j] * k[j] for i in range(2) for j in range(3)) for k in ks3]   # [1.0, 6.0]
    context, weights = general(torch.tensor([q]), torch.tensor([ks3]))
    a = _softmax(scores)
    torch.testing.assert_close(weights[0], torch.tensor(a), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(context[0], torch.tensor([a[0] * 1 + a[1] * 0, a[1] * 2, a[0] - a[1]]),
                               atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", SCORES)
def test_wrong_input_is_named_and_an_empty_row_is_zero(kind):
    """QA of the Python API: a mask of 0/1 integers or floats, or a query of the wrong size, gave raw torch
    errors; a row with no real position gave NaN weights."""
    torch.manual_seed(0)
    att = make_attention(kind, 4, 4)
    q, k = torch.randn(2, 4, requires_grad=True), torch.randn(2, 5, 4)
    for bad in (torch.ones(2, 5, dtype=torch.long), torch.ones(2, 5)):
        with pytest.raises(TypeError, match="attention mask must be a bool tensor, True at real positions"):
            att(q, k, bad)
    if kind != "luong-dot":
        with pytest.raises(ValueError, match=r"built for queries of 4 and keys of 4 features; got query \(2, 5\)"):
            att(torch.randn(2, 5), k)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    context, weights = att(q, k, mask)
    assert torch.equal(weights[1], torch.zeros(5)) and torch.equal(context[1], torch.zeros(4))
    full, full_w = att(q[:1], k[:1], mask[:1])
    torch.testing.assert_close(weights[0], full_w[0])
    context.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.equal(q.grad[1], torch.zeros(4))
