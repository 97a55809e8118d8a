"""The exportable programs of each task's model: plain functions of named tensors, with dynamic batch and length.

A trained model becomes one or two :class:`Program` objects, each a module whose ``forward`` takes tensors in the
order of its input :class:`Port` list and returns a tuple in the order of its outputs, so that torch.export and
ONNX see nothing but tensors:

===========  ==========================================================================================
task         programs
===========  ==========================================================================================
lm           ``step``: token (N,), h (, c) -> logits (N, V), h_out (, c_out)           (generation)
classify     ``classifier``: tokens (N, T), lengths (N,) -> logits (N, C)
seq2seq      ``encoder``: src (S, N), src_lengths (N,) -> the decoder's first state and the encoder states;
             ``decoder``: token (N,), state, encoder states, source mask -> logits (N, V), new state
caption      ``encoder``: images uint8 (N, 3, P, P) -> the decoder's first state (and the image grid);
             ``decoder``: token (N,), state (, grid) -> logits (N, V), new state
===========  ==========================================================================================

Each task also says how its programs are used (:class:`Loop`): which inputs carry the state from step to step,
where the others come from, the start and end tokens. :mod:`.sidecar` writes that next to the exported files.

The recurrent layers are switched to the ``python`` engine: whole sequences then run through the custom operator
``rnnkit::recurrence`` with its portable backend (no C++ build needed where a ``.pt2`` file is loaded; ONNX
translates the operator into its own RNN/LSTM/GRU), and single decoder steps through the cell equations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..layers import RecurrentLayer
from ..models.seq2seq import Seq2SeqDecoderState
from ..models.captioner import CaptionDecoderState

Shape = tuple[int | str, ...]            # ints are fixed, strings name a dynamic dimension ("N", "T", "S")

DIMS = {"N": "batch size: any number of rows", "T": "tokens per row (padded; lengths says how many are real)",
        "S": "source tokens per row (padded; src_lengths says how many are real)"}
EXPORT_SIZES = {"N": 3, "T": 7, "S": 6}          # the example traced (distinct values: nothing specializes)
CHECK_SIZES = {"N": 2, "T": 5, "S": 4}           # a second batch of other sizes the exported files must match on


@dataclass(frozen=True)
class Port:
    """One named input or output tensor."""

    name: str
    dtype: torch.dtype
    shape: Shape
    doc: str = ""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": str(self.dtype).removeprefix("torch."), "shape": list(self.shape),
                "doc": self.doc}


class ProgramModule(nn.Module):
    """``forward(*tensors)`` in the order of ``input_names``; ``run`` maps names to tensors."""

    def __init__(self, model: nn.Module, inputs: list[Port], outputs: list[Port]) -> None:
        super().__init__()
        self.model = model
        self.input_names = tuple(p.name for p in inputs)
        self.output_names = tuple(p.name for p in outputs)

    def run(self, x: dict[str, Tensor]) -> dict[str, Tensor | None]:
        raise NotImplementedError

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        out = self.run(dict(zip(self.input_names, tensors)))
        return tuple(out[name] for name in self.output_names)


@dataclass
class Program:
    """One exported function: its module, its ports and a way to make inputs of any size."""

    name: str
    module: ProgramModule
    inputs: list[Port]
    outputs: list[Port]
    make_inputs: Callable[[dict[str, int], torch.Generator], tuple[Tensor, ...]]
    doc: str = ""

    def dynamic_shapes(self) -> tuple:
        """torch.export's ``dynamic_shapes`` for ``forward(*tensors)``: one Dim object per dimension name."""
        dims: dict[str, Any] = {}

        def dim(name: str):
            if name not in dims:
                dims[name] = torch.export.Dim(name, min=1)
            return dims[name]
        return (tuple({axis: dim(s) for axis, s in enumerate(p.shape) if isinstance(s, str)} for p in self.inputs),)


