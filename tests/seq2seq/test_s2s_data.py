"""Parallel text: reading, its bad inputs and their messages, per-side tokenizers, bucketing, the dates task."""
import datetime as dt
from pathlib import Path

import pytest

from rnnkit.data import DataError
from rnnkit.data.dates import FORMATS, dates_splits, format_date, generate_dates
from rnnkit.data.buckets import bucket_batches
from rnnkit.data.parallel import (SequenceTokenizer, collate, detokenize, encode_pairs,
                                  filter_by_length, pretokenize, read_parallel, read_tsv)

MULTI30K = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "multi30k").resolve()


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_aligned_files_and_tsv_give_the_same_pairs(tmp_path):
    src = write(tmp_path / "a.de", "ein Hund .\nzwei Katzen\n")
    tgt = write(tmp_path / "a.en", "a dog .\ntwo cats\n")
    tsv = write(tmp_path / "a.tsv", "ein Hund .\ta dog .\nzwei Katzen\ttwo cats\n")
    assert read_parallel(src, tgt) == read_tsv(tsv) == [("ein Hund .", "a dog ."), ("zwei Katzen", "two cats")]


def test_misaligned_files_name_both_line_counts(tmp_path):
    src = write(tmp_path / "s.txt", "a\nb\nc\n")
    tgt = write(tmp_path / "t.txt", "x\ny\n")
    with pytest.raises(DataError) as e:
        read_parallel(src, tgt)
    msg = str(e.value)
    assert "not aligned" in msg and "has 3 lines" in msg and "has 2" in msg
    assert "s.txt" in msg and "t.txt" in msg


def test_empty_line_pairs_are_reported_with_their_line_numbers(tmp_path):
    src = write(tmp_path / "s.txt", "a\n\nc\nd\n")
    tgt = write(tmp_path / "t.txt", "x\ny\n  \nw\n")
    with pytest.raises(DataError, match=r"2 empty line pair\(s\).*line\(s\) 2, 3"):
        read_parallel(src, tgt)
    with pytest.raises(DataError, match=r"1 empty line pair\(s\).*line\(s\) 2"):
        read_tsv(write(tmp_path / "p.tsv", "a\tb\n\tc\n"))


def test_tsv_lines_need_exactly_one_tab(tmp_path):
    with pytest.raises(DataError, match=r"2 line\(s\) without exactly one tab.*line\(s\) 2, 3"):
        read_tsv(write(tmp_path / "p.tsv", "a\tb\nno tab here\nx\ty\tz\n"))
    with pytest.raises(DataError, match="no such file"):
        read_parallel(tmp_path / "missing.de", tmp_path / "p.tsv")


def test_word_pretokenization_and_detokenization():
    text = 'Two young, White males are outside (near) many "big" bushes.'
    words = pretokenize(text, lowercase=True)
    assert words[:4] == ["two", "young", ",", "white"] and words[-2:] == ["bushes", "."]
    assert detokenize(pretokenize(text)) == text
    assert pretokenize("a man's t-shirt") == ["a", "man's", "t-shirt"]


@pytest.mark.parametrize("level", ["word", "char", "bpe"])
def test_sequence_tokenizers_round_trip_and_end_with_eos(level):
    lines = ["A dog runs.", "Two dogs run, fast.", "A cat sleeps."] * 3
    tok = SequenceTokenizer.build(lines, level=level, lowercase=True, bpe_vocab_size=60)
    ids = tok.encode("A dog runs, fast.")
    assert ids[-1] == tok.eos_id and tok.eos_id not in ids[:-1]
    assert tok.decode(ids) == "a dog runs, fast."
    assert tok.decode(ids + [3, 4]) == "a dog runs, fast."            # stops at the first EOS
    assert tok.symbols(ids)[-1] in ("<eos>", "\n")
    again = SequenceTokenizer.from_dict(tok.to_dict())
    assert again == tok and again.encode("a cat runs.") == tok.encode("a cat runs.")


