"""Seq2seq tests may set PyTorch's thread count (the copy task, ``--threads 1``): give it back afterwards."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
