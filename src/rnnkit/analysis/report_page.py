"""The HTML page of ``rnnkit report``: layout, style, script, and the inline SVG charts (data: :mod:`.report_data`).

Everything is inline, so the file needs nothing but itself: the page's script reads the JSON payload that
:func:`rnnkit.analysis.report_data.payload` builds from a :class:`~rnnkit.analysis.report_data.ReportData`.
"""
from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from .report_data import AttentionMap, ReportData


def _json_for_script(obj) -> str:
    """JSON that can sit inside a <script> element: no '<' (so no '</script>' or '<!--') survives."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --------------------------------------------------------------------------------------------- SVG charts

def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def svg_chart(series: list[tuple[str, list, list]], xlabel: str, ylabel: str, width: int = 640,
              height: int = 300) -> str:
    """A line chart as inline SVG: ``series`` of ``(label, xs, ys)``; points are drawn for short series."""
    series = [(label, list(xs), list(ys)) for label, xs, ys in series if len(xs)]
    if not series:
        return ""
    xs_all = [x for _, xs, _ in series for x in xs]
    ys_all = [y for _, _, ys in series for y in ys if math.isfinite(y)]
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = (min(ys_all), max(ys_all)) if ys_all else (0.0, 1.0)
    if x1 == x0:
        x1 = x0 + 1
    pad = 0.05 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad
    L, R, T, B = 60, 15, 15, 45
    W, H = width - L - R, height - T - B
    def sx(x):
        return L + (x - x0) / (x1 - x0) * W
    def sy(y):
        return T + (1 - (y - y0) / (y1 - y0)) * H
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(ylabel)} against {html.escape(xlabel)}">',
             f'<rect x="{L}" y="{T}" width="{W}" height="{H}" fill="#fff" stroke="#bbb"/>']
    for y in _ticks(y0, y1):
        parts.append(f'<line x1="{L}" x2="{L + W}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>'
                     f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" class="tick">{y:.4g}</text>')
    for x in _ticks(x0, x1):
        parts.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{T}" y2="{T + H}" stroke="#eee"/>'
                     f'<text x="{sx(x):.1f}" y="{T + H + 16}" text-anchor="middle" class="tick">{x:.6g}</text>')
    for i, (label, xs, ys) in enumerate(series):
        c = colours[i % len(colours)]
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys) if math.isfinite(y))
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{pts}"/>')
        if len(xs) <= 40:
            parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{c}"/>'
                      for x, y in zip(xs, ys) if math.isfinite(y)]
        parts.append(f'<rect x="{L + 10}" y="{T + 8 + 16 * i}" width="12" height="3" fill="{c}"/>'
                     f'<text x="{L + 27}" y="{T + 13 + 16 * i}" class="legend">{html.escape(label)}</text>')
    parts.append(f'<text x="{L + W / 2}" y="{height - 8}" text-anchor="middle" class="axis">'
                 f'{html.escape(xlabel)}</text>'
                 f'<text transform="translate(14 {T + H / 2}) rotate(-90)" text-anchor="middle" class="axis">'
                 f'{html.escape(ylabel)}</text></svg>')
    return "".join(parts)


def curves_html(data: ReportData) -> str:
    train = [(r["step"], r["loss"]) for r in data.metrics if r.get("kind") == "train" and "loss" in r]
    evals = [(r["step"], r["loss"]) for r in data.metrics if r.get("kind") == "eval" and "loss" in r]
    series = [(name, [p[0] for p in pts], [p[1] for p in pts])
              for name, pts in (("training loss", train), ("validation loss", evals)) if pts]
    if series:
        return svg_chart(series, "step", "loss (nats per token)")
    if data.curves_png:
        b64 = base64.b64encode(data.curves_png).decode("ascii")
        return f'<img alt="training curves" src="data:image/png;base64,{b64}">'
    return "<p class=\"muted\">This run has no training metrics.</p>"


def svg_heatmap(amap: AttentionMap, cell: int = 16) -> str:
    """An attention map as inline SVG: rows = outputs, columns = inputs, darker = more weight."""
    w = np.asarray(amap.weights, dtype=np.float64)
    rows, cols = amap.rows[: w.shape[0]], amap.cols[: w.shape[1]]
    left, top = 90, 70
    width, height = left + cell * w.shape[1] + 10, top + cell * w.shape[0] + 10
    peak = float(w.max()) if w.size and w.max() > 0 else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="attention" width="{width}" height="{height}">']
    for j, c in enumerate(cols):
        x = left + j * cell + cell / 2
        parts.append(f'<text transform="translate({x:.1f} {top - 6}) rotate(-60)" class="tick">'
                     f'{html.escape(c)}</text>')
    for i, r in enumerate(rows):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell * 0.72:.1f}" text-anchor="end" class="tick">'
                     f'{html.escape(r)}</text>')
        for j in range(len(cols)):
            a = w[i, j] / peak
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                         f'fill="rgba(49,54,149,{a:.3f})" stroke="#eee"><title>{html.escape(r)} → '
                         f'{html.escape(cols[j])}: {w[i, j]:.3f}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------- page

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:12px 20px}header h1{font-size:18px;margin:0}
main{padding:12px 20px;max-width:1200px}section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:12px 0}
h2{font-size:15px;margin:0 0 8px}.muted{color:#777}table.info td{padding:1px 10px 1px 0}table.info td:first-child{color:#666}
.controls{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin-bottom:8px}
.controls label{color:#555}select,input,button{font:inherit}
#text{font:13px/1.6 "DejaVu Sans Mono",Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all;
max-height:480px;overflow:auto;border:1px solid #eee;padding:8px}
#text span{cursor:default}#text span.nl{color:#bbb}#text span.hover{outline:1px solid #000}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #999;border-radius:4px;padding:6px 8px;
font-size:12px;box-shadow:0 2px 6px rgba(0,0,0,.2);display:none;min-width:160px;z-index:5}
#tip .bar{display:inline-block;height:8px;background:#1f77b4;vertical-align:middle;margin-right:4px}
#tip code,.pred code{background:#f3f3f3;padding:0 3px}
#correlated li{margin:2px 0}#correlated button{border:none;background:none;color:#1565c0;cursor:pointer;padding:0;text-align:left}
.legend-bar{display:inline-block;width:160px;height:10px;vertical-align:middle;
background:linear-gradient(90deg,rgb(31,119,180),#fff,rgb(214,39,40))}
svg text.tick{font-size:10px;fill:#555}svg text.axis{font-size:12px;fill:#333}svg text.legend{font-size:11px}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("rnnkit-data").textContent);
  function decode(b64) {
    var bin = atob(b64), a = new Int8Array(bin.length);
    for (var i = 0; i < bin.length; i++) a[i] = (bin.charCodeAt(i) << 24) >> 24;
    return a;
  }
  var layers = D.layers.map(function (l) {
    return {name: l.name, units: l.units, scale: l.scale, q: decode(l.data)};
  });
  var T = D.tokens.length;
  var box = document.getElementById("text"), tip = document.getElementById("tip");
  var layerSel = document.getElementById("layer"), unitSel = document.getElementById("unit");
  var featureSel = document.getElementById("feature"), list = document.getElementById("correlated");
  var spans = [];
  function shown(tok) {
    if (tok === "\n" || tok === "<eos>") return "\u21b5";
    if (tok === "\t") return "\u2192   ";
    return D.level === "word" ? tok + " " : tok;
  }
  function printable(tok) {
    if (tok === "\n") return "\\n";
    if (tok === "\t") return "\\t";
    if (tok === " ") return "\u2423";
    return tok;
  }
  var frag = document.createDocumentFragment();
  D.tokens.forEach(function (tok, i) {
    var s = document.createElement("span");
    s.textContent = shown(tok);
    s.setAttribute("data-i", i);
    if (tok === "\n" || tok === "<eos>") {
      s.className = "nl";
      frag.appendChild(s);
      frag.appendChild(document.createElement("br"));
    } else {
      frag.appendChild(s);
    }
    spans.push(s);
  });
  box.appendChild(frag);

  layers.forEach(function (l, k) {
    var o = document.createElement("option");
    o.value = k; o.textContent = l.name + " (" + l.units + " units)";
    layerSel.appendChild(o);
  });
  function fillUnits() {
    var l = layers[+layerSel.value];
    unitSel.innerHTML = "";
    for (var u = 0; u < l.units; u++) {
      var o = document.createElement("option");
      o.value = u; o.textContent = "unit " + u;
      unitSel.appendChild(o);
    }
  }
  function value(k, u, i) {
    var l = layers[k];
    return l.q[i * l.units + u] / 127 * l.scale;
  }
  function colour(v) {
    var a = Math.min(1, Math.abs(v));
    var c = v >= 0 ? [214, 39, 40] : [31, 119, 180];
    var mix = function (x) { return Math.round(255 + (x - 255) * a); };
    return "rgb(" + mix(c[0]) + "," + mix(c[1]) + "," + mix(c[2]) + ")";
  }
  function paint() {
    var k = +layerSel.value, u = +unitSel.value, l = layers[k];
    var norm = l.scale > 1 ? l.scale : 1;
    for (var i = 0; i < T; i++) spans[i].style.backgroundColor = colour(value(k, u, i) / norm);
    document.getElementById("current").textContent = l.name + ", unit " + u;
  }
  function pick(k, u) {
    layerSel.value = k; fillUnits(); unitSel.value = u; paint();
  }
  layerSel.addEventListener("change", function () { fillUnits(); paint(); });
  unitSel.addEventListener("change", paint);
  document.getElementById("prev").addEventListener("click", function () {
    var u = +unitSel.value; if (u > 0) { unitSel.value = u - 1; paint(); }
  });
  document.getElementById("next").addEventListener("click", function () {
    var u = +unitSel.value; if (u < layers[+layerSel.value].units - 1) { unitSel.value = u + 1; paint(); }
  });

  (D.features || []).forEach(function (f) {
    var o = document.createElement("option"); o.value = f; o.textContent = f; featureSel.appendChild(o);
  });
  function showCorrelated() {
    list.innerHTML = "";
    var rows = (D.correlated || {})[featureSel.value] || [];
    rows.forEach(function (r) {
      var li = document.createElement("li"), b = document.createElement("button");
      b.textContent = layers[r.layer].name + ", unit " + r.unit + ": r = " + (r.r >= 0 ? "+" : "") + r.r.toFixed(3);
      b.addEventListener("click", function () { pick(r.layer, r.unit); });
      li.appendChild(b); list.appendChild(li);
    });
    if (!rows.length) list.innerHTML = "<li class='muted'>this feature does not vary over the text shown</li>";
  }
  featureSel.addEventListener("change", showCorrelated);

  var P = D.predictions;
  box.addEventListener("mouseover", function (e) {
    var s = e.target.closest ? e.target.closest("span[data-i]") : null;
    if (!s) return;
    var i = +s.getAttribute("data-i"), k = +layerSel.value, u = +unitSel.value;
    var html = "<div><b>" + escapeHtml(printable(D.tokens[i])) + "</b> (token " + i + ")</div>" +
      "<div>" + escapeHtml(layers[k].name) + ", unit " + u + ": " + value(k, u, i).toFixed(3) + "</div>";
    if (P) {
      html += "<div class='muted'>next token:</div>";
      P.ids[i].forEach(function (id, j) {
        var p = P.probs[i][j] / 10;
        html += "<div class='pred'><span class='bar' style='width:" + Math.max(1, 1.2 * p) + "px'></span><code>" +
          escapeHtml(printable(P.vocab[id])) + "</code> " + p.toFixed(1) + "%</div>";
      });
    }
    tip.innerHTML = html;
    tip.style.display = "block";
    s.classList.add("hover");
  });
  box.addEventListener("mouseout", function (e) {
    var s = e.target.closest ? e.target.closest("span[data-i]") : null;
    if (s) s.classList.remove("hover");
    tip.style.display = "none";
  });
  box.addEventListener("mousemove", function (e) {
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 220) + "px";
    tip.style.top = (e.clientY + 16) + "px";
  });
  function escapeHtml(t) {
    return String(t).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  if (layers.length) {
    var first = D.correlated && D.features && (D.correlated[D.features[0]] || [])[0];
    if (first) pick(first.layer, first.unit); else { layerSel.value = 0; fillUnits(); paint(); }
    showCorrelated();
  }
  document.body.setAttribute("data-ready", "1");
})();
"""


