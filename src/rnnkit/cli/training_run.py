"""What every ``rnnkit train TASK`` does once its data, model and task are built: save the options, announce the
run, train (resuming on ``--resume``), say how training stopped and how to continue after Ctrl-C."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..training import TrainConfig, Trainer
from ..training import distributed as dist
from ..training.atomic import write_json
from ..training.trainer import resolve_device
from .options import describe_preset


def count_parameters(model: nn.Module) -> int:
    """The model's parameter count, for the line that announces a run."""
    return sum(p.numel() for p in model.parameters())


def training_device(cfg: TrainConfig) -> torch.device:
    """The device ``--device`` names, with the process group started when the command runs under torchrun."""
    device = resolve_device(cfg.device)
    dist.init(device)
    return device


def train_and_report(args: argparse.Namespace, o: dict, model: nn.Module, task, cfg: TrainConfig, command: str,
                     intro: str, outcome: Callable[[Trainer], str]) -> int:
    """Train ``model`` on ``task`` into ``args.out``; ``intro`` is printed before training (after the preset's name,
    if one applies), ``outcome(trainer)`` completes the "stopped after N steps" line. Returns the exit code (130
    after Ctrl-C)."""
    trainer = Trainer(model, task, cfg, args.out, quiet=args.quiet)
    if dist.is_main():
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "options.json", o)
        print(f"rnnkit: {describe_preset(args, o)}{intro}", file=sys.stderr)
    if args.resume:
        trainer.resume()
    reason = trainer.fit()
    if dist.is_main():
        print(f"rnnkit: stopped ({reason}) after {trainer.step:,} steps{outcome(trainer)}", file=sys.stderr)
        if reason == "interrupted":
            print(f"rnnkit: continue with: rnnkit train {command} --out {args.out} --resume", file=sys.stderr)
    dist.shutdown()
    return 130 if reason == "interrupted" else 0
