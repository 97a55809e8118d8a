"""End to end: `rnnkit train seq2seq` → `translate` (beam, attention heatmap) → `eval`; save → load; bad inputs."""
import argparse
import json
import struct
from pathlib import Path

import pytest
import torch

from rnnkit.cli.main import main, make_parser
from rnnkit.data.dates import dates_splits
from rnnkit.data.parallel import SequenceTokenizer, encode_pairs
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.seq2seq import Seq2SeqTask, load_seq2seq, translate
from rnnkit.training import CheckpointError, TrainConfig, Trainer, read_config, save_run

TINY = ["--preset", "tiny", "--quiet", "--threads", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("s2s") / "dates"
    threads = torch.get_num_threads()
    code = main(["train", "seq2seq", "--dataset", "dates", "--dates-train", "300", "--dates-valid", "16", "--level",
                 "char", "--max-steps", "6", "--eval-every", "3", "--out", str(out), *TINY])
    torch.set_num_threads(threads)
    assert code == 0
    return out


def test_train_writes_a_complete_run(dates_run):
    for name in ("model.safetensors", "config.json", "resume.pt", "metrics.jsonl", "options.json", "loss.png"):
        assert (dates_run / name).is_file(), name
    config = read_config(dates_run, task="seq2seq")
    assert config["model"]["attention"] == "bahdanau" and config["src_tokenizer"]["level"] == "char"
    evals = [json.loads(line) for line in (dates_run / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert len(evals) == 2 and {"loss", "bleu", "chrf", "exact"} <= set(evals[0])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_translate_with_beam_and_attention_plot(dates_run, tmp_path, capsys):
    png = tmp_path / "attn.png"
    assert main(["translate", str(dates_run), "march 3 2015", "03/03/15", "--beam", "3", "--max-len", "12",
                 "--attention-plot", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert png.stat().st_size > 5000
    width, height = _png_size(png)
    assert width >= 300 and height >= 200
    from PIL import Image
    with Image.open(png) as im:
        im.verify()


def test_translate_file_n_best_and_eval(dates_run, tmp_path, capsys):
    _, _, test = dates_splits(300, 16, 2000, seed=0)
    src = tmp_path / "test.src"
    tgt = tmp_path / "test.tgt"
    src.write_text("".join(s + "\n" for s, _ in test[:10]), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for _, t in test[:10]), encoding="utf-8")
    assert main(["translate", str(dates_run), "--file", str(src), "--beam", "2", "--n-best", "2", "--scores",
                 "--max-len", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20 and all("\t" in line for line in lines)
    assert main(["eval", str(dates_run), "--src", str(src), "--tgt", str(tgt), "--beam", "2"]) == 0
    out = capsys.readouterr().out
    assert "BLEU" in out and "chrF" in out and "10 sentences" in out


def test_train_from_aligned_files_and_tsv_with_word_and_bpe_levels(tmp_path):
    pairs = [("ein hund läuft .", "a dog runs ."), ("zwei katzen schlafen .", "two cats sleep ."),
             ("ein mann liest .", "a man reads ."), ("eine frau singt .", "a woman sings .")] * 4
    (tmp_path / "t.de").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (tmp_path / "t.en").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    (tmp_path / "t.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    assert main(["train", "seq2seq", "--src", str(tmp_path / "t.de"), "--tgt", str(tmp_path / "t.en"),
                 "--out", str(tmp_path / "w"), "--max-steps", "2", "--attention", "none", "--reverse-source",
                 *TINY]) == 0
    assert main(["train", "seq2seq", "--train", str(tmp_path / "t.tsv"), "--level", "bpe", "--bpe-vocab-size",
                 "60", "--shared-vocab", "--cell", "lstm", "--attention", "luong-dot", "--out",
                 str(tmp_path / "b"), "--max-steps", "2", *TINY]) == 0
    config = read_config(tmp_path / "b")
    assert config["model"]["share_embeddings"] and config["src_tokenizer"] == config["tgt_tokenizer"]
    model, src_tok, tgt_tok, _ = load_seq2seq(tmp_path / "b")           # one shared embedding comes back
    assert model.src_embedding is model.tgt_embedding and src_tok == tgt_tok


def test_save_load_gives_the_same_translation(tmp_path):
    torch.manual_seed(0)
    train, valid, _ = dates_splits(200, 8, 10, seed=1)
    st = SequenceTokenizer.build([s for s, _ in train], level="char")
    tt = SequenceTokenizer.build([t for _, t in train], level="char")
    cfg = Seq2SeqConfig(st.vocab_size, tt.vocab_size, tgt_eos_id=tt.eos_id, embed_size=8, hidden_size=8,
                        attention="luong-general", reverse_source=True)
    model = Seq2Seq(cfg)
    task = Seq2SeqTask(st, tt, encode_pairs(train, st, tt), encode_pairs(valid, st, tt), valid, batch_size=16,
                       model_config=cfg.to_dict(), data={"source": "test"})
    Trainer(model, task, TrainConfig(epochs=1, max_steps=5, device="cpu"), tmp_path / "run", quiet=True).fit()
    sentences = [s for s, _ in valid]
    before = translate(model.eval(), st, tt, sentences, beam=3, with_attention=True)
    loaded, st2, tt2, _ = load_seq2seq(tmp_path / "run")
    after = translate(loaded, st2, tt2, sentences, beam=3, with_attention=True)
    for b, a in zip(before, after):
        assert a[0].text == b[0].text and a[0].ids == b[0].ids
        assert a[0].score == pytest.approx(b[0].score)
        torch.testing.assert_close(a[0].attention, b[0].attention)
        assert a[0].attention.shape == (len(a[0].tgt_symbols), len(a[0].src_symbols))
        torch.testing.assert_close(a[0].attention.sum(1), torch.ones(len(a[0].tgt_symbols)))
        assert a[0].src_symbols[0] == "<eos>"                 # reversed: the encoder read the EOS first


def test_a_checkpoint_of_another_task_is_refused(tmp_path, capsys):
    lm = LanguageModel(LMConfig(vocab_size=5, embed_size=4, hidden_size=4, num_layers=1))
    save_run(tmp_path / "lm", lm, {"task": "lm", "model": lm.config.to_dict()})
    with pytest.raises(CheckpointError, match="this is a 'lm' run, but a 'seq2seq' run is needed"):
        load_seq2seq(tmp_path / "lm")
    assert main(["translate", str(tmp_path / "lm"), "hello"]) == 2
    assert "'lm' run, but a 'seq2seq' run is needed" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "nothing"), "hello"]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_dataset_dates_alone_brings_the_dates_preset(tmp_path, capsys):
    """``--dataset dates`` without ``--preset`` trains as the dates preset does (characters: a word-level model
    cannot write a date it never saw whole); options typed still win; the run's first line names the preset."""
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    code = main(["train", "seq2seq", "--dataset", "dates", "--dates-train", "200", "--dates-valid", "8",
                 "--embed-size", "8", "--max-steps", "2", "--out", str(out), "--quiet"])
    torch.set_num_threads(threads)
    assert code == 0
    options = json.loads((out / "options.json").read_text())
    assert options["preset"] == "dates" and options["level"] == "char" and options["metric"] == "exact"
    assert (options["hidden_size"], options["decoder_hidden_size"]) == (64, 128)          # the preset's
    assert (options["embed_size"], options["dates_train"]) == (8, 200)                    # typed: they win
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("rnnkit: preset dates (named by --dataset dates); seq2seq, "), first
    config = read_config(out, task="seq2seq")
    assert config["src_tokenizer"]["level"] == config["tgt_tokenizer"]["level"] == "char"
    assert config["model"]["tgt_vocab_size"] < 40                                        # characters, not dates
    assert main(["train", "seq2seq", "--dataset", "dates", "--preset", "tiny", "--dates-train", "50",
                 "--dates-valid", "5", "--max-steps", "1", "--out", str(tmp_path / "typed"), "--quiet"]) == 0
    assert json.loads((tmp_path / "typed" / "options.json").read_text())["level"] == "word"   # --preset wins
    assert capsys.readouterr().err.startswith("rnnkit: preset tiny; seq2seq, ")


def test_bad_command_lines_and_files(tmp_path, dates_run, capsys):
    (tmp_path / "a").write_text("x\ny\nz\n", encoding="utf-8")
    (tmp_path / "b").write_text("x\ny\n", encoding="utf-8")
    assert main(["train", "seq2seq", "--src", str(tmp_path / "a"), "--tgt", str(tmp_path / "b"), "--out",
                 str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "has 3 lines" in err and "has 2" in err
    assert main(["train", "seq2seq", "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "no training data" in capsys.readouterr().err
    assert main(["train", "seq2seq", "--dataset", "dates", "--dates-train", "50", "--dates-valid", "5",
                 "--attention", "luong-dot", "--decoder-hidden-size", "7", "--out", str(tmp_path / "r"),
                 *TINY]) == 2
    assert "luong-dot" in capsys.readouterr().err
    assert main(["translate", str(dates_run)]) == 2
    assert "nothing to translate" in capsys.readouterr().err
    assert main(["translate", str(dates_run), "x", "--beam", "2", "--n-best", "3"]) == 2
    assert "--n-best" in capsys.readouterr().err
    assert main(["eval", str(dates_run), "--src", str(tmp_path / "a"), "--tgt", str(tmp_path / "b")]) == 2
    assert "not aligned" in capsys.readouterr().err
    (tmp_path / "c").write_text("march 3 1999\n1 \u03a9 2000\n", encoding="utf-8")   # QA: no line was named
    assert main(["translate", str(dates_run), "--file", str(tmp_path / "c")]) == 2
    assert f"{tmp_path / 'c'}: sentence 2: 1 char(s) not in the " in capsys.readouterr().err


def _subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path", [("train", "seq2seq"), ("translate",)])
def test_every_option_shows_its_default_in_help(path):
    parser = _subparser(make_parser(), *path)
    formatter = parser._get_formatter()
    checked = 0
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings or action.required:
            continue
        assert "(default:" in formatter._expand_help(action), f"{action.option_strings[0]} hides its default"
        checked += 1
    assert checked >= (60 if path[0] == "train" else 8)
    assert "(default: bahdanau)" in " ".join(parser.format_help().split()) or path[0] == "translate"


def _shorter_source_vocabulary(config: dict) -> None:
    inner = config["src_tokenizer"]["inner"]
    key = next(k for k in ("vocab", "symbols", "chars") if k in inner)
    inner[key] = inner[key][:5]


@pytest.mark.parametrize("damage,message", [
    (lambda c: c.update(decoding=None), r'"decoding" must hold a length penalty alpha >= 0, got null'),
    (lambda c: c["decoding"].update(alpha="x"), r'"decoding" must hold a length penalty alpha >= 0'),
    (lambda c: c["model"].update(tgt_eos_id=999), r"the model's tgt_eos_id 999 is not the target tokenizer's end"),
    (lambda c: c["model"].update(dropout=5), r"dropout must be in \[0, 1\), got 5"),
    (lambda c: c["model"].update(hidden_size="16"), r"hidden_size must be int, got '16'"),
    (lambda c: c["model"].update(src_vocab_size=10 ** 12), r"the source tokenizer has [\d,]+ symbols but the model "
                                                           r"1,000,000,000,000"),
    (_shorter_source_vocabulary, r"the source tokenizer has 5 symbols but the model"),
], ids=["no-decoding", "alpha-str", "eos", "dropout", "size-str", "huge-vocab", "short-vocab"])
@pytest.mark.parametrize("command", ["translate", "eval"])
def test_a_damaged_config_is_one_line_naming_it(dates_run, tmp_path, capsys, damage, message, command):
    """Edits to config.json that the model would only trip over later (a traceback, a 64 TB allocation, a
    vocabulary that silently disagrees with the weights) are refused when the run loads."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(dates_run, run)
    config = json.loads((run / "config.json").read_text())
    config.pop("save_id", None)                                  # so the edited file is the one read
    damage(config)
    (run / "config.json").write_text(json.dumps(config))
    src, tgt = tmp_path / "s.txt", tmp_path / "t.txt"
    src.write_text("march 3 2015\n")
    tgt.write_text("03/03/15\n")
    args = ["translate", str(run), "march 3 2015"] if command == "translate" else \
        ["eval", str(run), "--src", str(src), "--tgt", str(tgt)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(run / "config.json") in err
    assert __import__("re").search(message, err), err
