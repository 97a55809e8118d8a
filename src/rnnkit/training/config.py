"""Training settings shared by every task, and the learning-rate schedule they imply."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    lr_decay: float = 1.0         # multiply the learning rate by this each epoch after ``decay_after``
    decay_after: int = 0          # the Zaremba schedule: lr * lr_decay ** max(0, epoch - decay_after)
    decay_last: float = 0.0       # the last fraction of the budget, over which the learning rate falls linearly to 0
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps in all
    minutes: float | None = None  # time budget for the whole run, resumes included
    clip: float = 5.0             # clip the global gradient norm (0 or None: no clipping)
    eval_every: int = 0           # evaluate every N steps; 0: at the end of every epoch
    patience: int | None = None   # stop after this many evaluations without improvement
    seed: int = 0
    device: str = "auto"
    bf16: bool = False            # bf16 autocast (CUDA only)
    log_every: int = 50           # steps between training-loss records in metrics.jsonl

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not 0.0 <= self.decay_last <= 1.0:
            raise ValueError(f"decay_last must be a fraction in [0, 1], got {self.decay_last}")

    def lr_at(self, epoch: int, done: float = 0.0) -> float:
        """Learning rate in (1-based) ``epoch`` with the fraction ``done`` of the budget spent: constant for
        ``decay_after`` epochs, then decayed each epoch; and over the budget's last ``decay_last``, scaled down
        linearly to 0 (the decay phase of a warmup-stable-decay schedule, which fits a run cut by time)."""
        lr = self.lr * self.lr_decay ** max(0, epoch - self.decay_after)
        if self.decay_last:
            lr *= min(1.0, max(0.0, 1.0 - done) / self.decay_last)
        return lr

    def make_optimizer(self, params):
        """The optimizer these settings name, over ``params``."""
        import torch
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=self.lr, weight_decay=self.weight_decay)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
