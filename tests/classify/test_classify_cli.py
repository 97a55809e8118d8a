"""`rnnkit train classify`, `predict` and `eval` end to end on tiny files in a temporary folder."""
import json

import pytest
import torch

from rnnkit.cli.main import main, make_parser
from rnnkit.data import read_labelled
from rnnkit.tasks.classification import load_classifier

from classify_texts import NEG, POS, write_tsv

TINY = ["--preset", "tiny", "--engine", "python", "--quiet", "--threads", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rows = [(t, "pos") for t in POS] + [(t, "neg") for t in NEG]
    return {"dir": d, "train": write_tsv(d / "train.tsv", rows * 2),
            "valid": write_tsv(d / "valid.tsv", [("good film", "pos"), ("bad film", "neg"), ("so good", "pos")])}


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "clf"
    code = main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]),
                 "--out", str(out), *TINY, "--pooling", "attention", "--epochs", "6", "--lr", "0.02"])
    assert code == 0
    return out


def test_train_writes_a_complete_run(run):
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "loss.png", "confusion.png", "options.json",
                 "resume.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "classify" and config["labels"] == ["neg", "pos"]
    assert config["model"]["pooling"] == "attention" and config["model"]["bidirectional"] is True
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert evals and {"accuracy", "macro_f1", "loss"} <= set(evals[-1])
    assert (run / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_save_load_gives_the_same_predictions(run, files):
    clf = load_classifier(run)
    data = read_labelled(files["train"])
    probs, _ = clf.predict(data.texts)
    again, _ = load_classifier(run).predict(data.texts[::-1], batch_size=3)
    torch.testing.assert_close(again, probs.flip(0))
    assert clf.labels.names == ["neg", "pos"]
    # the model learnt the cue word
    assert [clf.labels.names[int(i)] for i in probs.argmax(1)] == data.labels


def test_predict_text_prints_label_and_probabilities(run, capsys):
    assert main(["predict", str(run), "so good"]) == 0
    line = capsys.readouterr().out.strip()
    label, p_neg, p_pos = line.split("\t")
    assert label == "pos" and p_neg.startswith("p(neg)=") and p_pos.startswith("p(pos)=")
    assert float(p_neg[7:]) + float(p_pos[7:]) == pytest.approx(1, abs=2e-4)
    assert main(["predict", str(run), "a good film", "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    weights = [float(x.split()[0]) for x in lines[1:]]
    assert [x.split()[-1] for x in lines[1:]] == ["a", "good", "film"]
    assert sum(weights) == pytest.approx(1, abs=2e-3)


def test_predict_on_a_tsv_adds_columns(run, files, tmp_path, capsys):
    src = write_tsv(tmp_path / "new.tsv", [("so good", "x"), ("so bad", "y")], header="sentence\tid")
    assert main(["predict", str(run), "--file", str(src)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "sentence\tid\tprediction\tp_neg\tp_pos"
    assert out[1].startswith("so good \tx\tpos\t") and out[2].startswith("so bad \ty\tneg\t")
    dest = tmp_path / "pred.tsv"
    assert main(["predict", str(run), "--file", str(src), "--out", str(dest)]) == 0
    assert dest.read_text().splitlines() == out


def test_predict_on_a_text_file_one_line_each(run, tmp_path, capsys):
    src = tmp_path / "texts.txt"
    src.write_text("so good\ntruly bad\n")
    assert main(["predict", str(run), "--file", str(src)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == ["pos", "neg"]
    assert out[1].endswith("\ttruly bad")


def test_predict_writes_the_format_out_names(run, files, tmp_path, capsys):
    """--out's extension picks the output's format (a TSV read, CSV or JSONL written); without one, the input's."""
    import csv
    src = write_tsv(tmp_path / "new.tsv", [("so good", "x"), ("so bad", "y")], header="sentence\tid")
    assert main(["predict", str(run), "--file", str(src)]) == 0
    as_tsv = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(run), "--file", str(src), "--out", str(tmp_path / "p.csv")]) == 0
    assert list(csv.reader((tmp_path / "p.csv").open(newline=""))) == as_tsv
    assert main(["predict", str(run), "--file", str(src), "--out", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [(r["sentence"], r["id"], r["prediction"]) for r in rows] == [(t[0], t[1], t[2]) for t in as_tsv[1:]]
    assert [f"{r['p_pos']:.4f}" for r in rows] == [t[4] for t in as_tsv[1:]]
    assert main(["predict", str(run), "--file", str(src), "--out", str(tmp_path / "p.txt")]) == 0
    assert [line.split("\t") for line in (tmp_path / "p.txt").read_text().splitlines()] == as_tsv
    texts = tmp_path / "texts.txt"                     # a plain text file becomes a table with a text column
    texts.write_text("so good\ntruly bad\n")
    assert main(["predict", str(run), "--file", str(texts), "--out", str(tmp_path / "t.tsv")]) == 0
    lines = (tmp_path / "t.tsv").read_text().splitlines()
    assert lines[0] == "text\tprediction\tp_neg\tp_pos" and lines[2].startswith("truly bad\tneg\t")


def test_predict_refuses_a_tsv_out_that_cannot_hold_a_field(run, tmp_path, capsys):
    src = tmp_path / "new.csv"
    src.write_text('sentence,id\n"so good\nreally",1\n')
    dest = tmp_path / "p.tsv"
    assert main(["predict", str(run), "--file", str(src), "--out", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"rnnkit: error: {dest}: row 1 ({src}, line 2) holds a tab or a line break, which a TSV "
                           f"file can't hold; write .csv or .jsonl instead")
    assert not dest.exists()


def test_eval_numbers_equal_a_hand_count(run, files, tmp_path, capsys):
    rows = [("good film", "pos"), ("bad film", "neg"), ("so good", "neg"), ("truly bad", "neg"), ("good", "pos")]
    path = write_tsv(tmp_path / "test.tsv", rows)
    clf = load_classifier(run)
    counts = torch.zeros(2, 2, dtype=torch.long)
    for text, label in rows:                               # one sentence at a time, no batching
        ids = torch.tensor([clf.encoder.encode(text)])
        pred = int(clf.model(ids, torch.tensor([ids.shape[1]])).argmax())
        counts[clf.labels.names.index(label), pred] += 1
    accuracy = counts.diag().sum().item() / len(rows)
    assert main(["eval", str(run), "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"5 examples, accuracy {accuracy:.4f}" in out
    table = [line.split() for line in out.splitlines()[-2:]]
    assert table == [["neg", *map(str, counts[0].tolist())], ["pos", *map(str, counts[1].tolist())]]
    f1 = [2 * counts[k, k].item() / (counts[k].sum() + counts[:, k].sum()).item() for k in range(2)]
    assert f"macro-F1 {sum(f1) / 2:.4f}" in out


def error_of(argv, capsys):
    assert main(argv) == 2
    return capsys.readouterr().err.strip()


def test_bad_inputs_and_their_messages(run, files, tmp_path, capsys):
    bad_label = write_tsv(tmp_path / "bad.tsv", [("good", "pos"), ("meh", "neutral")])
    assert error_of(["eval", str(run), "--data", str(bad_label)], capsys) == (
        f"rnnkit: error: {bad_label}: line 3: unknown label 'neutral'; the model knows 'neg', 'pos'")
    no_col = write_tsv(tmp_path / "nocol.tsv", [("good", "pos")], header="text\tlabel")
    assert f"{no_col}: line 1 (header): no text column 'sentence'" in error_of(
        ["eval", str(run), "--data", str(no_col)], capsys)
    empty = write_tsv(tmp_path / "empty.tsv", [("good", "pos"), ("", "neg")])
    assert error_of(["train", "classify", "--train", str(empty), "--valid", str(files["valid"]),
                     "--out", str(tmp_path / "r"), *TINY], capsys) == (
        f"rnnkit: error: {empty}: line 3: the text ('sentence') is empty")
    one = write_tsv(tmp_path / "one.tsv", [("good", "pos"), ("fine", "pos")])
    assert "only one class: every example has the label 'pos'" in error_of(
        ["train", "classify", "--train", str(one), "--out", str(tmp_path / "r"), *TINY], capsys)
    assert error_of(["predict", str(run)], capsys) == (
        "rnnkit: error: command line: nothing to classify: give a text or --file FILE")


def test_predict_on_a_language_model_run_is_a_clear_error(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 40)
    lm = tmp_path / "lm"
    assert main(["train", "lm", "--train", str(text), "--out", str(lm), "--level", "char", "--hidden-size", "8",
                 "--embed-size", "8", "--layers", "1", "--batch-size", "2", "--bptt", "8", "--max-steps", "2",
                 "--engine", "python", "--quiet"]) == 0
    capsys.readouterr()
    msg = error_of(["predict", str(lm), "hello"], capsys)
    assert msg.startswith(f"rnnkit: error: {lm}: this is a 'lm' run, not a classifier")
    assert "rnnkit sample" in msg


def test_explain_needs_attention_pooling(files, tmp_path, capsys):
    out = tmp_path / "maxrun"
    assert main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]),
                 "--out", str(out), *TINY, "--max-steps", "1", "--pooling", "max"]) == 0
    assert "--explain shows attention weights, but this model uses 'max' pooling" in error_of(
        ["predict", str(out), "good", "--explain"], capsys)


def test_every_option_help_shows_its_default():
    parser = make_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    train = next(a for a in commands["train"]._actions if a.dest == "task").choices["classify"]
    for p in (train, commands["predict"]):
        for action in p._actions:
            if action.option_strings and action.dest != "help" and not action.required:
                assert "(default: " in action.help, (p.prog, action.option_strings)


def test_bpe_jsonl_run_predicts_jsonl_and_resumes(tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    rows = [{"review": t, "stars": 5} for t in POS] + [{"review": t, "stars": 1} for t in NEG]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows * 2))
    out = tmp_path / "bpe"
    common = ["train", "classify", "--train", str(train), "--text-column", "review", "--label-column", "stars",
              "--tokenizer", "bpe", "--bpe-vocab-size", "60", "--out", str(out), *TINY]
    assert main([*common, "--max-steps", "2"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["encoder"]["tokenizer"]["type"] == "bpe" and config["labels"] == ["1", "5"]
    assert config["data"]["valid"].startswith("every 10th example of")
    assert main([*common, "--max-steps", "3", "--resume"]) == 0
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert evals[0]["step"] == 2 and evals[-1]["step"] == 3
    capsys.readouterr()
    new = tmp_path / "new.jsonl"
    new.write_text('{"review": "so good", "id": 7}\n')
    assert main(["predict", str(out), "--file", str(new)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["review"] == "so good" and row["id"] == 7 and row["prediction"] in ("1", "5")
    assert row["p_1"] + row["p_5"] == pytest.approx(1, abs=1e-5)
    labelled = tmp_path / "labelled.jsonl"            # integer labels: integer predictions, comparable (QA)
    labelled.write_text('{"review": "so good", "stars": 5}\n{"review": "so bad", "stars": 1}\n')
    assert main(["predict", str(out), "--file", str(labelled)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(isinstance(r["stars"], int) and r["prediction"] in (1, 5) for r in rows)


def test_texts_may_follow_options(files, tmp_path, capsys):
    """``predict RUN --explain "text"``: argparse alone would reject the text after the option."""
    from rnnkit.cli.main import parse
    args = parse(["predict", "runs/x", "--explain", "a good film", "--batch-size", "8", "bad"])
    assert args.text == ["a good film", "bad"] and args.explain and args.batch_size == 8
    with pytest.raises(SystemExit):
        parse(["predict", "runs/x", "--no-such-option"])
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_train_with_every_regulariser_and_reload(files, tmp_path):
    """The layer's regularisers from the command line (the compiled loop where it builds, else the Python loop):
    saved in the run's config, layer norm's gains among the weights, and evaluation deterministic after reload."""
    out = tmp_path / "reg"
    code = main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]), "--out",
                 str(out), *TINY, "--engine", "auto", "--epochs", "6", "--lr", "0.02", "--weight-drop", "0.2",
                 "--recurrent-dropout", "0.1", "--zoneout", "0.1", "--layer-norm"])
    assert code == 0
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["weight_drop"], model["recurrent_dropout"], model["zoneout"], model["layer_norm"]) == \
        (0.2, 0.1, 0.1, True)
    clf = load_classifier(out)
    names = {name for name, _ in clf.model.named_parameters()}
    assert any("ln_hh_weight_l0" in n for n in names) and any("ln_c_weight_l0" in n for n in names)
    data = read_labelled(files["train"])
    probs, _ = clf.predict(data.texts)
    torch.testing.assert_close(load_classifier(out).predict(data.texts)[0], probs, rtol=0, atol=0)
    assert [clf.labels.names[int(i)] for i in probs.argmax(1)] == data.labels


@pytest.mark.parametrize("typed,saved", [(["--patience", "0"], None), (["--patience", "none"], None),
                                         (["--patience", "2"], 2), ([], 3)], ids=["zero", "none", "two", "default"])
def test_a_typed_none_wins_over_the_commands_default_and_the_preset(files, tmp_path, typed, saved):
    """--patience 0 / none means no early stopping: typed, it must win over train classify's default of 3 (it
    parsed to None, which read as "not typed")."""
    out = tmp_path / "run"
    assert main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]), "--out",
                 str(out), "--quiet", "--threads", "1", "--max-steps", "1", "--embed-size", "8", "--hidden-size", "8",
                 *typed]) == 0
    assert json.loads((out / "options.json").read_text())["patience"] == saved


def test_labelled_files_need_a_table_extension(files, tmp_path, capsys):
    txt = tmp_path / "train.txt"
    txt.write_text(files["train"].read_text())
    assert main(["train", "classify", "--train", str(txt), "--valid", str(files["valid"]), "--out",
                 str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rnnkit: error: {txt}: labelled examples come as TSV, CSV or JSONL, told apart by the extension "
                   f"(.tsv, .csv, .jsonl); '.txt' is none of them (rename the file; rnnkit train classify and "
                   f"predict also take --format tsv|csv|jsonl)")
    assert not (tmp_path / "run").exists()


def test_resume_keeps_the_runs_vocabulary_and_labels(files, tmp_path, capsys):
    """--resume encodes the data with the run's own vocabulary, as its weights are kept (a BPE vocabulary learnt
    again from the same text may number its pieces otherwise; other files would remap every word); a label the
    run doesn't know is refused naming it."""
    out = tmp_path / "run"
    assert main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]),
                 "--out", str(out), *TINY, "--max-steps", "2"]) == 0
    encoder = json.loads((out / "config.json").read_text())["encoder"]
    other = write_tsv(tmp_path / "other.tsv", [("a fine movie", "pos"), ("an awful movie", "neg")] * 4)
    assert main(["train", "classify", "--out", str(out), "--resume", "--train", str(other), "--max-steps", "4"]) == 0
    assert json.loads((out / "config.json").read_text())["encoder"] == encoder
    odd = write_tsv(tmp_path / "odd.tsv", [("a fine movie", "pos"), ("so so", "meh")] * 4)
    capsys.readouterr()
    assert main(["train", "classify", "--out", str(out), "--resume", "--train", str(odd), "--max-steps", "6"]) == 2
    assert "unknown label 'meh'; the model knows 'neg', 'pos'" in capsys.readouterr().err
