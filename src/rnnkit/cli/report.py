"""``rnnkit report RUN --text FILE --out report.html``: one self-contained HTML page of what the network learnt.

The text is fed to the trained model; the page colours it token by token by any hidden unit's activation (pick a
layer and a unit), lists the units most correlated with simple features of the text (inside quotes, line
position, inside brackets), shows the model's top next-token predictions on hover, the training curves, and
attention maps for runs that have them. The file needs no network and no other file to be viewed.
Language-model runs are supported (what another task would fill in: :mod:`rnnkit.analysis.report`).
"""
from __future__ import annotations

import argparse
import sys

from ..data import read_text
from .ranges import out_path, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="an interactive HTML report of a trained run's hidden units",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder")
    p.add_argument("--text", required=True, help="UTF-8 text file to run the model on")
    p.add_argument("--out", type=out_path, default="report.html", help="HTML file to write")
    p.add_argument("--max-tokens", type=positive_int, default=2000, help="use at most this many tokens of the text")
    p.add_argument("--top-k", type=positive_int, default=5, help="next-token predictions shown on hover")
    p.add_argument("--correlated", type=positive_int, default=10, help="units listed per feature")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.report import ReportOptions, build_report
    from ..training.atomic import check_writable
    check_writable(args.out)                      # before the work: an unwritable --out is one line, at once
    text = read_text(args.text)
    out = build_report(args.run, text, args.out, ReportOptions(args.max_tokens, args.top_k, args.correlated))
    size = out.stat().st_size
    print(f"report: {out} ({size / 1024:,.0f} KiB, self-contained; open it in a browser)", file=sys.stderr)
    return 0
