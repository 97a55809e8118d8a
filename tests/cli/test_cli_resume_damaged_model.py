"""``--resume`` over a damaged best model (QA): NaN weights made the run end with "no model saved yet" and left
the file unusable, a truncated one was quietly replaced by a worse model. Now the resume warns, naming the file and
what is wrong with it, and the next evaluation saves a new best model."""
from __future__ import annotations

import pytest
from safetensors.torch import load_file

from lm_cli_helpers import lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.training.checkpoint import lost_best_model


def flip_tail(path):
    data = bytearray(path.read_bytes())
    data[-64:] = b"\xff" * 64                       # float32 0xffffffff: NaN
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize("damage, problem", [(flip_tail, "the weights hold NaN or infinite values"),
                                             (truncate, "cannot be read as this model's weights"),
                                             (lambda p: p.unlink(), "missing")])
def test_resume_warns_and_saves_a_sound_model(char_run, capsys, damage, problem):
    model = char_run / "model.safetensors"
    damage(model)
    code, _, err = run_cli(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "7", "--quiet")
    assert code == 0
    warning = next(line for line in err.splitlines() if line.startswith("rnnkit: warning:"))
    assert warning.startswith(f"rnnkit: warning: {model}: {problem}")
    assert warning.endswith("the best model (step 5) is lost; the next evaluation saves a new one")
    assert "no model saved yet" not in err
    assert all(t.isfinite().all() for t in load_file(str(model)).values())       # the new best model is sound


def test_a_sound_model_or_none_is_not_lost(char_run, tmp_path):
    assert lost_best_model(char_run, 5) is None
    assert lost_best_model(tmp_path, None) is None
