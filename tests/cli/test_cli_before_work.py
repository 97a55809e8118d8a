"""What the commands check before any work, and how they talk (QA of bench, build and demo): an unwritable
`bench --out` was found after ten minutes of measuring; `demo` printed a sample before refusing --out or --prime;
help pages showed reStructuredText; a stray argument printed rnnkit's usage instead of the command's."""
from __future__ import annotations

import pytest

from rnnkit.cli.main import main
from rnnkit.cli.ranges import plain_text


@pytest.mark.parametrize("argv, line", [
    (["bench", "--out", "/proc/x.md"], "rnnkit: error: /proc/x.md: cannot write here"),
    (["bench", "--long", "--regularised"], "rnnkit bench: error: --long is the CPU benchmark's T=10,000 run; "
                                           "it is not part of --regularised or --device cuda"),
    (["demo", "--out", "/proc/demo"], "rnnkit: error: /proc/demo: cannot write here"),
])
def test_refused_before_any_work(argv, line, capsys):
    try:
        code = main(argv)
    except SystemExit as e:                      # (bench's own refusals exit with their message)
        code, err = 2, str(e.code)
    else:
        err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1].startswith(line)
    assert "----- before training -----" not in capsys.readouterr().out


def test_demo_checks_the_prime_before_printing_a_sample(tmp_path, capsys):
    code = main(["demo", "--prime", "€uro", "--max-steps", "1", "--out", str(tmp_path / "demo")])
    out, err = capsys.readouterr()
    assert code == 2 and "€" not in out and "-----" not in out
    assert err.strip().splitlines()[-1] == ("rnnkit: error: --prime: the prime has 1 symbol(s) the model's "
                                            "vocabulary lacks: '€'")
    assert not (tmp_path / "demo").exists()


def test_demo_refuses_a_folder_that_is_not_a_demos_before_any_work(tmp_path, capsys):
    """QA: the demo trained into another run's folder's refusal after its first sample, advising --force, which the
    demo doesn't take."""
    other = tmp_path / "run"
    other.mkdir()
    (other / "options.json").write_text('{"task": "lm", "dataset": "ptb"}')
    code = main(["demo", "--max-steps", "1", "--out", str(other)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (f"rnnkit: error: --out: {other} holds files that are not a demo's run (the demo replaces only "
                   f"its own); choose another --out\n")
    assert [p.name for p in other.iterdir()] == ["options.json"]


def test_help_shows_defaults(capsys):
    """Every command's --help gives its options' defaults, once (QA: gradients and experiment showed none, train
    lm's --level two)."""
    for command, shown in ((["gradients"], "(default: gradients.png)"), (["experiment"], "(default: 2000)"),
                           (["predict"], "(default:"), (["train", "lm"], "char or word tokens (default: word for "
                                                                          "ptb, char otherwise) --min-freq")):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert shown in out, command


def test_help_is_plain_text(capsys):
    for command in (["bench"], ["build"], ["demo"], ["predict"], ["train", "lm"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        assert "``" not in out and ":mod:`" not in out and ":func:`" not in out, command
    assert plain_text("``rnnkit bench``: see :mod:`rnnkit.bench` and :func:`~rnnkit.x.y`.\nExamples::") == \
        "rnnkit bench: see rnnkit.bench and rnnkit.x.y.\nExamples:"


def test_a_stray_argument_shows_the_commands_usage(capsys):
    with pytest.raises(SystemExit):
        main(["build", "-v"])
    err = capsys.readouterr().err
    assert err.startswith("usage: rnnkit build") and err.strip().endswith("rnnkit build: error: unrecognized "
                                                                         "arguments: -v")


def test_rnnkits_warnings_are_one_line(capsys, monkeypatch):
    """QA: without a compiler the fallback's warning showed torch's module.py and one of its source lines. Other
    libraries' warnings go to Python's own display."""
    from rnnkit.cli import main as cli_main
    shown = []
    monkeypatch.setattr(cli_main, "_python_show_warning", lambda *a: shown.append(a))
    cli_main._show_warning(UserWarning("rnnkit: the compiled engine is unavailable (no compiler); using the Python "
                                       "BPTT loop"), RuntimeWarning, "/x/torch/nn/modules/module.py", 1789)
    assert capsys.readouterr().err == ("rnnkit: warning: the compiled engine is unavailable (no compiler); using the "
                                       "Python BPTT loop\n")
    assert shown == []
    cli_main._show_warning(UserWarning("torch says"), UserWarning, "/x/y.py", 3)
    assert capsys.readouterr().err == "" and str(shown[0][0]) == "torch says"


def test_version(capsys):
    import rnnkit
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"rnnkit {rnnkit.__version__} (torch ")
