"""``rnnkit train lm``: a character- or word-level language model with truncated BPTT."""
from __future__ import annotations

import argparse
from functools import partial

import torch

from ..data import (CharTokenizer, WordTokenizer, build_stdlib_corpus, holdout_tail, load_named, read_text,
                    tokenizer_from_dict)
from ..models.language_model import LanguageModel, LMConfig
from ..tasks.language_modeling import LanguageModelTask
from ..training import TrainConfig, Trainer, seed_everything
from ..training.asgd import AveragingTrainer
from . import options
from .errors import OptionError
from .options import MODEL, TRAIN_KEYS, TRAINER, Option, add_options, torch_threads
from .ranges import dropout_rate, integer, non_negative_float, optional, positive_int, zoneout_rate
from ..training.resuming import resumed
from .training_run import (check_engine_device, check_torch_engine, count_parameters, run_vocabulary,
                           train_and_report, training_device)

DATA = [
    Option("--train", None, "training text file (UTF-8)"),
    Option("--valid", None, "validation text file; without it the last 10% of --train is held out"),
    Option("--dataset", None, "a named corpus instead of files", choices=("stdlib", "shakespeare", "ptb")),
    Option("--data-dir", None, "folder holding the named corpus' files (else downloaded once into a cache)"),
    Option("--level", None, "char or word tokens (default: word for ptb, char otherwise)", choices=("char", "word")),
    Option("--min-freq", 1, "word level: rarer words become <unk>", type=positive_int),
    Option("--max-vocab", None, "word level: keep the most frequent words only (<eos> and <unk> included)",
           type=optional(integer(2), "no limit", zero=True)),
    Option("--batch-size", 32, "columns the training text is cut into", type=positive_int),
    Option("--bptt", 64, "steps per truncated-BPTT window", type=positive_int),
    Option("--eval-batch-size", 1, "columns for validation (1: every target token, state carried)",
           type=positive_int),
    Option("--sum-over-time", False, "objective summed over the window's steps (Zaremba's; lr 1 assumes it)",
           flag_only=True),
]
REGULARISATION = [     # AWD-LSTM (Merity et al. 2017) and the layers' regularisers (rnnkit.layers.regularisers)
    Option("--awd", False, "AWD-LSTM's model: one layer per level, locked dropout (one mask per sequence) on the "
           "embeddings (--embed-dropout), between layers (--layer-dropout) and on the outputs (--dropout)",
           flag_only=True),
    Option("--last-hidden-size", None, "with --awd: the last layer's size (the embedding size for tied weights)",
           type=optional(positive_int, "--hidden-size's")),
    Option("--word-dropout", 0.0, "drop whole words (rows of the embedding matrix, rescaled; AWD's dropoute)",
           type=dropout_rate),
    Option("--layer-dropout", 0.0, "locked dropout between layers, one mask per sequence (AWD's dropouth)",
           type=dropout_rate),
    Option("--weight-drop", 0.0, "DropConnect on the recurrent weights weight_hh, one mask per window (AWD's wdrop)",
           type=dropout_rate),
    Option("--recurrent-dropout", 0.0, "dropout of h_{t-1} before the recurrent product, one mask per sequence "
           "(Gal & Ghahramani)", type=dropout_rate),
    Option("--zoneout", 0.0, "zoneout: each unit keeps its previous value with this probability (Krueger et al.)",
           type=zoneout_rate),
    Option("--layer-norm", False, "layer-normalised cells (Ba et al.: LN of x_t U, h_{t-1} W and the LSTM's C_t)",
           flag_only=True),
    Option("--alpha", 0.0, "activation regularisation (AR): alpha * mean(h^2) of the dropped last output",
           type=non_negative_float),
    Option("--beta", 0.0, "temporal activation regularisation (TAR): beta * mean((h_t - h_{t-1})^2)",
           type=non_negative_float),
    Option("--variable-bptt", False, "AWD's variable-length BPTT windows around --bptt", flag_only=True),
    Option("--asgd", False, "NT-ASGD: average the weights (torch's AveragedModel) once validation stops "
           "improving; evaluate and save the average", flag_only=True),
    Option("--nonmono", 5, "NT-ASGD: validations looked back over before averaging starts", type=positive_int),
]
ALL = DATA + MODEL + TRAINER + REGULARISATION

