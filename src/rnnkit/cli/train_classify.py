"""``rnnkit train classify``: a sentence classifier (many-to-one) on labelled TSV/CSV/JSONL files.

Embedding → LSTM/GRU/RNN (stacked, optionally bidirectional) → pooling (last, max, mean, attention) → dropout →
linear. The best model by validation accuracy is kept; at the end the run folder also gets the validation
confusion matrix as confusion.png. ``--ensemble K`` trains K such classifiers one after another and predicts with
the mean of their probabilities; ``--average-checkpoints N`` keeps the mean weights of the last N evaluations.
Example (SST-2; the preset is an ensemble of 5 within 20 minutes on 2 CPU cores):

  rnnkit train classify --preset sst2 --train ../shared/data/sst2/train_clean.tsv \\
      --valid ../shared/data/sst2/valid_clean.tsv --out runs/sst2
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable


from ..data import DataError, LabelledData, LabelSet, TextEncoder, read_labelled
from ..models.classifier import POOLINGS, Classifier, ClassifierConfig
from ..models.ensemble import EnsembleClassifier
from ..tasks.checkpoint_average import CheckpointAveragingTrainer
from ..tasks.classification import (ClassificationTask, confusion_matrix, format_confusion, load_run,
                                    plot_confusion, predict_ids, scores)
from ..tasks.ensemble import EnsembleTrainer
from ..training import TrainConfig, Trainer, seed_everything
from . import options
from .errors import OptionError
from .options import MODEL, TRAIN_KEYS, TRAINER, Option, add_options, torch_threads
from .ranges import dropout_rate, integer, optional, positive_int, zoneout_rate
from ..training.resuming import resumed
from .training_run import (check_engine_device, check_torch_engine, count_parameters, run_vocabulary,
                           train_and_report, training_device)

DATA = [
    Option("--train", None, "training file: TSV/CSV with a header, or JSONL (by extension)"),
    Option("--valid", None, "validation file; without it every 10th training example is held out"),
    Option("--format", "auto", "file format (auto: by extension .tsv/.csv/.jsonl)",
           choices=("auto", "tsv", "csv", "jsonl")),
    Option("--text-column", "sentence", "name of the text column (JSONL: key)"),
    Option("--label-column", "label", "name of the label column (JSONL: key); labels are integers or strings"),
    Option("--tokenizer", "word", "word: whitespace words; bpe: subwords learnt on the training file",
           choices=("word", "bpe")),
    Option("--lowercase", False, "lower-case the text before tokenizing", flag_only=True),
    Option("--min-freq", 1, "word: rarer words become <unk>; bpe: a merge needs this many occurrences",
           type=positive_int),
    Option("--max-vocab", None, "word: keep the most frequent words only (<eos>, <unk>, <pad> included)",
           type=optional(integer(3), "no limit", zero=True)),
    Option("--bpe-vocab-size", 8000, "bpe: vocabulary size (pieces, special tokens included)", type=integer(4)),
    Option("--batch-size", 64, "sentences per training batch (bucketed by length)", type=positive_int),
    Option("--eval-batch-size", 256, "sentences per validation batch", type=positive_int),
]

# the language model's options, with defaults that suit sentence classification (no weight tying here)
_MODEL_DEFAULTS = {"embed_size": 128, "hidden_size": 128, "layers": 1, "dropout": 0.5}
CLASSIFIER = [replace(o, default=_MODEL_DEFAULTS.get(o.dest, o.default)) for o in MODEL if o.dest != "tie_weights"]
CLASSIFIER += [
    Option("--bidirectional", False, "a second recurrent layer reads the sentence backwards", flag_only=True),
    Option("--pooling", "max", "sentence vector from the states: last (h_n), max or mean over the valid steps, "
           "or attention (a learned query, additive attention)", choices=POOLINGS),
    Option("--attention-size", None, "attention pooling: hidden size of the score (default: the state size)",
           type=optional(positive_int, "the state size", zero=True)),
    Option("--word-dropout", 0.0, "drop whole words in training (rows of the embedding matrix, rescaled; AWD's "
           "dropoute)", type=dropout_rate),
    Option("--weight-drop", 0.0, "DropConnect on the recurrent weights weight_hh, one mask per batch (AWD's wdrop)",
           type=dropout_rate),
    Option("--recurrent-dropout", 0.0, "dropout of h_{t-1} before the recurrent product, one mask per sentence "
           "(Gal & Ghahramani)", type=dropout_rate),
    Option("--zoneout", 0.0, "zoneout: each unit keeps its previous value with this probability (Krueger et al.)",
           type=zoneout_rate),
    Option("--layer-norm", False, "layer-normalised cells (Ba et al.: LN of x_t U, h_{t-1} W and the LSTM's C_t)",
           flag_only=True),
]
ENSEMBLE = [
    Option("--ensemble", 1, "train this many classifiers one after another (seeds --seed, --seed+1, ...; each an "
           "equal share of what --minutes has left) and predict with the mean of their probabilities",
           type=integer(1, 64)),
    Option("--average-checkpoints", 1, "evaluate and keep the mean of the weights of the last N evaluation "
           "checkpoints (1: off; see --eval-every)", type=integer(1, 64)),
]
_TRAINER_DEFAULTS = {"patience": 3}
TRAINING = [replace(o, default=_TRAINER_DEFAULTS.get(o.dest, o.default)) for o in TRAINER]
ALL = DATA + CLASSIFIER + ENSEMBLE + TRAINING

PRESETS = {
    # SST-2, 20 minutes on 2 CPU cores (benchmarks/sst2.py): an ensemble of 5 BiLSTMs trained one after another
    # (seeds --seed..--seed+4, each stopped early on validation accuracy), torch.nn's LSTM kernel (nothing to
    # compile), the time budget shared by the members
    "sst2": dict(tokenizer="word", lowercase=True, min_freq=1, cell="lstm", embed_size=128, hidden_size=128,
                 layers=1, bidirectional=True, pooling="max", dropout=0.5, embed_dropout=0.3, batch_size=64,
                 optimizer="adam", lr=2e-3, clip=5.0, epochs=20, patience=4, eval_every=500, threads=1,
                 ensemble=5, engine="torch", minutes=19.5),
    # a few seconds on anything: to try the command
    "tiny": dict(embed_size=16, hidden_size=16, layers=1, bidirectional=True, pooling="max", dropout=0.1,
                 batch_size=16, epochs=2, patience=None),
}


def add_parser(sub) -> None:
    p = sub.add_parser("classify", help="train a sentence classifier (many-to-one)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    options.add_run_arguments(p, PRESETS)
    add_options(p, "data", DATA)
    add_options(p, "model", CLASSIFIER)
    add_options(p, "ensembles and weight averaging", ENSEMBLE)
    add_options(p, "training", TRAINING)
    p.set_defaults(run_command=run)


def resolved_options(args: argparse.Namespace) -> dict:
    """Typed options > the run's saved options (on --resume) > the preset > defaults."""
    return options.resolved_options(args, ALL, PRESETS)


