"""The export tests' shared runs and exports, each made once per session (exports take seconds)."""
from __future__ import annotations

import pytest
import torch

from export_helpers import CELLS, RUNS


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: a second thread only adds synchronisation on the shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """One run folder per task (cells as CELLS), made once."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    made = {task: make(root / task, cell=CELLS[task]) for task, make in RUNS.items()}
    torch.set_num_threads(threads)
    return made


@pytest.fixture(scope="session")
def exported(runs, tmp_path_factory):
    """``exported(task, fmt)`` -> the sidecar path of ``rnnkit export`` of that task's run (done once each)."""
    from rnnkit.cli.main import main
    root = tmp_path_factory.mktemp("exported")
    done: dict[tuple[str, str], object] = {}

    def get(task: str, fmt: str):
        if (task, fmt) not in done:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                assert main(["export", str(runs[task]), "--format", fmt, "--out", str(root / f"{task}.{fmt}")]) == 0
            finally:
                torch.set_num_threads(threads)
            done[task, fmt] = root / f"{task}.{fmt}.json"
        return done[task, fmt]
    return get
