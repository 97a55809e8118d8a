"""The stdlib demo corpus: deterministic, within its cap, split 90/10."""

import time

import pytest

from rnnkit.data import DataError, build_stdlib_corpus, load_named


def test_stdlib_corpus_deterministic_capped_and_split():
    start = time.perf_counter()
    first = build_stdlib_corpus()
    elapsed = time.perf_counter() - start
    second = build_stdlib_corpus()
    assert (first.train, first.valid, first.files) == (second.train, second.valid, second.files)
    total = len(first.train) + len(first.valid)
    assert total <= 2_000_000
    assert total > 1_000_000  # the stdlib has well over 1 MB of source
    assert len(first.train) == int(total * 0.9)
    assert list(first.files) == sorted(first.files)
    assert not any(part in {"test", "tests", "idlelib", "lib2to3", "site-packages"}
                   for f in first.files for part in f.split("/"))
    assert f"{len(first.files)} .py files" in first.description
    assert f"{total:,} characters" in first.description
    assert elapsed < 2.0


def test_stdlib_corpus_small_cap():
    corpus = build_stdlib_corpus(max_chars=10_000)
    assert len(corpus.train) + len(corpus.valid) == 10_000
    assert (len(corpus.train), len(corpus.valid)) == (9_000, 1_000)


def test_selection_rules_on_a_fake_stdlib(tmp_path):
    (tmp_path / "b.py").write_text("bbbb\n")
    (tmp_path / "a.py").write_text("aaaa")  # no final newline: one is added
    (tmp_path / "bad.py").write_bytes(b"x\xff\n")  # not UTF-8: skipped
    (tmp_path / "notes.txt").write_text("not python\n")
    for skipped in ("test", "idlelib", "site-packages"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "z.py").write_text("skip me\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "c.py").write_text("cccc\n")
    corpus = build_stdlib_corpus(max_chars=12, valid_fraction=0.25, root=tmp_path)
    assert corpus.files == ("a.py", "b.py", "pkg/c.py")
    assert corpus.train + corpus.valid == "aaaa\nbbbb\ncc"
    assert corpus.valid == "\ncc"  # last 25% of 12 characters


def test_empty_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no UTF-8 .py files") as err:
        build_stdlib_corpus(root=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_load_named_stdlib():
    train, valid, description = load_named("stdlib")
    assert "standard library" in description
    assert len(valid) * 9 <= len(train) + 9