def load_data(o: dict) -> tuple[LabelledData, LabelledData, str]:
    """(training data, validation data, how validation was made)."""
    if not o["train"]:
        raise OptionError("no training data: give --train FILE")
    kw = dict(text_column=o["text_column"], label_column=o["label_column"], fmt=o["format"])
    train = read_labelled(o["train"], **kw)
    LabelSet.from_labels(train.labels, train.source)          # one class only: say so before anything else
    if o["valid"]:
        return train, read_labelled(o["valid"], **kw), o["valid"]
    if len(train) < 10:
        raise DataError(f"{len(train)} examples are too few to hold out a validation set; give --valid FILE",
                        o["train"])

    def part(keep) -> LabelledData:
        idx = [i for i in range(len(train)) if keep(i)]
        return LabelledData([train.texts[i] for i in idx], [train.labels[i] for i in idx],
                            [train.lines[i] for i in idx], train.source)

    return part(lambda i: i % 10 != 9), part(lambda i: i % 10 == 9), f"every 10th example of {o['train']}"


def run(args: argparse.Namespace) -> int:
    o = resolved_options(args)
    check_engine_device(o)
    with torch_threads(o["threads"]):
        return train_run(args, o)


def train_run(args: argparse.Namespace, o: dict) -> int:
    try:
        train_cfg = TrainConfig.from_dict({k: o[k] for k in TRAIN_KEYS})
    except ValueError as e:
        raise OptionError.of(e) from None
    seed_everything(train_cfg.seed)
    train, valid, valid_desc = load_data(o)
    saved = run_vocabulary(args)                     # --resume: the run's own labels and vocabulary
    labels = resumed(saved, "labels", lambda: LabelSet.from_labels(train.labels, train.source), LabelSet)
    train_y, valid_y = labels.encode(train), labels.encode(valid)
    encoder = resumed(saved, "encoder", lambda: TextEncoder.build(
        train.texts, o["tokenizer"], lowercase=bool(o["lowercase"]), min_freq=o["min_freq"], max_vocab=o["max_vocab"],
        vocab_size=o["bpe_vocab_size"]), TextEncoder.from_dict)
    train_ids = encoder.encode_all(train.texts, train.source, train.lines)
    valid_ids = encoder.encode_all(valid.texts, valid.source, valid.lines)
    try:
        model_cfg, model = _model(encoder, labels, o)
    except ValueError as e:
        raise OptionError.of(e) from None
    device = training_device(train_cfg)
    data = {"train": train.source, "valid": valid_desc, "train_examples": len(train), "valid_examples": len(valid),
            "text_column": o["text_column"], "label_column": o["label_column"], "format": o["format"]}
    task = ClassificationTask(encoder, labels, train_ids, train_y, valid_ids, valid_y, batch_size=o["batch_size"],
                              eval_batch_size=o["eval_batch_size"], seed=train_cfg.seed, device=device,
                              data=data, model_config=model_cfg.to_dict())
    out = Path(args.out)
    ensemble = f"ensemble of {o['ensemble']} " if o["ensemble"] > 1 else ""
    intro = (f"{ensemble}{'bi' if model_cfg.bidirectional else ''}{model_cfg.cell} classifier"
             f"{'s' if ensemble else ''}, {model_cfg.pooling} pooling, "
             f"{count_parameters(model):,} parameters; {o['tokenizer']} vocabulary {encoder.vocab_size:,}; "
             f"{len(labels)} classes; {len(train):,} training / {len(valid):,} validation examples "
             f"({encoder.unknown_rate(valid_ids):.2%} of validation tokens <unk>); "
             f"{task.steps_per_epoch():,} steps per epoch")

    def outcome(trainer: Trainer) -> str:
        """The best checkpoint's validation scores, its confusion matrix printed and plotted."""
        best = load_run(out, device).model
        probs, _ = predict_ids(best, valid_ids, encoder.pad_id, o["eval_batch_size"], device)
        m = scores(probs, task.valid_labels, len(labels))
        matrix = confusion_matrix(probs.argmax(1), task.valid_labels, len(labels))
        plot_confusion(matrix, labels.names, out / "confusion.png",
                       f"validation: accuracy {m['accuracy']:.2%}, macro-F1 {m['macro_f1']:.3f}")
        return (f", {trainer.elapsed / 60:.1f} min; best validation accuracy {m['accuracy']:.4f}, macro-F1 "
                f"{m['macro_f1']:.4f}, loss {m['loss']:.4f}; run saved in {out}\n"
                f"{format_confusion(matrix, labels.names)}")

    return train_and_report(args, o, model, task, train_cfg, "classify", intro, outcome, trainer_class(o))


