"""Sentence classification for the shared trainer: length-bucketed batches, cross-entropy, accuracy and macro-F1.

Also what using a trained classifier needs: :func:`load_run` (a run folder → model, text encoder, labels),
:func:`predict` (texts → probabilities, attention weights), the metrics (:func:`confusion_matrix`, :func:`scores`)
and :func:`plot_confusion`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import DataError, LabelSet, TextEncoder, read_labelled
from ..data.buckets import bucket_batches
from ..data.labelled import iter_batches
from ..models.classifier import Classifier, ClassifierConfig
from ..models.ensemble import EnsembleClassifier
from ..training import distributed as dist
from ..training.checkpoint import CheckpointError
from ..training.modes import evaluating
from .runs import load_task_run

TASK = "classify"


class ClassificationTask:
    """Train on ``train_ids``/``train_labels`` in shuffled length-bucketed batches; validate on the rest.

    The batch order of epoch ``e`` depends on ``seed`` and ``e`` only, so a resumed run sees the same batches
    (nothing else is carried between steps). Under DDP each rank takes every ``world``-th batch.
    """

    name = TASK
    metric = "accuracy"
    higher_is_better = True

    def __init__(self, encoder: TextEncoder, labels: LabelSet, train_ids: Sequence[Sequence[int]],
                 train_labels: Sequence[int], valid_ids: Sequence[Sequence[int]], valid_labels: Sequence[int], *,
                 batch_size: int = 64, eval_batch_size: int = 256, seed: int = 0,
                 device: torch.device | str = "cpu", data: dict | None = None,
                 model_config: dict | None = None) -> None:
        if len(train_ids) != len(train_labels) or len(valid_ids) != len(valid_labels):
            raise ValueError("texts and labels differ in number")
        if not train_ids or not valid_ids:
            raise DataError("no training or no validation examples")
        self.encoder, self.labels = encoder, labels
        self.train_ids, self.train_labels = list(train_ids), torch.tensor(list(train_labels), dtype=torch.long)
        self.valid_ids, self.valid_labels = list(valid_ids), torch.tensor(list(valid_labels), dtype=torch.long)
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.device = torch.device(device)
        self.data, self.model_config = data or {}, model_config or {}
        self._lengths = [len(s) for s in self.train_ids]

    # ---------------------------------------------------------------- trainer protocol

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        return dist.share(bucket_batches(self._lengths, self.batch_size, shuffle=True, seed=self.seed, epoch=epoch))

    def steps_per_epoch(self) -> int:
        return len(self._epoch_batches(1))

    def batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for idx, tokens, lengths in iter_batches(self.train_ids, self._epoch_batches(epoch)[start:],
                                                 self.encoder.pad_id):
            yield tokens.to(self.device), lengths.to(self.device), self.train_labels[idx].to(self.device)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, int]:
        tokens, lengths, targets = batch
        loss = F.cross_entropy(model(tokens, lengths), targets)
        return loss, loss.detach(), int(lengths.sum())

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        probs, _ = predict_ids(model, self.valid_ids, self.encoder.pad_id, self.eval_batch_size, self.device)
        return scores(probs, self.valid_labels, len(self.labels))

    def progress(self, loss: float) -> dict[str, str]:
        return {}

    def run_config(self) -> dict:
        return {"task": self.name, "model": self.model_config, "encoder": self.encoder.to_dict(),
                "labels": self.labels.to_list(), "data": self.data}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# -------------------------------------------------------------------------------------------- metrics


def confusion_matrix(predicted: Tensor | Sequence[int], target: Tensor | Sequence[int], num_classes: int) -> Tensor:
    """``(C, C)`` int64 counts: row = true class, column = predicted class."""
    predicted, target = torch.as_tensor(predicted).long(), torch.as_tensor(target).long()
    flat = target * num_classes + predicted
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def macro_f1(matrix: Tensor) -> float:
    """Unweighted mean over classes of ``F1 = 2 TP / (2 TP + FP + FN)``; a class never true nor predicted
    scores 0 (scikit-learn's ``zero_division=0``)."""
    m = matrix.double()
    tp = m.diag()
    denom = m.sum(0) + m.sum(1)                 # (TP + FP) + (TP + FN)
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    return float(f1.mean())


def scores(probs: Tensor, target: Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy (nats) of predicted probabilities ``(N, C)``."""
    target = torch.as_tensor(target).long()
    matrix = confusion_matrix(probs.argmax(1), target, num_classes)
    loss = F.nll_loss(probs.clamp(min=1e-12).log(), target)
    return {"loss": float(loss), "accuracy": float(matrix.diag().sum()) / max(len(target), 1),
            "macro_f1": macro_f1(matrix), "examples": len(target)}


# -------------------------------------------------------------------------------------------- inference


@torch.no_grad()
def predict_ids(model: nn.Module, encoded: Sequence[Sequence[int]], pad_id: int, batch_size: int = 256,
                device: torch.device | str = "cpu",
                attention: bool = False) -> tuple[Tensor, list[Tensor] | None]:
    """Class probabilities ``(N, C)`` in the order of ``encoded`` (batched by length, evaluation mode) and,
    with ``attention``, each sequence's attention weights over its own tokens."""
    out: list[Tensor | None] = [None] * len(encoded)
    weights: list[Tensor | None] = [None] * len(encoded)
    lengths = [len(s) for s in encoded]
    with evaluating(model):
        for idx, tokens, lens in iter_batches(encoded, bucket_batches(lengths, batch_size), pad_id):
            logits, w = model.explain(tokens.to(device), lens.to(device))
            p = torch.softmax(logits.float(), dim=-1).cpu()
            for j, i in enumerate(idx):
                out[i] = p[j]
                if attention and w is not None:
                    weights[i] = w[j, :lengths[i]].float().cpu()
    probs = torch.stack(out) if out else torch.empty(0)
    return probs, (weights if attention else None)


@dataclass
class LoadedClassifier:
    """A trained classifier ready to use: model in evaluation mode, its text encoder and labels, the config."""

    model: Classifier | EnsembleClassifier
    encoder: TextEncoder
    labels: LabelSet
    config: dict

    def predict(self, texts: Sequence[str], batch_size: int = 256, attention: bool = False,
                source: str | None = None, lines: Sequence[int] | None = None):
        """``(probabilities (N, C), attention weights or None)`` for raw texts."""
        encoded = self.encoder.encode_all(texts, source, lines)
        device = next(self.model.parameters()).device
        return predict_ids(self.model, encoded, self.encoder.pad_id, batch_size, device, attention)


def build_model(model_config: dict) -> Classifier | EnsembleClassifier:
    """The (untrained) model a run's ``config.json`` ``"model"`` describes: a :class:`Classifier`, or with
    ``"ensemble": K`` an :class:`EnsembleClassifier` of K of them (K = 1 too: an ensemble run stopped after its
    first member saves its weights as the ensemble's)."""
    cfg = ClassifierConfig.from_dict(model_config)
    size = model_config.get("ensemble", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"ensemble must be a member count >= 1, got {size!r}")
    return EnsembleClassifier.build(cfg, size) if "ensemble" in model_config else Classifier(cfg)


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> LoadedClassifier:
    """A ``classify`` run folder → :class:`LoadedClassifier`; another task's run is a clear error."""
    def wrong_task(task) -> str:
        hint = " (sample from a language model with `rnnkit sample`)" if task == "lm" else ""
        return (f"{run_dir}: this is a {task!r} run, not a classifier; `rnnkit predict` needs a {TASK!r} run from "
                f"`rnnkit train classify`{hint}")

    def build(config: dict, where: Path):
        model = build_model(config["model"])
        encoder = TextEncoder.from_dict(config["encoder"], source=where)
        labels = LabelSet(config["labels"])
        if model.config.vocab_size != encoder.vocab_size or model.config.num_classes != len(labels):
            raise CheckpointError(f"{where}: the model's vocabulary or class count does not match the tokenizer "
                                  f"or labels")
        return model, (encoder, labels)

    model, (encoder, labels), config = load_task_run(run_dir, TASK, "classifier", build, device, wrong_task)
    return LoadedClassifier(model, encoder, labels, config)


load_classifier = load_run


# -------------------------------------------------------------------------------------------- reporting


def format_confusion(matrix: Tensor, names: Sequence[str]) -> str:
    """The matrix as a text table: rows true labels, columns predicted labels."""
    names = [str(n) for n in names]
    width = max(6, *(len(n) for n in names), len(str(int(matrix.max()) if matrix.numel() else 0)))
    head = "true \\ predicted".ljust(max(16, width)) + " " + " ".join(n.rjust(width) for n in names)
    rows = [n.ljust(max(16, width)) + " " + " ".join(str(int(v)).rjust(width) for v in matrix[i])
            for i, n in enumerate(names)]
    return "\n".join([head, *rows])


def plot_confusion(matrix: Tensor, names: Sequence[str], path: str | Path, title: str = "") -> None:
    """Write the confusion matrix (counts and row-normalised shading) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.plots import save_figure

    m = matrix.double()
    rate = m / m.sum(1, keepdim=True).clamp(min=1)
    k = len(names)
    size = min(2.5 + 0.6 * k, 12)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(rate.numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                        color="white" if rate[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(k), [str(n) for n in names], rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), [str(n) for n in names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    save_figure(fig, path)


def evaluate_run(run_dir: str | Path, data: str | Path, text_column: str | None = None,
                 label_column: str | None = None) -> str:
    """``rnnkit eval`` of a ``classify`` run on the labelled file ``data`` (columns: the ones it was trained on
    unless given): accuracy, macro-F1 and loss on one line, then the confusion matrix."""
    clf = load_run(run_dir)
    saved = clf.config.get("data", {})
    labelled = read_labelled(data, text_column=text_column or saved.get("text_column", "sentence"),
                             label_column=label_column or saved.get("label_column", "label"))
    target = torch.tensor(clf.labels.encode(labelled), dtype=torch.long)
    probs, _ = clf.predict(labelled.texts, source=labelled.source, lines=labelled.lines)
    m = scores(probs, target, len(clf.labels))
    matrix = confusion_matrix(probs.argmax(1), target, len(clf.labels))
    return (f"{data}: {len(labelled):,} examples, accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
            f"loss {m['loss']:.4f} nats\n{format_confusion(matrix, clf.labels.names)}")
