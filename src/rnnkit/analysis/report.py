"""``rnnkit report``: one self-contained HTML file showing what a trained network's units respond to.

The page needs nothing but itself — no network, no other file: styles, script and data are inline, the training
curves an inline SVG (or the run's ``loss.png`` as a ``data:`` URI when there are no metrics to draw). It shows

* the text coloured token by token by one hidden unit's activation (red positive, blue negative), with a picker
  over layers (``h``, and ``tanh(c)`` for an LSTM) and units;
* for simple features of the text (inside quotes, line position, inside brackets) the units most correlated with
  them — click one to colour the text by it;
* on hover, the unit's value and the model's top predictions for the next token;
* the training curves from ``metrics.jsonl``;
* attention maps, for runs whose task has them.

**Data contract.** A report is built from a :class:`ReportData`. The language-model collector (task ``"lm"``)
is built in. Other tasks plug in by a *collector*, a function ``collect(run_dir, text, options) -> ReportData``
(``options``: :class:`ReportOptions`), found in this order:

1. :data:`COLLECTORS`, filled by :func:`register_collector` (``register_collector("seq2seq", fn)``);
2. a function ``report_data(run_dir, text, options)`` in the task's own module ``rnnkit.tasks.<module>``
   (``seq2seq`` → ``rnnkit.tasks.seq2seq``, ``classify`` → ``rnnkit.tasks.classification``, any other task →
   ``rnnkit.tasks.<task>``), so a task adds report support without touching this file.

A collector for a seq2seq or classification run fills ``tokens`` (the source text's tokens), ``layers`` (the
encoder's states per token), and ``attention`` (:class:`AttentionMap`: target tokens × source tokens, rows
summing to 1); ``top_ids``/``top_probs`` stay ``None`` when there is no next-token prediction.

**Embedded data.** ``<script type="application/json" id="rnnkit-data">``: each layer's (T, H) values as int8
(``round(v / scale * 127)``, row-major, base64) with its ``scale`` — colours need no more, and the file stays
small; :func:`read_report_data` decodes them again (the tests compare them with the model's states).
"""
from __future__ import annotations

import base64
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..training.atomic import write_text
from ..training.plots import read_metrics
from .activations import FEATURES, lm_activations, most_correlated, text_features
from .report_page import render_page

FORMAT = "rnnkit-report/1"


# --------------------------------------------------------------------------------------------- data

@dataclass
class AttentionMap:
    """Attention weights ``weights[i, j]``: how much output ``rows[i]`` attended to input ``cols[j]``."""

    title: str
    rows: list[str]
    cols: list[str]
    weights: np.ndarray


@dataclass
class ReportData:
    """Everything a report shows (see the module docstring for who fills what)."""

    title: str
    tokens: list[str]
    layers: dict[str, np.ndarray]                  # name -> (T, H) activations, ideally in [-1, 1]
    level: str = "char"                            # "char": tokens are joined as is; "word": with spaces
    top_ids: np.ndarray | None = None              # (T, k) ids of the most likely next tokens
    top_probs: np.ndarray | None = None            # (T, k) their probabilities
    vocab: list[str] = field(default_factory=list)
    attention: list[AttentionMap] = field(default_factory=list)
    info: dict = field(default_factory=dict)       # facts about the run, shown as a table
    metrics: list[dict] = field(default_factory=list)   # metrics.jsonl records, for the training curves
    curves_png: bytes | None = None                # used when there are no metrics to draw
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportOptions:
    max_tokens: int = 2000
    top_k: int = 5
    correlated: int = 10


Collector = Callable[[Path, str, ReportOptions], ReportData]
COLLECTORS: dict[str, Collector] = {}
TASK_MODULES = {"seq2seq": "seq2seq", "classify": "classification", "lm": "language_modeling"}


def register_collector(task: str, collect: Collector) -> None:
    """Make ``rnnkit report`` handle runs whose ``config.json`` says ``"task": task``."""
    COLLECTORS[task] = collect


def find_collector(task: str | None) -> Collector:
    from ..data import DataError
    if task in COLLECTORS:
        return COLLECTORS[task]
    module_name = f"rnnkit.tasks.{TASK_MODULES.get(task, task)}"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    collect = getattr(module, "report_data", None)
    if callable(collect):
        return collect
    raise DataError(f"no report for task {task!r} yet: known tasks {sorted(COLLECTORS)}; a task adds one with "
                    f"a function report_data(run_dir, text, options) in {module_name} or with "
                    f"rnnkit.analysis.report.register_collector({task!r}, fn)", "config.json")


