"""From QA of the seq2seq commands: each bad input is one line (exit 2) before any work, naming the problem.

- ``translate --attention-plot`` with a suffix matplotlib doesn't write (``attn.html``), or on a run trained with
  ``--attention none``, is refused before translating (it printed the translations, then failed);
- ``translate --file`` has one output line per line of the file: lines end at ``\\n`` only, as training and eval
  read them (``str.splitlines`` also broke at form feeds, U+0085 and U+2028);
- ``train seq2seq`` refuses validation files it would ignore (``--dataset dates`` with ``--valid``; ``--valid``
  with ``--valid-src/--valid-tgt``);
- ``train TASK --resume`` on another task's run names the command that continues it.
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from lm_cli_helpers import lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.cli.main import main

PAIRS = [("ein hund läuft .", "a dog runs ."), ("zwei katzen schlafen .", "two cats sleep ."),
         ("ein mann liest .", "a man reads ."), ("eine frau singt .", "a woman sings .")] * 4
SMALL = ["--max-steps", "2", "--threads", "1", "--quiet", "--hidden-size", "8", "--embed-size", "8", "--engine",
         "python", "--device", "cpu"]


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    """Line-aligned source and target files, and the same pairs as TSV."""
    d = tmp_path_factory.mktemp("parallel")
    (d / "s.txt").write_text("".join(s + "\n" for s, _ in PAIRS), encoding="utf-8")
    (d / "t.txt").write_text("".join(t + "\n" for _, t in PAIRS), encoding="utf-8")
    (d / "v.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS[:4]), encoding="utf-8")
    return d


def _train(out, parallel, *extra) -> None:
    threads = torch.get_num_threads()
    code = main(["train", "seq2seq", "--src", str(parallel / "s.txt"), "--tgt", str(parallel / "t.txt"),
                 "--out", str(out), *SMALL, *extra])
    torch.set_num_threads(threads)
    assert code == 0


@pytest.fixture(scope="module")
def s2s_run(tmp_path_factory, parallel):
    """A tiny word-level run with attention (2 steps)."""
    out = tmp_path_factory.mktemp("s2s") / "attn"
    _train(out, parallel)
    return out


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, parallel):
    """The same, trained with --attention none."""
    out = tmp_path_factory.mktemp("s2s") / "plain"
    _train(out, parallel, "--attention", "none")
    return out


def _refused_by_the_parser(capsys, argv) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


# ------------------------------------------------------------------ fix 3: --attention-plot

def test_translate_refuses_a_plot_suffix_matplotlib_does_not_write(s2s_run, tmp_path, capsys):
    plot = tmp_path / "attn.html"
    code, out, err = _refused_by_the_parser(capsys, ["translate", s2s_run, "ein hund", "--attention-plot", plot])
    assert (code, out) == (2, "")                                  # nothing translated
    assert err == (f"rnnkit translate: error: --attention-plot must be a file name ending in an image format "
                   f"matplotlib writes (.png, .pdf, .svg, .jpg, .eps, ...), got {plot}\n")
    assert not plot.exists()


def test_translate_plots_in_the_format_the_suffix_names(s2s_run, tmp_path, capsys):
    svg, bare = tmp_path / "attn.SVG", tmp_path / "attn"
    for plot in (svg, bare):
        code, out, err = run_cli(capsys, "translate", s2s_run, "ein hund", "--attention-plot", plot)
        assert code == 0, err
        assert out.count("\n") == 1 and f"attention heatmap written to {plot}" in err
    assert svg.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in svg.read_bytes()
    assert bare.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"            # no suffix: a PNG


def test_translate_refuses_a_plot_of_a_run_without_attention_before_translating(plain_run, tmp_path, capsys):
    plot = tmp_path / "attn.png"
    code, out, err = run_cli(capsys, "translate", plain_run, "ein hund", "zwei katzen", "--attention-plot", plot)
    assert (code, out) == (2, "")                                  # it printed the translations first
    assert err == (f"rnnkit: error: --attention-plot: {plain_run} was trained without attention (--attention none): "
                   f"nothing to plot\n")
    assert not plot.exists()
    code, out, err = run_cli(capsys, "translate", plain_run, "ein hund", "zwei katzen")
    assert code == 0 and out.count("\n") == 2, err                 # without the plot it translates


# ------------------------------------------------------------------ fix 4: --file's lines

@pytest.mark.parametrize("content", [
    "ein hund\fläuft\nein mann\u2028liest\r\nzwei katzen\u0085schlafen\n",     # CRLF, a final newline
    "ein hund\fläuft\nein mann\u2028liest\r\nzwei katzen\u0085schlafen",       # none
    "ein hund\vläuft\r\nein mann\x1cliest\r\nzwei katzen\u2029schlafen\r\n",
], ids=["lf", "no-final-newline", "crlf"])
def test_translate_file_prints_one_line_per_line_of_the_file(s2s_run, tmp_path, capsys, content):
    src = tmp_path / "in.txt"
    src.write_bytes(content.encode("utf-8"))
    code, out, err = run_cli(capsys, "translate", s2s_run, "--file", src, "--beam", "2")
    assert code == 0, err
    assert len(out.split("\n")) - 1 == 3 and out.endswith("\n")    # 3 lines in, 3 out (it printed 6)
    code, out, err = run_cli(capsys, "translate", s2s_run, "--file", src, "--beam", "2", "--n-best", "2")
    assert code == 0 and len(out.split("\n")) - 1 == 6, err
    code, out, err = run_cli(capsys, "eval", s2s_run, "--src", src, "--tgt", src)
    assert code == 0 and "3 sentences" in out, err                 # as eval counts them


def test_translate_file_with_an_empty_line_names_it(s2s_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("ein hund\n\u2028\nein mann\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "translate", s2s_run, "--file", src)
    assert (code, out, err) == (2, "", f"rnnkit: error: {src}: 1 empty line(s), e.g. line 2; one sentence per "
                                       f"line\n")


# ------------------------------------------------------------------ fix 5: validation files that would be ignored

@pytest.mark.parametrize("extra, message", [
    (["--dataset", "dates", "--valid", "V.tsv"],
     "--dataset dates makes its own validation set (--dates-valid pairs); --valid is not used with it"),
    (["--dataset", "dates", "--valid-src", "S", "--valid-tgt", "T"],
     "--dataset dates makes its own validation set (--dates-valid pairs); --valid-src and --valid-tgt are not "
     "used with it"),
    (["--dataset", "multi30k", "--valid-src", "S", "--valid-tgt", "T"],
     "--dataset multi30k reads its validation set from --data-dir (val.de, val.en); --valid-src and --valid-tgt "
     "are not used with it"),
    (["--src", "S", "--tgt", "T", "--valid", "V.tsv", "--valid-src", "S", "--valid-tgt", "T"],
     "give --valid or --valid-src/--valid-tgt, not both"),
    (["--train", "V.tsv", "--valid", "V.tsv", "--valid-src", "S"],
     "give --valid or --valid-src/--valid-tgt, not both"),
], ids=["dates-valid", "dates-valid-src", "multi30k-valid-src", "valid-and-valid-src", "tsv-valid-and-valid-src"])
def test_train_refuses_validation_files_it_would_ignore(parallel, tmp_path, capsys, extra, message):
    files = {"S": parallel / "s.txt", "T": parallel / "t.txt", "V.tsv": parallel / "v.tsv"}
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "train", "seq2seq", *[files.get(a, a) for a in extra], "--out", out,
                                *SMALL)
    assert (code, stdout, err) == (2, "", f"rnnkit: error: command line: {message}\n")
    assert not out.exists()


# ------------------------------------------------------------------ fix 6: --resume on another task's run

def _copy(run, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(run, dest)
    return dest


def test_resuming_an_lm_run_as_seq2seq_names_its_command(char_run, capsys):
    before = {p.name: p.read_bytes() for p in char_run.iterdir() if p.is_file()}
    code, out, err = run_cli(capsys, "train", "seq2seq", "--out", char_run, "--resume")
    assert (code, out, err) == (2, "", f"rnnkit: error: {char_run} was trained with rnnkit train lm, not seq2seq; "
                                       f"continue it with rnnkit train lm --out {char_run} --resume\n")
    assert {p.name: p.read_bytes() for p in char_run.iterdir() if p.is_file()} == before   # nothing written


@pytest.mark.parametrize("task", ["classify", "lm", "caption"])
def test_resuming_a_seq2seq_run_as_another_task_names_its_command(s2s_run, tmp_path, capsys, task):
    run = _copy(s2s_run, tmp_path)
    code, out, err = run_cli(capsys, "train", task, "--out", run, "--resume")
    assert (code, out, err) == (2, "", f"rnnkit: error: {run} was trained with rnnkit train seq2seq, not {task}; "
                                       f"continue it with rnnkit train seq2seq --out {run} --resume\n")


def test_the_task_is_read_from_config_json_where_options_json_lacks_it(s2s_run, tmp_path, capsys):
    """Runs written before options.json recorded the task: config.json (saved with the model) names it."""
    run = _copy(s2s_run, tmp_path)
    options = json.loads((run / "options.json").read_text())
    assert options.pop("task") == "seq2seq"                        # what a run writes now
    (run / "options.json").write_text(json.dumps(options))
    code, out, err = run_cli(capsys, "train", "classify", "--out", run, "--resume")
    assert (code, err) == (2, f"rnnkit: error: {run} was trained with rnnkit train seq2seq, not classify; continue "
                              f"it with rnnkit train seq2seq --out {run} --resume\n")


def test_the_task_is_read_from_options_json_before_any_model_is_saved(s2s_run, tmp_path, capsys):
    """A run stopped before its first validation has no config.json; its options.json names the task."""
    run = _copy(s2s_run, tmp_path)
    (run / "config.json").unlink()
    (run / "model.safetensors").unlink()
    code, out, err = run_cli(capsys, "train", "lm", "--out", run, "--resume")
    assert (code, err) == (2, f"rnnkit: error: {run} was trained with rnnkit train seq2seq, not lm; continue it "
                              f"with rnnkit train seq2seq --out {run} --resume\n")


def test_resuming_with_the_right_command_still_trains(s2s_run, tmp_path, capsys):
    run = _copy(s2s_run, tmp_path)
    code, _, err = run_cli(capsys, "train", "seq2seq", "--out", run, "--resume", "--max-steps", "3")
    assert code == 0, err
    assert json.loads((run / "options.json").read_text())["task"] == "seq2seq"


@pytest.mark.parametrize("side", ["source", "target"])
def test_an_unseen_character_names_its_file_and_pair(parallel, tmp_path, capsys, side):
    """At the char level a fresh run's vocabulary holds the validation text's characters too (as the character LM's;
    QA: a '0' in Multi30k's validation text refused a new run). A run resumed keeps its vocabulary, so a symbol it
    lacks is an error naming the side's file and the pair (it said only "validation data")."""
    vs, vt = tmp_path / "v.de", tmp_path / "v.en"
    vs.write_text("ein hund läuft .\nein Zebra .\n" if side == "source" else "ein hund läuft .\nein hund .\n")
    vt.write_text("a dog runs .\na Zebra .\n" if side == "target" else "a dog runs .\na dog .\n")
    common = ["train", "seq2seq", "--src", str(parallel / "s.txt"), "--tgt", str(parallel / "t.txt"), "--level",
              "char", "--out", str(tmp_path / "r"), *SMALL]
    assert main([*common, "--valid-src", str(vs), "--valid-tgt", str(vt)]) == 0
    ws, wt = tmp_path / "w.de", tmp_path / "w.en"
    ws.write_text("ein hund .\nein Qualle .\n" if side == "source" else "ein hund .\nein hund .\n")
    wt.write_text("a dog .\na Quail .\n" if side == "target" else "a dog .\na dog .\n")
    capsys.readouterr()
    assert main([*common, "--valid-src", str(ws), "--valid-tgt", str(wt), "--resume"]) == 2
    named = ws if side == "source" else wt
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"rnnkit: error: {named}: pair 2: ")
