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

**Data contract.** A report is built from a :class:`~rnnkit.analysis.report_data.ReportData`; a language-model
run (task ``"lm"``) fills it in :func:`collect_lm`, and other tasks have no report yet. Data of a seq2seq or
classification run would fill ``tokens`` (the source text's tokens), ``layers`` (the encoder's states per token),
and ``attention`` (:class:`~rnnkit.analysis.report_data.AttentionMap`: target tokens × source tokens, rows
summing to 1), ``top_ids``/``top_probs`` staying ``None`` without a next-token prediction; the page draws them.
How the data sits in the page: :mod:`.report_data`.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..data import DataError
from ..training.atomic import write_text
from ..training.checkpoint import locate_config
from ..training.plots import read_metrics
from .activations import lm_activations
from .report_data import (FORMAT, AttentionMap, ReportData, ReportOptions, dequantise, payload, quantise,
                          read_report_data)
from .report_page import render_page

__all__ = ["AttentionMap", "ReportData", "ReportOptions", "build_report", "collect_lm", "dequantise", "payload",
           "quantise", "read_report_data", "render_html"]


# --------------------------------------------------------------------------------------------- language model

def collect_lm(run_dir: Path, text: str, options: ReportOptions) -> ReportData:
    """A character- or word-level language model run: all layers' states and next-token predictions."""
    from ..tasks.language_modeling import load_lm
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


def build_report(run_dir: str | Path, text: str, out: str | Path, options: ReportOptions | None = None) -> Path:
    """Read the run, collect its data for ``text`` and write the HTML file ``out``."""
    options = options or ReportOptions()
    run_dir = Path(run_dir)
    config, where = locate_config(run_dir)
    if config.get("task") != "lm":
        raise DataError(f"no report for task {config.get('task')!r} yet: rnnkit report reads language-model runs "
                        f"(task 'lm')", where)
    data = collect_lm(run_dir, text, options)
    write_text(out, render_html(data, options))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)              # a page to share, not a private temporary file
    return Path(out)


def render_html(data: ReportData, options: ReportOptions | None = None) -> str:
    """The whole page as one string."""
    return render_page(data, payload(data, options or ReportOptions()), FORMAT)
