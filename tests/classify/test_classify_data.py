"""Labelled text: TSV/CSV/JSONL reading, label sets, text encoders (word, BPE), length buckets; bad inputs."""
import json
from pathlib import Path

import pytest
import torch

from rnnkit.data import (
    PAD,
    UNK,
    BPETokenizer,
    DataError,
    LabelSet,
    TextEncoder,
    WordTokenizer,
    bucket_batches,
    pad,
    read_labelled,
    read_table,
    tokenizer_from_dict,
)

SST2 = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sst2").resolve()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- reading


def test_tsv_sst2_layout_with_bare_quotes_and_trailing_space(tmp_path):
    path = write(tmp_path, "a.tsv", 'sentence\tlabel\nit \'s a "gem" \t1\n\na dull film \t0\n')
    data = read_labelled(path)
    assert data.texts == ['it \'s a "gem"', "a dull film"]
    assert data.labels == ["1", "0"]
    assert data.lines == [2, 4]
    assert data.table.rows[0]["sentence"] == 'it \'s a "gem" '       # kept as read, for predict --file


def test_csv_and_jsonl_with_named_columns_and_string_or_int_labels(tmp_path):
    csv_path = write(tmp_path, "a.csv", 'id,review,stars\n1,"good, very good",pos\n2,bad,neg\n')
    data = read_labelled(csv_path, text_column="review", label_column="stars")
    assert data.texts == ["good, very good", "bad"] and data.labels == ["pos", "neg"]
    jl = write(tmp_path, "a.jsonl", '{"text": "fine", "y": 2}\n\n{"text": "awful", "y": 0}\n')
    data = read_labelled(jl, text_column="text", label_column="y")
    assert data.texts == ["fine", "awful"] and data.labels == ["2", "0"] and data.lines == [1, 3]


def test_plain_lines_are_unlabelled_texts(tmp_path):
    path = write(tmp_path, "a.txt", "first text\n\nsecond text\n")
    data = read_labelled(path, labelled=False)
    assert data.texts == ["first text", "second text"] and data.labels is None and data.lines == [1, 3]
    assert read_table(path).format == "lines"


@pytest.mark.parametrize("name", ["a.txt", "a.data", "a"])
def test_labelled_examples_need_a_table_format(tmp_path, name):
    """A TSV under another extension is read as plain lines, which hold no labels: training and evaluation say
    so in one line (it was a TypeError in training and "no labels" in evaluation)."""
    path = write(tmp_path, name, "sentence\tlabel\ngood\t1\nbad\t0\n")
    with pytest.raises(DataError, match=r"labelled examples come as TSV, CSV or JSONL, told apart by the extension "
                                        r".* is none of them \(rename the file; rnnkit train classify and "
                                        r"predict also take --format tsv\|csv\|jsonl\)"):
        read_labelled(path)
    assert read_labelled(path, fmt="tsv").labels == ["1", "0"]


@pytest.mark.parametrize("name, text, kw, message", [
    ("a.tsv", "text\tlabel\nhello\t1\n", {}, "a.tsv: line 1 (header): no text column 'sentence'; the columns are "
                                              "['text', 'label'] (choose one with --text-column)"),
    ("a.tsv", "sentence\ty\nhello\t1\n", {}, "a.tsv: line 1 (header): no label column 'label'"),
    ("a.tsv", "sentence\tlabel\nhello\t1\n  \t0\n", {}, "a.tsv: line 3: the text ('sentence') is empty"),
    ("a.tsv", "sentence\tlabel\nhello\t1\nbye\t\n", {}, "a.tsv: line 3: no label ('label' is missing or empty)"),
    ("a.tsv", "sentence\tlabel\nhello\t1\textra\n", {}, "a.tsv: line 2: 3 fields, but the header has 2"),
    ("a.tsv", "sentence\tlabel\n", {}, "a.tsv: no examples"),
    ("a.jsonl", '{"sentence": "a", "label": 1}\n[1, 2]\n', {}, "a.jsonl: line 2: expected a JSON object"),
    ("a.jsonl", '{"sentence": "a", "label": 1}\n{"sentence": \n', {}, "a.jsonl: line 2: not valid JSON"),
    ("a.jsonl", '{"sentence": "a", "label": 1}\n{"label": 0}\n', {}, "a.jsonl: line 2: no 'sentence' field"),
    ("a.jsonl", '{"sentence": "a", "label": 1}\n{"sentence": 5, "label": 0}\n', {},
     "a.jsonl: line 2: the text ('sentence') is not a string (int)"),
])
def test_bad_rows_name_the_file_and_line(tmp_path, name, text, kw, message):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as err:
        read_labelled(path, **kw)
    assert str(err.value).startswith(str(tmp_path / message.split(":")[0]) + ":")
    assert message.split(":", 1)[1].strip() in str(err.value)


