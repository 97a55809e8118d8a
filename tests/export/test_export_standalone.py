"""The exported ONNX files alone are enough: a translation and a generated text from onnxruntime, NumPy and the
sidecar files (no rnnkit object in the loop), token for token what rnnkit's own greedy decoding gives."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from export_helpers import needs_onnx

pytestmark = needs_onnx


class OnnxClient:
    """What a user writes from the sidecar's description: sessions, the loop, the tokenizers."""

    def __init__(self, sidecar_path: Path) -> None:
        import onnxruntime
        self.folder = sidecar_path.parent
        self.meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
        assert self.meta["file_format"] == "onnx"
        self.sessions = {name: onnxruntime.InferenceSession(str(self.folder / p["file"]),
                                                            providers=["CPUExecutionProvider"])
                         for name, p in self.meta["programs"].items()}

    def tokenizer(self, role: str) -> dict:
        return json.loads((self.folder / self.meta["tokenizers"][role]).read_text(encoding="utf-8"))

    def run(self, name: str, feed: dict) -> dict:
        outputs = [p["name"] for p in self.meta["programs"][name]["outputs"]]
        return dict(zip(outputs, self.sessions[name].run(outputs, feed)))

    def start(self, batch: int, first_inputs: dict | None = None) -> dict:
        """The step program's inputs but the token, as loop.initial says."""
        loop = self.meta["loop"]
        first = self.run(loop["first"], first_inputs) if loop["first"] else {}
        values = {}
        for port in self.meta["programs"][loop["program"]]["inputs"]:
            if port["name"] == loop["token_input"]:
                continue
            source = loop["initial"][port["name"]]
            if source == "zeros":
                values[port["name"]] = np.zeros([batch if s == "N" else s for s in port["shape"]], port["dtype"])
            else:
                program, output = source.split(".")
                assert program == loop["first"]
                values[port["name"]] = first[output]
        return values

    def step(self, tokens: np.ndarray, values: dict) -> np.ndarray:
        """One step: the logits; the carried state updated in ``values``."""
        loop = self.meta["loop"]
        out = self.run(loop["program"], {loop["token_input"]: tokens.astype(np.int64), **values})
        for name, output in loop["state"].items():
            values[name] = out[output]
        return out[loop["logits_output"]]


def _encode_words(tok: dict, text: str) -> list[int]:
    """A translator's source side, from its tokenizer file: normalise, split with the expression, look up."""
    text = " ".join(text.split())
    if tok["lowercase"]:
        text = text.lower()
    stoi = {s: i for i, s in enumerate(tok["vocab"])}
    return [stoi.get(w, tok["special"]["unk"]) for w in re.findall(tok["pretokenize"], text)] + [tok["eos_id"]]


def test_a_translation_from_the_onnx_files_alone(runs, exported):
    client = OnnxClient(exported("seq2seq", "onnx"))
    sentences = ["Ein Hund schläft .", "zwei  katzen laufen", "eine frau liest ."]       # unknown words too
    src_tok = client.tokenizer("source")
    ids = [_encode_words(src_tok, s) for s in sentences]
    S, N = max(map(len, ids)), len(ids)
    src = np.zeros((S, N), np.int64)                                 # padded with any id
    for n, row in enumerate(ids):
        src[:len(row), n] = row
    lengths = np.array([len(r) for r in ids], np.int64)
    values = client.start(N, {"src": src, "src_lengths": lengths})
    loop = client.meta["loop"]
    limits = 2 * lengths + 10                                        # loop.max_length
    assert "2 * src_lengths + 10" in loop["max_length"]
    tokens = np.full(N, loop["start_token"], np.int64)
    out: list[list[int]] = [[] for _ in range(N)]
    done = np.zeros(N, bool)
    for t in range(int(limits.max())):
        tokens = client.step(tokens, values).argmax(-1)
        for n in range(N):
            if not done[n]:
                out[n].append(int(tokens[n]))
                done[n] = tokens[n] == loop["end_token"] or t + 1 >= limits[n]
        if done.all():
            break
    out = [o[:-1] if o and o[-1] == loop["end_token"] else o for o in out]

    from rnnkit.tasks.seq2seq import load_run, translate
    model, src_tok_r, tgt_tok_r, _ = load_run(runs["seq2seq"])
    assert ids == [src_tok_r.encode(s) for s in sentences]
    expected = [hyps[0] for hyps in translate(model, src_tok_r, tgt_tok_r, sentences, beam=1)]
    assert out == [t.ids for t in expected]
    vocab = client.tokenizer("target")["vocab"]
    assert [" ".join(vocab[i] for i in o) for o in out] == [" ".join(t.tgt_symbols[:len(t.ids)])
                                                            for t in expected]


def test_text_generated_from_the_onnx_files_alone(runs, exported):
    client = OnnxClient(exported("lm", "onnx"))
    tok = client.tokenizer("tokenizer")
    assert tok["kind"] == "word"
    prime = "the cat"
    stoi = {s: i for i, s in enumerate(tok["vocab"])}
    prime_ids = [stoi.get(w, tok["special"]["unk"]) for w in prime.split()]   # no line end: no <eos> after it
    values = client.start(1)
    for i in prime_ids:
        logits = client.step(np.array([i]), values)
    pieces = []
    for _ in range(15):
        token = logits.argmax(-1)
        word = tok["vocab"][int(token[0])]
        pieces.append("\n" if word == "<eos>" else word + " ")
        logits = client.step(token, values)

    from rnnkit.decoding import generate
    from rnnkit.tasks.language_modeling import load_run
    model, tokenizer, _ = load_run(runs["lm"])
    assert "".join(pieces) == "".join(generate(model, tokenizer, prime, 15, temperature=0))
