"""``rnnkit train caption``: a CNN encoder gives an LSTM/GRU decoder its first state; the decoder is fed its
previous word. Data from an image folder and a captions file (Flickr8k ``name.jpg#n<TAB>caption`` or COCO
JSON), or ``--dataset shapes`` (synthetic scenes, no files needed)::

    rnnkit train caption --preset shapes --out runs/shapes
    rnnkit train caption --preset flickr8k-mini --images DIR/images --captions DIR/train_captions.txt \\
        --valid-captions DIR/val_captions.txt --out runs/flickr

Without ``--valid-captions`` or ``--valid-list`` the last 10% of the images are held out for validation.
"""
from __future__ import annotations

import argparse
import sys

from ..cells.spec import CELL_NAMES
from ..data import DataError, tokenizer_from_dict
from ..engine.resolve import ENGINES
from ..data.images import load_caption_set, load_images
from ..data.shapes import make_shapes
from ..models.captioner import ATTENTIONS, ENCODERS, CaptionConfig, CaptionModel
from ..tasks.captioning import CaptionSet, CaptionTask, build_caption_tokenizer
from ..training import TrainConfig, Trainer, seed_everything
from . import options
from .errors import OptionError
from .options import ENGINE_HELP, TRAIN_KEYS, TRAINER, Option, add_options, torch_threads
from .ranges import (IntList, dropout_rate, finite_float, integer, optional, positive_float, positive_int,
                     seed_int)
from ..training.resuming import resumed
from .training_run import check_engine_device, count_parameters, run_vocabulary, train_and_report, training_device


int_list = IntList(1)        # --widths: comma-separated channel counts, each >= 1


DATA = [
    Option("--images", None, "folder of the training images"),
    Option("--captions", None, "captions file of the training images (Flickr8k token file or COCO JSON)"),
    Option("--format", None, "captions format; none: coco for a .json file, else flickr8k",
           choices=("flickr8k", "coco")),
    Option("--train-list", None, "Flickr8k split list: train on these images only"),
    Option("--valid-captions", None, "captions file of the validation images"),
    Option("--valid-list", None, "split list of the validation images (in --valid-captions, else --captions)"),
    Option("--valid-images", None, "folder of the validation images; none: --images"),
    Option("--skip-bad", False, "drop missing or unreadable images (listed on stderr) instead of stopping",
           flag_only=True),
    Option("--dataset", None, "built-in data instead of files: synthetic shapes (without --preset it brings "
           "the preset shapes)", choices=("shapes",)),
    Option("--train-size", 20000, "shapes: training scenes", type=positive_int),
    Option("--valid-size", 1000, "shapes: validation scenes (drawn from another seed: held out)", type=positive_int),
    Option("--data-seed", 0, "shapes: seed of the scenes", type=seed_int),
    Option("--fresh-scenes", False, "shapes: new training scenes every epoch (--train-size each), none seen twice",
           flag_only=True),
    Option("--image-size", 64, "images are resized to this square size in pixels", type=integer(24)),
    Option("--min-freq", 1, "rarer caption words become <unk>", type=positive_int),
    Option("--max-vocab", None, "keep the most frequent words only (<eos> and <unk> included)",
           type=optional(integer(2), "no limit", zero=True)),
    Option("--batch-size", 32, "images per batch (each with all its captions)", type=positive_int),
    Option("--max-length", None, "words generated at most; none: the longest training caption + 1",
           type=optional(positive_int, "the longest training caption + 1", zero=True)),
]

MODEL = [
    Option("--encoder", "small", "CNN: small (residual, from scratch) or a torchvision ResNet", choices=ENCODERS),
    Option("--encoder-weights", None, "torchvision ResNet: local weights file (.pth or .safetensors)"),
    Option("--widths", [32, 64, 128], "small CNN: channels of each stage (comma-separated)", type=int_list),
    Option("--blocks", 1, "small CNN: residual blocks per stage", type=positive_int),
    Option("--stem-pool", False, "small CNN: max-pool after the stem (for images of 128 px and up)",
           flag_only=True),
    Option("--norm", "batch", "small CNN: normalisation layers (BatchNorm, recalibrated before each evaluation, "
           "or GroupNorm)", choices=("batch", "group")),
    Option("--pool", 2, "the CNN grid is average-pooled to POOL x POOL, flattened, mapped to h_0",
           type=positive_int),
    Option("--feature-dropout", 0.0, "dropout on the pooled image features", type=dropout_rate),
    Option("--cell", "lstm", "decoder cell: lstm, gru (the lecture's), gru-torch (PyTorch's), rnn, rnn-relu",
           choices=CELL_NAMES),
    Option("--embed-size", 128, "word embedding size", type=positive_int),
    Option("--hidden-size", 256, "decoder hidden units per layer", type=positive_int),
    Option("--layers", 1, "stacked decoder layers", type=positive_int),
    Option("--dropout", 0.0, "dropout on embeddings, between layers and on the decoder output", type=dropout_rate),
    Option("--attention", "none", "soft attention over the CNN grid (Show, Attend and Tell)", choices=ATTENTIONS),
    Option("--attention-size", None, "bahdanau: size of the attention layer; none: the hidden size",
           type=optional(positive_int, "the hidden size", zero=True)),
    Option("--freeze-encoder", False, "keep the encoder's weights fixed", flag_only=True),
    Option("--cache-features", False, "with --freeze-encoder: encode the training images once, train the decoder "
           "on stored features", flag_only=True),
    Option("--init-range", None, "initialise every parameter but the CNN's uniform in (-r, r); none: PyTorch's",
           type=optional(positive_float, "PyTorch's")),
    Option("--forget-bias", None, "LSTM forget-gate bias at initialisation (e.g. 1.0)",
           type=optional(finite_float, "PyTorch's")),
    Option("--engine", "auto", ENGINE_HELP, choices=ENGINES),
    Option("--beam", 1, "beam size for the validation captions (1: greedy)", type=positive_int),
]
ALL = DATA + MODEL + TRAINER

