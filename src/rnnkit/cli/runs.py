"""Loading a trained language-model run folder: configuration, tokenizer and weights, all checked."""
from __future__ import annotations

from pathlib import Path

from ..data import tokenizer_from_dict
from ..models.language_model import LanguageModel, LMConfig
from ..training.checkpoint import CheckpointError, load_weights, read_config


def load_lm(run_dir: str | Path, device="cpu") -> tuple[LanguageModel, object, dict]:
    """``(model in eval mode, tokenizer, config)`` of an ``lm`` run."""
    config = read_config(run_dir, task="lm")
    try:
        model = LanguageModel(LMConfig.from_dict(config["model"]))
        tokenizer = tokenizer_from_dict(config["tokenizer"], source=Path(run_dir) / "config.json")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{Path(run_dir) / 'config.json'}: incomplete or invalid language-model "
                              f"configuration ({e})") from None
    load_weights(run_dir, model)
    return model.to(device).eval(), tokenizer, config
