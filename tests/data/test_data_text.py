"""read_text / decode_text / holdout_tail: errors name the file and the problem."""

import pytest

from rnnkit.data import DataError, holdout_tail, read_text


def test_reads_utf8(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_bytes("héllo\nwörld\n".encode("utf-8"))
    assert read_text(path) == "héllo\nwörld\n"


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"abc\xff")
    with pytest.raises(DataError) as err:
        read_text(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "byte offset 3" in msg
    assert "UTF-8" in msg
    assert err.value.source == str(path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match="empty") as err:
        read_text(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="no such file") as err:
        read_text(path)
    assert str(path) in str(err.value)


def test_directory(tmp_path):
    with pytest.raises(DataError, match="directory"):
        read_text(tmp_path)


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)
    assert str(DataError("bad", "f.txt")) == "f.txt: bad"
    assert str(DataError("bad")) == "bad"


def test_holdout_tail_is_nanogpt_split():
    text = "0123456789" * 3  # 30 chars
    train, valid = holdout_tail(text, 0.1)
    assert (train, valid) == (text[:27], text[27:])
    with pytest.raises(DataError, match=r"^tiny.txt: text of 1 characters is too short"):
        holdout_tail("a", 0.1, "tiny.txt")
    with pytest.raises(DataError, match="valid_fraction"):
        holdout_tail(text, 1.0)
