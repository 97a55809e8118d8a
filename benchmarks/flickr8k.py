"""Real photographs: BLEU-4 on flickr8k_mini's 50 validation images, against a nearest-neighbour baseline.

Target (issue 7): report BLEU-4 on the 50 validation images next to a baseline that returns the training
caption of the nearest training image by colour histogram; the model must beat it. (Published Flickr8k BLEU-4:
19.5 with all 6,000 training images and an ImageNet-pretrained CNN; here 300 images and a CNN from scratch.)

* Model: ``rnnkit train caption --preset flickr8k-mini`` on ``train_captions.txt`` (the last 10% of its 300
  images held out to pick the best checkpoint: the 50 validation images are never seen before the test).
* Baseline: each image as a joint RGB histogram (8 bins per channel, 512 bins, normalised); a validation image
  gets caption #0 of the training image at the smallest L1 distance (all 300 training images).
* Both are scored the same way: sacrebleu corpus BLEU against all 5 references, lower-cased words without
  punctuation (:func:`rnnkit.tasks.captioning.bleu_scores`).

::

    python benchmarks/flickr8k.py                      # the preset, 15-minute budget
    python benchmarks/flickr8k.py --minutes 3 -- --attention bahdanau

Appends a report to ``benchmarks/results/flickr8k-<date>.log``. The machine is shared: wall-clock times are
pessimistic; the log records the process CPU time and the load average too.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from common import DATA, add_run_options, here_header, missing, parser, run_here, run_paths, save_report
from rnnkit.cli.caption import load_captioner
from rnnkit.data.images import load_caption_set, load_images
from rnnkit.tasks.captioning import CaptionSet, bleu_scores, evaluate_captions, exact_match


def colour_histograms(images: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """uint8 (N, 3, H, W) → (N, bins³) joint RGB histograms, each summing to 1."""
    q = (images.long() * bins) // 256                                  # (N, 3, H, W) in 0..bins-1
    index = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]                 # (N, H, W)
    hist = torch.zeros(images.shape[0], bins ** 3)
    hist.scatter_add_(1, index.flatten(1), torch.ones(index.flatten(1).shape))
    return hist / hist.sum(1, keepdim=True)


def nearest_histogram_captions(train: CaptionSet, test: CaptionSet) -> list[str]:
    """For each test image, caption #0 of the training image with the nearest colour histogram (L1)."""
    distances = torch.cdist(colour_histograms(test.images), colour_histograms(train.images), p=1)
    return [train.captions[int(j)][0] for j in distances.argmin(1)]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, minutes=15.0, budget="training time budget, wall clock")
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default: %(default)s)")
    p.add_argument("--data", type=Path, default=(DATA / "flickr8k_mini").resolve(),
                   help="flickr8k_mini folder (default: %(default)s)")
    add_run_options(p, "flickr8k", "caption")
    args = p.parse_args(argv)
    if missing(args.data / "train_captions.txt", "flickr8k"):
        return 2
    now, out, log = run_paths("flickr8k", args.out, args.log)
    torch.set_num_threads(args.threads)
    cli = ["train", "caption", "--preset", "flickr8k-mini", "--images", str(args.data / "images"),
           "--captions", str(args.data / "train_captions.txt"), "--train-list", str(args.data / "train_images.txt"),
           "--out", str(out), "--minutes", str(args.minutes), "--seed", "0", "--quiet", "--threads",
           str(args.threads), *args.cli_args]
    train = run_here(cli, "flickr8k")
    if train.returncode != 0:
        return train.returncode

    model, tokenizer, config = load_captioner(out)
    size = model.config.image_size

    def load(captions: str, images_list: str, px: int) -> CaptionSet:
        items = load_caption_set(args.data / "images", args.data / captions, image_list=args.data / images_list)
        pixels, items = load_images(items, px)
        return CaptionSet.from_raw(pixels, [i.captions for i in items], [i.name for i in items])

    valid = load("val_captions.txt", "val_images.txt", size)
    results = {f"beam {k}": evaluate_captions(model, valid, tokenizer, beam=k) for k in (1, 3)}
    baseline_hyps = nearest_histogram_captions(load("train_captions.txt", "train_images.txt", 224),
                                               load("val_captions.txt", "val_images.txt", 224))
    baseline = {**bleu_scores(baseline_hyps, valid.captions), "exact": exact_match(baseline_hyps, valid.captions)}
    from rnnkit.tasks.captioning import generate, words
    samples = [words(tokenizer, h) for h in generate(model, valid.images[:5], tokenizer, beam=3)]
    best = max(r["bleu4"] for r in results.values())
    status = "PASS" if results["beam 1"]["bleu4"] > baseline["bleu4"] else "FAIL"

    def fmt(m: dict) -> str:
        return (f"BLEU-1 {m['bleu1']:.2f}, BLEU-2 {m['bleu2']:.2f}, BLEU-3 {m['bleu3']:.2f}, "
                f"BLEU-4 {m['bleu4']:.2f}")

    lines = [
        *here_header(f"flickr8k_mini captioning benchmark {now:%Y-%m-%d %H:%M:%S}", "flickr8k.py", argv, cli,
                     train, args.threads),
        f"model: {json.dumps(config['model'])}",
        f"data: {config['data']['description']}; vocabulary {tokenizer.vocab_size}",
        f"training: best checkpoint at step {config['step']} (epoch {config['epoch']}), held-out BLEU-4 "
        f"{config['metrics']['bleu4']:.2f}; wall {train.wall / 60:.1f} min, process CPU {train.cpu / 60:.1f} min",
        f"validation, {len(valid)} images x 5 references:",
        *(f"  model, {k}: {fmt(m)}; loss {m['loss']:.3f} nats/word" for k, m in results.items()),
        f"  baseline, nearest colour histogram (224 px, L1, 8^3 bins, caption #0 of the nearest of the 300 "
        f"training images): {fmt(baseline)}",
        "samples (beam 3): " + " | ".join(f"{n}: {s}" for n, s in zip(valid.names[:5], samples)),
        f"result: {status} (greedy BLEU-4 {results['beam 1']['bleu4']:.2f} vs baseline {baseline['bleu4']:.2f}; "
        f"best {best:.2f})",
    ]
    save_report(log, lines, record={
        "date": now.isoformat(timespec="seconds"), "model": results, "baseline": baseline, "train_wall_s": train.wall,
        "train_cpu_s": train.cpu, "cli": cli, "status": status})
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
