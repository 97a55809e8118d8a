"""Gradient flow through time: the measurement against closed forms and hand loops, and ``rnnkit gradients``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit import LSTM, LSTMCell, RNN
from rnnkit.analysis.gradients import (LinearRNNCell, cell_stepper, fresh_cell_flows, gradient_flow,
                                       layer_stepper, linear_rnn_closed_form, model_gradient_flow)
from rnnkit.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_linear_rnn_matches_closed_form():
    """‖∂L_T/∂h_t‖ = ‖(W^T)^k u‖ and ‖∂h_T/∂x_t‖_F = ‖W^k U‖_F for h_t = W h_{t-1} + U x_t."""
    torch.manual_seed(0)
    cell = LinearRNNCell(3, 5).double()
    with torch.no_grad():
        cell.weight_hh.mul_(2.0)                       # some directions grow, some shrink
        cell.bias_ih.uniform_(-1, 1)                   # a bias changes nothing in a linear map's Jacobian
    T = 25
    x = torch.randn(T, 4, 3, dtype=torch.float64)
    u = torch.randn(5, dtype=torch.float64)
    flow = model_gradient_flow(cell, x, loss=lambda y: y @ u)
    dL, dy = linear_rnn_closed_form(cell.weight_hh.detach().numpy(), cell.weight_ih.detach().numpy(), T, u.numpy())
    np.testing.assert_allclose(flow.dL_dh["layer 1"], dL, rtol=1e-10)
    np.testing.assert_allclose(flow.dy_dx, dy, rtol=1e-10)
    assert flow.at_distance(0) == pytest.approx(float(u.norm()))
    # The closed form itself, at distance 2: (W^T)^2 u.
    W = cell.weight_hh.detach().numpy()
    assert dL[T - 3] == pytest.approx(np.linalg.norm(W.T @ W.T @ u.numpy()))


def test_linear_rnn_gaussian_probes_estimate_the_frobenius_norm():
    torch.manual_seed(1)
    cell = LinearRNNCell(2, 6).double()
    x = torch.randn(6, 1, 2, dtype=torch.float64)
    exact = model_gradient_flow(cell, x).dy_dx
    estimate = model_gradient_flow(cell, x, max_probes=3, seed=0).dy_dx        # 3 probes < 6 outputs
    wide = gradient_flow(cell_stepper(cell), x.expand(6, 400, 2), max_probes=3).dy_dx  # mean over 400 copies
    assert not np.allclose(estimate, exact)                                      # it is an estimate ...
    np.testing.assert_allclose(wide, exact, rtol=0.1)                           # ... and unbiased-ish


def test_stacked_layer_gives_total_derivatives_of_a_hand_loop():
    """Two tanh layers: ‖∂L/∂h^k_t‖ includes the path up the stack (lower layer at the last step too)."""
    torch.manual_seed(2)
    layer = RNN(3, 4, num_layers=2, engine="python").double()
    T, N = 7, 2
    x = torch.randn(T, N, 3, dtype=torch.float64)
    u = torch.randn(4, dtype=torch.float64)
    flow = model_gradient_flow(layer, x, loss=lambda y: y @ u, jacobian=False)

    w = [layer.layer_weights(k, 0) for k in range(2)]
    h = [torch.zeros(N, 4, dtype=torch.float64) for _ in range(2)]
    kept = []
    for t in range(T):
        inp = x[t]
        for k in range(2):
            wih, whh, bih, bhh = w[k]
            h[k] = torch.tanh(inp @ wih.T + bih + h[k] @ whh.T + bhh)
            h[k].retain_grad()
            inp = h[k]
        kept.append(list(h))
    (h[1] @ u).sum().backward()
    for k in range(2):
        expected = [float(kept[t][k].grad.norm(dim=1).mean()) for t in range(T)]
        np.testing.assert_allclose(flow.dL_dh[f"layer {k + 1}"], expected, rtol=1e-10)
    assert flow.dL_dh["layer 1"][-1] > 0                 # reaches the output through layer 2 at the same step


def test_lstm_cell_and_layer_agree():
    torch.manual_seed(3)
    layer = LSTM(3, 5, engine="python").double()
    cell = LSTMCell(3, 5).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in layer.state_dict().items()})
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    a = gradient_flow(layer_stepper(layer), x)
    b = gradient_flow(cell_stepper(cell), x)
    np.testing.assert_allclose(a.dL_dh["layer 1"], b.dL_dh["layer 1"], rtol=1e-9)
    np.testing.assert_allclose(a.dy_dx, b.dy_dx, rtol=1e-9)
    assert all(p.grad is None for p in [*layer.parameters(), *cell.parameters()])    # measuring trains nothing
    torch_lstm = layer.to_torch()                                     # torch.nn layers are converted
    c = gradient_flow(layer_stepper(torch_lstm, engine="python"), x)
    np.testing.assert_allclose(c.dL_dh["layer 1"], a.dL_dh["layer 1"], rtol=1e-9)


def test_large_recurrent_weights_explode():
    flow = fresh_cell_flows(["rnn"], steps=60, hidden_size=32, batch=2, recurrent_scale=4.0, engine="python",
                            jacobian=False)[0]
    assert flow.at_distance(50) > 10 * flow.at_distance(1)


def _column(table: str, label: str) -> dict[int, float]:
    lines = table.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.strip().startswith("distance"))
    col = lines[header_at].split().index(label)
    out = {}
    for line in lines[header_at + 1:]:
        parts = line.split()
        if not parts or not parts[0].isdigit():
            break
        out[int(parts[0])] = float(parts[col])
    return out


def test_cli_fresh_cells_show_vanishing_for_tanh_rnn(tmp_path, capsys):
    out = tmp_path / "grads.png"
    code = main(["gradients", "--cell", "rnn", "lstm", "gru", "--steps", "60", "--hidden-size", "16", "--batch",
                 "2", "--forget-bias", "3", "--engine", "python", "--out", str(out),
                 "--json", str(tmp_path / "g.json")])
    assert code == 0
    assert out.read_bytes().startswith(PNG)
    printed = capsys.readouterr().out
    rnn = _column(printed, "rnn")
    assert rnn[0] == pytest.approx(1.0)                 # L = u·h_T with a unit vector u
    assert rnn[50] < 1e-4 * rnn[1]                      # vanishing
    record = json.loads((tmp_path / "g.json").read_text())
    assert [f["label"] for f in record["flows"]] == ["rnn", "lstm", "gru"]
    assert len(record["flows"][0]["dL_dh"]["layer 1"]) == 60
    assert _column(printed, "gru")[50] > 0
    assert _column(printed, "lstm")[50] > 1e3 * rnn[50]     # forget gates near σ(3) = 0.95 keep the gradient


def test_cli_clip_on_and_off(tmp_path, capsys):
    out = tmp_path / "g.png"
    code = main(["gradients", "--cell", "rnn", "--steps", "8", "--hidden-size", "8", "--no-jacobian",
                 "--clip", "0.5", "--train-steps", "6", "--delay", "6", "--batch-size", "4", "--recurrent-scale",
                 "2", "--engine", "python", "--out", str(out), "--json", str(tmp_path / "g.json")])
    assert code == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| rnn |")]
    assert len(rows) == 2 and "clip 0.5" in rows[0] and "| off |" in rows[1]
    assert (tmp_path / "g-clipping.png").read_bytes().startswith(PNG)
    clipped, unclipped = json.loads((tmp_path / "g.json").read_text())["clipping"][0]
    assert clipped["clip"] == 0.5 and unclipped["clip"] == 0.0
    assert clipped["steps"] == unclipped["steps"] == 6
    # Same initialisation and data: the first step's loss and gradient norm are identical, the updates differ.
    assert clipped["curve"][0][:2] == unclipped["curve"][0][:2]
    assert max(g for _, _, g in unclipped["curve"]) > 0.5


def test_cli_trained_run(lm_run, tmp_path, capsys):
    run, _ = lm_run
    out = tmp_path / "run.png"
    assert main(["gradients", str(run), "--text", 'print("beta", f(3))\nx = [1, (2 + 1)]', "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "run layer 1" in printed and "run layer 2" in printed
    assert out.read_bytes().startswith(PNG)


@pytest.mark.parametrize("argv, message", [
    (["--clip", "1", "RUN"], "use it with --cell"),
    (["--text", "abc"], "give its folder first"),
    (["--cell", "rnn", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--cell", "rnn", "--clip", "-1"], "--clip must be a finite number > 0"),
])
def test_cli_bad_input(argv, message, lm_run, tmp_path, capsys):
    argv = [str(lm_run[0]) if a == "RUN" else a for a in argv]
    assert _exit_code(["gradients", *argv, "--out", str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err


def _exit_code(argv: list[str]) -> int:
    """``main(argv)``'s exit code: returned, or raised by argparse for a value out of its range."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
