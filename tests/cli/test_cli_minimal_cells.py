"""``--cell mingru|minlstm``: the minimal cells trained, saved, resumed, sampled and evaluated like the others."""
from __future__ import annotations

import json

import pytest
import torch

from rnnkit.cells.spec import CELL_NAMES, MIN_GRU, MIN_LSTM, SEQUENTIAL_NAMES, recurrence
from rnnkit.cli.main import main
from rnnkit.layers import MinGRU, MinLSTM, make_layer

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def test_the_minimal_cells_are_described_and_built_by_name():
    assert recurrence("mingru") is MIN_GRU and recurrence("minlstm") is MIN_LSTM
    assert {"mingru", "minlstm"} <= set(CELL_NAMES) and not {"mingru", "minlstm"} & set(SEQUENTIAL_NAMES)
    layer = make_layer("mingru", 3, 5, num_layers=2, dropout=0.0, bidirectional=True, engine="auto",
                       forget_bias=1.0, batch_first=True)
    assert isinstance(layer, MinGRU) and layer.num_layers == 2 and layer.bidirectional and layer.batch_first
    assert isinstance(make_layer("minlstm", 3, 5), MinLSTM)
    with pytest.raises(ValueError, match="mingru runs a parallel scan"):
        make_layer("mingru", 3, 5, engine="python")
    with pytest.raises(ValueError, match="minlstm does not take zoneout"):
        make_layer("minlstm", 3, 5, zoneout=0.1)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_language_model_trains_resumes_samples_and_evaluates(cell, tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    common = ["--hidden-size", "16", "--embed-size", "8", "--layers", "2", "--batch-size", "4", "--bptt", "8",
              "--threads", "1", "--quiet"]
    assert main(["train", "lm", "--train", str(data), "--cell", cell, "--max-steps", "6", "--eval-every", "3",
                 "--out", str(run), *common]) in (0, None)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["cell"] == cell
    assert main(["train", "lm", "--out", str(run), "--resume", "--max-steps", "10"]) in (0, None)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert max(steps) == 10
    capsys.readouterr()
    assert main(["sample", str(run), "--length", "20", "--seed", "1", "--prime", "the "]) in (0, None)
    first = capsys.readouterr().out
    assert main(["sample", str(run), "--length", "20", "--seed", "1", "--prime", "the "]) in (0, None)
    assert capsys.readouterr().out == first and first.startswith("the ")
    assert main(["eval", str(run), "--data", str(data)]) in (0, None)
    assert "bits per character" in capsys.readouterr().out


def test_classifier_with_a_minimal_cell_trains_and_predicts(tmp_path, capsys):
    rows = ["sentence\tlabel"] + [f"{w} film\t{label}" for w, label in
                                  [("great", 1), ("awful", 0), ("lovely", 1), ("dull", 0)] * 10]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "classify", "--preset", "tiny", "--cell", "minlstm", "--train", str(tmp_path / "train.tsv"),
                 "--valid", str(tmp_path / "train.tsv"), "--epochs", "8", "--threads", "1", "--quiet",
                 "--out", str(run)]) in (0, None)
    torch.manual_seed(0)
    capsys.readouterr()
    assert main(["predict", str(run), "great film"]) in (0, None)
    label, p0, p1 = capsys.readouterr().out.split()
    assert label == "1" and float(p1.split("=")[1]) > 0.5


def test_experiment_parallel_times_every_contender_at_every_length(tmp_path, capsys):
    from PIL import Image
    from rnnkit.analysis.parallel import CONTENDERS
    out = tmp_path / "par"
    assert main(["experiment", "parallel", "--delays", "8", "32", "--batch-size", "2", "--hidden-size", "8",
                 "--rounds", "1", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["seconds"]
    assert sorted(results) == ["32", "8"]
    for per_length in results.values():
        assert sorted(per_length) == sorted(CONTENDERS) and all(0 < t < 60 for t in per_length.values())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| T | rnnkit.LSTM ms") and [line.split()[1] for line in lines[1:]] == ["8", "32"]
    with Image.open(out / "parallel.png") as image:
        assert image.size[0] > 400 and image.size[1] > 300
