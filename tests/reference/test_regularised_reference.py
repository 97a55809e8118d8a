"""The NumPy reference with recurrent-dropout and zoneout masks and layer norm: against finite differences, and the
engines (the Python loop, the autograd twin and the compiled C++ loop, plain and checkpointed) against it with the
same masks (float64, < 1e-8)."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from rnnkit.cells.extras import Regularisation
from rnnkit.cells.spec import recurrence
from rnnkit.engine import fused, run_bptt, run_reference
from rnnkit.reference.gradcheck import numerical_gradient, relative_error
from rnnkit.reference.regularised import KERNELS, backward, forward

T, N, input_size, H = 4, 3, 3, 4


def _problem(kernel: str, seed: int = 0, train: bool = True):
    rng = np.random.default_rng(seed)
    G = recurrence(kernel).gates
    p = {"weight_ih": rng.normal(0, .5, (G * H, input_size)), "weight_hh": rng.normal(0, .5, (G * H, H)),
         "bias_ih": rng.normal(0, .1, G * H), "bias_hh": rng.normal(0, .1, G * H)}
    x = rng.normal(size=(T, N, input_size))
    h0 = rng.normal(0, .5, (N, H))
    state = (h0, rng.normal(0, .5, (N, H))) if kernel == "lstm" else h0
    masks = {"h_mask": (rng.random((N, H)) > 0.3) / 0.7,
             "zoneout_h": (rng.random((T, N, H)) < 0.25).astype(float) if train else np.full((T, N, H), 0.25),
             "zoneout_c": (rng.random((T, N, H)) < 0.4).astype(float) if kernel == "lstm" else None}
    return x, state, p, masks


def _backward(h_seq, h_T, c_T, d_out, d_final) -> None:
    """Backpropagate the reference's upstream gradients: ``d_out`` into the outputs, ``d_final`` into the final
    state(s)."""
    finals = (h_T, c_T) if c_T is not None else (h_T,)
    d_finals = d_final if c_T is not None else (d_final,)
    loss = (h_seq * torch.tensor(d_out)).sum() + sum((f * torch.tensor(d)).sum() for f, d in zip(finals, d_finals))
    loss.backward()


@pytest.mark.parametrize("kernel", KERNELS)
def test_reference_backward_equals_finite_differences(kernel):
    x, state, p, masks = _problem(kernel)
    lstm = kernel == "lstm"
    out, final, cache = forward(kernel, x, state, p, **masks)
    rng = np.random.default_rng(1)
    d_out = rng.normal(size=out.shape)
    d_final = tuple(rng.normal(size=f.shape) for f in final) if lstm else rng.normal(size=final.shape)
    grads = backward(cache, d_out, d_final)
    s0 = [np.array(a) for a in (state if lstm else (state,))]

    def loss():
        o, f, _ = forward(kernel, x, tuple(s0) if lstm else s0[0], p, **masks)
        fs, ds = (f, d_final) if lstm else ((f,), (d_final,))
        return float((o * d_out).sum() + sum((a * b).sum() for a, b in zip(fs, ds)))

    arrays = {"x": x, "h0": s0[0], **({"c0": s0[1]} if lstm else {}), **p}
    for name, arr in arrays.items():
        assert relative_error(grads[name], numerical_gradient(loss, arr)) < 1e-7, name


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("kernel", KERNELS)
def test_engines_equal_the_reference(kernel, train):
    x, state, p, masks = _problem(kernel, seed=3, train=train)
    cell = recurrence(kernel)
    lstm = cell.has_cell_state
    out, final, cache = forward(kernel, x, state, p, **masks)
    rng = np.random.default_rng(4)
    d_out = rng.normal(size=out.shape)
    d_final = tuple(rng.normal(size=f.shape) for f in final) if lstm else rng.normal(size=final.shape)
    want = backward(cache, d_out, d_final)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    reg = Regularisation(*(None if masks[k] is None else torch.tensor(masks[k])
                           for k in ("h_mask", "zoneout_h", "zoneout_c")))
    for runner in (run_bptt, run_reference, fused.run_fused, partial(fused.run_fused, checkpoint_every=3)):
        xt = t(x)
        h0, c0 = (t(state[0]), t(state[1])) if lstm else (t(state), None)
        weights = tuple(t(p[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        h_seq, h_T, c_T = runner(cell, xt, h0, c0, weights, None, reg=reg)
        np.testing.assert_allclose(h_seq.detach().numpy(), out, rtol=0, atol=1e-12)
        _backward(h_seq, h_T, c_T, d_out, d_final)
        got = {"x": xt.grad, "h0": h0.grad, **({"c0": c0.grad} if lstm else {}),
               **{k: w.grad for k, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights)}}
        for name, g in got.items():
            assert relative_error(g.numpy(), want[name]) < 1e-8, (getattr(runner, "__name__", runner), name)


def _layer_norms(kernel: str, seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    GH = recurrence(kernel).gates * H
    ln = {"ih": (rng.uniform(0.5, 1.5, GH), rng.normal(0, .2, GH)),
          "hh": (rng.uniform(0.5, 1.5, GH), rng.normal(0, .2, GH))}
    if kernel == "lstm":
        ln["c"] = (rng.uniform(0.5, 1.5, H), rng.normal(0, .2, H))
    return ln


@pytest.mark.parametrize("kernel", KERNELS)
def test_layer_norm_backward_equals_finite_differences(kernel):
    x, state, p, masks = _problem(kernel, seed=6)
    ln = _layer_norms(kernel)
    lstm = kernel == "lstm"
    out, final, cache = forward(kernel, x, state, p, ln=ln, **masks)
    rng = np.random.default_rng(2)
    d_out = rng.normal(size=out.shape)
    d_final = tuple(rng.normal(size=f.shape) for f in final) if lstm else rng.normal(size=final.shape)
    grads = backward(cache, d_out, d_final)

    def loss():
        o, f, _ = forward(kernel, x, state, p, ln=ln, **masks)
        fs, ds = (f, d_final) if lstm else ((f,), (d_final,))
        return float((o * d_out).sum() + sum((a * b).sum() for a, b in zip(fs, ds)))

    arrays = {"x": x, **p, **{f"ln_{k}_{w}": v[j] for k, v in ln.items() for j, w in enumerate(("weight", "bias"))}}
    for name, arr in arrays.items():
        assert relative_error(grads[name], numerical_gradient(loss, arr)) < 1e-6, name


@pytest.mark.parametrize("runner", ["autograd", "python", "compiled", "compiled-checkpointed"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_engines_with_layer_norm_equal_the_reference(kernel, runner):
    """The autograd twin, the Python BPTT loop and the compiled loop (plain and checkpointed) with layer norm,
    recurrent dropout and zoneout together, against the NumPy reference with the same masks: outputs, final states
    and every gradient."""
    x, state, p, masks = _problem(kernel, seed=8)
    ln = _layer_norms(kernel, seed=9)
    cell = recurrence(kernel)
    lstm = cell.has_cell_state
    out, final, cache = forward(kernel, x, state, p, ln=ln, **masks)
    rng = np.random.default_rng(4)
    d_out = rng.normal(size=out.shape)
    d_final = tuple(rng.normal(size=f.shape) for f in final) if lstm else rng.normal(size=final.shape)
    want = backward(cache, d_out, d_final)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    lnt = {k: (t(g), t(b)) for k, (g, b) in ln.items()}
    order = [lnt["ih"][0], lnt["ih"][1], lnt["hh"][0], lnt["hh"][1], *(lnt["c"] if lstm else (None, None))]
    reg = Regularisation(*(None if masks[k] is None else torch.tensor(masks[k])
                           for k in ("h_mask", "zoneout_h", "zoneout_c")), ln=tuple(order))
    xt = t(x)
    h0, c0 = (t(state[0]), t(state[1])) if lstm else (t(state), None)
    weights = tuple(t(p[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    run = {"autograd": run_reference, "python": run_bptt, "compiled": fused.run_fused,
           "compiled-checkpointed": partial(fused.run_fused, checkpoint_every=3)}[runner]
    h_seq, h_T, c_T = run(cell, xt, h0, c0, weights, None, reg=reg)
    np.testing.assert_allclose(h_seq.detach().numpy(), out, rtol=0, atol=1e-12)
    _backward(h_seq, h_T, c_T, d_out, d_final)
    got = {"x": xt.grad, "h0": h0.grad, **({"c0": c0.grad} if lstm else {}),
           **{k: w.grad for k, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights)},
           **{f"ln_{k}_{w}": v[j].grad for k, v in lnt.items() for j, w in enumerate(("weight", "bias"))}}
    for name, g in got.items():
        assert relative_error(g.numpy(), want[name]) < 1e-8, name
