"""Every `rnnkit` sub-command end to end in a temporary folder: train lm, sample, eval, demo, build, --help."""
from __future__ import annotations

import json
import re

import pytest
import torch

from lm_cli_helpers import TINY, TRAIN_TEXT, VALID_TEXT, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.tasks.language_modeling import load_run as load_lm


def _records(run, kind):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_train_lm_writes_a_complete_run(char_run_master):
    run = char_run_master
    for name in ("model.safetensors", "config.json", "resume.pt", "metrics.jsonl", "loss.png", "options.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp"))                          # no temporary file left behind
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "lm" and config["level"] == "char" and config["format"] == "rnnkit-run/1"
    assert config["model"]["hidden_size"] == 16 and config["model"]["num_layers"] == 1
    assert config["tokenizer"]["vocab"] == sorted(set(TRAIN_TEXT + VALID_TEXT))
    assert config["training"]["max_steps"] == 5 and config["training"]["lr"] == 0.01
    assert config["step"] == 5 and config["data"]["valid_tokens"] == len(VALID_TEXT)
    assert [r["step"] for r in _records(run, "train")] == [1, 2, 3, 4, 5]
    evals = _records(run, "eval")
    assert evals[-1]["step"] == 5 and config["metrics"]["loss"] == evals[-1]["loss"]
    options = json.loads((run / "options.json").read_text())
    assert options["hidden_size"] == 16 and options["clip"] == 5.0 and options["preset"] is None


def test_train_lm_reports_what_it_does(tmp_path, corpus_dir, capsys):
    code, out, err = run_cli(capsys, "train", "lm", "--train", corpus_dir / "train.txt", "--out", tmp_path / "r",
                             "--max-steps", "2", *TINY)
    assert code == 0 and out == ""
    assert re.search(r"char-level lstm LM, [\d,]+ parameters, vocabulary \d+", err)
    assert "rnnkit: stopped (max_steps) after 2 steps" in err and str(tmp_path / "r") in err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    cut = int(len(TRAIN_TEXT) * 0.9)                            # no --valid: the last 10% held out
    assert config["data"]["train_tokens"] == cut and config["data"]["valid_tokens"] == len(TRAIN_TEXT) - cut


def test_sample_prints_the_prime_and_length_characters(char_run, capsys):
    code, out, err = run_cli(capsys, "sample", char_run, "--prime", "line 1", "--length", "30", "--seed", "3")
    assert code == 0 and err == ""
    assert out.startswith("line 1") and out.endswith("\n")
    assert len(out) == len("line 1") + 30 + 1
    _, again, _ = run_cli(capsys, "sample", char_run, "--prime", "line 1", "--length", "30", "--seed", "3")
    assert again == out
    _, topk, _ = run_cli(capsys, "sample", char_run, "--length", "50", "--top-k", "1", "--seed", "1",
                         "--temperature", "1")
    _, greedy, _ = run_cli(capsys, "sample", char_run, "--length", "50", "--temperature", "0")
    assert topk == greedy                                        # top-k 1 is greedy too


def test_sample_temperature_zero_is_greedy_by_hand(char_run, capsys):
    code, out, _ = run_cli(capsys, "sample", char_run, "--prime", "the", "--length", "20", "--temperature", "0")
    assert code == 0
    model, tok, _ = load_lm(char_run)
    ids = tok.encode("the")
    with torch.no_grad():
        for _ in range(20):
            ids.append(int(model(torch.tensor(ids).unsqueeze(1))[0][-1, 0].argmax()))
    assert out == tok.decode(ids) + "\n"


@pytest.mark.parametrize("eval_bptt", ["16", "5"])
def test_eval_agrees_with_the_trainers_validation_loss(char_run_master, corpus_dir, capsys, eval_bptt):
    config = json.loads((char_run_master / "config.json").read_text())
    code, out, err = run_cli(capsys, "eval", char_run_master, "--data", corpus_dir / "valid.txt",
                             "--bptt", eval_bptt)
    assert code == 0 and err == ""
    m = re.fullmatch(r"(.+): ([\d,]+) tokens, loss ([\d.]+) nats, bits per character ([\d.]+)\n", out)
    assert m, out
    assert m.group(1) == str(corpus_dir / "valid.txt")
    assert int(m.group(2).replace(",", "")) == len(VALID_TEXT) - 1
    assert float(m.group(3)) == pytest.approx(config["metrics"]["loss"], abs=5e-5)   # printed with 4 decimals
    assert float(m.group(4)) == pytest.approx(config["metrics"]["bpc"], abs=5e-5)
    # the same number to 1e-5 without the printing
    from rnnkit.data import BPTTStream, batchify
    from rnnkit.tasks.language_modeling import evaluate_stream
    model, tok, _ = load_lm(char_run_master)
    ids = torch.tensor(tok.encode(VALID_TEXT))
    exact = evaluate_stream(model, BPTTStream(batchify(ids, 1), int(eval_bptt)), torch.device("cpu"), "char")
    assert exact["loss"] == pytest.approx(config["metrics"]["loss"], abs=1e-5)


