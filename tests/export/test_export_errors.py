"""Bad input to `rnnkit export`: one line on stderr, exit status 2, nothing exported (and fast: the checks come
before the model is loaded or traced)."""
from __future__ import annotations

import pytest

from rnnkit.cli.main import main, make_parser

from export_helpers import lm_run


def _one_line_error(capsys, *words: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("rnnkit: error: ") and "\n" not in err, err
    assert "Traceback" not in captured.err
    for w in words:
        assert w in err, err
    return err


def test_an_unknown_format(runs, tmp_path, capsys):
    assert main(["export", str(runs["lm"]), "--format", "tflite", "--out", str(tmp_path / "m")]) == 2
    _one_line_error(capsys, "unknown format 'tflite'", "onnx or pt2")
    assert not any(tmp_path.iterdir())


def test_no_format_and_a_file_name_that_names_none(runs, tmp_path, capsys):
    assert main(["export", str(runs["lm"]), "--out", str(tmp_path / "model.bin")]) == 2
    _one_line_error(capsys, "--format onnx or pt2")


def test_a_suffix_that_contradicts_the_format(runs, tmp_path, capsys):
    assert main(["export", str(runs["lm"]), "--format", "onnx", "--out", str(tmp_path / "model.pt2")]) == 2
    _one_line_error(capsys, "ends in .onnx")


@pytest.mark.parametrize("what", ["missing", "empty", "not-a-run"])
def test_a_folder_that_is_not_a_run(tmp_path, capsys, what):
    run = tmp_path / "run"
    if what != "missing":
        run.mkdir()
    if what == "not-a-run":
        (run / "config.json").write_text('{"hello": 1}', encoding="utf-8")
    assert main(["export", str(run), "--format", "pt2", "--out", str(tmp_path / "out" / "m.pt2")]) == 2
    expected = {"missing": "no such run folder", "empty": "not a finished rnnkit run",
                "not-a-run": "not an rnnkit run configuration"}[what]
    _one_line_error(capsys, expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, named", [(dict(layer_norm=True), "layer norm"), (dict(zoneout=0.1), "zoneout")])
def test_a_model_with_layer_norm_or_zoneout_refuses_onnx_and_exports_as_pt2(tmp_path, capsys, options, named):
    run = lm_run(tmp_path / "run", **options)
    assert main(["export", str(run), "--out", str(tmp_path / "out" / "m.onnx")]) == 2
    _one_line_error(capsys, f"no {named}, which change", "--format pt2")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert main(["export", str(run), "--out", str(tmp_path / "out" / "m.pt2")]) == 0


def test_an_unwritable_out(runs, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    assert main(["export", str(runs["lm"]), "--format", "pt2", "--out", str(blocker / "m.pt2")]) == 2
    _one_line_error(capsys, "--out", "cannot create the folder")
    (tmp_path / "dir.pt2").mkdir()
    assert main(["export", str(runs["lm"]), "--out", str(tmp_path / "dir.pt2")]) == 2
    _one_line_error(capsys, "is a folder")


def test_the_help_says_how_to_load_a_pt2_file():
    sub = next(a for a in make_parser()._actions if a.dest == "command")
    text = sub.choices["export"].format_help()
    assert "import rnnkit" in text and "onnx" in text and "--out" in text
