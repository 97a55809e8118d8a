"""The training loop every task shares, checkpoints that never execute code, and DDP."""
from .checkpoint import CheckpointError, load_resume, load_weights, read_config, save_run
from .config import TrainConfig
from .modes import evaluating
from .rng import seed_everything
from .trainer import Task, Trainer, TrainingError, perplexity

__all__ = ["Trainer", "Task", "TrainConfig", "TrainingError", "CheckpointError", "save_run", "read_config",
           "load_weights", "load_resume", "seed_everything", "evaluating", "perplexity"]