def trainer_class(o: dict) -> Callable[..., Trainer | EnsembleTrainer]:
    """The trainer ``--ensemble`` and ``--average-checkpoints`` ask for (the shared one when neither)."""
    member: Callable[..., Trainer] = Trainer
    if o["average_checkpoints"] > 1:
        member = partial(CheckpointAveragingTrainer, window=o["average_checkpoints"])
    return partial(EnsembleTrainer, member_trainer=member) if o["ensemble"] > 1 else member


def _model(encoder: TextEncoder, labels: LabelSet, o: dict) -> tuple[ClassifierConfig,
                                                                     Classifier | EnsembleClassifier]:
    model_cfg = ClassifierConfig(vocab_size=encoder.vocab_size, num_classes=len(labels), cell=o["cell"],
                                 embed_size=o["embed_size"], hidden_size=o["hidden_size"], num_layers=o["layers"],
                                 bidirectional=bool(o["bidirectional"]), pooling=o["pooling"],
                                 dropout=o["dropout"], embed_dropout=o["embed_dropout"],
                                 attention_size=o["attention_size"], pad_id=encoder.pad_id,
                                 init_range=o["init_range"], forget_bias=o["forget_bias"], engine=o["engine"],
                                 word_dropout=o["word_dropout"], weight_drop=o["weight_drop"],
                                 recurrent_dropout=o["recurrent_dropout"], zoneout=o["zoneout"],
                                 layer_norm=bool(o["layer_norm"]))
    check_torch_engine(o["engine"], model_cfg.regularisers(), preset="sst2")
    if o["ensemble"] > 1:
        return model_cfg, EnsembleClassifier.build(model_cfg, o["ensemble"])
    return model_cfg, Classifier(model_cfg)