PRESETS = {
    # 64 px scenes, new ones every epoch; Show-Attend-Tell over the 8×8 grid. 100% exact match on held-out
    # scenes after 500 steps (about 4.5 minutes of one busy CPU core; see benchmarks/shapes.py).
    "shapes": dict(dataset="shapes", image_size=64, train_size=10000, valid_size=500, fresh_scenes=True,
                   widths=[16, 32, 64], pool=2, cell="lstm", embed_size=64, hidden_size=256, layers=1,
                   attention="bahdanau", batch_size=64, optimizer="adam", lr=2e-3, epochs=5, eval_every=250,
                   clip=5.0),
    # 300 photographs: a small CNN at 128 px, strong dropout; the best checkpoint by validation BLEU-4.
    "flickr8k-mini": dict(image_size=128, stem_pool=True, widths=[32, 64, 128], pool=2, cell="lstm",
                          embed_size=128, hidden_size=256, layers=1, dropout=0.5, feature_dropout=0.5,
                          min_freq=3, batch_size=16, optimizer="adam", lr=1e-3, weight_decay=1e-4, epochs=40,
                          clip=5.0),
}


def add_parser(sub) -> None:
    p = sub.add_parser("caption", help="train an image captioner", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__)
    options.add_run_arguments(p, PRESETS)
    add_options(p, "data", DATA)
    add_options(p, "model", MODEL)
    add_options(p, "training", TRAINER)
    p.set_defaults(run_command=run)


def resolved_options(args: argparse.Namespace) -> dict:
    """Typed options > the run's saved options (on --resume) > the preset > defaults."""
    return options.resolved_options(args, ALL, PRESETS)


