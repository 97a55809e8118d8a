"""No integer option takes more than 2**31 - 1 (QA of the seq2seq commands, fix 2): ``--beam``, ``--max-len``,
``--threads``, ``--eval-beam`` or ``--hidden-size 999999999999999999999`` overflowed in torch or the C++ loop
(OverflowError, C++ stack dumps). Every range without an upper bound has that one, checked as the command line is
parsed; the refusal names the capped range, ``--help`` keeps the range it had. Parsing only: nothing trains."""
from __future__ import annotations

import dataclasses

import pytest

from rnnkit.cli import train_caption, train_seq2seq
from rnnkit.cli.errors import OptionError
from rnnkit.cli.options import validate_options
from rnnkit.cli.ranges import INT_MAX, IntList, Range

from test_cli_option_ranges import _argv, _commands, _refused, _takes_a_value

HUGE = "999999999999999999999"


@pytest.mark.parametrize("argv, line", [
    (["translate", "RUN", "x", "--beam", HUGE],
     f"rnnkit translate: error: --beam must be an integer in [1, 2147483647], got {HUGE}"),
    (["translate", "RUN", "x", "--max-len", HUGE],
     f"rnnkit translate: error: --max-len must be an integer in [1, 2147483647], or none for 2 x source tokens + "
     f"10, got {HUGE}"),
    (["train", "seq2seq", "--out", "OUT", "--threads", HUGE],
     f"rnnkit train seq2seq: error: --threads must be an integer in [1, 1024], or 0 or none for PyTorch's "
     f"choice, got {HUGE}"),
    (["train", "lm", "--out", "OUT", "--threads", "2147483647"],      # OpenMP aborted the process on such counts
     "rnnkit train lm: error: --threads must be an integer in [1, 1024], or 0 or none for PyTorch's choice, got "
     "2147483647"),
    (["train", "seq2seq", "--out", "OUT", "--eval-beam", HUGE],
     f"rnnkit train seq2seq: error: --eval-beam must be an integer in [1, 2147483647], got {HUGE}"),
    (["train", "seq2seq", "--out", "OUT", "--hidden-size", HUGE],
     f"rnnkit train seq2seq: error: --hidden-size must be an integer in [1, 2147483647], got {HUGE}"),
    (["train", "lm", "--out", "OUT", "--hidden-size", "2147483648"],
     "rnnkit train lm: error: --hidden-size must be an integer in [1, 2147483647], got 2147483648"),
    (["train", "caption", "--out", "OUT", "--widths", f"8,{HUGE}"],
     f"rnnkit train caption: error: --widths must be comma-separated integers, each in [1, 2147483647], got "
     f"8,{HUGE}"),
    (["train", "lm", "--out", "OUT", "--seed", HUGE],             # its own bound stays: NumPy's seeds
     f"rnnkit train lm: error: --seed must be an integer in [0, 4294967295], got {HUGE}"),
    (["train", "lm", "--out", "OUT", "--max-steps", "1" + "0" * 400],  # too big for a float as well
     "rnnkit train lm: error: --max-steps must be an integer in [1, 2147483647], or 0 or none for no limit, got 1"
     + "0" * 400),
], ids=lambda v: " ".join(v[:4]) if isinstance(v, list) else None)
def test_the_issues_huge_integers_are_one_line(argv, line, tmp_path, capsys):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert _refused(capsys, tmp_path, argv) == line


def _capped_cases():
    """Every integer option of every command without an upper bound of its own: 2**31 refused, 2**31 - 1 kept."""
    for command, parser in _commands().items():
        for action in parser._actions:
            checker = action.type
            if _takes_a_value(action) and isinstance(checker, Range) and checker.kind is int and checker.high is None:
                flag = max(action.option_strings, key=len)
                yield pytest.param(command, flag, checker, id=f"{command} {flag}")


@pytest.mark.parametrize("command, flag, checker", list(_capped_cases()))
def test_every_integer_option_is_capped(command, flag, checker, tmp_path, capsys):
    capped = dataclasses.replace(checker, high=INT_MAX).text
    line = _refused(capsys, tmp_path, _argv(command, _commands()[command], tmp_path, flag, str(INT_MAX + 1)))
    assert line == f"rnnkit {command}: error: {flag} must be {capped}, got {INT_MAX + 1}"
    assert checker(str(INT_MAX)) == INT_MAX
    assert "2147483647" not in checker.text                 # --help's range as before


def test_the_cap_covers_the_commands_of_the_issue():
    covered = {(c.values[0], c.values[1]) for c in _capped_cases()}
    assert {("translate", "--beam"), ("translate", "--max-len"), ("train seq2seq", "--eval-beam"),
            ("train seq2seq", "--hidden-size"), ("train classify", "--hidden-size"),
            ("train caption", "--hidden-size")} <= covered          # (--threads has its own bound, 1024)


def test_a_saved_or_preset_value_over_the_cap_is_refused():
    with pytest.raises(OptionError) as err:
        validate_options({"hidden_size": 2**31}, train_seq2seq.ALL, "runs/x/options.json")
    assert str(err.value) == ("runs/x/options.json: --hidden-size must be an integer in [1, 2147483647], got "
                              "2147483648")
    with pytest.raises(OptionError) as err:
        validate_options({"widths": [8, 2**40]}, train_caption.ALL, "runs/x/options.json")
    assert str(err.value) == ("runs/x/options.json: --widths must be comma-separated integers, each in "
                              "[1, 2147483647], got [8, 1099511627776]")
    assert validate_options({"hidden_size": INT_MAX}, train_seq2seq.ALL) == {"hidden_size": INT_MAX}
    assert IntList(1)(f"8,{INT_MAX}") == [8, INT_MAX]