@dataclass
class Loop:
    """How a decoder's step program is driven (written to the sidecar; ``None`` for a classifier)."""

    program: str                           # the step program
    state: dict[str, str]                  # input <- output of the previous step
    initial: dict[str, str]                # every other input but the token: "zeros" or "<program>.<output>"
    start_token: int
    end_token: int | None                  # None: the language model writes as many tokens as asked
    max_length: str | int | None
    token_input: str = "token"
    logits_output: str = "logits"
    first: str | None = None               # the program run once before the loop (an encoder), if any

    def describe(self) -> dict[str, Any]:
        return {"first": self.first, "program": self.program, "token_input": self.token_input,
                "logits_output": self.logits_output, "state": self.state, "initial": self.initial,
                "start_token": self.start_token, "end_token": self.end_token, "max_length": self.max_length}


@dataclass
class Bundle:
    """Everything one run exports: programs, how to loop them, and what the sidecar says about the run."""

    task: str
    model: nn.Module
    programs: list[Program]
    loop: Loop | None
    info: dict[str, Any] = field(default_factory=dict)       # cell, sizes, labels, image format, ...
    tokenizers: dict[str, Any] = field(default_factory=dict)  # role -> tokenizer object (see sidecar)
    special_tokens: dict[str, int] = field(default_factory=dict)


def portable(model: nn.Module) -> nn.Module:
    """``model`` (float32, eval mode) with every recurrent layer on the ``python`` engine (module docstring)."""
    model = model.float().eval()
    for m in model.modules():
        if isinstance(m, RecurrentLayer):
            m.engine = "python"
    return model


def _state_ports(cell, layers: int, hidden: int, whose: str = "", level: str = "") -> list[Port]:
    """``h`` (and the LSTM's ``c``): (layers, N, hidden); ``level``: AWD-LSTM's level, a suffix (``h2``)."""
    which = f"of level {level}" if level else "of every layer"
    ports = [Port(f"h{level}", torch.float32, (layers, "N", hidden), f"{whose}hidden state {which}")]
    if cell.has_cell_state:
        ports.append(Port(f"c{level}", torch.float32, (layers, "N", hidden), f"{whose}LSTM cell {which}"))
    return ports


def _state_loop(ports: list[Port]) -> dict[str, str]:
    return {p.name: p.name + "_out" for p in ports}


def _tokens(g: torch.Generator, high: int, *shape: int, low: int = 0) -> Tensor:
    return torch.randint(low, high, shape, generator=g, dtype=torch.long)


def _lengths(g: torch.Generator, n: int, steps: int) -> Tensor:
    """Lengths in 1..steps, the first one full (a batch padded to its longest row)."""
    lengths = torch.randint(1, steps + 1, (n,), generator=g, dtype=torch.long)
    lengths[0] = steps
    return lengths


def _state_values(g: torch.Generator, ports: list[Port], n: int) -> list[Tensor]:
    return [0.5 * torch.randn(*[n if s == "N" else s for s in p.shape], generator=g) for p in ports]


# ---------------------------------------------------------------------------------------------- lm

def _lm_levels(model) -> list[tuple[str, int, int]]:
    """``(port suffix, layers, hidden size)`` of each state a language model carries: one for a stack, one per
    level for AWD-LSTM (``"1"``, ``"2"``, ...: its levels may differ in size)."""
    c = model.config
    if c.awd:
        return [(str(k + 1), 1, layer.hidden_size) for k, layer in enumerate(model.rnn.layers)]
    return [("", c.num_layers, c.hidden_size)]


class LMStep(ProgramModule):
    def run(self, x):
        cell = self.model.config.recurrence
        levels = [s for s, _, _ in _lm_levels(self.model)]
        states = [cell.pack(x[f"h{s}"], x.get(f"c{s}")) for s in levels]
        logits, state = self.model(x["token"].unsqueeze(0), tuple(states) if self.model.config.awd else states[0])
        out = {"logits": logits[0]}
        for s, level_state in zip(levels, state if self.model.config.awd else [state]):
            out[f"h{s}_out"], out[f"c{s}_out"] = cell.unpack(level_state)
        return out