def _warn_skipped(skipped: list[str]) -> None:
    if skipped:
        shown = "; ".join(skipped[:10]) + (f"; and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"rnnkit: skipped {len(skipped)} image(s): {shown}", file=sys.stderr)


def load_files(o: dict) -> tuple[CaptionSet, CaptionSet, str]:
    """Training and validation sets from an image folder and captions files (options as resolved)."""
    if not o["images"] or not o["captions"]:
        raise OptionError("no training data: give --images DIR and --captions FILE, or --dataset shapes")
    skip, skipped = bool(o["skip_bad"]), []
    items = load_caption_set(o["images"], o["captions"], o["format"], o["train_list"], skip, skipped)
    if o["valid_captions"] or o["valid_list"]:
        valid_items = load_caption_set(o["valid_images"] or o["images"], o["valid_captions"] or o["captions"],
                                       o["format"], o["valid_list"], skip, skipped)
    else:
        if len(items) < 2:
            raise DataError("need at least 2 images to hold some out for validation", o["captions"])
        cut = len(items) - max(1, len(items) // 10)
        items, valid_items = items[:cut], items[cut:]
    train_px, items = load_images(items, o["image_size"], skip, skipped)
    valid_px, valid_items = load_images(valid_items, o["image_size"], skip, skipped)
    _warn_skipped(skipped)
    train = CaptionSet.from_raw(train_px, [i.captions for i in items], [i.name for i in items])
    valid = CaptionSet.from_raw(valid_px, [i.captions for i in valid_items], [i.name for i in valid_items])
    description = (f"{o['captions']}: {len(train)} images, {sum(map(len, train.captions))} captions; "
                   f"validation {len(valid)} images")
    return train, valid, description


def load_shapes(o: dict):
    """Training scenes (a set, or with --fresh-scenes a function of the epoch), validation scenes, description.

    Seeds: validation ``data_seed + 7919``; training ``data_seed``, or ``1e6 (data_seed + 1) + epoch`` for fresh
    scenes, so that no validation (or benchmark test) scene is ever trained on."""
    seed, size, n = o["data_seed"], o["image_size"], o["train_size"]
    def as_set(s, tag):
        return CaptionSet.from_raw(s.images, [[c] for c in s.captions], [f"{tag}{i}" for i in range(len(s))])
    valid = as_set(make_shapes(o["valid_size"], seed + 7919, size), "valid")
    if o["fresh_scenes"]:
        def train(epoch):
            return as_set(make_shapes(n, 1_000_000 * (seed + 1) + epoch, size), f"train{epoch}-")
        what = f"{n} new training scenes every epoch"
    else:
        train = as_set(make_shapes(n, seed, size), "train")
        what = f"{n} training scenes"
    return train, valid, f"synthetic shapes ({what}, {len(valid)} validation scenes, seed {seed}, {size} px)"


def load_data(o: dict) -> tuple[CaptionSet, CaptionSet, str]:
    if o["dataset"] and (o["images"] or o["captions"]):
        raise OptionError("give either --dataset or --images/--captions, not both")
    files = [f"--{k.replace('_', '-')}" for k in ("train_list", "valid_captions", "valid_list", "valid_images")
             if o[k]]
    if o["dataset"] and files:                     # the synthetic scenes bring their own splits
        raise OptionError(f"--dataset {o['dataset']} draws its own training and validation scenes; "
                          f"{' and '.join(files)} {'is' if len(files) == 1 else 'are'} not used with it")
    return load_shapes(o) if o["dataset"] == "shapes" else load_files(o)


def run(args: argparse.Namespace) -> int:
    o = resolved_options(args)
    check_engine_device(o)
    with torch_threads(o["threads"]):
        return train_run(args, o)


def train_run(args: argparse.Namespace, o: dict) -> int:
    if o["cache_features"] and not o["freeze_encoder"]:
        raise OptionError("--cache-features needs --freeze-encoder (a trained encoder's features change every "
                          "step)")
    if o["cache_features"] and o["fresh_scenes"]:
        raise OptionError("--cache-features needs a fixed training set, not --fresh-scenes")
    if o["encoder_weights"] and o["encoder"] == "small":
        raise OptionError("--encoder-weights is for a torchvision ResNet encoder (--encoder resnet18 ...)")
    train_cfg = TrainConfig.from_dict({k: o[k] for k in TRAIN_KEYS})
    seed_everything(train_cfg.seed)
    train, valid, description = load_data(o)
    first = train(1) if callable(train) else train
    tokenizer = resumed(run_vocabulary(args), "tokenizer", lambda: build_caption_tokenizer(
        first.captions, o["min_freq"], o["max_vocab"]), tokenizer_from_dict)     # --resume: the run's own vocabulary
    longest = max(len(c.split()) for caps in first.captions for c in caps)
    try:
        model_cfg = CaptionConfig(
            vocab_size=tokenizer.vocab_size, encoder=o["encoder"], widths=o["widths"], blocks=o["blocks"],
            stem_pool=bool(o["stem_pool"]), norm=o["norm"], image_size=o["image_size"], pool=o["pool"],
            feature_dropout=o["feature_dropout"], cell=o["cell"], embed_size=o["embed_size"],
            hidden_size=o["hidden_size"], num_layers=o["layers"], dropout=o["dropout"], attention=o["attention"],
            attention_size=o["attention_size"], freeze_encoder=bool(o["freeze_encoder"]),
            init_range=o["init_range"], forget_bias=o["forget_bias"], engine=o["engine"],
            max_length=o["max_length"] or longest + 1)
        model = CaptionModel(model_cfg)
        if o["encoder_weights"]:
            model.encoder.load_pretrained(o["encoder_weights"])
    except ValueError as e:
        raise OptionError.of(e) from None
    device = training_device(train_cfg)
    task = CaptionTask(tokenizer, train, valid, batch_size=o["batch_size"], device=device, seed=train_cfg.seed,
                       beam=o["beam"], cache_features=bool(o["cache_features"]), model_config=model_cfg.to_dict(),
                       data={"description": description, "dataset": o["dataset"], "images": o["images"],
                             "captions": o["captions"], "train_images": len(first), "valid_images": len(valid)})
    attn = "" if model_cfg.attention == "none" else f" with {model_cfg.attention} attention"
    intro = (f"{model_cfg.encoder} CNN → {model_cfg.cell} captioner{attn}, {count_parameters(model):,} parameters, "
             f"vocabulary {tokenizer.vocab_size:,}; data: {description}; {task.steps_per_epoch():,} steps per epoch")

    def outcome(trainer: Trainer) -> str:
        m = trainer.last_metrics
        best = "n/a" if trainer.best is None else f"{trainer.best:.2f}"
        nan = float("nan")
        return (f"; last validation loss {m.get('loss', nan):.4f}, BLEU-4 {m.get('bleu4', nan):.2f}, "
                f"exact match {100 * m.get('exact', nan):.1f}%; best BLEU-4 {best}; run saved in {args.out}")

    return train_and_report(args, o, model, task, train_cfg, "caption", intro, outcome)
