"""``rnnkit export RUN --format onnx|pt2 --out FILE``: a trained run as files other programs can run.

What is exported, per task: the language model as one generation step (token, state -> logits, new state); the
classifier over a padded batch (token ids (N, T), lengths (N,) -> logits); the translator as its encoder (source
ids, lengths -> the decoder's first state, the encoder states, the source mask) and its decoder step (previous
token, state, encoder states, mask -> logits, new state); the captioner as its image encoder and its decoder
step. Batch size and sequence lengths are dynamic.

A run with two programs writes FILE's name with .encoder and .decoder before the suffix. Beside the programs:
FILE.json, e.g. model.onnx.json (what the inputs and outputs are, the special token ids, the cell, how to loop a
decoder) and the tokenizers as JSON, e.g. model.tokenizer.json (vocabulary, how text becomes ids). The files
are then run on a new batch and compared with rnnkit's own outputs.

onnx: runs in onnxruntime, with ONNX's own RNN/LSTM/GRU operators (needs pip install 'rnnkit[export]').
pt2: torch.export's ExportedProgram (torch.export.save); load it with torch.export.load after `import rnnkit`,
which registers rnnkit's recurrent operator the program calls.
"""
from __future__ import annotations

import argparse
import sys

from ..export import FORMATS, ExportError, export_run
from .ranges import HelpFormatter, out_path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to ONNX or a torch.export .pt2 program",
                       formatter_class=HelpFormatter, description=__doc__)
    p.add_argument("run", help="run folder written by `rnnkit train ...` (any task)")
    p.add_argument("--format", default=None, metavar="|".join(FORMATS),
                   help="onnx (onnxruntime and other ONNX runtimes) or pt2 (torch.export; loading it needs "
                        "`import rnnkit` first); default: FILE's suffix")
    p.add_argument("--out", required=True, metavar="FILE", type=out_path,
                   help="where to write, e.g. model.onnx; the sidecar and tokenizers go next to it")
    p.add_argument("--no-check", action="store_true",
                   help="don't run the written files to compare them with rnnkit's outputs")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = export_run(args.run, args.out, args.format, check=not args.no_check)
    except ExportError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    out = sys.stdout
    out.write(f"exported the {result.task} run {args.run} as {result.format}:\n")
    for path in result.files:
        out.write(f"  {path}\n")
    if result.max_difference is not None:
        out.write(f"checked on a new batch: largest difference from rnnkit {result.max_difference:.2g}\n")
    for note in result.notes:
        out.write(note + "\n")
    return 0
