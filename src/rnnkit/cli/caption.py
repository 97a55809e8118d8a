"""``rnnkit caption RUN IMAGE [IMAGE ...]``: print a caption for each image, one line each (``path<TAB>caption``).

Greedy search by default, beam search with ``--beam K`` (both from :mod:`rnnkit.decoding.beam`). For a model
trained with ``--attention``, ``--attention-plot DIR`` writes ``DIR/<image>.png``: the image, then the image
under each generated word with that step's attention weights overlaid.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..data.images import load_image
from ..decoding.beam import Hypothesis
from ..tasks.captioning import generate, load_captioner, words
from ..training.plots import save_figure
from ..training.trainer import resolve_device
from .errors import OptionError
from .options import Option, add_options
from .ranges import HelpFormatter, non_negative_float, optional, out_path, positive_int

OPTIONS = [
    Option("--beam", 1, "beam size (1: greedy search)", type=positive_int),
    Option("--alpha", 0.0, "beam search length penalty exponent (Wu et al.; 0: plain log-probability)",
           type=non_negative_float),
    Option("--max-length", None, "words generated at most; none: the run's",
           type=optional(positive_int, "the run's", zero=True)),
    Option("--attention-plot", None, "attention models: write DIR/<image>.png with each word's attention",
           type=out_path),
    Option("--device", "cpu", "device", choices=("cpu", "cuda")),
]


def add_parser(sub) -> None:
    p = sub.add_parser("caption", help="caption images with a trained captioner",
                       formatter_class=HelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder written by `rnnkit train caption`")
    p.add_argument("images", nargs="+", help="image files (anything Pillow reads)")
    add_options(p, "captioning", OPTIONS)
    p.set_defaults(run_command=run)


def plot_attention(image: torch.Tensor, hypothesis: Hypothesis, tokenizer, path: Path) -> None:
    """The uint8 image (3, S, S), then one panel per generated word with its attention overlaid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    steps = hypothesis.trace                              # (words (+ <eos>), cells)
    side = int(round(steps.shape[1] ** 0.5))
    labels = [tokenizer.vocab[i] for i in hypothesis.tokens] + (["<eos>"] if hypothesis.finished else [])
    picture = image.permute(1, 2, 0).numpy()
    cols = min(6, len(labels) + 1)
    rows = -(-(len(labels) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(picture)
    axes.flat[0].set_title("image", fontsize=9)
    for k, word in enumerate(labels):
        weights = steps[k].float().view(1, 1, side, side)
        up = F.interpolate(weights, size=picture.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        ax = axes.flat[k + 1]
        ax.imshow(picture)
        ax.imshow(up.numpy(), cmap="gray", alpha=0.6)
        ax.set_title(word, fontsize=9)
    save_figure(fig, path, dpi=80)


def run(args: argparse.Namespace) -> int:
    o = {opt.dest: (getattr(args, opt.dest) if getattr(args, opt.dest) is not None else opt.default)
         for opt in OPTIONS}
    device = resolve_device(o["device"])
    model, tokenizer, config = load_captioner(args.run, device)
    if o["attention_plot"] and not model.has_attention:
        raise OptionError(f"{args.run} was trained without attention (--attention none): nothing to plot",
                          "--attention-plot")
    if o["attention_plot"]:
        from ..training.atomic import check_writable
        check_writable(o["attention_plot"], folder=True)      # before captioning: one line, at once
    size = model.config.image_size
    images = torch.stack([load_image(path, size) for path in args.images])
    hyps = generate(model, images, tokenizer, beam=o["beam"], alpha=o["alpha"], max_len=o["max_length"],
                    device=device, trace=bool(o["attention_plot"]))
    stems = [Path(path).stem for path in args.images]
    unique = len(set(stems)) == len(stems)             # else a.png and a.jpg (or two folders' a) would share a plot
    for i, (path, image, hyp) in enumerate(zip(args.images, images, hyps)):
        print(f"{path}\t{words(tokenizer, hyp)}", flush=True)
        if o["attention_plot"]:
            name = f"{stems[i]}.png" if unique else f"{i + 1:03d}_{stems[i]}.png"
            plot_attention(image, hyp, tokenizer, Path(o["attention_plot"]) / name)
    return 0
