"""Every numeric option of every command has a documented range, checked as the command line is parsed (issue 19,
defects 3, 8 and 14): a value out of range is one line on stderr naming the option, the value and the range,
exit code 2, no traceback, and nothing written. Presets and a run's saved options.json go through the same checks
(:func:`rnnkit.cli.options.validate_options`). Parsing only: nothing here trains."""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import pytest

from rnnkit.cli import train_caption, train_classify, train_lm, train_seq2seq
from rnnkit.cli.errors import OptionError
from rnnkit.cli.main import main, make_parser
from rnnkit.cli.options import validate_options
from rnnkit.cli.ranges import Checked, IntList, PathText, Range, YesNo

from cli_parsers import all_parsers

TRAIN_MODULES = {"lm": train_lm, "classify": train_classify, "seq2seq": train_seq2seq, "caption": train_caption}


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command that runs something (``train lm``, ``sample``, ...): its parser."""
    return {" ".join(path): p for path, p in all_parsers(make_parser())
            if path and not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)}


def _takes_a_value(action: argparse.Action) -> bool:
    return action.option_strings and action.nargs != 0 and not isinstance(
        action, (argparse._HelpAction, argparse.BooleanOptionalAction))


def _shown(text: str) -> str:
    return text if text and not any(c.isspace() for c in text) else repr(text)


def _bad_values(checker: Checked) -> list[str]:
    """Values just outside the checker's range (and NaN for numbers)."""
    if isinstance(checker, PathText):
        return [""]
    if isinstance(checker, YesNo):
        return ["maybe"]
    if isinstance(checker, IntList):
        return [f"8,{checker.low - 1}"]
    assert isinstance(checker, Range)
    bad = []
    if checker.low is not None:
        below = checker.low if checker.low_open else checker.low - 1
        if checker.zero_is_none and below == 0:
            below = -1
        bad.append(below)
    if checker.high is not None:
        bad.append(checker.high if checker.high_open else checker.high + 1)
    bad = [str(v) for v in bad]
    if checker.kind is float:
        bad.append("nan")
    elif not bad:
        bad.append("1.5")
    return bad


def _argv(command: str, parser: argparse.ArgumentParser, tmp_path, flag: str, value: str) -> list[str]:
    """``command``'s required arguments (placeholders), ``--out`` under tmp_path where it has one, then the option."""
    argv = command.split()
    for action in parser._actions:
        if not action.option_strings and action.nargs != argparse.PARSER:
            argv.append(action.choices[0] if action.choices else "x")
    for action in parser._actions:
        if flag in action.option_strings:
            continue
        if "--out" in action.option_strings:
            argv += ["--out", str(tmp_path / "out")]
        elif action.required and action.option_strings:
            argv += [action.option_strings[0], "x"]
    return argv + [flag, value]


def _range_cases():
    for command, parser in _commands().items():
        for action in parser._actions:
            if _takes_a_value(action) and isinstance(action.type, Checked):
                flag = max(action.option_strings, key=len)
                for value in _bad_values(action.type):
                    yield pytest.param(command, flag, value, action.type.text, id=f"{command} {flag} {value!r}")