def render_page(data: ReportData, payload: dict, fmt: str) -> str:
    """The whole page as one string: ``payload`` is the JSON its script reads, ``fmt`` the report format."""
    esc = html.escape
    info = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>" for k, v in data.info.items()
                   if v is not None)
    notes = "".join(f"<p class='muted'>{esc(n)}</p>" for n in data.notes)
    attention = ""
    if data.attention:
        maps = "".join(f"<h3>{esc(a.title)}</h3>{svg_heatmap(a)}" for a in data.attention)
        attention = f"<section id='attention'><h2>Attention</h2>{maps}</section>"
    hover = ("hover a token to see the unit's value and the model's top predictions for the next token"
             if data.top_ids is not None else "hover a token to see the unit's value")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rnnkit report ({fmt})">
<link rel="icon" href="data:,">
<title>{esc(data.title)}</title>
<style>{STYLE}</style></head>
<body>
<header><h1>{esc(data.title)}</h1></header>
<main>
<section id="run"><h2>Run</h2><table class="info">{info}</table>{notes}</section>
<section id="units"><h2>Activations: <span id="current"></span></h2>
<div class="controls">
<label for="layer">layer</label><select id="layer"></select>
<label for="unit">unit</label><select id="unit"></select>
<button id="prev" type="button">&larr; previous</button><button id="next" type="button">next &rarr;</button>
<span class="muted">&minus;1 <span class="legend-bar"></span> +1</span>
</div>
<p class="muted">Each token is coloured by the chosen unit's value after reading it; {hover}.</p>
<div id="text"></div>
</section>
<section id="features"><h2>Units most correlated with a feature of the text</h2>
<div class="controls"><label for="feature">feature</label><select id="feature"></select>
<span class="muted">Pearson's r over the tokens shown; click a unit to colour the text by it.</span></div>
<ol id="correlated"></ol>
</section>
<section id="curves"><h2>Training curves</h2>{curves_html(data)}</section>
{attention}
</main>
<div id="tip"></div>
<script type="application/json" id="rnnkit-data">{_json_for_script(payload)}</script>
<script>{SCRIPT}</script>
</body></html>
"""
