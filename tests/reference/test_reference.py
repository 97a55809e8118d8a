"""Tests of the NumPy reference (the oracle): gradients, golden values, conventions, no torch."""
from __future__ import annotations

import ast
import math
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit.reference import CELLS, GATES, backward, check_gradients, forward, numerical_gradient

REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[2] / "src" / "rnnkit" / "reference"
T, N, input_size, H = 4, 3, 5, 4


def random_problem(cell: str, seed: int = 0, bias: bool = True, scale: float = 0.5):
    """x, state0 and params for ``cell`` at the tiny test sizes."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    params = {"weight_ih": rng.normal(0, scale, (G * H, input_size)), "weight_hh": rng.normal(0, scale, (G * H, H))}
    if bias:
        params["bias_ih"] = rng.normal(0, scale, G * H)
        params["bias_hh"] = rng.normal(0, scale, G * H)
    x = rng.normal(size=(T, N, input_size))
    h0 = rng.normal(size=(N, H))
    state0 = (h0, rng.normal(size=(N, H))) if cell == "lstm" else h0
    return x, state0, params


def sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", CELLS)
def test_backward_matches_finite_differences(cell, bias):
    x, state0, params = random_problem(cell, seed=CELLS.index(cell), bias=bias)
    if cell == "rnn_relu":
        # The kink of relu at 0 must be far from every pre-activation, compared with eps = 1e-6,
        # and both branches (active and dead units) must occur so that the mask is tested.
        a = forward(cell, x, state0, params)[2].saved["a"]
        assert np.abs(a).min() > 1e-4
        assert (a > 0).any() and (a < 0).any()
    errors = check_gradients(cell, x, state0, params, seed=7)
    expected = {"x", "h0", "weight_ih", "weight_hh"} | ({"c0"} if cell == "lstm" else set()) \
        | ({"bias_ih", "bias_hh"} if bias else set())
    assert set(errors) == expected
    for name, err in errors.items():
        assert err < 1e-6, f"{cell} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", CELLS)
def test_backward_keys_and_shapes(cell):
    x, state0, params = random_problem(cell)
    outputs, final, cache = forward(cell, x, state0, params)
    assert outputs.shape == (T, N, H) and outputs.dtype == np.float64
    grads = backward(cache, np.ones_like(outputs), None)
    for name, value in params.items():
        assert grads[name].shape == value.shape
    assert grads["x"].shape == x.shape and grads["h0"].shape == (N, H)
    if cell == "lstm":
        assert isinstance(final, tuple) and grads["c0"].shape == (N, H)
        np.testing.assert_array_equal(final[0], outputs[-1])
    else:
        np.testing.assert_array_equal(final, outputs[-1])


@pytest.mark.parametrize("cell", CELLS)
def test_none_means_zeros(cell):
    x, _, params = random_problem(cell)
    zeros = np.zeros((N, H))
    out_none, _, cache_none = forward(cell, x, None, params)
    out_zero, _, cache_zero = forward(cell, x, (zeros, zeros) if cell == "lstm" else zeros, params)
    np.testing.assert_array_equal(out_none, out_zero)
    d_out = np.random.default_rng(3).normal(size=(T, N, H))
    zero_final = (zeros, zeros) if cell == "lstm" else zeros
    g_none, g_zero = backward(cache_none, d_out, None), backward(cache_zero, d_out, zero_final)
    assert g_none.keys() == g_zero.keys()
    for name in g_none:
        np.testing.assert_array_equal(g_none[name], g_zero[name])


def test_final_state_gradient_alone():
    """Only d_final nonzero: for T=1 the gradient of h0 is d_h1 * tanh'(a_1) * weight_hh."""
    x, h0, params = random_problem("rnn_tanh")
    x = x[:1]
    out, h1, cache = forward("rnn_tanh", x, h0, params)
    d_h1 = np.random.default_rng(5).normal(size=(N, H))
    grads = backward(cache, np.zeros_like(out), d_h1)
    np.testing.assert_allclose(grads["h0"], (d_h1 * (1 - h1 ** 2)) @ params["weight_hh"], rtol=1e-14)