def test_resume_from_the_command_line_equals_an_uninterrupted_run(tmp_path, corpus_dir, capsys):
    common = ["train", "lm", "--train", corpus_dir / "train.txt", *TINY, "--log-every", "1", "--dropout", "0.2",
              "--layers", "2"]
    assert run_cli(capsys, *common, "--out", tmp_path / "a", "--max-steps", "6")[0] == 0
    assert run_cli(capsys, *common, "--out", tmp_path / "b", "--max-steps", "3")[0] == 0
    code, _, err = run_cli(capsys, "train", "lm", "--out", tmp_path / "b", "--resume", "--max-steps", "6", "--quiet")
    assert code == 0 and "after 6 steps" in err
    a, b = _records(tmp_path / "a", "train"), _records(tmp_path / "b", "train")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], abs=1e-6)
    options = json.loads((tmp_path / "b" / "options.json").read_text())
    assert options["dropout"] == 0.2 and options["layers"] == 2 and options["max_steps"] == 6


def _small_stdlib(**kw):
    from rnnkit.data.stdlib_corpus import build_stdlib_corpus
    return build_stdlib_corpus(max_chars=30_000)


def test_demo_trains_samples_and_says_where(tmp_path, capsys, monkeypatch):
    """The real demo flow on a 30k-character slice of the stdlib corpus and a tiny char-small preset."""
    import rnnkit.cli.train_lm as train_lm
    import rnnkit.data
    monkeypatch.setattr(rnnkit.data, "build_stdlib_corpus", _small_stdlib)
    monkeypatch.setattr(train_lm, "build_stdlib_corpus", _small_stdlib)
    small = {**train_lm.PRESETS["char-small"], "hidden_size": 16, "embed_size": 8, "layers": 1, "batch_size": 4,
             "bptt": 16, "eval_batch_size": 8, "engine": "python"}
    monkeypatch.setitem(train_lm.PRESETS, "char-small", small)
    out_dir = tmp_path / "demo"
    code, out, err = run_cli(capsys, "demo", "--max-steps", "3", "--out", out_dir, "--length", "40")
    assert code == 0
    m = re.fullmatch(r"\n----- before training -----\ndef (.{40})\n-{27}\n"
                     r"\n----- after training -----\ndef (.{40})\n-{26}\n", out, flags=re.S)
    assert m, out
    assert "1x16 character-level LSTM" in err
    assert f"Run saved in {out_dir}/" in err and "stopped (max_steps) after 3 steps" in err
    options = json.loads((out_dir / "options.json").read_text())
    assert options["preset"] == "char-small" and options["dataset"] == "stdlib" and options["max_steps"] == 3
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "loss.png").is_file()


def test_build_reports_the_built_engine(capsys, monkeypatch):
    """The CLI's side of `rnnkit build` (compiling the real extension takes a minute: tests/engine covers it)."""
    from rnnkit.engine import fused
    calls = []
    monkeypatch.setattr(fused, "build", lambda verbose=False: calls.append(verbose) or "/cache/rnnkit_fused.so",
                        raising=False)
    code, out, err = run_cli(capsys, "build", "--verbose")
    assert (code, out, err) == (0, "rnnkit: compiled engine ready (/cache/rnnkit_fused.so)\n", "")
    assert calls == [True]


def test_build_failure_is_a_message_not_a_traceback(capsys, monkeypatch):
    from rnnkit.engine import fused

    def fail(verbose=False):
        raise RuntimeError("rnnkit: the fused engine is unavailable: the C++ extension could not be built: "
                           "c++ not found")
    monkeypatch.setattr(fused, "build", fail, raising=False)
    code, out, err = run_cli(capsys, "build")
    assert code != 0 and out == ""
    assert err.startswith("rnnkit: error:") and "c++ not found" in err


# ------------------------------------------------------------------ --help


