"""The report's data: activations equal the model's hidden states, features, correlations, the HTML file."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from rnnkit.analysis.activations import correlations, lm_activations, most_correlated, text_features
from rnnkit.analysis.report import (AttentionMap, ReportData, ReportOptions, build_report, read_report_data,
                                    render_html)
from rnnkit.cli.main import main
from rnnkit.cli.runs import load_lm
from rnnkit.data import CharTokenizer
from rnnkit.engine import run_direction
from rnnkit.models.language_model import LanguageModel, LMConfig

TEXT = 'say("hi", [1, (2)])\nx = 3\n'


def _model(cell: str) -> tuple[LanguageModel, CharTokenizer]:
    torch.manual_seed(0)
    tok = CharTokenizer.build(TEXT + "abcdefghijklmnopqrstuvwxyz")
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, cell=cell, embed_size=6, hidden_size=7,
                                   num_layers=2, engine="python"))
    return model.eval(), tok


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_activations_equal_the_models_hidden_states(cell):
    model, tok = _model(cell)
    acts = lm_activations(model, tok, TEXT, top_k=3)
    ids = torch.tensor(tok.encode(TEXT))
    assert acts.tokens == list(TEXT) and acts.ids == ids.tolist()
    with torch.no_grad():
        emb = model.embedding(ids.unsqueeze(1))
        out, state = model.rnn(emb)                          # the whole text in one call of the layer
        logits, _ = model(ids.unsqueeze(1))
        # Layer 1 on its own, through the engine with the layer's first weights.
        zero = torch.zeros(1, 7)
        h1, _, _ = run_direction(model.rnn.cell, emb, zero, zero if model.rnn.cell.has_cell_state else None,
                                 model.rnn.layer_weights(0, 0), engine="python")
    np.testing.assert_allclose(acts.layers["layer 2 h"], out[:, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(acts.layers["layer 1 h"], h1[:, 0].numpy(), atol=1e-6)
    if cell == "lstm":
        h_n, c_n = state
        assert sorted(acts.layers) == ["layer 1 h", "layer 1 tanh(c)", "layer 2 h", "layer 2 tanh(c)"]
        for k in range(2):
            np.testing.assert_allclose(acts.layers[f"layer {k + 1} tanh(c)"][-1], torch.tanh(c_n[k, 0]).numpy(),
                                       atol=1e-6)
    else:
        assert sorted(acts.layers) == ["layer 1 h", "layer 2 h"]
    probs, top = torch.softmax(logits[:, 0], dim=1).topk(3, dim=1)
    np.testing.assert_array_equal(acts.top_ids, top.numpy())
    np.testing.assert_allclose(acts.top_probs, probs.numpy(), atol=1e-6)


def test_unknown_characters_are_left_out_and_counted():
    model, tok = _model("gru")
    acts = lm_activations(model, tok, "say(€hi)")
    assert "".join(acts.tokens) == "say(hi)" and acts.dropped == 1


def test_text_features_by_hand():
    text = 'a("b")\n[c]\'d\ne'
    f = text_features(list(text))
    #                                   a  (  "  b  "  )  \n [  c  ]  '  d  \n e
    assert f['inside "..."'].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["inside '...'"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]   # closed at the line end
    assert f["inside brackets"].tolist() == [0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert f["line position"].tolist() == [1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 0, 1]
    assert f["bracket depth"].max() == 1
    words = text_features(["say", '"hi"', "<eos>", "(a"], level="word")
    assert words["line position"].tolist() == [4, 9, 0, 3] and words["inside brackets"].tolist() == [0, 0, 0, 1]


def test_correlations_find_the_unit_that_is_the_feature():
    rng = np.random.default_rng(0)
    feature = (rng.random(200) > 0.5).astype(np.float32)
    values = rng.normal(size=(200, 5))
    values[:, 3] = 0.5 * feature - 0.2
    values[:, 1] = 1.0                                           # constant: r = 0, not NaN
    r = correlations(values, feature)
    assert r[3] == pytest.approx(1.0) and r[1] == 0.0 and np.all(np.abs(r) <= 1 + 1e-12)
    top = most_correlated({"a": values[:, :2], "b": values}, {"f": feature}, top=2)["f"]
    assert top[0] == {"layer": 1, "unit": 3, "r": pytest.approx(1.0)}
    assert most_correlated({"a": values}, {"constant": np.ones(200)})["constant"] == []


def test_report_file_holds_the_hidden_states(lm_run, tmp_path):
    run, text_file = lm_run
    text = text_file.read_text()[:300]
    out = build_report(run, text, tmp_path / "r.html", ReportOptions(max_tokens=250, top_k=4))
    page = out.read_text(encoding="utf-8")
    data = read_report_data(page)
    model, tok, _ = load_lm(run)
    acts = lm_activations(model, tok, text, top_k=4, max_tokens=250)
    assert data["tokens"] == acts.tokens and len(data["tokens"]) == 250
    assert [layer["name"] for layer in data["layers"]] == list(acts.layers)
    for layer in data["layers"]:
        # int8 in the file: within half a quantisation step of the model's states.
        np.testing.assert_allclose(layer["values"], acts.layers[layer["name"]], atol=layer["scale"] / 254 + 1e-7)
    assert data["predictions"]["ids"] == acts.top_ids.tolist()
    assert set(data["correlated"]) == set(data["features"])


def test_report_is_self_contained(lm_run, tmp_path):
    run, text_file = lm_run
    page = build_report(run, text_file.read_text()[:200], tmp_path / "r.html").read_text(encoding="utf-8")
    # The only URLs are SVG namespace names; nothing is fetched: no src/href to another file or host.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)
    assert "<svg" in page and "training loss" in page            # the curves, inline
    # The embedded JSON can't close its <script> early.
    start = page.index('id="rnnkit-data">')
    assert page.index("</script>", start) > page.index('"tokens"', start)


def test_html_escapes_text_in_the_data():
    data = ReportData("t</script><b>", ["<", "/", "s", "c", "r", "\n"], {"l": np.zeros((6, 2))})
    page = render_html(data)
    assert "t&lt;/script&gt;&lt;b&gt;" in page
    assert read_report_data(page)["tokens"] == ["<", "/", "s", "c", "r", "\n"]


def test_attention_maps_are_drawn():
    tokens = ["the", "cat"]
    data = ReportData("toy", tokens, {"encoder h": np.tanh(np.arange(6).reshape(-1, 3) / 5)}, level="word",
                      attention=[AttentionMap("step 1", ["le", "chat"], tokens, np.array([[0.9, 0.1], [0.2, 0.8]]))])
    page = render_html(data)
    assert 'id=\'attention\'' in page and page.count("<rect x=") >= 4
    assert "chat → cat: 0.800" in page
    assert read_report_data(page)["tokens"] == ["the", "cat"]


def test_a_run_of_another_task_says_it_has_no_report(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format": "rnnkit-run/1", "task": "nonesuch"}))
    text = tmp_path / "t.txt"
    text.write_text("abc")
    assert main(["report", str(run), "--text", str(text), "--out", str(tmp_path / "r.html")]) == 2
    assert "no report for task 'nonesuch' yet: rnnkit report reads language-model runs" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_cli_report(lm_run, tmp_path, capsys):
    run, text_file = lm_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--text", str(text_file), "--out", str(out), "--max-tokens", "120"]) == 0
    assert "self-contained" in capsys.readouterr().err
    assert len(read_report_data(out.read_text(encoding="utf-8"))["tokens"]) == 120


@pytest.mark.parametrize("argv, message", [
    (["--text", "MISSING"], "no such file"),
    (["--text", "TEXT", "--top-k", "0"], "--top-k must be an integer >= 1, got 0"),
])
def test_cli_report_bad_input(argv, message, lm_run, tmp_path, capsys):
    run, text_file = lm_run
    argv = [str(tmp_path / "missing.txt") if a == "MISSING" else str(text_file) if a == "TEXT" else a for a in argv]
    assert _exit_code(["report", str(run), *argv, "--out", str(tmp_path / "r.html")]) == 2
    assert message in capsys.readouterr().err


def _exit_code(argv: list[str]) -> int:
    """``main(argv)``'s exit code: returned, or raised by argparse for a value out of its range."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