def _refused(capsys, tmp_path, argv: list[str]) -> str:
    """Run ``rnnkit ARGV`` in this process, expecting a refusal: the one line it printed."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2, err
    assert "Traceback" not in err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert not (tmp_path / "out").exists()
    return lines[0]


@pytest.mark.parametrize("command, flag, value, text", list(_range_cases()))
def test_every_option_refuses_a_value_out_of_its_range(command, flag, value, text, tmp_path, capsys):
    argv = _argv(command, _commands()[command], tmp_path, flag, value)
    line = _refused(capsys, tmp_path, argv)
    assert line == f"rnnkit {command}: error: {flag} must be {text}, got {_shown(value)}"


# The values from the issue, spelled out: the message names the option, the value and the range.
TRAIN_DEFECTS = [
    ("--clip", "-1", "a finite number >= 0 (0 turns clipping off)"),                              # defect 3
    ("--clip", "nan", "a finite number >= 0 (0 turns clipping off)"),
    ("--minutes", "-1", "a finite number > 0, or none for no limit"),                              # defect 14
    ("--max-steps", "-3", "an integer >= 1, or 0 or none for no limit"),
    ("--eval-every", "-1", "an integer >= 0 (0: every epoch)"),
    ("--out", "", "a non-empty file or folder name"),
    ("--hidden-size", "0", "an integer >= 1"),                                                     # defect 8
    ("--hidden-size", "-5", "an integer >= 1"),
    ("--layers", "0", "an integer >= 1"),
    ("--embed-size", "0", "an integer >= 1"),
    ("--lr", "nan", "a finite number > 0"),
    ("--lr", "-1", "a finite number > 0"),
    ("--lr", "inf", "a finite number > 0"),
    ("--dropout", "1.5", "a number in [0, 1)"),
    ("--epochs", "0", "an integer >= 1"),
    ("--log-every", "0", "an integer >= 1"),
    ("--threads", "-1", "an integer in [1, 1024], or 0 or none for PyTorch's choice"),
]


@pytest.mark.parametrize("task", ["lm", "classify", "seq2seq", "caption"])
@pytest.mark.parametrize("flag, value, text", TRAIN_DEFECTS, ids=[f"{f} {v!r}" for f, v, _ in TRAIN_DEFECTS])
def test_train_refuses_the_values_of_the_issue(task, flag, value, text, tmp_path, capsys):
    argv = ["train", task, "--out", str(tmp_path / "out"), "--max-steps", "2"]
    argv = argv[:2] + [flag, value] if flag == "--out" else argv + [flag, value]
    line = _refused(capsys, tmp_path, argv)
    assert line == f"rnnkit train {task}: error: {flag} must be {text}, got {_shown(value)}"


SAMPLE_DEFECTS = [
    ("--length", "-5", "an integer >= 1"),
    ("--length", "0", "an integer >= 1"),
    ("--top-k", "0", "an integer >= 1, or none for all tokens"),
    ("--top-k", "-3", "an integer >= 1, or none for all tokens"),
    ("--top-p", "0", "a number in (0, 1], or none for all tokens"),
    ("--top-p", "1.5", "a number in (0, 1], or none for all tokens"),
    ("--temperature", "-1", "a finite number >= 0 (0: greedy)"),
    ("--temperature", "nan", "a finite number >= 0 (0: greedy)"),
]


@pytest.mark.parametrize("flag, value, text", SAMPLE_DEFECTS, ids=[f"{f} {v}" for f, v, _ in SAMPLE_DEFECTS])
def test_sample_refuses_the_values_of_the_issue(flag, value, text, tmp_path, capsys):
    line = _refused(capsys, tmp_path, ["sample", str(tmp_path / "run"), flag, value])
    assert line == f"rnnkit sample: error: {flag} must be {text}, got {value}"


def test_a_blank_out_is_refused_like_an_empty_one(tmp_path, capsys):
    line = _refused(capsys, tmp_path, ["train", "lm", "--out", "  ", "--dataset", "stdlib"])
    assert line == "rnnkit train lm: error: --out must be a non-empty file or folder name, got '  '"


def test_values_in_range_parse_and_zero_or_none_means_none(tmp_path):
    from rnnkit.cli.main import parse
    args = parse(["train", "lm", "--out", str(tmp_path), "--clip", "0", "--max-steps", "0", "--threads", "none",
                  "--patience", "3", "--dropout", "0", "--lr", "1e38", "--minutes", "0.5", "--eval-every", "0"])
    assert (args.clip, args.max_steps, args.threads, args.patience, args.dropout, args.lr, args.minutes,
            args.eval_every) == (0.0, None, None, 3, 0.0, 1e38, 0.5, 0)
    args = parse(["sample", "r", "--top-p", "1", "--top-k", "1", "--temperature", "0", "--length", "1"])
    assert (args.top_p, args.top_k, args.temperature, args.length) == (1.0, 1, 0.0, 1)


def test_the_real_exit_code_and_stderr_of_a_refusal(tmp_path):
    """One run of the real program (the other tests call main() in this process)."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", "train", "lm", "--dataset", "stdlib", "--out",
                           str(out), "--clip", "-1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("rnnkit train lm: error: --clip must be a finite number >= 0 (0 turns clipping off), "
                           "got -1\n")
    assert not out.exists()


# ------------------------------------------------------------------ every numeric option has a range

