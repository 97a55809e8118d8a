"""What ``rnnkit report`` shows (:class:`ReportData`) and how the page carries it: JSON with int8 activations.

**Embedded data.** ``<script type="application/json" id="rnnkit-data">``: each layer's (T, H) values as int8
(``round(v / scale * 127)``, row-major, base64) with its ``scale`` — colours need no more, and the file stays
small; :func:`read_report_data` decodes them again (the tests compare them with the model's states).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import numpy as np

from .activations import FEATURES, most_correlated, text_features

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
    """Everything a report shows (who fills what: :mod:`rnnkit.analysis.report`)."""

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
    """How much to show: tokens of the text, next-token predictions per token, correlated units per feature."""

    max_tokens: int = 2000
    top_k: int = 5
    correlated: int = 10


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
