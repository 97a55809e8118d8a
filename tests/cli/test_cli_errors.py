"""Each bad input gives exit code 2 and one message on stderr naming the problem and the file; no traceback."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from lm_cli_helpers import TINY, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)


def _error(capsys, *argv) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (code, err)
    assert "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]          # train lm may describe the run before it fails
    assert last.startswith("rnnkit: error: ") and err.count("rnnkit: error: ") == 1, err
    return last


def _train(tmp_path, data_file, *extra):
    return ("train", "lm", "--train", data_file, "--out", tmp_path / "out", "--max-steps", "1", *TINY, *extra)


def test_non_utf8_training_file(tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("hello world\ncaf".encode() + "\xe9 au lait\n".encode("latin-1"))
    err = _error(capsys, *_train(tmp_path, bad))
    assert str(bad) in err
    assert "not valid UTF-8" in err and "byte 0xe9 at byte offset 15" in err
    assert not (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.parametrize("content, problem", [(b"", "the file is empty"), (b"  \n\t\n", "the file is whitespace-only")])
def test_empty_training_file(tmp_path, capsys, content, problem):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(content)
    err = _error(capsys, *_train(tmp_path, empty))
    assert f"{empty}: {problem}" in err


def test_training_file_too_short_for_one_batch(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij\n")
    err = _error(capsys, *_train(tmp_path, short, "--batch-size", "32"))
    assert str(short) in err and "too short" in err
    assert re.search(r"need at least [\d,]+ tokens", err)


def test_missing_training_file(tmp_path, capsys):
    err = _error(capsys, *_train(tmp_path, tmp_path / "nope.txt"))
    assert f"{tmp_path / 'nope.txt'}: no such file" in err


def test_both_dataset_and_train(tmp_path, corpus_dir, capsys):
    err = _error(capsys, *_train(tmp_path, corpus_dir / "train.txt", "--dataset", "stdlib"))
    assert "give either --dataset or --train, not both" in err


def test_no_training_data(tmp_path, capsys):
    err = _error(capsys, "train", "lm", "--out", tmp_path / "out", *TINY)
    assert "no training data: give --train FILE or --dataset NAME" in err


def test_resume_with_nothing_to_resume(tmp_path, capsys):
    err = _error(capsys, "train", "lm", "--out", tmp_path / "fresh", "--resume")
    assert str(tmp_path / "fresh" / "options.json") in err and "nothing to resume" in err


def test_resume_without_resume_state(char_run, capsys):
    (char_run / "resume.pt").unlink()
    err = _error(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "8")
    assert str(char_run / "resume.pt") in err and "nothing to resume" in err


def test_resume_state_that_is_not_a_torch_file(char_run, capsys):
    (char_run / "resume.pt").write_bytes(b"\x00garbage" * 20)
    err = _error(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "8")
    assert str(char_run / "resume.pt") in err and "corrupt or not an rnnkit resume file" in err


class _RunsCode:
    """A pickle that would create ``marker`` if loading ran it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_resume_state_with_code_in_it_is_refused_unrun(char_run, capsys, tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": {}, "step": 1, "extra": _RunsCode(marker)}, char_run / "resume.pt")
    err = _error(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "8")
    assert "something other than tensors and plain values, which is never loaded" in err
    assert not marker.exists()


def test_a_truncated_resume_state(char_run, capsys):
    whole = (char_run / "resume.pt").read_bytes()
    (char_run / "resume.pt").write_bytes(whole[:len(whole) // 2])
    err = _error(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "8")
    assert "corrupt or not an rnnkit resume file (unreadable: " in err


@pytest.mark.parametrize("command", ["sample", "eval"])
@pytest.mark.parametrize("garbage", [b"garbage bytes, not safetensors" * 3, b""], ids=["garbage", "empty"])
def test_corrupt_checkpoint(char_run, corpus_dir, capsys, command, garbage):
    (char_run / "model.safetensors").write_bytes(garbage)
    extra = ["--data", corpus_dir / "valid.txt"] if command == "eval" else ["--length", "5"]
    err = _error(capsys, command, char_run, *extra)
    assert str(char_run / "model.safetensors") in err and "cannot be read as this model's weights" in err


def test_truncated_checkpoint(char_run, capsys):
    path = char_run / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-64])
    err = _error(capsys, "sample", char_run, "--length", "5")
    assert str(path) in err


def test_checkpoint_that_does_not_match_its_configuration(char_run, capsys):
    config = json.loads((char_run / "config.json").read_text())
    config["model"]["hidden_size"] = 20
    (char_run / "config.json").write_text(json.dumps(config))
    err = _error(capsys, "sample", char_run, "--length", "5")
    assert str(char_run / "model.safetensors") in err


def test_checkpoint_of_another_task(char_run, capsys):
    config = json.loads((char_run / "config.json").read_text())
    config["task"] = "classify"
    (char_run / "config.json").write_text(json.dumps(config))
    err = _error(capsys, "sample", char_run, "--length", "5")
    assert str(char_run) in err and "'classify' run" in err and "'lm' run is needed" in err


@pytest.mark.parametrize("content, problem", [(None, "missing"), ("{not json", "not valid JSON"),
                                              ('{"task": "lm"}', "not an rnnkit run configuration"),
                                              (b"\xff\xfe", "not valid JSON")])
def test_config_json_missing_or_invalid(char_run, corpus_dir, capsys, content, problem):
    path = char_run / "config.json"
    if content is None:              # (without the weights: they carry their save's configuration, see
        path.unlink()                # tests/training/test_run_folder_saves.py)
        (char_run / "model.safetensors").unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    err = _error(capsys, "eval", char_run, "--data", corpus_dir / "valid.txt")
    assert str(path) in err and problem in err


def test_config_json_without_the_tokenizer(char_run, capsys):
    path = char_run / "config.json"
    config = json.loads(path.read_text())
    del config["tokenizer"]
    path.write_text(json.dumps(config))
    err = _error(capsys, "sample", char_run)
    assert str(path) in err and "incomplete or invalid language-model configuration" in err


def test_run_folder_that_does_not_exist(tmp_path, capsys):
    err = _error(capsys, "sample", tmp_path / "no-run")
    assert f"{tmp_path / 'no-run'}: no such run folder" in err


def test_unknown_prime_characters_are_listed(char_run, capsys):
    err = _error(capsys, "sample", char_run, "--prime", "hello QZ Q", "--length", "5")
    assert "--prime" in err and "2 symbol(s)" in err and "'Q', 'Z'" in err


def test_unknown_prime_writes_nothing_to_stdout(char_run, capsys):
    code, out, _ = run_cli(capsys, "sample", char_run, "--prime", "QZ", "--length", "5")
    assert code == 2
    assert out == ""


def test_eval_on_text_with_unknown_characters(char_run, tmp_path, capsys):
    data = tmp_path / "other.txt"
    data.write_text("hello ÆØÅ world\n")
    err = _error(capsys, "eval", char_run, "--data", data)
    assert str(data) in err and "'Æ', 'Ø', 'Å'" in err


def test_eval_on_a_non_utf8_file(char_run, tmp_path, capsys):
    data = tmp_path / "bad.txt"
    data.write_bytes(b"line 1\n\x80abc\n")
    err = _error(capsys, "eval", char_run, "--data", data)
    assert str(data) in err and "byte offset 7" in err


def test_diverging_training_stops_with_a_message(tmp_path, corpus_dir, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "train", "lm", "--train", corpus_dir / "train.txt", "--out", out, *TINY,
                           "--max-steps", "10", "--eval-every", "1", "--optimizer", "sgd", "--lr", "1e38",
                           "--clip", "0")
    assert code == 2
    m = re.search(r"rnnkit: error: the loss became (nan|inf|-inf) at step (\d+) \(epoch 1\); stopped\. "
                  r"Kept in (\S+): the best model from step (\d+) ", err)
    assert m and m.group(3) == str(out), err
    assert int(m.group(2)) >= 2
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == int(m.group(4)) < int(m.group(2))   # the checkpoint of an earlier, finite step


def test_option_errors_and_data_errors_are_two_types_each_one_line(tmp_path):
    from rnnkit.cli import train_lm
    from rnnkit.cli.errors import OptionError
    from rnnkit.data import DataError
    o = {"dataset": "stdlib", "train": "x.txt", "valid": None, "level": None, "data_dir": None}
    with pytest.raises(OptionError) as err:
        train_lm.load_corpus(o)
    assert str(err.value) == "command line: give either --dataset or --train, not both"
    assert not isinstance(err.value, DataError)
    with pytest.raises(DataError) as err:
        train_lm.load_corpus({**o, "dataset": None, "train": str(tmp_path / "gone.txt")})
    assert not isinstance(err.value, OptionError) and str(err.value).startswith(f"{tmp_path / 'gone.txt'}: ")
