"""The NumPy minGRU / minLSTM reference: finite differences, golden values, log space, torch, and no torch inside."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit.reference import minimal as ref

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "src" / "rnnkit" / "reference"
T, N, input_size, H = 5, 3, 4, 3
CELLS = ["mingru", "minlstm"]


def problem(cell, seed=0, positive=False, bias=True):
    rng = np.random.default_rng(seed)
    G = ref.GATES[cell]
    x = rng.normal(size=(T, N, input_size))
    h0 = rng.normal(size=(N, H))
    h0 = np.abs(h0) if positive else h0
    weight = rng.normal(0, 1.0, (G * H, input_size))
    b = rng.normal(0, 1.0, G * H) if bias else None
    return x, h0, weight, b


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("positive", [False, True], ids=["plain", "logspace"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_backward_matches_finite_differences(cell, positive, bias):
    errors = ref.check_gradients(cell, *problem(cell, 1, positive, bias), positive=positive, seed=2)
    assert set(errors) == {"x", "h0", "weight_ih"} | ({"bias_ih"} if bias else set())
    assert max(errors.values()) < 1e-7, errors


def test_golden_values():
    x = np.array([[[1.0]], [[3.0]]])
    h0 = np.array([[2.0]])
    gru_w, gru_b = np.array([[0.0], [1.0]]), np.array([0.0, 1.0])            # z = 1/2, h~ = x + 1
    out, h_T, _ = ref.forward("mingru", x, h0, gru_w, gru_b)
    assert out.ravel().tolist() == [2.0, 3.0] and h_T.ravel().tolist() == [3.0]
    lstm_w, lstm_b = np.array([[0.0], [0.0], [1.0]]), np.array([np.log(3.0), 0.0, 1.0])   # f = 3/4, i = 1/2
    out, _, _ = ref.forward("minlstm", x, h0, lstm_w, lstm_b)
    a = 0.75 / 1.25                                                           # f' = 3/5, i' = 2/5
    np.testing.assert_allclose(out.ravel(), [a * 2 + (1 - a) * 2, a * 2 + (1 - a) * 4], rtol=0, atol=1e-15)
    # positive activation: g(-p) = σ(-p) for a negative candidate
    out, _, _ = ref.forward("mingru", np.array([[[-3.0]]]), np.zeros((1, 1)), gru_w, gru_b, positive=True)
    np.testing.assert_allclose(out.ravel(), [0.5 / (1 + np.exp(2.0))], rtol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
def test_log_space_equals_the_plain_loop(cell):
    """Heinsen's log-space scan gives the positive version's numbers (float64, < 1e-12 relative)."""
    x, h0, weight, b = problem(cell, 3, positive=True)
    out, h_T, _ = ref.forward(cell, x, h0, weight, b, positive=True)
    out_log, h_log = ref.forward_log(cell, x, h0, weight, b)
    np.testing.assert_allclose(out_log, out, rtol=1e-12, atol=0)
    np.testing.assert_allclose(h_log, h_T, rtol=1e-12, atol=0)
    assert out.min() > 0                                      # a positive state stays positive


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("positive", [False, True], ids=["plain", "logspace"])
def test_matches_torch(cell, positive):
    """The reference against rnnkit's layer (every scan) in float64: outputs, final state, every gradient."""
    torch = pytest.importorskip("torch")
    from rnnkit.engine.scan import compiled_unavailable_reason
    from rnnkit.layers.minimal import MinGRU, MinLSTM

    x, h0, weight, b = problem(cell, 4, positive)
    rng = np.random.default_rng(5)
    d_out, d_hT = rng.normal(size=(T, N, H)), rng.normal(size=(N, H))
    out, h_T, cache = ref.forward(cell, x, h0, weight, b, positive)
    grads = ref.backward(cache, d_out, d_hT)

    layer = (MinGRU if cell == "mingru" else MinLSTM)(input_size, H, log_space=positive, dtype=torch.float64)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.from_numpy(weight))
        layer.bias_ih_l0.copy_(torch.from_numpy(b))
    scans = ["torch"] + (["compiled"] if compiled_unavailable_reason(torch.zeros(1)) is None else []) + \
        (["log"] if positive else [])
    for scan in scans:
        layer.scan = scan
        xt = torch.tensor(x, requires_grad=True)
        ht = torch.tensor(h0[None], requires_grad=True)
        o, h = layer(xt, ht)
        ((o * torch.from_numpy(d_out)).sum() + (h[0] * torch.from_numpy(d_hT)).sum()).backward()
        np.testing.assert_allclose(o.detach().numpy(), out, rtol=0, atol=1e-12, err_msg=scan)
        np.testing.assert_allclose(h[0].detach().numpy(), h_T, rtol=0, atol=1e-12, err_msg=scan)
        theirs = {"x": xt.grad, "h0": ht.grad[0], "weight_ih": layer.weight_ih_l0.grad,
                  "bias_ih": layer.bias_ih_l0.grad}
        for name, g in theirs.items():
            np.testing.assert_allclose(grads[name], g.numpy(), rtol=0, atol=1e-11, err_msg=f"{scan} {name}")
        layer.zero_grad()


def test_imports_no_torch():
    """Its imports are numpy and relative ones; and it runs in a process where torch can't be imported."""
    source = (REFERENCE / "minimal.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        assert all(n.split(".")[0] in ("numpy", "__future__", "typing") for n in names), names
    script = textwrap.dedent("""
        import importlib, importlib.abc, importlib.util, pathlib, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("torch is blocked here")

        sys.meta_path.insert(0, NoTorch())
        folder = pathlib.Path(sys.argv[1])
        spec = importlib.util.spec_from_file_location("ref", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        sys.modules["ref"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["ref"])
        minimal = importlib.import_module("ref.minimal")
        import numpy as np
        rng = np.random.default_rng(0)
        errors = minimal.check_gradients("minlstm", rng.normal(size=(3, 2, 2)), rng.normal(size=(2, 2)),
                                         rng.normal(size=(6, 2)), rng.normal(size=6), positive=True)
        assert max(errors.values()) < 1e-7, errors
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "rnnkit")]
        print("no torch: ok")
    """)
    done = subprocess.run([sys.executable, "-c", script, str(REFERENCE)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and "no torch: ok" in done.stdout, done.stderr
