"""Two-process DistributedDataParallel on the CPU (gloo): equal weights on both ranks, different columns."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as td

from rnnkit.data import CharTokenizer, batchify

WORKER = Path(__file__).with_name("lm_ddp_worker.py")
TEXT = "".join(f"line {i}: the quick brown fox {i * i % 17} jumps\n" for i in range(12))
VALID = "the lazy fox\nhello dog\n"


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.skipif(not (td.is_available() and td.is_gloo_available()),
                    reason="torch.distributed with the gloo backend is not available in this PyTorch build")
def test_two_process_ddp_run_ends_with_equal_weights(tmp_path):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text(TEXT)
    valid.write_text(VALID)
    out, results = tmp_path / "run", tmp_path / "results"
    options = ["--train", str(train), "--valid", str(valid), "--out", str(out), "--hidden-size", "16",
               "--embed-size", "8", "--layers", "2", "--dropout", "0.2", "--batch-size", "3", "--bptt", "8",
               "--max-steps", "4", "--log-every", "1", "--device", "cpu", "--engine", "python", "--quiet",
               "--optimizer", "sgd", "--lr", "0.5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [*_torchrun(), "--standalone", "--nproc-per-node=2", str(WORKER), str(results), "--", *options]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"torchrun did not finish in 90 s: {e.stderr}")
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = [json.loads((results / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rc"] for r in ranks] == [0, 0]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["step"] for r in ranks] == [4, 4]
    p0, p1 = (torch.tensor(r["params"]) for r in ranks)
    assert torch.equal(p0, p1)                  # rank 1 started from other weights: DDP broadcast and all-reduce

    # each rank read its own 3 of the 6 columns
    tok = CharTokenizer.build(TEXT + VALID)
    ids = torch.tensor(tok.encode(TEXT))
    c0, c1 = (torch.tensor(r["columns"]) for r in ranks)
    assert torch.equal(c0, batchify(ids, 3, rank=0, world_size=2))
    assert torch.equal(c1, batchify(ids, 3, rank=1, world_size=2))
    assert torch.equal(torch.cat([c0, c1], dim=1), batchify(ids, 6))
    assert not torch.equal(c0, c1)

    # only rank 0 wrote the run folder: one training record per step, not two
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["kind"] == "train"] == [1, 2, 3, 4]
    assert json.loads((out / "config.json").read_text())["step"] == 4
    # the saved model is the one both ranks hold
    from rnnkit.tasks.language_modeling import load_run as load_lm
    model, _, _ = load_lm(out)
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), p0)
    assert "rnnkit: stopped (max_steps) after 4 steps" in proc.stderr
    assert proc.stderr.count("rnnkit: stopped") == 1          # printed by rank 0 only
