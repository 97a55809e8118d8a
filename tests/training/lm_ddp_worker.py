"""Run by ``torchrun --nproc-per-node=2`` from test_lm_ddp.py: `rnnkit train lm` under DDP on the CPU (gloo).

Each rank runs the real command (``rnnkit.cli.main.main``); the Trainer is wrapped only to perturb rank 1's
initial weights (DDP must broadcast rank 0's) and to keep a handle on the model and the task. After training,
each rank writes ``RESULTS/rank{r}.json``: its exit code, its final weights and the columns it read.

usage: lm_ddp_worker.py RESULTS_DIR -- <train lm options>
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as td

import rnnkit.cli.training_run as training_run
from rnnkit.cli.main import main

captured = {}


class CapturingTrainer(training_run.Trainer):
    def __init__(self, model, task, cfg, run_dir, quiet=False):
        if td.is_initialized() and td.get_rank() == 1:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)                 # different initial weights on rank 1
        super().__init__(model, task, cfg, run_dir, quiet)
        captured["trainer"] = self
        captured["rank"] = td.get_rank()
        captured["world_size"] = td.get_world_size()


def run() -> int:
    results = Path(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    training_run.Trainer = CapturingTrainer            # the Trainer every `rnnkit train TASK` builds
    rc = main(["train", "lm", *argv])
    trainer = captured["trainer"]
    flat = torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()])
    results.mkdir(parents=True, exist_ok=True)
    (results / f"rank{captured['rank']}.json").write_text(json.dumps({
        "rc": rc, "world_size": captured["world_size"], "step": trainer.step,
        "params": flat.tolist(), "columns": trainer.task.train.data.tolist(),
    }))
    return rc


if __name__ == "__main__":
    sys.exit(run())