def test_numerical_gradient_of_a_cubic_restores_the_array():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = a.copy()
    g = numerical_gradient(lambda: float(np.sum(a ** 3)), a)
    np.testing.assert_allclose(g, 3 * before ** 2, rtol=1e-8)
    np.testing.assert_array_equal(a, before)


def test_check_gradients_leaves_caller_arrays_alone():
    x, state0, params = random_problem("lstm")
    copies = {k: v.copy() for k, v in params.items()}
    check_gradients("lstm", x, state0, params)
    for k in params:
        np.testing.assert_array_equal(params[k], copies[k])


# --------------------------------------------------------------------------- golden values

def test_rnn_golden_by_hand():
    """weight_ih = 0.1, weight_hh = 0.2, no bias, x = 1, T = 2, H = I = 1, h0 = 0; L = h_2."""
    params = {"weight_ih": np.array([[0.1]]), "weight_hh": np.array([[0.2]]),
              "bias_ih": np.zeros(1), "bias_hh": np.zeros(1)}
    x = np.ones((2, 1, 1))
    outputs, h_T, cache = forward("rnn_tanh", x, None, params)
    h1 = math.tanh(0.1 * 1 + 0.2 * 0)
    h2 = math.tanh(0.1 * 1 + 0.2 * h1)
    assert outputs[:, 0, 0].tolist() == pytest.approx([h1, h2], abs=1e-15)
    assert h_T[0, 0] == pytest.approx(h2, abs=1e-15)

    grads = backward(cache, np.zeros((2, 1, 1)), np.ones((1, 1)))    # L = h_2
    da2 = 1 - h2 ** 2                    # dL/da_2
    da1 = da2 * 0.2 * (1 - h1 ** 2)      # dL/da_1 = dL/da_2 * W * tanh'(a_1)
    assert grads["weight_hh"][0, 0] == pytest.approx(da2 * h1 + da1 * 0.0, abs=1e-15)
    assert grads["weight_ih"][0, 0] == pytest.approx(da2 + da1, abs=1e-15)
    assert grads["bias_ih"][0] == pytest.approx(da2 + da1, abs=1e-15)
    assert grads["x"][:, 0, 0].tolist() == pytest.approx([0.1 * da1, 0.1 * da2], abs=1e-15)
    assert grads["h0"][0, 0] == pytest.approx(0.2 * da1, abs=1e-15)


def test_lstm_one_step_golden():
    """H = I = 1, a different constant per gate so that the gate order i, f, g, o is pinned down."""
    w_ih, w_hh = [0.1, 0.2, 0.3, 0.4], [0.5, -0.5, 0.25, -0.25]
    b_ih, b_hh = [0.01, 0.02, 0.03, 0.04], [0.0, 0.1, 0.0, -0.1]
    params = {"weight_ih": np.array(w_ih)[:, None], "weight_hh": np.array(w_hh)[:, None],
              "bias_ih": np.array(b_ih), "bias_hh": np.array(b_hh)}
    x, h0, c0 = 2.0, 0.5, -0.3
    a = [w_ih[k] * x + b_ih[k] + w_hh[k] * h0 + b_hh[k] for k in range(4)]
    i, f, g, o = sigmoid(a[0]), sigmoid(a[1]), math.tanh(a[2]), sigmoid(a[3])
    c1 = f * c0 + i * g                  # no sigma around the cell state
    h1 = o * math.tanh(c1)
    outputs, (h_T, c_T), _ = forward("lstm", np.full((1, 1, 1), x), (np.full((1, 1), h0), np.full((1, 1), c0)), params)
    assert outputs[0, 0, 0] == pytest.approx(h1, abs=1e-15)
    assert h_T[0, 0] == pytest.approx(h1, abs=1e-15)
    assert c_T[0, 0] == pytest.approx(c1, abs=1e-15)


