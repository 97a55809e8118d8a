"""CLI test fixtures: tiny corpora and one trained run (copied per test)."""
import shutil

import pytest
import torch

from lm_cli_helpers import TINY, TRAIN_TEXT, VALID_TEXT


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "train.txt").write_text(TRAIN_TEXT, encoding="utf-8")
    (d / "valid.txt").write_text(VALID_TEXT, encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def char_run_master(tmp_path_factory, corpus_dir):
    """A char-level run trained once (5 steps, validation file given); copy it before changing it."""
    from rnnkit.cli.main import main
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "char"
    code = main(["train", "lm", "--train", str(corpus_dir / "train.txt"), "--valid", str(corpus_dir / "valid.txt"),
                 "--out", str(out), "--max-steps", "5", "--log-every", "1", "--lr", "0.01", *TINY,
                 "--eval-batch-size", "1"])
    torch.set_num_threads(before)
    assert code == 0
    return out


@pytest.fixture
def char_run(char_run_master, tmp_path):
    """A private copy of the trained char-level run."""
    dest = tmp_path / "run"
    shutil.copytree(char_run_master, dest)
    return dest
