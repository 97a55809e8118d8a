"""What travels with the exported files so that they can be used without rnnkit: the tokenizers and one JSON file.

``NAME.onnx.json`` (or ``NAME.pt2.json``: the sidecar) names the program files, their inputs and outputs (name,
dtype, shape: numbers are fixed sizes, letters dynamic ones), the special token ids, the cell, and how to drive a
decoder (``loop``):

* run ``loop.first`` (the encoder) once, if there is one;
* give the step program ``loop.token_input`` = ``start_token`` for every row, and every other input as
  ``loop.initial`` says: ``"zeros"`` (that input's shape, N rows) or ``"encoder.NAME"`` (the encoder's output);
* after each step pick the next token from ``loop.logits_output`` (argmax: greedy), and feed each output
  ``loop.state[input]`` back as ``input``; the inputs not in ``loop.state`` stay as they were;
* stop at ``end_token`` (or after ``max_length`` tokens).

``NAME.tokenizer.json`` (a translator's: ``NAME.source-tokenizer.json``, ``NAME.target-tokenizer.json``) holds
one tokenizer: the vocabulary (``vocab[id]`` is the symbol), how text becomes ids and back (``encode``/``decode``,
in words and, where a regular expression splits words, the expression in Python's ``re`` syntax), its special
ids, and for BPE the Hugging Face ``tokenizers`` JSON (``tokenizers.Tokenizer.from_str(json.dumps(t["huggingface"]))``).
"""
from __future__ import annotations

from typing import Any

import torch

from ..data import BPETokenizer, CharTokenizer, TextEncoder, Tokenizer, WordTokenizer
from ..data.parallel import SequenceTokenizer
from .programs import DIMS, Bundle

SIDECAR_FORMAT = "rnnkit-export/1"


def _specials(vocab: list[str]) -> dict[str, int]:
    return {name: vocab.index(symbol) for name, symbol in (("eos", "<eos>"), ("unk", "<unk>"), ("pad", "<pad>"))
            if symbol in vocab}


def _base(tok: Tokenizer) -> dict[str, Any]:
    """A language-model or caption tokenizer (char, word or bpe) on its own."""
    vocab = list(tok.vocab)
    d: dict[str, Any] = {"kind": tok.kind, "vocab": vocab, "special": _specials(vocab)}
    if isinstance(tok, CharTokenizer):
        d["encode"] = "one id per character: vocab.index(ch); a character outside vocab cannot be encoded"
        d["decode"] = "''.join(vocab[id] for id in ids)"
    elif isinstance(tok, WordTokenizer):
        d["encode"] = ("for every line of the text: its whitespace-separated words, then '<eos>' (a line end); "
                       "a word outside vocab becomes '<unk>'")
        d["decode"] = "words joined by spaces; '<eos>' is a line break"
    elif isinstance(tok, BPETokenizer):
        d["encode"] = ("Hugging Face tokenizers: Tokenizer.from_str(json.dumps(huggingface)).encode(text, "
                       "add_special_tokens=False).ids")
        d["decode"] = ("pieces starting with '##' continue the word before them (drop the '##'); words are "
                       "joined by spaces; '<eos>' is a line break")
        d["huggingface"] = tok.to_dict()["tokenizer_json"]
    return d


def describe_tokenizer(tok: Any, role: str, caption: bool = False) -> dict[str, Any]:
    """The JSON description of one of rnnkit's tokenizers (see the module's docstring)."""
    if isinstance(tok, SequenceTokenizer):
        from ..data.parallel import _WORD             # the one expression rnnkit splits words with
        d = _base(tok.inner)
        d.update(level=tok.level, lowercase=tok.lowercase, eos_id=tok.eos_id)
        prepare = "collapse whitespace to single spaces" + (", lower-case" if tok.lowercase else "")
        if tok.level == "char":
            d["encode"] = f"{prepare}; one id per character (vocab.index(ch)); then eos_id ('\\n')"
            d["decode"] = "the characters up to the first eos_id"
        else:
            d["pretokenize"] = _WORD.pattern
            pieces = ("vocab.index(word), '<unk>' for a word outside vocab" if tok.level == "word" else
                      "the words joined by spaces, cut into pieces by the Hugging Face tokenizer (huggingface)")
            d["encode"] = f"{prepare}; words = re.findall(pretokenize, text); ids = {pieces}; then eos_id"
            d["decode"] = ("the ids up to the first eos_id as words ('##' pieces join the word before); words "
                           "joined by spaces, no space before . , ! ? ; : % ) ] } nor after ( [ {")
        return d
    if isinstance(tok, TextEncoder):
        d = _base(tok.tokenizer)
        d.update(lowercase=tok.lowercase, pad_id=tok.pad_id, unk_id=tok.unk_id)
        if tok.tokenizer.kind == "word":
            d["encode"] = ("lower-case the text first; " if tok.lowercase else "") + \
                "its whitespace-separated words: vocab.index(word), unk_id for a word outside vocab (no '<eos>')"
        else:
            d["encode"] = ("lower-case the text first; " if tok.lowercase else "") + d["encode"]
        d["batch"] = "pad every row to the longest with pad_id; lengths = real tokens per row"
        return d
    d = _base(tok)
    if caption:
        from ..data.images import _WORD as CAPTION_WORD
        d["pretokenize"] = CAPTION_WORD.pattern
        d["encode"] = ("words = re.findall(pretokenize, caption.lower()); vocab.index(word), '<unk>' for a word "
                       "outside vocab; then '<eos>'")
        d["decode"] = "the words up to the first '<eos>', joined by spaces"
    return d


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("rnnkit")
    except PackageNotFoundError:          # run from a source tree that isn't installed
        return "unknown"


def sidecar(bundle: Bundle, fmt: str, files: dict[str, str], tokenizer_files: dict[str, str],
            run_dir: str, check: dict | None) -> dict[str, Any]:
    """The sidecar JSON of an export (see the module's docstring)."""
    cell = bundle.model.config.recurrence
    used_dims = {s for p in bundle.programs for port in p.inputs + p.outputs for s in port.shape
                 if isinstance(s, str)}
    out: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "file_format": fmt,
        "task": bundle.task,
        "run": run_dir,
        "rnnkit": _version(),
        "torch": torch.__version__.split("+")[0],
        "cell": {"name": cell.name, "description": cell.description, "gates": list(cell.gate_names),
                 "has_cell_state": cell.has_cell_state},
        "model": bundle.info,
        "programs": {p.name: {"file": files[p.name], "doc": p.doc, "inputs": [i.describe() for i in p.inputs],
                              "outputs": [o.describe() for o in p.outputs]} for p in bundle.programs},
        "dims": {d: DIMS[d] for d in sorted(used_dims)},
        "tokenizers": tokenizer_files,
        "special_tokens": bundle.special_tokens,
        "loop": None if bundle.loop is None else bundle.loop.describe(),
    }
    if fmt == "onnx":
        out["usage"] = ("onnxruntime.InferenceSession(file).run(None, {input name: numpy array}) returns the "
                        "outputs in the order listed")
    else:
        out["usage"] = ("import rnnkit (it registers the operator rnnkit::recurrence), then "
                        "torch.export.load(file).module()(*inputs in the order listed) returns the outputs in "
                        "the order listed")
    if check is not None:
        out["check"] = check
    return out