def test_missing_file_and_bad_utf8(tmp_path):
    with pytest.raises(DataError, match="nope.tsv: no such file"):
        read_labelled(tmp_path / "nope.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"sentence\tlabel\n\xff\t1\n")
    with pytest.raises(DataError, match="bad.tsv: not valid UTF-8"):
        read_labelled(bad)


# ------------------------------------------------------------------------------------------- labels


def test_label_set_orders_numbers_numerically_and_rejects_one_class(tmp_path):
    assert LabelSet.from_labels(["10", "2", "1", "2"]).names == ["1", "2", "10"]
    assert LabelSet.from_labels(["pos", "neg", "neu"]).names == ["neg", "neu", "pos"]
    with pytest.raises(DataError, match=r"t.tsv: only one class: every example has the label '1'"):
        LabelSet.from_labels(["1", "1"], "t.tsv")


def test_unknown_label_names_file_and_line(tmp_path):
    labels = LabelSet(["0", "1"])
    path = write(tmp_path, "e.tsv", "sentence\tlabel\nok\t1\nhm\t2\n")
    with pytest.raises(DataError) as err:
        labels.encode(read_labelled(path))
    assert str(err.value) == f"{path}: line 3: unknown label '2'; the model knows '0', '1'"
    assert labels.encode(read_labelled(write(tmp_path, "f.tsv", "sentence\tlabel\nok\t1\nno\t0\n"))) == [1, 0]


# ------------------------------------------------------------------------------------------- encoders


def test_word_encoder_lowercases_has_pad_and_no_eos():
    enc = TextEncoder.build(["The cat sat", "the dog"], "word", lowercase=True)
    assert enc.tokenizer.vocab[:3] == ("<eos>", UNK, PAD)
    assert enc.pad_id == 2 and enc.unk_id == 1
    assert enc.pieces("THE cat flew") == ["the", "cat", UNK]
    again = TextEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again == enc and again.encode("The dog") == enc.encode("the dog")
    assert TextEncoder.build(["a a b c"], "word", min_freq=2).pieces("a b") == ["a", UNK]
    with pytest.raises(DataError, match="has no tokens"):
        enc.encode_all(["fine", "   "], "x.tsv", [2, 3])


def test_bpe_tokenizer_learns_pieces_and_round_trips_through_a_dict():
    text = "\n".join(["lower lowest newer newest wider widest"] * 20 + ["slow slower slowest"] * 5)
    tok = BPETokenizer.build(text, vocab_size=60, min_freq=2)
    assert tok.vocab[:3] == (PAD, UNK, "<eos>") and tok.vocab_size <= 60
    ids = tok.encode("slowest newer")
    assert tok.decode(ids) == "slowest newer"
    assert tok.symbols("newerwidest")[1:] and all(s.startswith("##") for s in tok.symbols("newerwidest")[1:])
    assert UNK in tok.symbols("zebra")                                       # unseen characters
    d = json.loads(json.dumps(tok.to_dict()))
    assert d["type"] == "bpe" and isinstance(d["tokenizer_json"], dict)
    again = tokenizer_from_dict(d)
    assert isinstance(again, BPETokenizer) and again == tok and again.encode("slowest newer") == ids
    assert tok.encode_batch(["slowest newer", "lower"]) == [ids, tok.encode("lower")]
    with pytest.raises(DataError, match="bpe 'vocab' does not match"):
        tokenizer_from_dict({**d, "vocab": d["vocab"][::-1]})


def test_bpe_encoder_has_pad_and_lowercases():
    enc = TextEncoder.build(["Good film", "bad film", "good good"] * 5, "bpe", lowercase=True, vocab_size=40)
    assert enc.pad_id == 0 and enc.tokenizer.kind == "bpe"
    assert enc.encode("GOOD Film") == enc.encode("good film")
    assert TextEncoder.from_dict(enc.to_dict()) == enc


def test_word_tokenizer_registry_still_works():
    tok = WordTokenizer.build("a b a")
    assert tokenizer_from_dict(tok.to_dict()) == tok
    with pytest.raises(DataError, match=r"expected one of \['bpe', 'char', 'word'\]"):
        tokenizer_from_dict({"type": "nope"})


# ------------------------------------------------------------------------------------------- batching


def test_buckets_cover_every_example_once_and_limit_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 40, (1000,), generator=g).tolist()
    for shuffle in (False, True):
        batches = bucket_batches(lengths, 32, shuffle=shuffle, seed=1)
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(1000)) and max(len(b) for b in batches) == 32
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        assert padded < 1.1 * sum(lengths)                 # random batches would pad ~1.9x
    a = bucket_batches(lengths, 32, shuffle=True, seed=5, epoch=2)
    assert a == bucket_batches(lengths, 32, shuffle=True, seed=5, epoch=2)
    assert a != bucket_batches(lengths, 32, shuffle=True, seed=5, epoch=3)


def test_bucket_batches_token_cap_and_errors():
    lengths = [5, 1, 3, 3, 2, 8, 4, 1]
    batches = bucket_batches(lengths, 3, max_tokens=9)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(len(b) <= 3 and len(b) * max(lengths[i] for i in b) <= 9 for b in batches if len(b) > 1)
    assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)      # shortest first
    assert bucket_batches([], 4) == []
    with pytest.raises(DataError, match="batch size must be at least 1"):
        bucket_batches(lengths, 0)


def test_pad_both_layouts():
    tokens, lengths = pad([[5, 6, 7], [8]], 2, batch_first=True)
    assert tokens.tolist() == [[5, 6, 7], [8, 2, 2]] and lengths.tolist() == [3, 1]
    assert pad([[5, 6, 7], [8]], 2)[0].tolist() == [[5, 8], [6, 2], [7, 2]]
    with pytest.raises(ValueError, match="at least one token"):
        pad([[5], []], 2)


# ------------------------------------------------------------------------------------------- real data


def test_sst2_files_read_as_documented():
    if not SST2.is_dir():
        pytest.skip(f"shared SST-2 folder {SST2} not present (real-data test)")
    train, valid = read_labelled(SST2 / "train.tsv"), read_labelled(SST2 / "valid.tsv")
    assert (len(train), len(valid)) == (63_938, 3_411)
    assert LabelSet.from_labels(train.labels).names == ["0", "1"]
    assert sum(label == "1" for label in valid.labels) == 1_881