def test_every_numeric_option_has_a_range_checking_type():
    """A new option that takes a number (or a file to write) must declare its range: a checker from
    rnnkit.cli.ranges as its type. Plain int/float (or a numeric default without a type) fails here."""
    unchecked = []
    for command, parser in _commands().items():
        for action in parser._actions:
            if not _takes_a_value(action) or action.choices is not None:
                continue
            numeric_default = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
            if isinstance(action.type, Checked):
                continue
            if action.type is not None or numeric_default:
                unchecked.append(f"{command} {action.option_strings[0]} (type {action.type!r})")
    assert unchecked == []


def test_every_out_refuses_an_empty_name():
    """``--out ""`` would write into the current folder (issue 19, defect 14): every command's --out is checked."""
    unchecked = [command for command, parser in _commands().items() for action in parser._actions
                 if "--out" in action.option_strings and not isinstance(action.type, PathText)]
    assert unchecked == []


def test_every_range_is_in_the_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    missing = []
    for command, parser in _commands().items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if _takes_a_value(action) and isinstance(action.type, Checked):
                if f"[range: {action.type.text}]" not in text:
                    missing.append(f"{command} {action.option_strings[0]}")
    assert missing == []


def test_the_commands_with_numbers_are_all_covered():
    cases = {c for c, p in _commands().items()
             if any(_takes_a_value(a) and isinstance(a.type, Range) for a in p._actions)}
    expected = {"train lm", "train classify", "train seq2seq", "train caption", "sample", "eval", "predict",
                "translate", "caption", "report", "gradients", "experiment", "demo"}
    assert expected <= cases


# ------------------------------------------------------------------ presets and options.json: the same checks

@pytest.mark.parametrize("task", sorted(TRAIN_MODULES))
def test_every_preset_passes_the_checks(task):
    module = TRAIN_MODULES[task]
    for name, values in module.PRESETS.items():
        assert validate_options(values, module.ALL, f"preset {name}") == values, name


@pytest.mark.parametrize("key, value, message", [
    ("hidden_size", "big", "--hidden-size must be an integer >= 1, got 'big'"),
    ("hidden_size", 0, "--hidden-size must be an integer >= 1, got 0"),
    ("hidden_size", True, "--hidden-size must be an integer >= 1, got True"),
    ("lr", "fast", "--lr must be a finite number > 0, got 'fast'"),
    ("lr", math.nan, "--lr must be a finite number > 0, got nan"),
    ("clip", -1, "--clip must be a finite number >= 0 (0 turns clipping off), got -1"),
    ("cell", "tree", "--cell must be one of lstm"),
    ("tie_weights", "yes", "--tie-weights must be true or false, got 'yes'"),
    ("train", 3, "--train must be text, got 3"),
    ("epochs", None, "--epochs must be"),
])
def test_validate_options_names_where_the_option_and_the_range(key, value, message):
    with pytest.raises(OptionError) as err:
        validate_options({"hidden_size": 16, key: value}, train_lm.ALL, "runs/x/options.json")
    assert str(err.value).startswith(f"runs/x/options.json: {message}")
    assert "\n" not in str(err.value)


def test_validate_options_normalises_and_keeps_other_keys():
    o = validate_options({"max_steps": 0, "hidden_size": 16.0, "lr": 1, "preset": None, "widths": [8, 16]},
                         train_caption.ALL)
    assert o == {"max_steps": None, "hidden_size": 16, "lr": 1.0, "preset": None, "widths": [8, 16]}
    assert isinstance(o["hidden_size"], int) and isinstance(o["lr"], float)
    with pytest.raises(OptionError, match="expected a JSON object of option values, got list"):
        validate_options([1, 2], train_lm.ALL, "options.json")


def test_resume_reads_back_options_through_the_same_checks(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    saved = {"train": "x.txt", "hidden_size": 16, "lr": "fast"}
    (run / "options.json").write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err == f"rnnkit: error: {run / 'options.json'}: --lr must be a finite number > 0, got 'fast'\n"
    assert json.loads((run / "options.json").read_text()) == saved            # nothing written
    assert not any((run / name).exists() for name in ("model.safetensors", "config.json", "metrics.jsonl"))


def test_a_preset_out_of_range_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(train_lm.PRESETS, "broken", {"lr": -1.0})
    capsys.readouterr()
    assert main(["train", "lm", "--out", str(tmp_path / "out"), "--preset", "broken"]) == 2
    assert capsys.readouterr().err == "rnnkit: error: preset broken: --lr must be a finite number > 0, got -1.0\n"
    assert not (tmp_path / "out").exists()