# --------------------------------------------------------------------------------------------- language model

def collect_lm(run_dir: Path, text: str, options: ReportOptions) -> ReportData:
    """A character- or word-level language model run: all layers' states and next-token predictions."""
    from ..cli.runs import load_lm
    model, tokenizer, config = load_lm(run_dir)
    acts = lm_activations(model, tokenizer, text, top_k=options.top_k, max_tokens=options.max_tokens)
    m = config.get("model", {})
    info = {"run": str(run_dir), "task": config.get("task"), "level": config.get("level"),
            "cell": m.get("cell"), "layers × hidden": f"{m.get('num_layers')} × {m.get('hidden_size')}",
            "vocabulary": m.get("vocab_size"), "training steps": config.get("step")}
    for key in ("loss", "bpc", "ppl"):
        if key in config.get("metrics", {}):
            info[f"validation {key}"] = round(float(config["metrics"][key]), 4)
    notes = []
    if acts.dropped:
        notes.append(f"{acts.dropped} character(s) of the text are not in the model's vocabulary and were left out.")
    png = Path(run_dir) / "loss.png"
    return ReportData(title=f"rnnkit report: {Path(run_dir).name}", tokens=acts.tokens, layers=acts.layers,
                      level=config.get("level", "char"), top_ids=acts.top_ids, top_probs=acts.top_probs,
                      vocab=acts.vocab, info=info, metrics=read_metrics(Path(run_dir) / "metrics.jsonl"),
                      curves_png=png.read_bytes() if png.is_file() else None, notes=notes)


register_collector("lm", collect_lm)


def build_report(run_dir: str | Path, text: str, out: str | Path, options: ReportOptions | None = None) -> Path:
    """Read the run, collect its data for ``text`` and write the HTML file ``out``."""
    from ..training.checkpoint import read_config
    options = options or ReportOptions()
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    data = find_collector(config.get("task"))(run_dir, text, options)
    write_text(out, render_html(data, options))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)              # a page to share, not a private temporary file
    return Path(out)


# --------------------------------------------------------------------------------------------- encoding

def quantise(values: np.ndarray) -> tuple[str, float]:
    """(base64 of int8 ``round(v / scale * 127)``, ``scale``); ``scale`` = 1 for values in [-1, 1]."""
    v = np.asarray(values, dtype=np.float64)
    peak = float(np.abs(v).max()) if v.size else 0.0
    scale = 1.0 if peak <= 1.0 else peak
    q = np.clip(np.rint(v / scale * 127), -127, 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii"), scale


def dequantise(data: str, scale: float, shape: tuple[int, int]) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(data), dtype=np.int8).astype(np.float64)
    return (q / 127.0 * scale).reshape(shape)


def payload(data: ReportData, options: ReportOptions) -> dict:
    """The JSON the page's script reads."""
    T = len(data.tokens)
    layers = []
    for name, values in data.layers.items():
        values = np.asarray(values)
        if values.shape[0] != T:
            raise ValueError(f"layer {name!r} has {values.shape[0]} rows for {T} tokens")
        b64, scale = quantise(values)
        layers.append({"name": name, "units": int(values.shape[1]), "scale": scale, "data": b64})
    features = text_features(data.tokens, data.level)
    out = {"format": FORMAT, "title": data.title, "level": data.level, "tokens": data.tokens, "layers": layers,
           "features": list(FEATURES),
           "correlated": most_correlated(data.layers, features, options.correlated) if data.layers else {},
           "notes": data.notes}
    if data.top_ids is not None:
        ids = np.asarray(data.top_ids)
        used = sorted(set(ids.ravel().tolist()))
        out["predictions"] = {"vocab": {str(i): data.vocab[i] for i in used},
                              "ids": ids.tolist(),
                              "probs": np.rint(np.asarray(data.top_probs) * 1000).astype(int).tolist()}
    return out


def read_report_data(html_text: str) -> dict:
    """The embedded JSON of a report, with each layer's ``values`` decoded to a (T, H) array."""
    start_tag = '<script type="application/json" id="rnnkit-data">'
    start = html_text.index(start_tag) + len(start_tag)
    end = html_text.index("</script>", start)
    d = json.loads(html_text[start:end])
    T = len(d["tokens"])
    for layer in d["layers"]:
        layer["values"] = dequantise(layer["data"], layer["scale"], (T, layer["units"]))
    return d


def render_html(data: ReportData, options: ReportOptions | None = None) -> str:
    """The whole page as one string."""
    return render_page(data, payload(data, options or ReportOptions()), FORMAT)
