"""What the export tests share: tiny runs of every task written as `rnnkit train` writes them (``save_run`` with the
task's configuration keys), running an exported program from its sidecar, and the float32 tolerance."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnkit.data import CharTokenizer, LabelSet, TextEncoder, WordTokenizer
from rnnkit.data.parallel import SequenceTokenizer
from rnnkit.models.captioner import CaptionConfig, CaptionModel
from rnnkit.models.classifier import Classifier, ClassifierConfig
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.training import save_run

LM_TEXT = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n"
TEXTS = ["a good film", "a bad film", "good acting and a good plot", "bad plot", "not good"]
PAIRS = [("ein hund läuft .", "a dog runs ."), ("zwei katzen schlafen .", "two cats sleep ."),
         ("ein mann liest .", "a man reads ."), ("eine frau singt .", "a woman sings .")]
CAPTIONS = ["a red square on a blue disc", "two green dots", "a blue square"]


def lm_run(path, cell: str = "lstm", level: str = "word", layers: int = 2, seed: int = 0, **options):
    """``options``: more LMConfig fields (``layer_norm=True``, ``zoneout=0.1``, ...)."""
    torch.manual_seed(seed)
    tok = WordTokenizer.build(LM_TEXT) if level == "word" else CharTokenizer.build(LM_TEXT)
    model = LanguageModel(LMConfig(vocab_size=tok.vocab_size, cell=cell, embed_size=8, hidden_size=12,
                                   num_layers=layers, **options))
    _sharpen(model)
    save_run(path, model, {"task": "lm", "level": level, "model": model.config.to_dict(),
                           "tokenizer": tok.to_dict(), "data": {}})
    return path


def classifier_run(path, cell: str = "lstm", pooling: str = "max", seed: int = 0, ensemble: int = 1):
    """``ensemble=K``: K members, saved as `rnnkit train classify --ensemble K` saves them."""
    torch.manual_seed(seed)
    enc = TextEncoder.build(TEXTS)
    labels = LabelSet(["neg", "pos"])
    config = ClassifierConfig(vocab_size=enc.vocab_size, num_classes=2, cell=cell, embed_size=8, hidden_size=6,
                              num_layers=2, bidirectional=True, pooling=pooling, pad_id=enc.pad_id)
    model = Classifier(config) if ensemble == 1 else EnsembleClassifier.build(config, ensemble)
    described = {**config.to_dict(), **({"ensemble": ensemble} if ensemble > 1 else {})}
    save_run(path, model, {"task": "classify", "model": described, "encoder": enc.to_dict(),
                           "labels": labels.to_list(), "data": {}})
    return path


def seq2seq_run(path, cell: str = "gru", attention: str = "bahdanau", reverse_source: bool = True,
                seed: int = 0):
    torch.manual_seed(seed)
    src = SequenceTokenizer.build([s for s, _ in PAIRS], level="word", lowercase=True)
    tgt = SequenceTokenizer.build([t for _, t in PAIRS], level="word")
    model = Seq2Seq(Seq2SeqConfig(src.vocab_size, tgt.vocab_size, tgt_eos_id=tgt.eos_id, cell=cell, embed_size=8,
                                  hidden_size=6, decoder_layers=2, attention=attention,
                                  reverse_source=reverse_source))
    _sharpen(model)
    save_run(path, model, {"task": "seq2seq", "model": model.config.to_dict(), "src_tokenizer": src.to_dict(),
                           "tgt_tokenizer": tgt.to_dict(), "data": {}, "decoding": {"beam": 1, "alpha": 0.0},
                           "metric": "bleu", "case_insensitive": False})
    return path


def caption_run(path, cell: str = "rnn-relu", attention: str = "bahdanau", seed: int = 0):
    torch.manual_seed(seed)
    tok = WordTokenizer.build("\n".join(CAPTIONS))
    model = CaptionModel(CaptionConfig(vocab_size=tok.vocab_size, widths=[4, 8], image_size=16, pool=2,
                                       cell=cell, embed_size=6, hidden_size=8, attention=attention,
                                       max_length=8))
    _sharpen(model)
    save_run(path, model, {"task": "caption", "model": model.config.to_dict(), "tokenizer": tok.to_dict(),
                           "data": {}})
    return path


@torch.no_grad()
def _sharpen(model):
    """Larger output weights, as training gives: greedy choices then have clear winners (no near-ties that
    float rounding could flip between rnnkit and another runtime)."""
    for name, p in model.named_parameters():
        if name.split(".")[0] in ("decoder", "output", "out") and p.dim() == 2:
            p.mul_(8.0)


def _installed(*names: str) -> bool:
    import importlib.util
    return all(importlib.util.find_spec(n) is not None for n in names)


HAS_ONNX = _installed("onnx", "onnxscript", "onnxruntime")
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="onnx, onnxscript and onnxruntime are not installed "
                                                      "(pip install 'rnnkit[export]')")

RUNS = {"lm": lm_run, "classify": classifier_run, "seq2seq": seq2seq_run, "caption": caption_run}
CELLS = {"lm": "lstm", "classify": "rnn", "seq2seq": "gru", "caption": "gru-torch"}   # rnn-relu: test_export_cells




def sidecar(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def run_program(sidecar_path, name: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Program ``name`` of an export on named inputs -> named outputs (torch tensors)."""
    meta = sidecar(sidecar_path)
    program = meta["programs"][name]
    file = Path(sidecar_path).parent / program["file"]
    names = [p["name"] for p in program["inputs"]]
    assert set(names) == set(inputs), (names, sorted(inputs))
    outputs = [p["name"] for p in program["outputs"]]
    if meta["file_format"] == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == names
        got = session.run(outputs, {n: inputs[n].detach().numpy() for n in names})
        return {n: torch.from_numpy(g) for n, g in zip(outputs, got)}
    module = torch.export.load(str(file)).module()
    with torch.no_grad():
        got = module(*[inputs[n] for n in names])
    return dict(zip(outputs, got))


def assert_close(got: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    """float32 exports equal rnnkit's outputs within 1e-4 (absolute); other dtypes exactly."""
    assert tuple(got.shape) == tuple(expected.shape), what
    if expected.dtype.is_floating_point:
        torch.testing.assert_close(got.to(expected.dtype), expected, atol=1e-4, rtol=0, msg=what)
    else:
        assert torch.equal(got.to(expected.dtype), expected), what