@pytest.mark.parametrize("cell", ["gru", "gru_reset_after"])
def test_gru_one_step_golden(cell):
    """H = I = 1, gates r, z, n; h_1 = (1 - z) n + z h_0 (the lecture's z is our 1 - z)."""
    w_ih, w_hh, b_ih, b_hh = [0.3, -0.2, 0.7], [0.4, 0.6, -0.8], [0.05, -0.05, 0.1], [0.02, 0.03, 0.2]
    params = {"weight_ih": np.array(w_ih)[:, None], "weight_hh": np.array(w_hh)[:, None],
              "bias_ih": np.array(b_ih), "bias_hh": np.array(b_hh)}
    x, h0 = 1.5, -0.6
    r = sigmoid(w_ih[0] * x + b_ih[0] + w_hh[0] * h0 + b_hh[0])
    z = sigmoid(w_ih[1] * x + b_ih[1] + w_hh[1] * h0 + b_hh[1])
    if cell == "gru":
        n = math.tanh(w_ih[2] * x + b_ih[2] + w_hh[2] * (r * h0) + b_hh[2])     # reset before W_hn
    else:
        n = math.tanh(w_ih[2] * x + b_ih[2] + r * (w_hh[2] * h0 + b_hh[2]))     # reset after W_hn
    h1 = (1 - z) * n + z * h0
    outputs, _, _ = forward(cell, np.full((1, 1, 1), x), np.full((1, 1), h0), params)
    assert outputs[0, 0, 0] == pytest.approx(h1, abs=1e-15)


def test_the_two_grus_differ_exactly_where_they_should():
    _, h0, params = random_problem("gru")
    x = np.random.default_rng(11).normal(size=(3, N, input_size))
    params_no_bhn = {k: v.copy() for k, v in params.items()}
    params_no_bhn["bias_hh"][2 * H:] = 0.0

    def gap(x, h0, params):
        a = forward("gru", x, h0, params)[0]
        b = forward("gru_reset_after", x, h0, params)[0]
        return np.abs(a - b).max()

    assert gap(x, h0, params) > 1e-3                   # h0 != 0 and b_hn != 0
    assert gap(x, h0, params_no_bhn) > 1e-3            # h0 != 0 alone
    assert gap(x[:1], None, params) > 1e-3             # b_hn != 0 alone (r * b_hn vs b_hn)
    assert gap(x[:1], None, params_no_bhn) < 1e-15     # h0 = 0, T = 1, b_hn = 0: the same


def test_matches_torch_nn():
    """The conventions are torch.nn's: same outputs and gradients in float64 (the test may use torch)."""
    torch = pytest.importorskip("torch")
    modules = {"rnn_tanh": lambda: torch.nn.RNN(input_size, H, nonlinearity="tanh"),
               "rnn_relu": lambda: torch.nn.RNN(input_size, H, nonlinearity="relu"),
               "lstm": lambda: torch.nn.LSTM(input_size, H), "gru_reset_after": lambda: torch.nn.GRU(input_size, H)}
    for cell, make in modules.items():
        x, state0, params = random_problem(cell, seed=21)
        module = make().double()
        with torch.no_grad():
            for name, value in params.items():
                getattr(module, name + "_l0").copy_(torch.from_numpy(value))
        xt = torch.tensor(x, requires_grad=True)
        states = [torch.tensor(s, requires_grad=True) for s in (state0 if cell == "lstm" else (state0,))]
        out, final = module(xt, tuple(s[None] for s in states) if cell == "lstm" else states[0][None])
        finals = final if cell == "lstm" else (final,)
        rng = np.random.default_rng(22)
        d_out = rng.normal(size=(T, N, H))
        d_fin = [rng.normal(size=(N, H)) for _ in states]
        loss = (out * torch.from_numpy(d_out)).sum()
        loss = loss + sum((f[0] * torch.from_numpy(d)).sum() for f, d in zip(finals, d_fin))
        loss.backward()

        ours, _, cache = forward(cell, x, state0, params)
        grads = backward(cache, d_out, tuple(d_fin) if cell == "lstm" else d_fin[0])
        np.testing.assert_allclose(ours, out.detach().numpy(), rtol=0, atol=1e-13)
        theirs = {"x": xt.grad, "h0": states[0].grad, **({"c0": states[1].grad} if cell == "lstm" else {}),
                  **{name: getattr(module, name + "_l0").grad for name in params}}
        for name, g in theirs.items():
            np.testing.assert_allclose(grads[name], g.numpy(), rtol=0, atol=1e-12, err_msg=f"{cell} {name}")


