"""Data options a command would ignore are refused before any work (QA of the data sets): --valid with a named LM
corpus, caption split files with the synthetic scenes, --data-dir where nothing is read from it; Multi30k's
--data-dir may be the folder above multi30k/, as the language model's may be above ptb/."""
from __future__ import annotations

import pytest

from lm_cli_helpers import TINY, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)


@pytest.mark.parametrize("argv, line", [
    (["train", "lm", "--dataset", "stdlib", "--data-dir", "d"],
     "--data-dir is where --dataset shakespeare or ptb is read from; it is not used with --dataset stdlib"),
    (["train", "lm", "--train", "t.txt", "--data-dir", "d"],
     "--data-dir is where --dataset shakespeare or ptb is read from; it is not used with your own files"),
    (["train", "seq2seq", "--dataset", "dates", "--data-dir", "d"],
     "--data-dir is where --dataset multi30k is read from; it is not used with --dataset dates"),
    (["train", "caption", "--dataset", "shapes", "--valid-captions", "v.txt"],
     "--dataset shapes draws its own training and validation scenes; --valid-captions is not used with it"),
])
def test_ignored_data_options_are_refused(argv, line, tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello world\n" * 50)
    code, _, err = run_cli(capsys, *[a if a != "t.txt" else tmp_path / a for a in argv], "--out", tmp_path / "r",
                           "--max-steps", "1", "--quiet")
    assert code == 2, err
    assert err.strip().splitlines()[-1] == f"rnnkit: error: command line: {line}"
    assert not (tmp_path / "r").exists()


def test_multi30k_data_dir_may_be_the_folder_above(tmp_path):
    from rnnkit.cli.train_seq2seq import _multi30k_dir
    (tmp_path / "multi30k").mkdir()
    (tmp_path / "multi30k" / "train.de").write_text("hallo\n")
    assert _multi30k_dir({"data_dir": str(tmp_path)}) == tmp_path / "multi30k"
    assert _multi30k_dir({"data_dir": str(tmp_path / "multi30k")}) == tmp_path / "multi30k"
