"""DistributedDataParallel under ``torchrun``: one process per rank, gloo on CPU, nccl on GPU.

Outside ``torchrun`` (no ``WORLD_SIZE`` in the environment) every function here is a no-op, so the same
training code runs on one process or many.
"""
from __future__ import annotations

import gc
import os
import shlex

import torch
import torch.distributed as td
from torch import nn

STOP_REASONS = ("finished", "interrupted", "max_steps", "time budget", "early stopping")
# agree(): "finished" counts last, then the earlier a reason is listed the more it wins (a signal on any rank)


def launched() -> bool:
    """Started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> None:
    """Join the process group once (idempotent); each rank uses its local GPU when training on CUDA."""
    if launched() and not td.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")


def rank() -> int:
    return td.get_rank() if td.is_available() and td.is_initialized() else 0


def world_size() -> int:
    return td.get_world_size() if td.is_available() and td.is_initialized() else 1


def share(items):
    """This rank's part of ``items`` (a list or a tensor): every ``world_size()``-th item from ``rank()`` on, after
    the tail is cut so that every rank gets as many: a rank with a batch fewer would start its next epoch while
    the others finish this one, and every epoch-end event (evaluation, checkpoint, learning-rate decay, the
    resume position) would fall at a different step on each rank. The whole of ``items`` when not distributed."""
    world = world_size()
    if world == 1:
        return items
    return items[: len(items) // world * world][rank()::world]


def is_main() -> bool:
    return rank() == 0


def main_process() -> bool:
    """Rank 0 under torchrun, known from the environment before the process group exists (else True): the one
    process that owns the run folder and prints messages."""
    return int(os.environ.get("RANK", "0")) == 0


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped in DDP when running distributed, else the model itself."""
    if world_size() == 1:
        return model
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def agree(reason: str) -> str:
    """Make every rank take the same stop decision: the first reason any rank has (time budgets differ)."""
    if world_size() == 1:
        return reason
    code = torch.tensor([STOP_REASONS.index(reason) or len(STOP_REASONS)])
    td.all_reduce(code, op=td.ReduceOp.MIN)
    value = int(code)
    return "finished" if value == len(STOP_REASONS) else STOP_REASONS[value]


def gather(obj):
    """Every rank's ``obj``, in rank order, on every rank (tensors moved to the CPU and pickled through the process
    group); ``[obj]`` alone. Collective: every rank calls it at the same point."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    td.all_gather_object(out, _on_cpu(obj))
    return out


def _on_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    return obj


def barrier() -> None:
    if world_size() > 1:
        td.barrier()


def shutdown() -> None:
    """Leave the process group once every rank is here. Drop the DDP wrappers first (``Trainer.release``): a
    wrapper freed after the group is destroyed could hang its process at exit (one run in three did)."""
    if td.is_available() and td.is_initialized():
        td.barrier()
        gc.collect()
        td.destroy_process_group()


def resume_launcher(processes: int) -> str:
    """How to start ``processes`` processes of the ``rnnkit`` command: ``rnnkit`` or ``torchrun ... -m rnnkit``."""
    return "rnnkit" if processes <= 1 else f"torchrun --nproc-per-node={processes} -m rnnkit"


def resume_command(task: str, out, processes: int | None = None) -> str:
    """The command that continues the ``task`` run in ``out`` with ``processes`` processes (default: this run's)."""
    launcher = resume_launcher(world_size() if processes is None else processes)
    return f"{launcher} train {task} --out {shlex.quote(str(out))} --resume"
