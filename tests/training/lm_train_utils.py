"""Tiny language-model setups for the trainer tests (imported by the tests in this folder and the DDP worker)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnkit.data import CharTokenizer
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.tasks.language_modeling import LanguageModelTask

HELLO = "hello world\n"


@pytest.fixture(autouse=True)
def lm_test_env(monkeypatch):
    """One intra-op thread (tiny models gain nothing from more; the CPU is shared), and ``engine="auto"`` (e.g.
    the demo's untrained model) runs the Python loop: these tests are about language modelling and must not
    compile the fused C++ engine on first use (about a minute; tests/engine covers it)."""
    from rnnkit.engine import fused
    monkeypatch.setattr(fused, "unavailable_reason", lambda mode, x: "not used by the language-model tests")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def char_task(text: str, valid: str | None = None, *, batch_size: int = 4, bptt: int = 8,
              eval_batch_size: int = 2) -> LanguageModelTask:
    """A char-level task on ``text`` (validation: ``valid``, else the last 10%)."""
    if valid is None:
        cut = int(len(text) * 0.9)
        text, valid = text[:cut], text[cut:]
    tok = CharTokenizer.build(text + valid)
    train_ids = torch.tensor(tok.encode(text), dtype=torch.long)
    valid_ids = torch.tensor(tok.encode(valid), dtype=torch.long)
    return LanguageModelTask(tok, "char", train_ids, valid_ids, batch_size=batch_size, bptt=bptt,
                             eval_batch_size=eval_batch_size)


def tiny_model(task: LanguageModelTask, *, hidden: int = 24, embed: int = 12, layers: int = 1,
               dropout: float = 0.0, cell: str = "lstm") -> LanguageModel:
    cfg = LMConfig(vocab_size=task.tokenizer.vocab_size, cell=cell, embed_size=embed, hidden_size=hidden,
                   num_layers=layers, dropout=dropout, engine="python")
    task.model_config = cfg.to_dict()
    return LanguageModel(cfg)


def records(run_dir: str | Path, kind: str) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == kind]


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])
