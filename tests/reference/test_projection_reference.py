"""The NumPy reference's LSTM with a projection (torch's ``proj_size``): finite differences, ``torch.nn.LSTM``
with copied weights, and the compiled loop against it in float64."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.reference import backward, check_gradients, forward

T, N, input_size, H, P = 5, 3, 4, 6, 2


def problem(seed=0, bias=True):
    rng = np.random.default_rng(seed)
    params = {"weight_ih": rng.normal(0, 0.5, (4 * H, input_size)), "weight_hh": rng.normal(0, 0.5, (4 * H, P)),
              "weight_hr": rng.normal(0, 0.5, (P, H))}
    if bias:
        params["bias_ih"], params["bias_hh"] = rng.normal(0, 0.5, 4 * H), rng.normal(0, 0.5, 4 * H)
    return rng.normal(size=(T, N, input_size)), (rng.normal(size=(N, P)), rng.normal(size=(N, H))), params


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_backward_matches_finite_differences(bias):
    x, state0, params = problem(seed=1, bias=bias)
    errors = check_gradients("lstm", x, state0, params, seed=3)
    assert "weight_hr" in errors and len(errors) == 6 + 2 * bias
    for name, err in errors.items():
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_wrong_shapes_and_cells_are_named():
    x, state0, params = problem()
    with pytest.raises(ValueError, match=r"weight_hr has shape \(3, 6\), expected \(2, 6\)"):
        forward("lstm", x, state0, {**params, "weight_hr": np.zeros((3, H))})
    with pytest.raises(ValueError, match="LSTM's only"):
        forward("gru", x, state0[0], {"weight_ih": np.zeros((9, input_size)), "weight_hh": np.zeros((9, 3)),
                                      "weight_hr": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"state0 h has shape \(3, 6\), expected \(3, 2\)"):
        forward("lstm", x, (np.zeros((N, H)), state0[1]), params)


@pytest.mark.parametrize("engine", ["compiled", "python", "torch"])
def test_rnnkit_and_torch_equal_the_reference(engine):
    """rnnkit's engines (``torch`` is ``nn.LSTM(proj_size=P)`` itself) against the reference, float64."""
    x, (h0, c0), params = problem(seed=2)
    layer = rnnkit.LSTM(input_size, H, proj_size=P, dtype=torch.float64, engine=engine)
    with torch.no_grad():
        for name, value in params.items():
            getattr(layer, f"{name}_l0").copy_(torch.from_numpy(value))
    rng = np.random.default_rng(5)
    d_out, d_h, d_c = rng.normal(size=(T, N, P)), rng.normal(size=(N, P)), rng.normal(size=(N, H))
    outputs, (h_T, c_T), cache = forward("lstm", x, (h0, c0), params)
    grads = backward(cache, d_out, (d_h, d_c))

    xt = torch.from_numpy(x).requires_grad_()
    state = tuple(torch.from_numpy(s)[None].requires_grad_() for s in (h0, c0))
    out, (h, c) = layer(xt, state)
    loss = (out * torch.from_numpy(d_out)).sum() + (h[0] * torch.from_numpy(d_h)).sum() \
        + (c[0] * torch.from_numpy(d_c)).sum()
    names = ["x", "h0", "c0"] + [f"{n}_l0" for n in params]
    got = torch.autograd.grad(loss, [xt, *state, *(getattr(layer, n) for n in names[3:])])
    for a, b in ((out, outputs), (h[0], h_T), (c[0], c_T)):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-10, atol=1e-12)
    for name, g in zip(names, got):
        want = grads[name.removesuffix("_l0")]
        np.testing.assert_allclose(g.numpy().reshape(want.shape), want, rtol=1e-9, atol=1e-11, err_msg=name)