def lm_bundle(model, tokenizer, config: dict) -> Bundle:
    model = portable(model)
    c = model.config
    cell = c.recurrence
    V = c.vocab_size
    state = [p for level, layers, hidden in _lm_levels(model) for p in _state_ports(cell, layers, hidden, level=level)]
    inputs = [Port("token", torch.int64, ("N",), "the previous token of each row")] + state
    outputs = [Port("logits", torch.float32, ("N", V), "scores of the next token (softmax: probabilities)")]
    outputs += [Port(p.name + "_out", p.dtype, p.shape, f"{p.name} after this step") for p in state]

    def make_inputs(sizes, g):
        n = sizes["N"]
        return (_tokens(g, V, n), *_state_values(g, state, n))
    start = next((tokenizer.vocab.index(s) for s in ("\n", "<eos>") if s in tokenizer.vocab), 0)
    program = Program("step", LMStep(model, inputs, outputs), inputs, outputs, make_inputs,
                      "one generation step")
    loop = Loop("step", _state_loop(state), {p.name: "zeros" for p in state}, start_token=start, end_token=None,
                max_length=None)
    special = {"start": start}
    if "<eos>" in tokenizer.vocab:
        special["eos"] = tokenizer.vocab.index("<eos>")
    if "<unk>" in tokenizer.vocab:
        special["unk"] = tokenizer.vocab.index("<unk>")
    info = {"level": config.get("level"), "vocab_size": V, "layers": c.num_layers, "hidden_size": c.hidden_size}
    if c.awd:
        info["level_sizes"] = [hidden for _, _, hidden in _lm_levels(model)]
    return Bundle("lm", model, [program], loop, info, {"tokenizer": tokenizer}, special)


# ---------------------------------------------------------------------------------------------- classify

class ClassifierProgram(ProgramModule):
    def run(self, x):
        return {"logits": self.model(x["tokens"], x["lengths"])}


def classifier_bundle(loaded) -> Bundle:
    model = portable(loaded.model)
    c = model.config
    inputs = [Port("tokens", torch.int64, ("N", "T"), "token ids, one row per text, padded with pad_id"),
              Port("lengths", torch.int64, ("N",), "real tokens per row, 1..T")]
    outputs = [Port("logits", torch.float32, ("N", c.num_classes), "class scores (softmax: probabilities), "
                                                                   "in the order of labels")]

    def make_inputs(sizes, g):
        n, t = sizes["N"], sizes["T"]
        tokens = _tokens(g, c.vocab_size, n, t)
        lengths = _lengths(g, n, t)
        tokens[torch.arange(t).unsqueeze(0) >= lengths.unsqueeze(1)] = c.pad_id
        return tokens, lengths
    program = Program("classifier", ClassifierProgram(model, inputs, outputs), inputs, outputs, make_inputs,
                      "a padded batch of texts -> class scores")
    enc = loaded.encoder
    info = {"labels": loaded.labels.to_list(), "pooling": c.pooling, "layers": c.num_layers,
            "hidden_size": c.hidden_size, "bidirectional": c.bidirectional}
    special = {"pad": enc.pad_id, "unk": enc.unk_id}
    return Bundle("classify", model, [program], None, info, {"tokenizer": enc}, special)


# ---------------------------------------------------------------------------------------------- seq2seq

class Seq2SeqEncoder(ProgramModule):
    def run(self, x):
        st = self.model.encode(x["src"], x["src_lengths"])
        h, cell = self.model.cell.unpack(st.hidden)
        return {"h": h, "c": cell, "feed": st.feed, "memory": st.memory, "cache": st.cache, "mask": st.mask,
                "summary": st.summary}


