"""``rnnkit translate RUN "text" ...``: translate sentences with a trained seq2seq run, one output line each.

Sentences come from the command line or from ``--file`` (one per line, lines ending at ``\\n`` only, as in the
training files). ``--beam 1`` is greedy search; ``--attention-plot out.png`` (or .pdf, .svg, ...) draws the
attention weights of the first sentence as a heatmap, the source tokens (as the encoder read them: reversed for
a run trained with --reverse-source) on the x axis and the output tokens on the y axis.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data import DataError, read_text
from ..data.parallel import text_lines
from ..tasks.seq2seq import Translation, decoding_alpha, load_seq2seq, translate
from ..training.plots import save_figure
from .errors import OptionError
from .ranges import figure_path, non_negative_float, optional, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("translate", help="translate sentences with a seq2seq run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder written by `rnnkit train seq2seq`")
    p.add_argument("text", nargs="*", help="sentences to translate (or give --file)")
    p.add_argument("--file", default=None, help="translate every line of this UTF-8 file")
    p.add_argument("--beam", type=positive_int, default=5, help="beam size (1: greedy search)")
    p.add_argument("--length-penalty", type=optional(non_negative_float, "the run's"), default=None,
                   help="beam search length penalty alpha; None: the run's --length-penalty")
    p.add_argument("--max-len", type=optional(positive_int, "2 x source tokens + 10"), default=None,
                   help="most tokens to generate per sentence; None: 2 x source tokens + 10")
    p.add_argument("--n-best", type=positive_int, default=1,
                   help="print this many translations per sentence (<= beam)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sentences decoded together")
    p.add_argument("--attention-plot", type=figure_path, default=None, metavar="FILE",
                   help="write the first sentence's attention weights as a heatmap to this image file (a PNG "
                        "unless its suffix names another format)")
    p.add_argument("--scores", action="store_true", help="print each translation's score before it")
    p.set_defaults(run_command=run, more_texts="text")


def plot_attention(t: Translation, path: str | Path, title: str = "") -> Path:
    """A heatmap of ``t.attention`` (output steps x source steps) with the tokens on the axes."""
    if t.attention is None:
        raise OptionError("this run has no attention (trained with --attention none): nothing to plot",
                          "--attention-plot")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = t.attention.float().numpy()
    rows, cols = weights.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * cols + 2), max(3.0, 0.4 * rows + 1.5)))
    im = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols))
    def shown(symbols):
        return [s if s.strip() else "\u2423" for s in symbols]         # a visible space: ␣
    ax.set_xticklabels(shown(t.src_symbols[:cols]), rotation=60, ha="right")
    ax.set_yticks(range(rows))
    ax.set_yticklabels(shown(t.tgt_symbols[:rows]))
    ax.set_xlabel("source (as the encoder read it)")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    path = Path(path)
    save_figure(fig, path, dpi=110)
    return path


def _sentences(args: argparse.Namespace) -> list[str]:
    if args.file and args.text:
        raise OptionError("give sentences on the command line or --file, not both")
    if args.file:
        lines = [line.strip() for line in text_lines(read_text(args.file))]     # as training and eval read them
        empty = [i + 1 for i, line in enumerate(lines) if not line]
        if empty:
            raise DataError(f"{len(empty)} empty line(s), e.g. line {empty[0]}; one sentence per line", args.file)
        return lines
    if not args.text:
        raise OptionError("nothing to translate: give sentences or --file FILE")
    empty = [s for s in args.text if not s.strip()]
    if empty:
        raise OptionError("an empty sentence cannot be translated")
    return list(args.text)


def _check(args: argparse.Namespace) -> None:
    """What the options' ranges (checked as they are parsed) can't say alone."""
    if args.n_best > args.beam:
        raise OptionError(f"--n-best must be between 1 and --beam ({args.beam}), got {args.n_best}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.attention_plot:
        from ..training.atomic import check_writable
        check_writable(args.attention_plot)                   # before translating: one line, at once
    sentences = _sentences(args)
    model, src_tok, tgt_tok, config = load_seq2seq(args.run)
    if args.attention_plot and model.attention is None:                 # before translating: nothing to plot
        raise OptionError(f"{args.run} was trained without attention (--attention none): nothing to plot",
                          "--attention-plot")
    alpha = args.length_penalty if args.length_penalty is not None else decoding_alpha(config)
    results = translate(model, src_tok, tgt_tok, sentences, beam=args.beam, alpha=alpha, max_len=args.max_len,
                        batch_size=args.batch_size, with_attention=bool(args.attention_plot),
                        source=args.file or "command line", n_best=args.n_best)
    out = sys.stdout
    for hyps in results:
        for h in hyps:
            out.write((f"{h.score:.4f}\t" if args.scores else "") + h.text + "\n")
    out.flush()
    if args.attention_plot:
        path = plot_attention(results[0][0], args.attention_plot, title=f"{sentences[0]}  ->  {results[0][0].text}")
        print(f"rnnkit: attention heatmap written to {path}", file=sys.stderr)
    return 0
