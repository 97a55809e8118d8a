"""A preset that names a data set, used on your own files (QA: `--preset awd-cpu --train my.txt` said "give either
--dataset or --train, not both", naming an option nobody typed). Typed options win: your files replace the preset's
data set; the rest of the preset stays. Parsing only: nothing trains."""
from __future__ import annotations

import pytest

from rnnkit.cli import train_caption, train_lm, train_seq2seq
from rnnkit.cli.main import make_parser


@pytest.mark.parametrize("module, argv, files", [
    (train_lm, ["train", "lm", "--preset", "awd-cpu", "--train", "my.txt", "--valid", "v.txt"], {"train": "my.txt"}),
    (train_lm, ["train", "lm", "--preset", "ptb-tied", "--train", "my.txt"], {"train": "my.txt"}),
    (train_seq2seq, ["train", "seq2seq", "--preset", "dates", "--src", "a.de", "--tgt", "a.en"], {"src": "a.de"}),
    (train_seq2seq, ["train", "seq2seq", "--preset", "multi30k", "--train", "pairs.tsv"], {"train": "pairs.tsv"}),
    (train_caption, ["train", "caption", "--preset", "shapes", "--images", "imgs", "--captions", "c.txt"],
     {"images": "imgs"}),
])
def test_your_files_replace_the_presets_data_set(tmp_path, module, argv, files):
    args = make_parser().parse_args([*argv, "--out", str(tmp_path / "run")])
    o = module.resolved_options(args)
    assert o["dataset"] is None and all(o[k] == v for k, v in files.items())
    assert o["preset"] == argv[3]


def test_a_typed_dataset_with_files_is_still_refused(tmp_path, capsys):
    from rnnkit.cli.main import main
    code = main(["train", "lm", "--dataset", "ptb", "--train", "my.txt", "--out", str(tmp_path / "run")])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("give either --dataset or --train, not both")
