"""Ctrl-C outside a training step (between an ensemble's members, in the final evaluation, while starting): the
trainer's own line can't say it, so the command does: what the run folder keeps and how to continue (QA: only
``rnnkit: interrupted``)."""
from __future__ import annotations

from lm_cli_helpers import lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.cli import training_run


def interrupt(*_args, **_kw):
    raise KeyboardInterrupt


def test_a_run_with_saved_work_names_it_and_the_command_that_continues(char_run, capsys, monkeypatch):
    monkeypatch.setattr(training_run, "run_training", interrupt)
    code, _, err = run_cli(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "9")
    assert code == 130
    assert err == (f"rnnkit: interrupted; what was saved in {char_run} is kept (model.safetensors, resume.pt); "
                   f"continue with: rnnkit train lm --out {char_run} --resume\n")


def test_a_run_with_nothing_saved_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training_run, "run_training", interrupt)
    code, _, err = run_cli(capsys, "train", "seq2seq", "--dataset", "dates", "--out", tmp_path / "new")
    assert (code, err) == (130, f"rnnkit: interrupted; nothing was saved in {tmp_path / 'new'}\n")


def test_other_commands_say_interrupted(char_run, capsys, monkeypatch):
    monkeypatch.setattr("rnnkit.cli.main.parse", lambda argv: type("A", (), {"command": "sample",
                                                                               "run_command": interrupt})())
    code, _, err = run_cli(capsys, "sample", char_run)
    assert (code, err) == (130, "rnnkit: interrupted\n")