# --------------------------------------------------------------------------- no torch

def test_no_file_imports_torch_or_the_package():
    files = sorted(REFERENCE_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "rnn.py", "lstm.py", "gru.py", "gradcheck.py"}
    for f in files:
        source = f.read_text()
        assert len(source.splitlines()) < 400, f.name
        for node in ast.walk(ast.parse(source, filename=str(f))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for m in modules:
                top = m.split(".")[0]
                assert top != "torch", f"{f.name} imports {m}"
                assert top != "rnnkit", f"{f.name} imports {m}: use relative imports (rnnkit imports torch)"


STANDALONE = textwrap.dedent("""
    import importlib, importlib.abc, importlib.util, pathlib, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not available here")
            return None

    sys.meta_path.insert(0, NoTorch())
    try:
        import torch
    except ImportError:
        pass
    else:
        raise SystemExit("the torch blocker does not work")

    folder = pathlib.Path(sys.argv[1])
    name = "rnnkit_reference_standalone"
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    for f in sorted(folder.glob("*.py")):
        if f.stem != "__init__":
            importlib.import_module(name + "." + f.stem)

    import numpy as np
    rng = np.random.default_rng(0)
    params = {"weight_ih": rng.normal(0, .5, (8, 2)), "weight_hh": rng.normal(0, .5, (8, 2))}
    errors = package.check_gradients("lstm", rng.normal(size=(2, 1, 2)), None, params)
    assert max(errors.values()) < 1e-6, errors
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "rnnkit"))
    assert not leaked, leaked
    print("standalone ok")
""")


def test_loads_and_runs_without_torch():
    result = subprocess.run([sys.executable, "-c", STANDALONE, str(REFERENCE_DIR)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "standalone ok" in result.stdout


# --------------------------------------------------------------------------- bad input

def test_unknown_cell_names_the_valid_ones():
    x, state0, params = random_problem("gru")
    with pytest.raises(ValueError) as info:
        forward("gru_v2", x, state0, params)
    for name in CELLS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="rnn_tanh"):
        check_gradients("elman", x, state0, params)


@pytest.mark.parametrize("name, bad_shape, expected", [
    ("weight_ih", (16, 6), (16, 5)),
    ("weight_hh", (12, 4), (16, 4)),
    ("bias_ih", (12,), (16,)),
    ("bias_hh", (16, 1), (16,)),
])
def test_wrong_param_shape_names_both_shapes(name, bad_shape, expected):
    x, state0, params = random_problem("lstm")
    params[name] = np.zeros(bad_shape)
    with pytest.raises(ValueError) as info:
        forward("lstm", x, state0, params)
    message = str(info.value)
    assert name in message and str(bad_shape) in message and str(expected) in message


def test_other_bad_inputs():
    x, state0, params = random_problem("lstm")
    with pytest.raises(ValueError, match=r"\(3, 4\)"):                 # c0 must be (N, H)
        forward("lstm", x, (state0[0], np.zeros((3, 5))), params)
    with pytest.raises(ValueError, match="tuple"):
        forward("lstm", x, state0[0], params)
    with pytest.raises(ValueError, match=r"\(T, N, I\)"):
        forward("lstm", x[0], state0, params)
    with pytest.raises(ValueError, match="weight_hh"):
        forward("lstm", x, state0, {"weight_ih": params["weight_ih"]})
    with pytest.raises(ValueError, match="bias"):
        forward("lstm", x, state0, {**params, "bais_ih": params["bias_ih"]})
    outputs, _, cache = forward("lstm", x, state0, params)
    with pytest.raises(ValueError, match=r"\(4, 3, 4\)"):
        backward(cache, outputs[1:], None)
