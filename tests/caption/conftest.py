"""The captioning tests run their tiny models on one CPU thread (and restore the setting afterwards): at these
sizes a second thread only adds synchronisation, which costs a lot on a busy shared machine."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