PRESETS = {
    "zaremba-small": dict(dataset="ptb", level="word", cell="lstm", layers=2, hidden_size=200, embed_size=200,
                          bptt=20, batch_size=20, optimizer="sgd", lr=1.0, lr_decay=0.5, decay_after=4, epochs=13,
                          init_range=0.1, clip=5.0, dropout=0.0, sum_over_time=True, eval_batch_size=1),
    "ptb-tied": dict(dataset="ptb", level="word", cell="lstm", layers=2, hidden_size=256, embed_size=256,
                     tie_weights=True, dropout=0.3, init_range=0.1, bptt=35, batch_size=20, eval_batch_size=10,
                     optimizer="sgd", lr=20.0, clip=0.25, lr_decay=0.6, decay_after=10, epochs=20),
    "char-small": dict(level="char", cell="lstm", layers=2, hidden_size=256, embed_size=64, bptt=64, batch_size=32,
                       optimizer="adam", lr=3e-3, dropout=0.0, clip=5.0, epochs=50, eval_every=250,
                       eval_batch_size=16),
    "shakespeare-char": dict(dataset="shakespeare", level="char", cell="lstm", layers=2, hidden_size=512,
                             embed_size=128, bptt=100, batch_size=32, optimizer="adam", lr=3e-3, dropout=0.1,
                             clip=5.0, epochs=20, eval_every=500, eval_batch_size=16),
    # AWD-LSTM: the paper's PTB model (Merity et al. 2017; salesforce/awd-lstm-lm's PTB command), for a GPU
    "awd-lstm": dict(dataset="ptb", level="word", cell="lstm", awd=True, layers=3, hidden_size=1150,
                     last_hidden_size=400, embed_size=400, tie_weights=True, dropout=0.4, embed_dropout=0.4,
                     layer_dropout=0.25, word_dropout=0.1, weight_drop=0.5, alpha=2.0, beta=1.0, bptt=70,
                     variable_bptt=True, batch_size=20, eval_batch_size=10, optimizer="sgd", lr=30.0, clip=0.25,
                     weight_decay=1.2e-6, epochs=500, asgd=True, nonmono=5),
    # the same recipe sized for 60 minutes on a 2-core CPU: 5.4M parameters, 1.5x ptb-tied's multiply-adds per
    # token (the tied 10,000-word decoder is half of them); weight drop and locked dropout keep the compiled loop.
    # About 3.7 steps/s of 20 x ~50 tokens on a quiet machine with 2 threads: ~14 epochs in the hour. NT-ASGD
    # needs a validation plateau, which 14 epochs at lr 30 don't reach, so the learning rate stays at 30 for half
    # the budget and then falls linearly to 0 at its end (--decay-last 0.5); NT-ASGD stays on (nonmono 5, the
    # paper's) for longer runs. The paper's dropouts, scaled to 0.3/0.3/0.2/0.05 and weight drop 0.3, underfit in 14
    # epochs (training perplexity with dropout on = validation's): these lighter ones reach 83.2 (84.7 on a shared
    # machine) against 88.7.
    # Tuning runs, ablation: BENCHMARKS.md, benchmarks/results/lm-awd-cpu-20261205-*, awd-cpu-*-2026-12-05*
    "awd-cpu": dict(dataset="ptb", level="word", cell="lstm", awd=True, layers=3, hidden_size=384,
                    last_hidden_size=256, embed_size=256, tie_weights=True, dropout=0.25, embed_dropout=0.2,
                    layer_dropout=0.15, word_dropout=0.0, weight_drop=0.2, alpha=2.0, beta=1.0, bptt=50,
                    variable_bptt=True, batch_size=20, eval_batch_size=10, optimizer="sgd", lr=30.0, clip=0.25,
                    decay_last=0.5, weight_decay=1.2e-6, epochs=100, minutes=60, eval_every=1000,
                    asgd=True, nonmono=5),
}


def preset_hint(preset: str | None, device) -> str | None:
    """A line for a preset run where it doesn't fit: the paper's AWD-LSTM on a CPU."""
    if preset == "awd-lstm" and torch.device(device).type == "cpu":
        return "awd-lstm is the paper's model, sized for a GPU; on a CPU, --preset awd-cpu is its 60-minute form"
    return None


def add_parser(sub) -> None:
    p = sub.add_parser("lm", help="train a language model", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__)
    options.add_run_arguments(p, PRESETS)
    add_options(p, "data", DATA)
    add_options(p, "model", MODEL)
    add_options(p, "training", TRAINER)
    add_options(p, "regularisation (AWD-LSTM)", REGULARISATION)
    p.set_defaults(run_command=run)


def load_corpus(o: dict) -> tuple[str, str, str, str, str]:
    """(train text, valid text, level, description, where they came from) from files or a named corpus."""
    if o["dataset"] and o["train"]:
        raise OptionError("give either --dataset or --train, not both")
    if o["data_dir"] and o["dataset"] in (None, "stdlib"):
        what = "--dataset stdlib" if o["dataset"] else "your own files"
        raise OptionError(f"--data-dir is where --dataset shakespeare or ptb is read from; it is not used with {what}")
    if o["dataset"] and o["valid"]:
        raise OptionError(f"--dataset {o['dataset']} brings its own validation text; --valid is not used with it "
                          f"(give --train and --valid for your own files)")
    if o["dataset"] == "stdlib":
        corpus = build_stdlib_corpus()
        return corpus.train, corpus.valid, o["level"] or "char", corpus.description, "stdlib"
    if o["dataset"]:
        train, valid, description = load_named(o["dataset"], data_dir=o["data_dir"])
        level = o["level"] or ("word" if o["dataset"] == "ptb" else "char")
        return train, valid, level, description, o["dataset"]
    if not o["train"]:
        raise OptionError("no training data: give --train FILE or --dataset NAME")
    train = read_text(o["train"])
    if o["valid"]:
        valid = read_text(o["valid"])
    else:
        train, valid = holdout_tail(train, 0.1, source=o["train"])
    total = len(train) + (0 if o["valid"] else len(valid))   # the file's, before any validation tail is held out
    return train, valid, o["level"] or "char", f"{o['train']} ({total:,} characters)", o["train"]


