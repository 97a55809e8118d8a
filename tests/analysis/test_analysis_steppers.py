"""The steppers behind `rnnkit report` and `rnnkit gradients` on every kind of language model (QA: an AWD-LSTM
run (one layer per level) and a minGRU/minLSTM run ended in AttributeError / TypeError tracebacks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.analysis.activations import lm_activations
from rnnkit.analysis.gradients import lm_gradient_flow
from rnnkit.analysis.steppers import layer_stepper
from rnnkit.cli.main import main
from rnnkit.data import CharTokenizer
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.training.checkpoint import save_run

TEXT = "the cat sat on the mat\nthe dog sat on the log\n"
KINDS = {"awd-lstm": dict(cell="lstm", awd=True, num_layers=3, last_hidden_size=5),
         "awd-gru": dict(cell="gru", awd=True, num_layers=2),
         "mingru": dict(cell="mingru", num_layers=2), "minlstm": dict(cell="minlstm", num_layers=2)}


def _model(kind: str) -> tuple[LanguageModel, CharTokenizer]:
    torch.manual_seed(0)
    tok = CharTokenizer.build(TEXT)
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, embed_size=6, hidden_size=7, **KINDS[kind]))
    return model.eval(), tok


@pytest.mark.parametrize("kind", KINDS)
def test_stepping_equals_the_model_and_its_whole_sequence_run(kind):
    model, tok = _model(kind)
    ids = torch.tensor(tok.encode(TEXT))
    acts = lm_activations(model, tok, TEXT, top_k=3)
    with torch.no_grad():
        emb = model.embedding(ids.unsqueeze(1))
        out, _ = model.rnn(emb)                                     # the whole text in one call
        logits, _ = model(ids.unsqueeze(1))
        stepper = layer_stepper(model.rnn)
        by_run = stepper.run_all(emb)
    top = f"layer {len([k for k in acts.layers if k.endswith(' h')])} h"
    np.testing.assert_allclose(acts.layers[top], out[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(acts.layers[top][-1], by_run[len(stepper.hidden(by_run)) - 1][0].numpy(), atol=1e-5)
    np.testing.assert_array_equal(acts.top_ids, torch.softmax(logits[:, 0], 1).topk(3, dim=1).indices.numpy())
    assert any(k.endswith("tanh(c)") for k in acts.layers) == (KINDS[kind]["cell"] == "lstm")


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_flow_reaches_every_level(kind):
    model, tok = _model(kind)
    flow = lm_gradient_flow(model, torch.tensor(tok.encode(TEXT[:20])), jacobian=False)
    assert len(flow.dL_dh) == KINDS[kind]["num_layers"]
    for norms in flow.dL_dh.values():
        assert np.isfinite(norms).all() and norms[-1] > 0


@pytest.mark.parametrize("kind", ["awd-lstm", "mingru"])
def test_report_and_gradients_commands_read_these_runs(kind, tmp_path, capsys):
    model, tok = _model(kind)
    run = tmp_path / "run"
    save_run(run, model, {"task": "lm", "level": "char", "model": model.config.to_dict(),
                          "tokenizer": tok.to_dict(), "data": {}})
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    assert main(["report", str(run), "--text", str(text), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["gradients", str(run), "--text", "the cat sat", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in capsys.readouterr().err