def test_word_level_unknowns_and_char_level_errors():
    word = SequenceTokenizer.build(["a b", "a c"], level="word", min_freq=2)
    assert word.decode(word.encode("a b zebra")) == "a <unk> <unk>"
    char = SequenceTokenizer.build(["abc"], level="char")
    with pytest.raises(DataError, match=r"'z'"):
        char.encode("abz", source="input")
    with pytest.raises(DataError, match="not a saved sequence tokenizer"):
        SequenceTokenizer.from_dict({"level": "words"})


def test_length_filter_collate_and_buckets():
    pairs = [("a b c", "x"), ("a", "x y z w"), ("b c", "y z"), ("c", "z")] * 5
    tok = SequenceTokenizer.build([p for pair in pairs for p in pair], level="word")
    encoded = encode_pairs(pairs, tok, tok)
    keep, dropped = filter_by_length(encoded, max_src_len=3, max_tgt_len=4)
    assert dropped == 10 and all(len(encoded[i][0]) <= 3 and len(encoded[i][1]) <= 4 for i in keep)

    batch = collate(encoded, [0, 1], tok.eos_id)
    assert batch.src.shape == (4, 2) and batch.src_lengths.tolist() == [4, 2]
    assert batch.tgt_in[0].tolist() == [tok.eos_id, tok.eos_id]                 # EOS serves as BOS
    assert batch.tgt_out[:, 0].tolist() == [tok.encode("x")[0], tok.eos_id, -100, -100, -100]
    assert batch.tgt_in[1:, 1].tolist() == batch.tgt_out[:-1, 1].tolist()        # shifted by one
    assert batch.tokens == 2 + 5

    lengths = [(len(s), len(t)) for s, t in encoded]
    batches = bucket_batches(lengths, 4, shuffle=True, seed=1, epoch=1)
    assert sorted(i for b in batches for i in b) == list(range(len(pairs)))
    assert bucket_batches(lengths, 4, shuffle=True, seed=1, epoch=1) == batches  # the same for (seed, epoch)
    assert bucket_batches(lengths, 4, shuffle=True, seed=1, epoch=2) != batches
    for b in batches:                                                            # similar lengths together
        assert max(lengths[i][0] for i in b) - min(lengths[i][0] for i in b) <= 1
    capped = bucket_batches(lengths, 50, shuffle=False, max_tokens=24)
    assert all(len(b) * max(sum(lengths[i]) for i in b) <= 24 for b in capped)
    with pytest.raises(DataError, match="batch size"):
        bucket_batches(lengths, 0)


def test_dates_are_deterministic_correct_and_disjoint():
    assert generate_dates(50, seed=3) == generate_dates(50, seed=3)
    assert generate_dates(50, seed=3) != generate_dates(50, seed=4)
    day = dt.date(2015, 3, 3)
    assert format_date(day, FORMATS[0]) == "Tuesday, 3rd of March 2015"
    assert format_date(day, FORMATS[1]) == "03/03/15"
    assert format_date(day, FORMATS[2]) == "march 3 2015"
    assert format_date(dt.date(1999, 4, 11), "{th} {Mon}") == "11th Apr"
    for human, iso in generate_dates(300, seed=0):
        date = dt.date.fromisoformat(iso)
        assert dt.date(1950, 1, 1) <= date <= dt.date(2049, 12, 31)
        assert any(format_date(date, f) == human for f in FORMATS)
    assert format_date(dt.date(2049, 12, 31), "{Dy} {DAY} {yy}") == "Fri FRIDAY 49"       # weekdays from the date
    train, valid, test = dates_splits(500, 50, 100, seed=0)
    assert (len(train), len(valid), len(test)) == (500, 50, 100)
    sources = [set(s for s, _ in split) for split in (train, valid, test)]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    assert dates_splits(900, 10, 100, seed=0)[2] == test                       # the test set does not move


def test_multi30k_reads_aligned():
    if not (MULTI30K / "val.de").is_file():
        pytest.skip(f"{MULTI30K} not present (real-data test)")
    pairs = read_parallel(MULTI30K / "val.de", MULTI30K / "val.en")
    assert len(pairs) == 1014 and all(s and t for s, t in pairs)
