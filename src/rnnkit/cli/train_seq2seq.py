"""``rnnkit train seq2seq``: an encoder-decoder with attention on parallel text.

Data: ``--src FILE --tgt FILE`` (line-aligned) or ``--train FILE.tsv`` (source<TAB>target), validation likewise
(``--valid-src/--valid-tgt`` or ``--valid``; without them the last --valid-fraction of the pairs is held out),
or a named data set: ``--dataset dates`` (synthetic, generated with --seed) or ``--dataset multi30k``
(German->English from --data-dir). Validation BLEU/chrF (sacrebleu) picks the best checkpoint.

Examples::

    rnnkit train seq2seq --dataset dates --out runs/dates      (--dataset NAME brings the preset NAME)
    rnnkit train seq2seq --preset multi30k --data-dir ../shared/data/multi30k --out runs/m30k
    rnnkit train seq2seq --src train.de --tgt train.en --valid-src val.de --valid-tgt val.en --out runs/de-en
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any


from ..data import DataError
from ..data.dates import dates_splits
from ..data.parallel import SequenceTokenizer, encode_pairs, filter_by_length, read_parallel, read_tsv
from ..models.seq2seq import ATTENTIONS, BRIDGES, Seq2Seq, Seq2SeqConfig, describe
from ..tasks.seq2seq import METRICS, Seq2SeqTask
from ..training import TrainConfig, Trainer, seed_everything
from . import options
from .errors import OptionError
from .options import MODEL, TRAIN_KEYS, TRAINER, Option, add_options, torch_threads
from .ranges import (dropout_rate, integer, non_negative_float, open_probability, optional, positive_int,
                     probability, yes_no)
from .training_run import check_engine_device, count_parameters, run_vocabulary, train_and_report, training_device

MULTI30K_DIRS = ("../shared/data/multi30k", "shared/data/multi30k")


DATA = [
    Option("--src", None, "training source file (one sentence per line)"),
    Option("--tgt", None, "training target file, line-aligned with --src"),
    Option("--train", None, "training pairs as one TSV file (source<TAB>target) instead of --src/--tgt"),
    Option("--valid-src", None, "validation source file"),
    Option("--valid-tgt", None, "validation target file, line-aligned with --valid-src"),
    Option("--valid", None, "validation pairs as one TSV file"),
    Option("--valid-fraction", 0.05, "without validation files: hold out this last share of the pairs",
           type=open_probability),
    Option("--dataset", None, "a named data set instead of files: dates (synthetic) or multi30k (de->en); "
           "without --preset it brings the preset of the same name",
           choices=("dates", "multi30k")),
    Option("--data-dir", None,
           "multi30k: folder with train.{de,en} and val.{de,en}, or the folder above it; none: "
           "../shared/data/multi30k"),
    Option("--reverse-direction", False, "multi30k: translate en->de instead of de->en", flag_only=True),
    Option("--dates-train", 20000, "dates: training pairs", type=positive_int),
    Option("--dates-valid", 1000, "dates: validation pairs (2,000 further pairs are kept aside as the test set)",
           type=positive_int),
    Option("--level", "word", "tokens: word (words and punctuation), char, or bpe (subwords, Hugging Face tokenizers)",
           choices=("word", "char", "bpe")),
    Option("--lowercase", False, "lowercase both sides (scores then ignore case)", flag_only=True),
    Option("--min-freq", 1, "word level: rarer words become <unk>; bpe: a merge needs this many occurrences",
           type=positive_int),
    Option("--max-vocab", None, "word level: at most this many entries per side",
           type=optional(integer(2), "no limit", zero=True)),
    Option("--bpe-vocab-size", 8000, "bpe: pieces per vocabulary", type=integer(4)),
    Option("--shared-vocab", False, "one vocabulary (and embedding) for both sides", flag_only=True),
    Option("--max-src-len", 100, "drop training pairs whose source has more tokens (EOS included)",
           type=optional(positive_int, "no limit", zero=True)),
    Option("--max-tgt-len", 100, "drop training pairs whose target has more tokens (EOS included)",
           type=optional(positive_int, "no limit", zero=True)),
    Option("--batch-size", 64, "sentence pairs per batch (bucketed by length)", type=positive_int),
    Option("--max-tokens", None, "also cap a batch at this many padded source+target tokens",
           type=optional(positive_int, "no cap", zero=True)),
]

_MODEL_DEFAULTS = {"--cell": "gru", "--layers": 1, "--dropout": 0.0}
_MODEL_REUSED = ("--cell", "--embed-size", "--hidden-size", "--layers", "--dropout", "--init-range",
                 "--forget-bias", "--engine")
S2S_MODEL = [dataclasses.replace(o, default=_MODEL_DEFAULTS.get(o.flag, o.default),
                                 help={"--hidden-size": "encoder units per direction",
                                       "--layers": "encoder layers"}.get(o.flag, o.help))
             for o in MODEL if o.flag in _MODEL_REUSED] + [
    Option("--bidirectional", True, "bidirectional encoder (yes/no)", type=yes_no),
    Option("--decoder-layers", 1, "decoder layers", type=positive_int),
    Option("--decoder-hidden-size", None, "decoder units (default: encoder units x directions)",
           type=optional(positive_int, "encoder units x directions", zero=True)),
    Option("--attention", "bahdanau", "attention score, or none (a fixed context: the encoder's final states)",
           choices=ATTENTIONS),
    Option("--attention-size", None, "Bahdanau's inner size (default: the decoder's units)",
           type=optional(positive_int, "the decoder's units", zero=True)),
    Option("--input-feeding", True, "feed the last attentional vector back into the decoder (yes/no)",
           type=yes_no),
    Option("--reverse-source", False, "reverse each source sentence before the encoder (Sutskever et al.)",
           flag_only=True),
    Option("--bridge", "linear", "decoder's initial state: linear (tanh of a projection of the encoder's final "
           "states) or zero", choices=BRIDGES),
]

S2S_TRAIN = [
    Option("--label-smoothing", 0.0, "label smoothing of the cross-entropy", type=dropout_rate),
    Option("--scheduled-sampling", 0.0, "probability of feeding the model's own prediction instead of the "
           "reference at each training step", type=probability),
    Option("--metric", "bleu", "validation metric that picks the best checkpoint", choices=METRICS),
    Option("--eval-beam", 1, "validation decoding: 1 greedy, else beam size", type=positive_int),
    Option("--length-penalty", 1.0, "beam search length penalty alpha (Wu et al. 2016; 0: none); also the "
           "default of `rnnkit translate`", type=non_negative_float),
    Option("--eval-batch-size", 128, "sentences per validation batch", type=positive_int),
]
ALL = DATA + S2S_MODEL + S2S_TRAIN + TRAINER

PRESETS = {
    "dates": dict(dataset="dates", dates_train=30000, level="char", cell="gru", embed_size=32, hidden_size=64,
                  decoder_hidden_size=128, attention="bahdanau", batch_size=64, lr=3e-3, lr_decay=0.5,
                  decay_after=1, clip=1.0, epochs=8, eval_every=250, metric="exact", threads=1),
    "multi30k": dict(dataset="multi30k", level="word", lowercase=True, min_freq=2, cell="gru", embed_size=256,
                     hidden_size=256, decoder_hidden_size=256, attention="bahdanau", dropout=0.3, batch_size=64,
                     lr=1e-3, clip=1.0, epochs=20, max_src_len=60, max_tgt_len=60, threads=1),
    "multi30k-noattn": dict(dataset="multi30k", level="word", lowercase=True, min_freq=2, cell="gru",
                            embed_size=256, hidden_size=256, decoder_hidden_size=256, attention="none", dropout=0.3,
                            batch_size=64, lr=1e-3, clip=1.0, epochs=20, max_src_len=60, max_tgt_len=60, threads=1),
    "tiny": dict(level="word", cell="gru", embed_size=16, hidden_size=16, decoder_hidden_size=32, batch_size=8,
                 epochs=1, eval_batch_size=16),
}


def add_parser(sub) -> None:
    p = sub.add_parser("seq2seq", help="train an encoder-decoder with attention (translation)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    options.add_run_arguments(p, PRESETS)
    add_options(p, "data", DATA)
    add_options(p, "model", S2S_MODEL)
    add_options(p, "seq2seq training and validation", S2S_TRAIN)
    add_options(p, "training", TRAINER)
    p.set_defaults(run_command=run)


# ---------------------------------------------------------------------------------------------- data

def _multi30k_dir(o: dict) -> Path:
    """``--data-dir`` or its ``multi30k`` subfolder (as ``rnnkit train lm --data-dir`` finds ``ptb/``), else the
    usual places."""
    given = o["data_dir"]
    candidates = [given, str(Path(given) / "multi30k")] if given else list(MULTI30K_DIRS)
    for c in candidates:
        if (Path(c) / "train.de").is_file():
            return Path(c)
    advice = "give the folder that holds train.de, train.en, val.de, val.en" if given else "give --data-dir"
    raise DataError(f"Multi30k not found (looked for train.de in {' and '.join(candidates)}); {advice}",
                    "--dataset multi30k")


_VALID_FILES = ("valid", "valid_src", "valid_tgt")


def check_validation_options(o: dict) -> None:
    """Validation files that would be ignored, refused before any data is read: both kinds (--valid and
    --valid-src/--valid-tgt), or any with a named data set, which brings its own validation set."""
    given = [f"--{k.replace('_', '-')}" for k in _VALID_FILES if o[k]]
    if not given:
        return
    if o["dataset"]:
        own = ("makes its own validation set (--dates-valid pairs)" if o["dataset"] == "dates" else
               "reads its validation set from --data-dir (val.de, val.en)")
        raise OptionError(f"--dataset {o['dataset']} {own}; {' and '.join(given)} "
                          f"{'is' if len(given) == 1 else 'are'} not used with it")
    if o["valid"] and (o["valid_src"] or o["valid_tgt"]):
        raise OptionError("give --valid or --valid-src/--valid-tgt, not both")


def pair_sources(o: dict) -> tuple[Any, Any]:
    """What names the training and the validation pairs in a message: their files (one per side), else what made
    them (a named data set; pairs held out from the training files)."""
    if o["dataset"]:
        return f"{o['dataset']} training data", f"{o['dataset']} validation data"
    train = (o["src"], o["tgt"]) if o["src"] else o["train"]
    if o["valid_src"]:
        return train, (o["valid_src"], o["valid_tgt"])
    held_out = f"{o['src']} / {o['tgt']}" if o["src"] else o["train"]
    return train, o["valid"] or f"validation pairs held out from {held_out}"


def load_pairs(o: dict) -> tuple[list, list, str, dict]:
    """(train pairs, valid pairs, description, data record for config.json)."""
    given = [k for k in ("dataset", "src", "train") if o[k]]
    if len(given) > 1:
        raise OptionError(f"give one of --dataset, --src/--tgt or --train, not "
                          f"{' and '.join('--' + g for g in given)}")
    check_validation_options(o)
    if o["data_dir"] and o["dataset"] != "multi30k":
        what = f"--dataset {o['dataset']}" if o["dataset"] else "your own files"
        raise OptionError(f"--data-dir is where --dataset multi30k is read from; it is not used with {what}")
    if o["dataset"] == "dates":
        train, valid, _ = dates_splits(o["dates_train"], o["dates_valid"], 2000, seed=o["seed"])
        return train, valid, f"synthetic dates ({len(train):,} train, seed {o['seed']})", \
            {"source": "dates", "seed": o["seed"], "train": len(train), "valid": len(valid)}
    if o["dataset"] == "multi30k":
        d = _multi30k_dir(o)
        s, t = ("en", "de") if o["reverse_direction"] else ("de", "en")
        train = read_parallel(d / f"train.{s}", d / f"train.{t}")
        valid = read_parallel(d / f"val.{s}", d / f"val.{t}")
        origin = {"source": "multi30k", "dir": str(d), "direction": f"{s}-{t}"}
        return train, valid, f"Multi30k {s}->{t} from {d}", origin
    if o["src"] or o["tgt"]:
        if not (o["src"] and o["tgt"]):
            raise OptionError("--src and --tgt go together")
        train = read_parallel(o["src"], o["tgt"])
        where = f"{o['src']} / {o['tgt']}"
    elif o["train"]:
        train = read_tsv(o["train"])
        where = o["train"]
    else:
        raise OptionError("no training data: give --src FILE --tgt FILE, --train FILE.tsv or --dataset NAME")
    total = len(train)                              # the file's, before any validation pairs are held out
    if o["valid_src"] or o["valid_tgt"]:
        if not (o["valid_src"] and o["valid_tgt"]):
            raise OptionError("--valid-src and --valid-tgt go together")
        valid = read_parallel(o["valid_src"], o["valid_tgt"])
    elif o["valid"]:
        valid = read_tsv(o["valid"])
    else:
        n = max(1, int(round(len(train) * o["valid_fraction"])))
        if n >= len(train):
            raise DataError(f"{len(train)} pair(s) are too few to hold out {n} for validation; give validation "
                            f"files", where)
        train, valid = train[:-n], train[-n:]
    return train, valid, f"{where} ({total:,} pairs)", {"source": where}


def build_tokenizers(o: dict, train: list, valid: list) -> tuple[SequenceTokenizer, SequenceTokenizer]:
    """Each side's vocabulary from the training pairs; at char level from the validation pairs too, as the
    character language model does (a character is a symbol, not a rare word: nothing to be unknown)."""
    kw = dict(level=o["level"], lowercase=bool(o["lowercase"]), min_freq=o["min_freq"], max_vocab=o["max_vocab"],
              bpe_vocab_size=o["bpe_vocab_size"])
    pairs = train + valid if o["level"] == "char" else train
    if o["shared_vocab"]:
        tok = SequenceTokenizer.build([s for s, _ in pairs] + [t for _, t in pairs], **kw)
        return tok, tok
    return (SequenceTokenizer.build([s for s, _ in pairs], **kw),
            SequenceTokenizer.build([t for _, t in pairs], **kw))


# ---------------------------------------------------------------------------------------------- run

def resolved_options(args: argparse.Namespace) -> dict:
    """Typed options > the run's saved options (on --resume) > the preset > defaults."""
    return options.resolved_options(args, ALL, PRESETS)