def _help(capsys, monkeypatch, *argv):
    monkeypatch.setenv("COLUMNS", "250")
    from rnnkit.cli.main import main
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_top_level_help_lists_the_sub_commands(capsys, monkeypatch):
    text = _help(capsys, monkeypatch)
    for name in ("train", "sample", "eval", "demo", "build"):
        assert re.search(rf"\b{name}\b", text)


def test_train_lm_help_shows_every_option_with_its_default(capsys, monkeypatch):
    from rnnkit.cli.train_lm import ALL
    text = _help(capsys, monkeypatch, "train", "lm")
    assert "--clip CLIP clip the global gradient norm to this (0: off) (default: 5.0)" in text
    assert "(default: 0.002)" in text and "(default: lstm)" in text and "(default: 64)" in text
    body = text.split(" options: ", 1)[1]                      # after the usage line
    for option in ALL:
        metavar = ("{" + ",".join(option.choices) + "} " if option.choices
                   else f", --no-{option.flag[2:]} " if option.flag_only else option.dest.upper() + " ")
        flag = option.flag + ("" if option.flag_only else " ")             # a switch: --x, --no-x
        own = re.search(r"\(default: ([^)]*)\)", option.help)     # a help that says its default says it once
        default = own.group(1) if own else str(option.default)
        entry = re.search(rf" {re.escape(flag)}{re.escape(metavar)}(.*?\(default: {re.escape(default)}\))", body)
        assert entry, option.flag
        assert not re.search(r" --[a-z-]+ [A-Z_{]", entry.group(1)), (option.flag, entry.group(1))  # own entry
    for preset in ("zaremba-small", "char-small"):
        assert preset in text


@pytest.mark.parametrize("command, expected", [
    ("sample", ["--length LENGTH tokens to generate (default: 500)", "(default: 0.8)", "--top-k TOP_K",
                "--seed SEED random seed for a reproducible sample (default: None)"]),
    ("eval", ["--bptt BPTT", "(default: 64)", "--data DATA"]),
    ("demo", ["--minutes MINUTES training time budget (default: 3.0)", "(default: runs/demo)", "(default: def )"]),
    ("build", ["--verbose"]),
])
def test_sub_command_help_mentions_its_options(capsys, monkeypatch, command, expected):
    text = _help(capsys, monkeypatch, command)
    for piece in expected:
        assert piece in text


def _sub_parsers():
    import argparse
    from rnnkit.cli.main import make_parser

    def children(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices
        return {}

    top = children(make_parser())
    subs = {name: p for name, p in top.items() if name != "train"}
    subs.update({f"train {name}": p for name, p in children(top["train"]).items()})
    return subs


@pytest.mark.parametrize("command", [
    "train lm", "sample", "eval", "demo", "build"])
def test_every_optional_argument_shows_a_default(command):
    parser = _sub_parsers()[command]
    formatter = parser._get_formatter()
    missing = [a.option_strings[0] for a in parser._actions
               if a.option_strings and a.option_strings[0] != "-h" and not a.required
               and "(default:" not in (formatter._get_help_string(a) or "")]
    assert missing == []


def test_bench_generation_table_on_a_tiny_model():
    """The generation rows of ``rnnkit bench`` (tiny sizes here: the real run takes minutes)."""
    from rnnkit.bench.generation import generation_rows
    rows = generation_rows(H=8, layers=2, vocab=5, steps=3)
    assert rows[:2] == ["| what | µs per token | ×torch.nn |", "|---|---|---|"]
    cells = [r.strip("|").split("|") for r in rows[2:]]
    assert [c[0].strip() for c in cells][:3] == ["torch.nn.LSTM called per step",
                                                 "rnnkit layer.step, Python cell equations (engine='python')",
                                                 "rnnkit layer.step, one compiled call"]
    assert cells[0][2].strip() == "1.00×" and all(float(c[1].replace(",", "")) > 0 for c in cells)


def test_bench_help_lists_its_options(capsys):
    from rnnkit.cli.main import main
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert all(opt in out for opt in ("--quick", "--long", "--out", "--device"))


def test_bench_memory_figures_keep_a_decimal_below_10_mb():
    from rnnkit.bench.memory import megabytes
    assert [megabytes(int(m * 2**20)) for m in (0.04, 2.5, 9.94, 12.4, 1500)] == \
        ["0.0 MB", "2.5 MB", "9.9 MB", "12 MB", "1500 MB"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where there is no GPU")
def test_bench_on_cuda_without_a_gpu_says_so():
    from rnnkit.cli.main import main
    with pytest.raises(SystemExit, match="--device cuda, but torch sees no CUDA GPU"):
        main(["bench", "--device", "cuda"])
