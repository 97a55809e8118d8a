"""Char and word tokenizers: round trips, vocabulary rules, unknowns, serialisation."""

import json

import pytest
import torch

from rnnkit.data import (
    EOS,
    UNK,
    CharTokenizer,
    DataError,
    WordTokenizer,
    read_text,
    tokenizer_from_dict,
)


def test_char_vocab_is_sorted_set_and_round_trips():
    tok = CharTokenizer.build("hello world\n")
    assert tok.vocab == ("\n", " ", "d", "e", "h", "l", "o", "r", "w")
    assert tok.vocab_size == 9
    ids = tok.encode("hello\n")
    assert ids == [4, 3, 5, 5, 6, 0]
    assert tok.decode(ids) == "hello\n"
    assert tok.decode(torch.tensor(ids)) == "hello\n"


def test_char_unknown_always_raises_listing_symbols():
    tok = CharTokenizer.build("abc")
    assert tok.unknown("abxcyx") == ["x", "y"]
    assert tok.unknown("cab") == []
    for strict in (True, False):  # no fallback symbol at char level
        with pytest.raises(DataError) as err:
            tok.encode("abxcyx", strict=strict, source="valid.txt")
        msg = str(err.value)
        assert msg.startswith("valid.txt: 2 char(s) not in the 3-symbol vocabulary")
        assert "'x', 'y'" in msg


def test_word_eos_and_newline_round_trip():
    text = "the cat sat\nthe dog\n"
    tok = WordTokenizer.build(text)
    # <eos>, <unk>, then by frequency (the: 2), ties alphabetical
    assert tok.vocab == (EOS, UNK, "the", "cat", "dog", "sat")
    ids = tok.encode(text)
    assert ids == [2, 3, 5, 0, 2, 4, 0]
    assert tok.decode(ids) == text
    assert (tok.eos_id, tok.unk_id) == (0, 1)
    # a last line without newline still ends with <eos>; blank lines give a lone <eos>
    assert tok.encode("the\n\ncat") == [2, 0, 0, 3, 0]
    assert tok.decode([2, 0, 0, 3, 0]) == "the\n\ncat\n"
    # extra whitespace is normalised (PTB lines start with a space)
    assert tok.decode(tok.encode(" the  cat \n")) == "the cat\n"
    assert tok.decode([3, 4]) == "cat dog"


def test_word_min_freq_and_max_vocab():
    text = "a a a a b b b c c d\ne e e\n"  # a:4 b:3 e:3 c:2 d:1
    assert WordTokenizer.build(text).vocab == (EOS, UNK, "a", "b", "e", "c", "d")
    assert WordTokenizer.build(text, min_freq=2).vocab == (EOS, UNK, "a", "b", "e", "c")
    assert WordTokenizer.build(text, min_freq=3).vocab == (EOS, UNK, "a", "b", "e")
    # max_vocab caps the whole vocabulary (specials included); tie b/e broken alphabetically
    tok = WordTokenizer.build(text, max_vocab=4)
    assert tok.vocab == (EOS, UNK, "a", "b")
    assert tok.encode("a e d\n") == [2, 1, 1, 0]
    with pytest.raises(DataError, match="max_vocab"):
        WordTokenizer.build(text, max_vocab=1)
    with pytest.raises(DataError, match="min_freq"):
        WordTokenizer.build(text, min_freq=0)


def test_word_unknown_lists_words_even_with_unk_fallback():
    tok = WordTokenizer.build("a b <unk>\n")
    assert tok.unknown("a zz b yy zz\n") == ["zz", "yy"]
    assert tok.unknown("a <unk> b\n") == []  # literal <unk> is in the vocabulary
    assert tok.encode("a zz\n") == [tok.vocab.index("a"), tok.unk_id, tok.eos_id]
    with pytest.raises(DataError) as err:
        tok.encode("a zz b yy zz\n", strict=True, source="test.txt")
    assert str(err.value) == (
        "test.txt: 2 word(s) not in the 4-symbol vocabulary: 'zz', 'yy'"
    )


def test_decode_rejects_out_of_range_ids():
    tok = CharTokenizer.build("ab")
    with pytest.raises(DataError, match="id 5 out of range"):
        tok.decode([0, 5])
    with pytest.raises(DataError, match="id -1 out of range"):
        tok.decode([-1])


@pytest.mark.parametrize(
    "tok", [CharTokenizer.build("héllo\n"), WordTokenizer.build("x y y\nz\n", min_freq=1)]
)
def test_to_dict_round_trip_through_json(tok):
    d = json.loads(json.dumps(tok.to_dict()))
    back = tokenizer_from_dict(d)
    assert type(back) is type(tok)
    assert back == tok
    assert back.to_dict() == tok.to_dict()
    assert type(tok).from_dict(d) == tok


def test_from_dict_errors_name_the_source():
    with pytest.raises(DataError, match=r"^config.json: unknown tokenizer type 'nope'"):
        tokenizer_from_dict({"type": "nope"}, source="config.json")
    with pytest.raises(DataError, match="lacks the special token"):
        tokenizer_from_dict({"type": "word", "vocab": ["a"]})
    with pytest.raises(DataError, match="list of strings"):
        tokenizer_from_dict({"type": "char", "vocab": "abc"})


def test_ptb_word_vocabulary_and_counts(ptb_dir):
    train = read_text(ptb_dir / "ptb.train.txt")
    valid = read_text(ptb_dir / "ptb.valid.txt")
    tok = WordTokenizer.build(train)
    assert tok.vocab_size == 10_000
    assert len(tok.encode(train, strict=True)) == 929_589
    assert len(tok.encode(valid, strict=True)) == 73_760
    assert tok.unknown(valid) == []
    assert WordTokenizer.build(train, max_vocab=10_000) == tok
