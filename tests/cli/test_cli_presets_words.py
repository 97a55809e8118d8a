"""Presets resolve to the paper's settings and yield to typed options; word-level training and sampling."""
from __future__ import annotations

import json
import re

import pytest
import torch

from lm_cli_helpers import TINY, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)
from rnnkit.cli import train_lm
from rnnkit.cli.main import make_parser
from rnnkit.training import TrainConfig


def _resolved(*argv):
    return train_lm.resolved_options(make_parser().parse_args(["train", "lm", *map(str, argv)]))


def test_zaremba_small_preset_has_the_papers_values(tmp_path):
    o = _resolved("--preset", "zaremba-small", "--out", tmp_path / "r")
    expected = dict(cell="lstm", layers=2, hidden_size=200, embed_size=200, bptt=20, batch_size=20,
                    optimizer="sgd", lr=1.0, lr_decay=0.5, decay_after=4, epochs=13, init_range=0.1, clip=5.0,
                    dropout=0.0, dataset="ptb", level="word", sum_over_time=True, preset="zaremba-small")
    assert {k: o[k] for k in expected} == expected
    cfg = TrainConfig.from_dict({k: o[k] for k in train_lm.TRAIN_KEYS})
    assert [cfg.lr_at(e) for e in (1, 4, 5, 6, 13)] == [1.0, 1.0, 0.5, 0.25, 0.5 ** 9]
    # untouched options keep their defaults
    assert o["tie_weights"] is False and o["momentum"] == 0.0 and o["seed"] == 0


def test_ptb_tied_preset_is_under_five_million_parameters(tmp_path):
    """The issue's PTB goal allows at most 5M parameters: 2x256 LSTM with the decoder tied to the embedding."""
    from rnnkit.models.language_model import LanguageModel
    o = _resolved("--preset", "ptb-tied", "--out", tmp_path / "r")
    model = LanguageModel(train_lm.model_config(o, vocab_size=10_000))
    assert model.decoder.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) == 3_622_672 <= 5_000_000
    cfg = TrainConfig.from_dict({k: o[k] for k in train_lm.TRAIN_KEYS})
    assert (cfg.optimizer, cfg.clip, o["dropout"], o["bptt"]) == ("sgd", 0.25, 0.3, 35)
    assert [round(cfg.lr_at(e), 6) for e in (1, 10, 11, 12)] == [20.0, 20.0, 12.0, 7.2]


def test_typed_options_override_the_preset(tmp_path):
    o = _resolved("--preset", "zaremba-small", "--out", tmp_path / "r", "--lr", "0.5", "--hidden-size", "50",
                  "--clip", "0", "--dropout", "0.25")
    assert (o["lr"], o["hidden_size"], o["clip"], o["dropout"]) == (0.5, 50, 0.0, 0.25)
    assert (o["layers"], o["bptt"], o["epochs"], o["lr_decay"]) == (2, 20, 13, 0.5)       # the rest: preset
    # typing the built-in default still wins over the preset (char-small uses lr 3e-3)
    assert _resolved("--preset", "char-small", "--out", tmp_path / "r", "--lr", "0.002")["lr"] == 0.002
    assert _resolved("--preset", "char-small", "--out", tmp_path / "r")["lr"] == 3e-3
    assert _resolved("--out", tmp_path / "r")["lr"] == 2e-3                                  # no preset: default


def test_char_small_preset_and_its_use_by_the_demo(tmp_path):
    o = _resolved("--preset", "char-small", "--out", tmp_path / "r")
    assert (o["level"], o["cell"], o["layers"], o["hidden_size"], o["optimizer"]) == ("char", "lstm", 2, 256, "adam")
    assert o["dataset"] is None                # char-small works with --train FILE too


def test_resume_layers_saved_options_under_typed_ones(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    saved = _resolved("--preset", "zaremba-small", "--out", out, "--lr", "0.7")
    (out / "options.json").write_text(json.dumps(saved))
    o = _resolved("--out", out, "--resume")
    assert (o["lr"], o["hidden_size"], o["preset"]) == (0.7, 200, "zaremba-small")
    assert _resolved("--out", out, "--resume", "--lr", "0.3", "--max-steps", "9")["lr"] == 0.3
    assert _resolved("--out", out, "--resume", "--max-steps", "9")["max_steps"] == 9


WORDS = "".join(f"the {a} sat on the {b}\n" for a, b in [("cat", "mat"), ("dog", "log"), ("cat", "hat"),
                                                           ("bird", "mat"), ("dog", "mat")] * 8)


@pytest.fixture
def word_run(tmp_path, capsys):
    data = tmp_path / "words.txt"
    data.write_text(WORDS)
    out = tmp_path / "wrun"
    code, _, err = run_cli(capsys, "train", "lm", "--train", data, "--level", "word", "--out", out, *TINY,
                           "--batch-size", "2", "--bptt", "6", "--max-steps", "5", "--lr", "0.01")
    assert code == 0, err
    return out, data, err


def test_word_level_training(word_run, capsys):
    out, data, err = word_run
    assert re.search(r"word-level lstm LM, [\d,]+ parameters, vocabulary 11;", err)
    assert re.search(r"last validation loss [\d.]+, ppl [\d.]+", err)
    config = json.loads((out / "config.json").read_text())
    assert config["level"] == "word" and config["tokenizer"]["type"] == "word"
    vocab = config["tokenizer"]["vocab"]
    assert vocab[:6] == ["<eos>", "<unk>", "the", "on", "sat", "mat"]    # by decreasing frequency, then a-z
    assert sorted(vocab[2:]) == sorted(set(WORDS.split()))
    n_tokens = len(WORDS.split()) + WORDS.count("\n")         # words + one <eos> per line
    assert config["data"]["train_tokens"] + config["data"]["valid_tokens"] == n_tokens
    assert config["metrics"]["ppl"] == pytest.approx(torch.tensor(config["metrics"]["loss"]).exp().item(), rel=1e-6)
    code, stdout, _ = run_cli(capsys, "eval", out, "--data", data)
    assert code == 0 and re.fullmatch(rf"{re.escape(str(data))}: [\d,]+ tokens, loss [\d.]+ nats, "
                                      r"perplexity [\d.]+\n", stdout)


def test_word_level_sample(word_run, capsys):
    out, _, _ = word_run
    code, stdout, _ = run_cli(capsys, "sample", out, "--prime", "the cat", "--length", "12", "--seed", "0")
    assert code == 0 and stdout.startswith("the cat")
    words = stdout[len("the cat"):].split()
    assert set(words) <= set(WORDS.split()) | {"<unk>"}           # words of the vocabulary; <eos> is a line break
    assert len(words) + stdout[len("the cat"):-1].count("\n") == 12


def test_word_level_sample_with_unknown_prime_words(word_run, capsys):
    out, _, _ = word_run
    code, _, err = run_cli(capsys, "sample", out, "--prime", "the zebra sat on a mat", "--length", "3")
    assert code == 2
    assert "--prime" in err and "2 symbol(s)" in err and "'zebra', 'a'" in err


def test_word_level_sample_separates_the_prime_from_the_first_word(word_run, capsys, monkeypatch):
    import rnnkit.cli.sample as sample
    monkeypatch.setattr(sample, "generate", lambda *a, **k: iter(["sat ", "on ", "the ", "mat "]))
    out, _, _ = word_run
    code, stdout, _ = run_cli(capsys, "sample", out, "--prime", "the cat", "--length", "4")
    assert code == 0
    assert stdout.split() == ["the", "cat", "sat", "on", "the", "mat"]