def build_tokenizer(level: str, train: str, valid: str, o: dict):
    if level == "char":
        return CharTokenizer.build(train + valid)     # every character of the corpus; nothing to be unknown
    return WordTokenizer.build(train, min_freq=o["min_freq"], max_vocab=o["max_vocab"])


def resolved_options(args: argparse.Namespace) -> dict:
    """Typed options > the run's saved options (on --resume) > the preset > defaults."""
    return options.resolved_options(args, ALL, PRESETS)


def run(args: argparse.Namespace) -> int:
    o = resolved_options(args)
    check_engine_device(o)
    with torch_threads(o["threads"]):
        return train_run(args, o)


def model_config(o: dict, vocab_size: int) -> LMConfig:
    """The model the resolved options describe."""
    return LMConfig(vocab_size=vocab_size, cell=o["cell"], embed_size=o["embed_size"], hidden_size=o["hidden_size"],
                    num_layers=o["layers"], dropout=o["dropout"], embed_dropout=o["embed_dropout"],
                    tie_weights=bool(o["tie_weights"]), init_range=o["init_range"], forget_bias=o["forget_bias"],
                    engine=o["engine"], awd=bool(o["awd"]), last_hidden_size=o["last_hidden_size"],
                    word_dropout=o["word_dropout"], layer_dropout=o["layer_dropout"], weight_drop=o["weight_drop"],
                    recurrent_dropout=o["recurrent_dropout"], zoneout=o["zoneout"], layer_norm=bool(o["layer_norm"]))


def train_run(args: argparse.Namespace, o: dict) -> int:
    train_cfg = TrainConfig.from_dict({k: o[k] for k in TRAIN_KEYS})
    seed_everything(train_cfg.seed)
    train_text, valid_text, level, description, source = load_corpus(o)
    tokenizer = resumed(run_vocabulary(args), "tokenizer", lambda: build_tokenizer(level, train_text, valid_text, o),
                        tokenizer_from_dict)                     # --resume: the run's own vocabulary
    train_ids = torch.tensor(tokenizer.encode(train_text, source=source), dtype=torch.long)
    valid_ids = torch.tensor(tokenizer.encode(valid_text, source=o["valid"] or source), dtype=torch.long)
    try:
        model_cfg = model_config(o, tokenizer.vocab_size)
        check_torch_engine(o["engine"], model_cfg.regularisers())
        model = LanguageModel(model_cfg)
    except ValueError as e:                       # options the model can't take together
        raise OptionError.of(e) from None
    device = training_device(train_cfg)
    task = LanguageModelTask(tokenizer, level, train_ids, valid_ids, batch_size=o["batch_size"], bptt=o["bptt"],
                             eval_batch_size=o["eval_batch_size"], sum_over_time=bool(o["sum_over_time"]),
                             device=device, model_config=model_cfg.to_dict(),
                             data={"source": source, "description": description, "train_tokens": len(train_ids),
                                   "valid_tokens": len(valid_ids)},
                             train_source=source, valid_source=o["valid"] or source, alpha=o["alpha"],
                             beta=o["beta"], variable_bptt=bool(o["variable_bptt"]), seed=train_cfg.seed)
    intro = (f"{level}-level {model_cfg.cell} LM, {count_parameters(model):,} parameters, vocabulary "
             f"{tokenizer.vocab_size:,}; data: {description}, {len(train_ids):,} training / {len(valid_ids):,} "
             f"validation {'characters' if level == 'char' else 'tokens'}; {task.steps_per_epoch():,} steps per epoch")
    hint = preset_hint(o.get("preset"), device)
    if hint:
        intro += f"\nrnnkit: {hint}"

    def outcome(trainer: Trainer) -> str:
        m = trainer.last_metrics
        best = "n/a" if trainer.best is None else f"{trainer.best:.4f}"
        extra = f", bpc {m['bpc']:.3f}" if "bpc" in m else (f", ppl {m['ppl']:.2f}" if "ppl" in m else "")
        return (f"; last validation loss {m.get('loss', float('nan')):.4f}{extra}; best {best}; "
                f"run saved in {args.out}")

    trainer_class = partial(AveragingTrainer, nonmono=o["nonmono"]) if o["asgd"] else None
    return train_and_report(args, o, model, task, train_cfg, "lm", intro, outcome, trainer_class=trainer_class)