class Seq2SeqDecoder(ProgramModule):
    def run(self, x):
        h = x["h"]
        hidden = self.model.cell.pack(h, x.get("c"))
        feed = x["feed"] if "feed" in x else h.new_zeros(h.shape[1:])       # unused without input feeding
        state = Seq2SeqDecoderState(hidden, feed, x.get("memory"), x.get("cache"), x.get("mask"),
                                    x.get("summary"))
        logits, new = self.model.step(x["token"], state)
        h, c = self.model.cell.unpack(new.hidden)
        return {"logits": logits, "h_out": h, "c_out": c, "feed_out": new.feed, "attention": new.attention}


def seq2seq_bundle(model, src_tok, tgt_tok, config: dict) -> Bundle:
    model = portable(model)
    c = model.config
    cell = c.recurrence
    attention, feeding = model.attention is not None, c.input_feeding
    H, K, V = c.dec_hidden, c.memory_size, c.tgt_vocab_size
    state = _state_ports(cell, c.decoder_layers, H, "the decoder's ")
    if feeding:
        state.append(Port("feed", torch.float32, ("N", H), "the last attentional vector (input feeding)"))
    if attention:
        cache_size = model.attention.precompute(torch.zeros(1, 1, K)).shape[-1]
        context = [Port("memory", torch.float32, ("N", "S", K), "encoder states (in the order it read the source)"),
                   Port("cache", torch.float32, ("N", "S", cache_size), "the attention's projection of memory"),
                   Port("mask", torch.bool, ("N", "S"), "true at the real source tokens")]
    else:
        context = [Port("summary", torch.float32, ("N", K), "the encoder's final states, [forward; backward]")]
    enc_inputs = [Port("src", torch.int64, ("S", "N"), "source ids, one column per sentence, each ending in the "
                                                       "source EOS, padded (any id)"),
                  Port("src_lengths", torch.int64, ("N",), "source ids per sentence, EOS included")]
    enc_outputs = state + context
    dec_inputs = [Port("token", torch.int64, ("N",), "the previous target token (start: the target EOS)")]
    dec_inputs += state + context
    dec_outputs = [Port("logits", torch.float32, ("N", V), "scores of the next target token")]
    dec_outputs += [Port(p.name + "_out", p.dtype, p.shape, f"{p.name} after this step") for p in state]
    if attention:
        dec_outputs.append(Port("attention", torch.float32, ("N", "S"), "this step's attention weights"))

    def make_encoder_inputs(sizes, g):
        n, s = sizes["N"], sizes["S"]
        return _tokens(g, c.src_vocab_size, s, n), _lengths(g, n, s)

    encoder = Seq2SeqEncoder(model, enc_inputs, enc_outputs)

    def make_decoder_inputs(sizes, g):
        with torch.no_grad():
            first = dict(zip(encoder.output_names, encoder(*make_encoder_inputs(sizes, g))))
        for p in state:                                       # a state away from the first step's
            first[p.name] = first[p.name] + 0.1 * torch.randn(first[p.name].shape, generator=g)
        token = _tokens(g, V, sizes["N"])
        return (token, *[first[p.name] for p in state + context])

    programs = [Program("encoder", encoder, enc_inputs, enc_outputs, make_encoder_inputs,
                        "source ids -> the decoder's first state and the encoder states (run once per batch)"),
                Program("decoder", Seq2SeqDecoder(model, dec_inputs, dec_outputs), dec_inputs, dec_outputs,
                        make_decoder_inputs, "one decoding step")]
    carried = {p.name: p.name + "_out" for p in state}
    loop = Loop("decoder", carried, {p.name: f"encoder.{p.name}" for p in state + context}, first="encoder",
                start_token=c.tgt_eos_id, end_token=c.tgt_eos_id,
                max_length="2 * src_lengths + 10 target tokens (EOS included), as rnnkit translate")
    info = {"attention": c.attention, "input_feeding": feeding, "reverse_source": c.reverse_source,
            "encoder_layers": c.encoder_layers, "decoder_layers": c.decoder_layers, "hidden_size": c.hidden_size,
            "decoder_hidden_size": H, "bidirectional": c.bidirectional}
    special = {"source_eos": src_tok.eos_id, "target_eos": tgt_tok.eos_id, "start": c.tgt_eos_id,
               "end": c.tgt_eos_id}
    return Bundle("seq2seq", model, programs, loop, info, {"source": src_tok, "target": tgt_tok}, special)


