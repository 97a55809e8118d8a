"""`rnnkit train lm` and its data across --resume (QA): other training files whose vocabulary has the same size
were taken silently (every symbol remapped); --valid with a named corpus was ignored. Now --resume keeps the run's
vocabulary, as its weights, and encodes the data with it."""
from __future__ import annotations

import torch

from lm_cli_helpers import TINY, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)


def test_resuming_on_files_with_other_symbols_is_refused_naming_them(tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("abcd efgh\nhgfe dcba\n" * 20)
    b.write_text("ABCD EFGH\nHGFE DCBA\n" * 20)                    # as many symbols, other ones
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "lm", "--train", a, "--out", out, *TINY, "--max-steps", "3")
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = run_cli(capsys, "train", "lm", "--out", out, "--resume", "--train", b, "--max-steps", "6")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"rnnkit: error: {b}: 8 char(s) not in the 10-symbol vocabulary: 'A', "
                                            f"'B', 'C', 'D', 'E', 'F', 'G', 'H'")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    code, _, err = run_cli(capsys, "train", "lm", "--out", out, "--resume", "--max-steps", "6")
    assert code == 0, err
    assert torch.load(out / "resume.pt", weights_only=True)["step"] == 6


def test_valid_with_a_named_corpus_is_refused(tmp_path, capsys):
    valid = tmp_path / "v.txt"
    valid.write_text("hello\n")
    code, _, err = run_cli(capsys, "train", "lm", "--dataset", "stdlib", "--valid", valid, "--out", tmp_path / "r",
                           *TINY)
    assert code == 2
    assert err.strip().splitlines()[-1] == ("rnnkit: error: command line: --dataset stdlib brings its own validation "
                                            "text; --valid is not used with it (give --train and --valid for your "
                                            "own files)")


def test_messages_name_the_option_to_change(tmp_path, capsys):
    """QA: a too-large --eval-batch-size was reported as batch_size; tied weights with a smaller AWD last level
    named hidden_size, where --last-hidden-size is the one to change."""
    corpus = tmp_path / "t.txt"
    corpus.write_text("hello world, the cat sat\n" * 30)
    code, _, err = run_cli(capsys, "train", "lm", "--train", corpus, "--out", tmp_path / "a", *TINY,
                           "--eval-batch-size", "100000")
    assert code == 2 and "corpus too short: eval_batch_size 100000 x world_size 1" in err
    assert "use a smaller eval_batch_size or more text" in err
    code, _, err = run_cli(capsys, "train", "lm", "--train", corpus, "--out", tmp_path / "b", *TINY, "--awd",
                           "--tie-weights", "--embed-size", "16", "--hidden-size", "16", "--last-hidden-size", "8")
    assert code == 2
    assert "tie_weights needs embed_size == last_hidden_size (the decoder reads the last layer's output), got 16 " \
           "and 8" in err


def test_a_symbol_the_run_lacks_names_the_file_that_holds_it(tmp_path, capsys):
    """QA: a validation file's unknown characters were reported under the training file's name."""
    a, v = tmp_path / "a.txt", tmp_path / "v.txt"
    a.write_text("abcd efgh\nhgfe dcba\n" * 20)
    v.write_text("abcd 123\n")
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "lm", "--train", a, "--out", out, *TINY, "--max-steps", "2")[0] == 0
    code, _, err = run_cli(capsys, "train", "lm", "--out", out, "--resume", "--valid", v, "--max-steps", "4")
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"rnnkit: error: {v}: 3 char(s) not in the")
