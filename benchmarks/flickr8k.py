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

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.cli.caption import load_captioner  # noqa: E402
from rnnkit.cli.main import main as rnnkit  # noqa: E402
from rnnkit.data.images import load_caption_set, load_images  # noqa: E402
from rnnkit.tasks.captioning import CaptionSet, bleu_scores, evaluate_captions, exact_match  # noqa: E402

DATA = (ROOT / ".." / "shared" / "data" / "flickr8k_mini").resolve()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=15.0, help="training time budget, wall clock (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default: %(default)s)")
    p.add_argument("--data", type=Path, default=DATA, help="flickr8k_mini folder (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/flickr8k-bench-<time>)")
    p.add_argument("--log", type=Path, default=None,
                   help="report file (default: benchmarks/results/flickr8k-<date>.log, appended)")
    p.add_argument("cli_args", nargs="*", help="extra options for `rnnkit train caption` (after --)")
    args = p.parse_args(argv)
    if not (args.data / "train_captions.txt").is_file():
        print(f"flickr8k benchmark: {args.data}/train_captions.txt not found", file=sys.stderr)
        return 2
    now = dt.datetime.now()
    out = args.out or ROOT / "runs" / f"flickr8k-bench-{now:%Y%m%d-%H%M%S}"
    log = args.log or ROOT / "benchmarks" / "results" / f"flickr8k-{now:%Y-%m-%d}.log"
    torch.set_num_threads(args.threads)
    cli = ["train", "caption", "--preset", "flickr8k-mini", "--images", str(args.data / "images"),
           "--captions", str(args.data / "train_captions.txt"), "--train-list", str(args.data / "train_images.txt"),
           "--out", str(out), "--minutes", str(args.minutes), "--seed", "0", "--quiet", "--threads",
           str(args.threads), *args.cli_args]
    load_start = os.getloadavg()
    wall0, cpu0 = time.monotonic(), time.process_time()
    code = rnnkit(cli)
    train_wall, train_cpu = time.monotonic() - wall0, time.process_time() - cpu0
    if code != 0:
        print(f"flickr8k benchmark: training failed (exit {code})", file=sys.stderr)
        return code

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
    fmt = lambda m: (f"BLEU-1 {m['bleu1']:.2f}, BLEU-2 {m['bleu2']:.2f}, BLEU-3 {m['bleu3']:.2f}, "
                     f"BLEU-4 {m['bleu4']:.2f}")
    lines = [
        f"=== flickr8k_mini captioning benchmark {now:%Y-%m-%d %H:%M:%S} (git {_git('rev-parse', '--short', 'HEAD')}) ===",
        f"command: python benchmarks/flickr8k.py {' '.join(argv if argv is not None else sys.argv[1:])}",
        f"cli: rnnkit {' '.join(cli)}",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} threads; load average at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f} "
        f"(shared machine: wall-clock times are pessimistic)",
        f"model: {json.dumps(config['model'])}",
        f"data: {config['data']['description']}; vocabulary {tokenizer.vocab_size}",
        f"training: best checkpoint at step {config['step']} (epoch {config['epoch']}), held-out BLEU-4 "
        f"{config['metrics']['bleu4']:.2f}; wall {train_wall / 60:.1f} min, process CPU {train_cpu / 60:.1f} min",
        f"validation, {len(valid)} images x 5 references:",
        *(f"  model, {k}: {fmt(m)}; loss {m['loss']:.3f} nats/word" for k, m in results.items()),
        f"  baseline, nearest colour histogram (224 px, L1, 8^3 bins, caption #0 of the nearest of the 300 "
        f"training images): {fmt(baseline)}",
        "samples (beam 3): " + " | ".join(f"{n}: {s}" for n, s in zip(valid.names[:5], samples)),
        f"result: {status} (greedy BLEU-4 {results['beam 1']['bleu4']:.2f} vs baseline {baseline['bleu4']:.2f}; "
        f"best {best:.2f})",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(log.with_suffix(".jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"date": now.isoformat(timespec="seconds"), "model": results, "baseline": baseline,
                            "train_wall_s": train_wall, "train_cpu_s": train_cpu, "cli": cli,
                            "status": status}) + "\n")
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