# ---------------------------------------------------------------------------------------------- caption

class CaptionEncoder(ProgramModule):
    def run(self, x):
        from ..data.images import normalize
        st = self.model.start(normalize(x["images"]))
        return {"h": st.h, "c": st.c, "keys": st.keys, "cache": st.cache}


class CaptionDecoder(ProgramModule):
    def run(self, x):
        state = CaptionDecoderState(x["h"], x.get("c"), x.get("keys"), x.get("cache"))
        logits, new = self.model.step(x["token"], state)
        return {"logits": logits, "h_out": new.h, "c_out": new.c, "attention": new.weights}


def caption_bundle(model, tokenizer, config: dict) -> Bundle:
    model = portable(model)
    c = model.config
    cell = c.recurrence
    P, V = c.image_size, c.vocab_size
    state = _state_ports(cell, c.num_layers, c.hidden_size)
    grid = []
    if model.has_attention:
        with torch.no_grad():
            probe = model.start(torch.zeros(1, 3, P, P))
        G, C = probe.keys.shape[1:]
        grid = [Port("keys", torch.float32, ("N", G, C), "the image grid the decoder attends to"),
                Port("cache", torch.float32, ("N", G, probe.cache.shape[-1]), "the attention's projection of keys")]
    enc_inputs = [Port("images", torch.uint8, ("N", 3, P, P), f"RGB pixels, resized to {P}x{P} (bilinear)")]
    enc_outputs = state + grid
    dec_inputs = [Port("token", torch.int64, ("N",), "the previous word (start: <eos>)")] + state + grid
    dec_outputs = [Port("logits", torch.float32, ("N", V), "scores of the next word")]
    dec_outputs += [Port(p.name + "_out", p.dtype, p.shape, f"{p.name} after this step") for p in state]
    if grid:
        dec_outputs.append(Port("attention", torch.float32, ("N", grid[0].shape[1]), "this step's weights"))

    def make_encoder_inputs(sizes, g):
        return (torch.randint(0, 256, (sizes["N"], 3, P, P), generator=g, dtype=torch.uint8),)

    encoder = CaptionEncoder(model, enc_inputs, enc_outputs)

    def make_decoder_inputs(sizes, g):
        with torch.no_grad():
            first = dict(zip(encoder.output_names, encoder(*make_encoder_inputs(sizes, g))))
        for p in state:
            first[p.name] = first[p.name] + 0.1 * torch.randn(first[p.name].shape, generator=g)
        return (_tokens(g, V, sizes["N"]), *[first[p.name] for p in state + grid])

    programs = [Program("encoder", encoder, enc_inputs, enc_outputs, make_encoder_inputs,
                        "images -> the decoder's first state (run once per batch)"),
                Program("decoder", CaptionDecoder(model, dec_inputs, dec_outputs), dec_inputs, dec_outputs,
                        make_decoder_inputs, "one decoding step")]
    eos = tokenizer.vocab.index("<eos>")
    loop = Loop("decoder", _state_loop(state), {p.name: f"encoder.{p.name}" for p in state + grid}, first="encoder",
                start_token=eos, end_token=eos, max_length=c.max_length)
    info = {"image_size": P, "image_format": "uint8 RGB (N, 3, size, size), resized bilinearly; the encoder "
                                            "normalises with ImageNet's mean and std itself",
            "attention": c.attention, "layers": c.num_layers, "hidden_size": c.hidden_size}
    return Bundle("caption", model, programs, loop, info, {"tokenizer": tokenizer}, {"start": eos, "end": eos})
