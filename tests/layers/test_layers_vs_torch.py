"""rnnkit.RNN / LSTM / GRU against torch.nn with copied weights: outputs, gradients, lengths, unbatched input, the
lecture's GRU stacked, dropout (parameters and conversion: test_layer_params.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import rnnkit

input_size, H = 3, 4
LENGTHS = [5, 2, 7, 1]                  # N = 4, T = 7
T, N = max(LENGTHS), len(LENGTHS)
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-11), torch.float32: dict(rtol=1e-4, atol=2e-5)}

KINDS = {
    "lstm": (lambda **kw: rnnkit.LSTM(input_size, H, **kw), lambda **kw: nn.LSTM(input_size, H, **kw)),
    "gru": (lambda **kw: rnnkit.GRU(input_size, H, reset_after=True, **kw), lambda **kw: nn.GRU(input_size, H, **kw)),
    "rnn_tanh": (lambda **kw: rnnkit.RNN(input_size, H, nonlinearity="tanh", **kw),
                 lambda **kw: nn.RNN(input_size, H, nonlinearity="tanh", **kw)),
    "rnn_relu": (lambda **kw: rnnkit.RNN(input_size, H, nonlinearity="relu", **kw),
                 lambda **kw: nn.RNN(input_size, H, nonlinearity="relu", **kw)),
}

# (num_layers, bidirectional, batch_first, with h0, input form, how the weights are copied, engine)
# input form: "padded" (full length), "lengths" (padded + lengths=), "packed_sorted", "packed_unsorted"
CONFIGS = [
    (1, False, False, False, "padded", "to_torch", "auto"),
    (1, True, True, True, "lengths", "load_state_dict", "auto"),
    (2, False, True, True, "packed_unsorted", "to_torch", "auto"),
    (2, True, False, False, "packed_sorted", "load_state_dict", "auto"),
    (3, True, False, True, "padded", "load_state_dict", "auto"),
    (3, False, False, True, "lengths", "to_torch", "auto"),
    (2, True, True, True, "packed_unsorted", "to_torch", "autograd"),
    (1, False, True, True, "lengths", "load_state_dict", "python"),
    (2, True, True, True, "lengths", "to_torch", "torch"),
]
CONFIG_IDS = [f"L{c[0]}-{'bi' if c[1] else 'uni'}-{'bf' if c[2] else 'tm'}-{'h0' if c[3] else 'noh0'}-{c[4]}-"
              f"{c[5]}-{c[6]}" for c in CONFIGS]


def paired(kind, dtype, weights="to_torch", engine="auto", **kw):
    """An rnnkit layer and a torch.nn layer with the same weights, copied one of the two ways."""
    ours_factory, torch_factory = KINDS[kind]
    if weights == "to_torch":
        ours = ours_factory(dtype=dtype, engine=engine, **kw)
        theirs = ours.to_torch()
        assert type(theirs) is type(torch_factory())
    else:
        theirs = torch_factory(dtype=dtype, **kw)
        ours = ours_factory(dtype=dtype, engine=engine, **kw)
        ours.load_state_dict(theirs.state_dict(), strict=True)
    for (na, a), (nb, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert na == nb and torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    return ours, theirs


def _flat_state(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_matches_torch(kind, dtype, cfg):
    layers, bidir, batch_first, with_h0, form, weights, engine = cfg
    torch.manual_seed(10 * list(KINDS).index(kind) + CONFIGS.index(cfg))
    ours, theirs = paired(kind, dtype, weights, engine, num_layers=layers, bidirectional=bidir,
                          batch_first=batch_first)
    D = 2 if bidir else 1
    x = torch.randn(T, N, input_size, dtype=dtype)
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    x_a, x_b = x.clone().requires_grad_(), x.clone().requires_grad_()
    n_states = 2 if kind == "lstm" else 1
    if with_h0:
        h0 = [torch.randn(layers * D, N, H, dtype=dtype) for _ in range(n_states)]
        h0_a = [h.clone().requires_grad_() for h in h0]
        h0_b = [h.clone().requires_grad_() for h in h0]
        hx_a = tuple(h0_a) if kind == "lstm" else h0_a[0]
        hx_b = tuple(h0_b) if kind == "lstm" else h0_b[0]
    else:
        h0_a = h0_b = []
        hx_a = hx_b = None
    lengths = torch.tensor(LENGTHS)

    if form == "padded":
        out_a, st_a = ours(x_a, hx_a)
        out_b, st_b = theirs(x_b, hx_b)
    elif form == "lengths":
        out_a, st_a = ours(x_a, hx_a, lengths=lengths)
        packed_b, st_b = theirs(pack_padded_sequence(x_b, lengths, batch_first=batch_first, enforce_sorted=False),
                                hx_b)
        out_b, _ = pad_packed_sequence(packed_b, batch_first=batch_first, total_length=T)
    else:
        sort = form == "packed_sorted"
        order = lengths.argsort(descending=True) if sort else torch.arange(N)
        bdim = 0 if batch_first else 1
        xs_a, xs_b = x_a.index_select(bdim, order), x_b.index_select(bdim, order)
        if with_h0:
            hx_a = tuple(h.index_select(1, order) for h in h0_a) if kind == "lstm" else h0_a[0].index_select(1, order)
            hx_b = tuple(h.index_select(1, order) for h in h0_b) if kind == "lstm" else h0_b[0].index_select(1, order)
        packed_a = pack_padded_sequence(xs_a, lengths[order], batch_first=batch_first, enforce_sorted=sort)
        packed_b = pack_padded_sequence(xs_b, lengths[order], batch_first=batch_first, enforce_sorted=sort)
        pa, st_a = ours(packed_a, hx_a)
        pb, st_b = theirs(packed_b, hx_b)
        assert isinstance(pa, PackedSequence)
        assert torch.equal(pa.batch_sizes, pb.batch_sizes)
        for ia, ib in ((pa.sorted_indices, pb.sorted_indices), (pa.unsorted_indices, pb.unsorted_indices)):
            assert (ia is None and ib is None) or torch.equal(ia, ib)
        out_a, out_b = pa.data, pb.data

    assert out_a.dtype == dtype and out_a.shape == out_b.shape
    torch.testing.assert_close(out_a, out_b, **TOL[dtype])
    st_a, st_b = _flat_state(st_a), _flat_state(st_b)
    assert len(st_a) == len(st_b) == n_states
    for a, b in zip(st_a, st_b):
        assert a.shape == (layers * D, N, H)
        torch.testing.assert_close(a, b, **TOL[dtype])

    g = torch.Generator().manual_seed(5)
    ups = [torch.randn(out_a.shape, generator=g, dtype=dtype)] + \
          [torch.randn(s.shape, generator=g, dtype=dtype) for s in st_a]
    sum((t * u).sum() for t, u in zip([out_a, *st_a], ups)).backward()
    sum((t * u).sum() for t, u in zip([out_b, *st_b], ups)).backward()
    torch.testing.assert_close(x_a.grad, x_b.grad, **TOL[dtype])
    assert x_a.grad.abs().max() > 1e-3
    for a, b in zip(h0_a, h0_b):
        torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, theirs_params[name].grad, **TOL[dtype], msg=name)


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_bias_layer_matches_torch(kind):
    torch.manual_seed(1)
    ours, theirs = paired(kind, torch.float64, num_layers=2, bidirectional=True, bias=False)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = torch.randn(T, N, input_size, dtype=torch.float64)
    a, b = ours(x), theirs(x)
    torch.testing.assert_close(a[0], b[0], **TOL[torch.float64])
    for u, v in zip(_flat_state(a[1]), _flat_state(b[1])):
        torch.testing.assert_close(u, v, **TOL[torch.float64])


@pytest.mark.parametrize("kind", list(KINDS) + ["gru_lecture"])
def test_layer_engines_agree(kind):
    """python, reference, auto (and fused where it can serve) give the same outputs and gradients."""
    torch.manual_seed(8)

    def make(engine: str) -> nn.Module:
        if kind == "gru_lecture":
            return rnnkit.GRU(input_size, H, num_layers=2, bidirectional=True, engine=engine, dtype=torch.float64)
        return KINDS[kind][0](num_layers=2, bidirectional=True, engine=engine, dtype=torch.float64)

    base = make("python")
    x = torch.randn(T, N, input_size, dtype=torch.float64)
    results = {}
    for engine in ("python", "autograd", "auto", "compiled"):
        layer = make(engine)
        layer.load_state_dict(base.state_dict(), strict=True)
        xi = x.clone().requires_grad_()
        try:
            out, st = layer(xi, lengths=LENGTHS)
        except RuntimeError as err:
            assert engine == "compiled" and "compiled" in str(err), str(err)
            continue
        loss = (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum()
        loss = loss + sum((s * 0.5).sum() for s in _flat_state(st))
        loss.backward()
        results[engine] = [out, *_flat_state(st), xi.grad, *(p.grad for p in layer.parameters())]
    assert {"python", "autograd", "auto"} <= set(results)
    for engine, values in results.items():
        for a, b in zip(values, results["python"]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=engine)


# --------------------------------------------------------------------------- unbatched input

@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_equals_batch_of_one_and_torch(kind):
    torch.manual_seed(2)
    ours, theirs = paired(kind, torch.float64, num_layers=2, bidirectional=True)
    x = torch.randn(5, input_size, dtype=torch.float64)
    n_states = 2 if kind == "lstm" else 1
    h0 = [torch.randn(4, H, dtype=torch.float64) for _ in range(n_states)]
    hx = tuple(h0) if kind == "lstm" else h0[0]
    hx1 = tuple(h.unsqueeze(1) for h in h0) if kind == "lstm" else h0[0].unsqueeze(1)
    out, st = ours(x, hx)
    out1, st1 = ours(x.unsqueeze(1), hx1)
    assert out.shape == (5, 2 * H)
    assert torch.equal(out, out1.squeeze(1))
    for a, b in zip(_flat_state(st), _flat_state(st1)):
        assert a.shape == (4, H)
        assert torch.equal(a, b.squeeze(1))
    out_t, st_t = theirs(x, hx)
    torch.testing.assert_close(out, out_t, **TOL[torch.float64])
    for a, b in zip(_flat_state(st), _flat_state(st_t)):
        torch.testing.assert_close(a, b, **TOL[torch.float64])
    out0, _ = ours(x)                                  # no hx on unbatched input either
    out0_t, _ = theirs(x)
    torch.testing.assert_close(out0, out0_t, **TOL[torch.float64])


def test_unbatched_ignores_batch_first():
    torch.manual_seed(3)
    ours = rnnkit.GRU(input_size, H, batch_first=True, reset_after=True, dtype=torch.float64)
    x = torch.randn(6, input_size, dtype=torch.float64)  # (L, I) whatever batch_first says, as torch.nn
    out, h = ours(x)
    out_t, h_t = ours.to_torch()(x)
    torch.testing.assert_close(out, out_t, **TOL[torch.float64])
    torch.testing.assert_close(h, h_t, **TOL[torch.float64])


# --------------------------------------------------------------------------- the lecture's GRU, whole stack

def lecture_gru_direction(xs, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """Cho et al. 2014 as the lecture writes it, over a list of (1, in) steps; returns the list of states.

        r_t  = σ(x_t U_r + h_{t-1} W_r + b_r)
        z_t  = σ(x_t U_z + h_{t-1} W_z + b_z)          the lecture's update gate
        h~_t = tanh(x_t U_h + (r_t ⊙ h_{t-1}) W_h + b_h)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    torch.nn's layout keeps PyTorch's update gate, 1 - z_lecture = σ(-(...)): the lecture's z blocks are the
    negated stored ones.
    """
    Hh = weight_hh.shape[1]
    U_r, U_z, U_h = (w.T for w in weight_ih.split(Hh, 0))
    W_r, W_z, W_h = (w.T for w in weight_hh.split(Hh, 0))
    b_r, b_z, b_h = (a + b for a, b in zip(bias_ih.split(Hh), bias_hh.split(Hh)))
    U_z, W_z, b_z = -U_z, -W_z, -b_z
    out = []
    for x_t in xs:
        r = torch.sigmoid(x_t @ U_r + h @ W_r + b_r)
        z = torch.sigmoid(x_t @ U_z + h @ W_z + b_z)
        h_tilde = torch.tanh(x_t @ U_h + (r * h) @ W_h + b_h)
        h = (1 - z) * h + z * h_tilde
        out.append(h)
    return out


def test_lecture_gru_layer_matches_hand_loop_stacked_bidirectional_with_lengths():
    torch.manual_seed(4)
    layers, lengths = 2, [5, 2, 4]
    layer = rnnkit.GRU(input_size, H, num_layers=layers, bidirectional=True, dtype=torch.float64)
    x = torch.randn(5, 3, input_size, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * layers, 3, H, dtype=torch.float64, requires_grad=True)
    out, h_n = layer(x, h0, lengths=lengths)

    p = {k: v.detach().clone().requires_grad_() for k, v in layer.state_dict().items()}
    x2, h02 = x.detach().clone().requires_grad_(), h0.detach().clone().requires_grad_()
    want_out, want_h = [], []
    for n, L in enumerate(lengths):
        seq = [x2[t, n:n + 1] for t in range(L)]
        finals = []
        for k in range(layers):
            def w(s: str) -> list[torch.Tensor]:
                return [p[f"{name}_l{k}{s}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

            fwd = lecture_gru_direction(seq, h02[2 * k, n:n + 1], *w(""))
            bwd = lecture_gru_direction(seq[::-1], h02[2 * k + 1, n:n + 1], *w("_reverse"))[::-1]
            finals += [fwd[-1], bwd[0]]
            seq = [torch.cat([f, b], 1) for f, b in zip(fwd, bwd)]
        pad = torch.zeros(5 - L, 2 * H, dtype=torch.float64)
        want_out.append(torch.cat([torch.cat(seq, 0), pad], 0))
        want_h.append(torch.cat(finals, 0))
    want_out = torch.stack(want_out, 1)
    want_h = torch.stack(want_h, 1)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(h_n, want_h, rtol=1e-12, atol=1e-13)

    g = torch.Generator().manual_seed(0)
    d_out = torch.randn(out.shape, generator=g, dtype=torch.float64)
    d_h = torch.randn(h_n.shape, generator=g, dtype=torch.float64)
    ((out * d_out).sum() + (h_n * d_h).sum()).backward()
    ((want_out * d_out).sum() + (want_h * d_h).sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h0.grad, h02.grad, rtol=1e-10, atol=1e-12)
    for name, param in layer.named_parameters():
        torch.testing.assert_close(param.grad, p[name].grad, rtol=1e-10, atol=1e-12, msg=name)


def test_lecture_gru_layer_differs_from_torch_gru():
    torch.manual_seed(5)
    ours = rnnkit.GRU(input_size, H, dtype=torch.float64)
    theirs = nn.GRU(input_size, H, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict(), strict=True)       # same shapes, different meaning
    x = torch.randn(T, N, input_size, dtype=torch.float64)
    assert (ours(x)[0] - theirs(x)[0]).abs().max() > 1e-3


# --------------------------------------------------------------------------- dropout

def test_dropout_only_between_layers_and_only_in_training():
    torch.manual_seed(6)
    p = 0.5
    ours, theirs = paired("lstm", torch.float64, num_layers=2, dropout=p)
    x = torch.randn(T, N, input_size, dtype=torch.float64)

    ours.eval()
    theirs.eval()
    e1, e2 = ours(x), ours(x)
    assert torch.equal(e1[0], e2[0])                             # deterministic in eval
    torch.testing.assert_close(e1[0], theirs(x)[0], **TOL[torch.float64])   # and equal to torch.nn in eval

    ours.train()
    torch.manual_seed(123)
    t1 = ours(x)
    torch.manual_seed(123)
    t2 = ours(x)
    assert torch.equal(t1[0], t2[0])
    assert (t1[0] - e1[0]).abs().max() > 1e-3                    # dropout is active in training

    # exactly: layer 0, then F.dropout with the same random stream, then layer 1
    l0 = rnnkit.LSTM(input_size, H, dtype=torch.float64)
    l1 = rnnkit.LSTM(H, H, dtype=torch.float64)
    sd = ours.state_dict()
    l0.load_state_dict({k: v for k, v in sd.items() if k.endswith("_l0")})
    l1.load_state_dict({k.replace("_l1", "_l0"): v for k, v in sd.items() if k.endswith("_l1")})
    torch.manual_seed(123)
    y0, (h0_, c0_) = l0(x)
    y0 = F.dropout(y0, p, training=True)
    y1, (h1_, c1_) = l1(y0)
    assert torch.equal(t1[0], y1)
    assert torch.equal(t1[1][0], torch.cat([h0_, h1_]))
    assert torch.equal(t1[1][1], torch.cat([c0_, c1_]))

    # no dropout after the last layer: a one-layer net in training equals eval
    single = rnnkit.GRU(input_size, H, dropout=0.5, reset_after=True, dtype=torch.float64)
    single.train()
    a = single(x)[0]
    single.eval()
    assert torch.equal(a, single(x)[0])
