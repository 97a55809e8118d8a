"""The loss curve of a run, drawn from its ``metrics.jsonl`` (matplotlib, no display needed)."""
from __future__ import annotations

import json
from pathlib import Path

from .atomic import atomic_path


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:             # a line cut short by a kill
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def plot_metrics(metrics_path: str | Path, png_path: str | Path, metric: str = "loss") -> bool:
    """Training loss and validation loss (and ``metric`` if it isn't the loss) against the step."""
    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    if not train and not evals:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = metric != "loss" and any(metric in r for r in evals)
    fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(11 if extra else 6.5, 4), squeeze=False)
    ax = axes[0][0]
    if train:
        ax.plot(*zip(*train), label="training loss", alpha=0.6)
    if evals:
        ax.plot([r["step"] for r in evals], [r["loss"] for r in evals], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    if extra:
        ax2 = axes[0][1]
        ax2.plot([r["step"] for r in evals], [r[metric] for r in evals], "o-", color="C2")
        ax2.set_xlabel("step")
        ax2.set_ylabel(f"validation {metric}")
        ax2.grid(alpha=0.3)
    save_figure(fig, png_path)
    return True


def save_figure(fig, path: str | Path, title: str | None = None, dpi: int = 100) -> None:
    """Lay ``fig`` out (under ``title``), write it by write-then-rename (a PNG unless the suffix names another
    format matplotlib writes), and free it."""
    import matplotlib.pyplot as plt
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=dpi)
    plt.close(fig)