def model_config(o: dict, src_tok: SequenceTokenizer, tgt_tok: SequenceTokenizer) -> Seq2SeqConfig:
    try:
        return Seq2SeqConfig(
            src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size, tgt_eos_id=tgt_tok.eos_id,
            cell=o["cell"], embed_size=o["embed_size"], hidden_size=o["hidden_size"],
            decoder_hidden_size=o["decoder_hidden_size"], encoder_layers=o["layers"],
            decoder_layers=o["decoder_layers"], bidirectional=bool(o["bidirectional"]), attention=o["attention"],
            attention_size=o["attention_size"], input_feeding=bool(o["input_feeding"]),
            reverse_source=bool(o["reverse_source"]), bridge=o["bridge"], dropout=o["dropout"],
            share_embeddings=bool(o["shared_vocab"]), init_range=o["init_range"], forget_bias=o["forget_bias"],
            engine=o["engine"])
    except ValueError as e:
        raise OptionError(str(e), "model options") from None


def run(args: argparse.Namespace) -> int:
    o = resolved_options(args)
    check_engine_device(o)
    with torch_threads(o["threads"]):
        return train_run(args, o)


def train_run(args: argparse.Namespace, o: dict) -> int:
    train_cfg = TrainConfig.from_dict({k: o[k] for k in TRAIN_KEYS})
    seed_everything(train_cfg.seed)
    train_pairs, valid_pairs, description, data = load_pairs(o)
    saved = run_vocabulary(args)                     # --resume: the run's own vocabularies
    if "src_tokenizer" in saved and "tgt_tokenizer" in saved:
        src_tok, tgt_tok = (SequenceTokenizer.from_dict(saved[k]) for k in ("src_tokenizer", "tgt_tokenizer"))
    else:
        src_tok, tgt_tok = build_tokenizers(o, train_pairs, valid_pairs)
    train_source, valid_source = pair_sources(o)
    train = encode_pairs(train_pairs, src_tok, tgt_tok, source=train_source)
    keep, dropped = filter_by_length(train, o["max_src_len"], o["max_tgt_len"])
    train = [train[i] for i in keep]
    valid = encode_pairs(valid_pairs, src_tok, tgt_tok, source=valid_source)
    cfg = model_config(o, src_tok, tgt_tok)
    model = Seq2Seq(cfg)
    device = training_device(train_cfg)
    task = Seq2SeqTask(src_tok, tgt_tok, train, valid, valid_pairs, batch_size=o["batch_size"],
                       max_tokens=o["max_tokens"], seed=train_cfg.seed, label_smoothing=o["label_smoothing"],
                       scheduled_sampling=o["scheduled_sampling"], eval_beam=o["eval_beam"],
                       eval_alpha=o["length_penalty"], eval_batch_size=o["eval_batch_size"], metric=o["metric"],
                       device=device, model_config=cfg.to_dict(),
                       data={**data, "description": description, "train_pairs": len(train), "dropped": dropped,
                             "valid_pairs": len(valid)})
    intro = (f"seq2seq, {describe(cfg)}, {count_parameters(model):,} parameters; vocabularies "
             f"{src_tok.vocab_size:,} / {tgt_tok.vocab_size:,} ({o['level']}); data: {description}, "
             f"{len(train):,} training pairs ({dropped:,} dropped by the length filters), {len(valid):,} "
             f"validation; {task.steps_per_epoch():,} steps per epoch")

    def outcome(trainer: Trainer) -> str:
        m = trainer.last_metrics
        case = " (case-insensitive)" if tgt_tok.lowercase else ""
        best = "n/a" if trainer.best is None else f"{trainer.best:.4f}"
        return (f"; last validation loss {m.get('loss', float('nan')):.4f}, BLEU{case} "
                f"{m.get('bleu', float('nan')):.2f}, chrF {m.get('chrf', float('nan')):.2f}, exact "
                f"{m.get('exact', float('nan')):.2%}; best "
                f"{o['metric']} {best}; run saved in {args.out}")

    return train_and_report(args, o, model, task, train_cfg, "seq2seq", intro, outcome)
