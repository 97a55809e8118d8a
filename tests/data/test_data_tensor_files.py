"""Reading a user's tensor file: safetensors and weights-only torch files come back whole; a file holding code is
refused without running it; a truncated, empty or foreign file is a one-line error naming the file."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from rnnkit.data.errors import DataError
from rnnkit.data.tensor_files import read_tensors


class _RunsCode:
    """A pickle that would create ``marker`` if loading ran it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_tensors_come_back_exactly(tmp_path, suffix):
    state = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    path = tmp_path / f"w{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    got = read_tensors(path, "weights")
    assert got.keys() == state.keys()
    assert all(torch.equal(got[k], state[k]) for k in state)


def test_a_file_with_code_in_it_is_refused_unrun(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "w.pth"
    torch.save({"a": torch.zeros(2), "hook": _RunsCode(marker)}, path)
    with pytest.raises(DataError) as e:
        read_tensors(path, "encoder weights")
    assert str(e.value).startswith(f"{path}: not encoder weights (it holds something other than tensors")
    assert "never loaded" in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("cut", ["half", "empty", "text"])
def test_truncated_empty_or_foreign_files(tmp_path, suffix, cut):
    path = tmp_path / f"w{suffix}"
    state = {"a": torch.randn(64, 64)}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    whole = path.read_bytes()
    path.write_bytes({"half": whole[:len(whole) // 2], "empty": b"", "text": b"not tensors at all\n" * 9}[cut])
    with pytest.raises(DataError) as e:
        read_tensors(path, "encoder weights")
    message = str(e.value)
    assert message.startswith(f"{path}: corrupt or not encoder weights (unreadable: ")
    assert "\n" not in message
    assert "weights_only" not in message and "arbitrary code" not in message    # torch's advice to load it unsafely


def test_a_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"w\.pth: no such file \(expected encoder weights\)"):
        read_tensors(tmp_path / "w.pth", "encoder weights")
