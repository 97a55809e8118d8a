"""``rnnkit gradients``: how much the last output depends on each earlier step, for fresh cells or a trained run.

Fresh cells (PyTorch's initialisation, the same random inputs)::

    rnnkit gradients --cell rnn lstm gru --steps 100 --out gradients.png

prints ‖∂L_T/∂h_t‖ and ‖∂y_T/∂x_t‖ against the distance T-1-t and plots them on a log scale: the tanh RNN's
fall geometrically (vanishing). ``--recurrent-scale 4`` multiplies the recurrent weights (exploding instead);
``--forget-bias 3`` starts the LSTM's forget gates near 0.95, and its gradient survives 50 steps.

A trained language model on a text (inputs: the embeddings; L_T: the loss of the text's last token)::

    rnnkit gradients runs/demo --text "def __init__(self, x):"

The effect of clipping on training: ``--clip C`` also trains each ``--cell`` on the adding problem twice from
the same initialisation and data, with the gradient norm clipped to C and without clipping, and reports both
(table + ``<out>-clipping.png``)::

    rnnkit gradients --cell rnn --recurrent-scale 2 --clip 1 --optimizer sgd --lr 0.05 --train-steps 300
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..cells.spec import SEQUENTIAL_NAMES
from ..data import read_text
from ..engine.resolve import ENGINES
from .errors import OptionError
from .options import ENGINE_HELP, check_cells_run
from .ranges import (HelpFormatter, figure_path, finite_float, integer, non_negative_float, optional, out_path,
                     positive_float, positive_int, seed_int, thread_count)

DEFAULT_CELLS = ["rnn", "lstm", "gru"]


def add_parser(sub) -> None:
    p = sub.add_parser("gradients", help="gradient norms through time (vanishing / exploding), clipping",
                       formatter_class=HelpFormatter, description=__doc__)
    p.add_argument("run", nargs="?", help="a language-model run folder (omit for fresh cells)")
    p.add_argument("--text", help="run: the text to measure on (its last token is the target)")
    p.add_argument("--text-file", help="run: read the text from this file instead")
    p.add_argument("--max-tokens", type=positive_int, default=200,
                   help="run: use at most this many tokens (the last ones)")
    g = p.add_argument_group("fresh cells")
    g.add_argument("--cell", nargs="+", choices=SEQUENTIAL_NAMES, default=None,
                   help="cells to compare (default: rnn lstm gru; the minimal cells have no recurrent weight)")
    g.add_argument("--steps", type=positive_int, default=100, help="sequence length T")
    g.add_argument("--hidden-size", type=positive_int, default=64, help="hidden units")
    g.add_argument("--input-size", type=positive_int, default=8, help="input features (standard normal inputs)")
    g.add_argument("--layers", type=positive_int, default=1, help="stacked layers")
    g.add_argument("--batch", type=positive_int, default=8, help="sequences averaged over")
    g.add_argument("--recurrent-scale", type=non_negative_float, default=1.0,
                   help="multiply the initial recurrent weights (>1: toward exploding gradients)")
    g.add_argument("--forget-bias", type=optional(finite_float, "PyTorch's"), default=None,
                   help="LSTM forget-gate bias at initialisation (e.g. 3: the cell state keeps its gradient)")
    t = p.add_argument_group("clipping (trains each cell twice on the adding problem)")
    t.add_argument("--clip", type=optional(positive_float, "no clipping runs"), default=None,
                   help="compare training with the gradient norm clipped to this and without clipping")
    t.add_argument("--train-steps", type=positive_int, default=300, help="training steps of each of the two runs")
    t.add_argument("--delay", type=integer(2), default=30, help="adding-problem length T for the clipping runs")
    t.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="SGD shows exploding gradients most plainly (Adam rescales its steps)")
    t.add_argument("--lr", type=positive_float, default=0.05, help="learning rate of the clipping runs")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size of the clipping runs")
    p.add_argument("--no-jacobian", action="store_true", help="skip ‖∂y_T/∂x_t‖ (faster)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help=f"fresh cells' {ENGINE_HELP}")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (weights, inputs, data)")
    p.add_argument("--threads", type=optional(thread_count, "torch's choice", zero=True), default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=figure_path, default="gradients.png", help="plot to write (PNG, or the format "
                   "its suffix names)")
    p.add_argument("--json", type=out_path, default=None, help="also write the numbers to this JSON file")
    p.set_defaults(run_command=run)


def _check(args: argparse.Namespace) -> None:
    """What the options' ranges (checked as they are parsed) can't say alone."""
    if args.run and args.cell:
        raise OptionError("give a run folder or --cell, not both")
    if args.run and args.clip is not None:
        raise OptionError("--clip compares training runs of fresh cells; use it with --cell, not a run folder")
    if not args.run and (args.text or args.text_file):
        raise OptionError("--text/--text-file measure a trained run: give its folder first")
    if not args.run:
        check_cells_run(args.cell or DEFAULT_CELLS, args.engine, args.layers)


def run(args: argparse.Namespace) -> int:
    from ..analysis.flow_report import flow_table, plot_flows
    from ..analysis.gradients import fresh_cell_flows
    _check(args)
    from ..training.atomic import check_writable
    for path in (args.out, args.json):           # before the work: an unwritable path is one line, at once
        if path:
            check_writable(path)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.run:
        flows = [_run_flow(args)]
        title = f"{args.run}: gradient of the last token's loss"
        print(flow_table(flows, layers=True))
    else:
        cells = args.cell or DEFAULT_CELLS
        flows = fresh_cell_flows(cells, steps=args.steps, input_size=args.input_size,
                                 hidden_size=args.hidden_size, batch=args.batch, num_layers=args.layers,
                                 recurrent_scale=args.recurrent_scale, seed=args.seed, engine=args.engine,
                                 jacobian=not args.no_jacobian, forget_bias=args.forget_bias)
        title = (f"fresh cells, T={args.steps}, hidden {args.hidden_size}"
                 + (f", recurrent weights x{args.recurrent_scale:g}" if args.recurrent_scale != 1 else ""))
        print(flow_table(flows, layers=args.layers > 1))
    if not args.no_jacobian:
        print()
        print(flow_table(flows, what="dy_dx"))
    plot_flows(flows, out, title)
    print(f"\nplot: {out}")
    record = {"flows": [f.to_dict() for f in flows]}
    if args.clip is not None:
        record["clipping"] = _clipping(args, out)
    if args.json:
        from ..training.atomic import write_json
        write_json(args.json, record)
        print(f"numbers: {args.json}")
    return 0


def _run_flow(args: argparse.Namespace):
    from ..analysis.gradients import lm_gradient_flow
    from ..tasks.language_modeling import load_run
    if bool(args.text) == bool(args.text_file):
        raise OptionError("give the text to measure on: --text STRING or --text-file FILE")
    text = args.text if args.text else read_text(args.text_file)
    model, tokenizer, _ = load_run(args.run)
    from ..analysis.activations import encodable
    text, _ = encodable(tokenizer, text)
    ids = tokenizer.encode(text)[-(args.max_tokens + 1):]
    if len(ids) < 2:
        raise OptionError("the text needs at least two tokens the model knows", "--text")
    flow = lm_gradient_flow(model, torch.tensor(ids, dtype=torch.long), jacobian=not args.no_jacobian,
                            seed=args.seed)
    flow.label = Path(args.run).name
    return flow


def _clipping(args: argparse.Namespace, out: Path) -> list:
    from ..analysis import experiments as E
    from ..analysis.memory_tasks import AddingTask
    cells = args.cell or DEFAULT_CELLS
    pairs = []
    for cell in cells:
        print(f"training {cell} on the adding problem (T={args.delay}) with clipping {args.clip:g} and without...",
              file=sys.stderr)
        pairs.append(E.clip_comparison(cell, args.clip, delay=args.delay, steps=args.train_steps,
                                       batch_size=args.batch_size, hidden_size=args.hidden_size, lr=args.lr,
                                       optimizer=args.optimizer, seed=args.seed, engine=args.engine,
                                       recurrent_scale=args.recurrent_scale, eval_size=500, log_every=1,
                                       forget_bias=args.forget_bias))
    print()
    print(f"Clipping on the adding problem, T={args.delay}, {args.train_steps} steps, {args.optimizer} "
          f"lr {args.lr:g} (held-out MSE; remembering nothing gives {AddingTask.baseline:.3f}):")
    print(E.clip_table(pairs))
    path = out.with_name(out.stem + "-clipping.png")
    E.plot_clipping(pairs, path, f"gradient clipping at {args.clip:g} vs none, adding problem T={args.delay}")
    print(f"\nplot: {path}")
    return [[r.to_dict() for r in pair] for pair in pairs]
