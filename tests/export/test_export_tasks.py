"""`rnnkit export` of every task's run, as ONNX and as pt2: the files give rnnkit's own outputs (the models' own
methods, default engine) on batches and lengths other than the ones traced, a single row included."""
from __future__ import annotations

import pytest
import torch

from rnnkit.data.images import normalize
from rnnkit.tasks import captioning, classification, language_modeling, seq2seq

from export_helpers import assert_close, classifier_run, lm_run, needs_onnx, run_program, sidecar

FORMATS = [pytest.param("onnx", marks=needs_onnx), "pt2"]


def _compare(got: dict, expected: dict) -> None:
    assert set(expected) <= set(got), (sorted(got), sorted(expected))
    for name, value in expected.items():
        assert_close(got[name], value, name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_language_model_step(runs, exported, fmt):
    side = exported("lm", fmt)
    meta = sidecar(side)
    assert meta["task"] == "lm" and meta["cell"]["name"] == "lstm" and list(meta["programs"]) == ["step"]
    assert meta["loop"]["state"] == {"h": "h_out", "c": "c_out"}
    model, tok, _ = language_modeling.load_run(runs["lm"])
    L, H = model.config.num_layers, model.config.hidden_size
    g = torch.Generator().manual_seed(5)
    for n in (1, 4):
        token = torch.randint(0, tok.vocab_size, (n,), generator=g)
        h, c = torch.randn(L, n, H, generator=g), torch.randn(L, n, H, generator=g)
        logits, (h_out, c_out) = model.step(token, (h, c))
        got = run_program(side, "step", {"token": token, "h": h, "c": c})
        _compare(got, {"logits": logits, "h_out": h_out, "c_out": c_out})


@pytest.mark.parametrize("fmt", FORMATS)
def test_classifier_over_padded_batches(runs, exported, fmt):
    side = exported("classify", fmt)
    meta = sidecar(side)
    assert meta["model"]["labels"] == ["neg", "pos"] and meta["special_tokens"]["pad"] >= 0
    clf = classification.load_run(runs["classify"])
    V, pad = clf.model.config.vocab_size, clf.encoder.pad_id
    g = torch.Generator().manual_seed(6)
    for n, t in ((1, 3), (5, 12)):                 # 12 > the 7 steps traced
        tokens = torch.randint(0, V, (n, t), generator=g)
        lengths = torch.randint(1, t + 1, (n,), generator=g)
        lengths[-1] = t
        tokens[torch.arange(t).unsqueeze(0) >= lengths.unsqueeze(1)] = pad
        got = run_program(side, "classifier", {"tokens": tokens, "lengths": lengths})
        with torch.no_grad():
            expected = clf.model(tokens, lengths)
        _compare(got, {"logits": expected})


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_an_awd_language_model_exports_one_state_per_level(tmp_path, fmt, cell):
    """AWD-LSTM keeps one layer per level, of its own size (QA: every --awd run failed to export)."""
    from rnnkit.cli.main import main
    run = lm_run(tmp_path / "run", cell=cell, layers=3, awd=True, last_hidden_size=5)
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / f"lm.{fmt}")]) == 0
    meta = sidecar(tmp_path / f"lm.{fmt}.json")
    names = ["h1", "h2", "h3"] + (["c1", "c2", "c3"] if cell == "lstm" else [])
    assert sorted(meta["loop"]["state"]) == sorted(names) and meta["model"]["level_sizes"] == [12, 12, 5]
    model, tok, _ = language_modeling.load_run(run)
    g = torch.Generator().manual_seed(9)
    token = torch.randint(0, tok.vocab_size, (3,), generator=g)
    states = tuple(tuple(torch.randn(1, 3, H, generator=g) for _ in range(2 if cell == "lstm" else 1))
                   for H in (12, 12, 5))
    with torch.no_grad():
        logits, new = model.step(token, tuple(s if cell == "lstm" else s[0] for s in states))
    inputs = {"token": token, **{f"h{k + 1}": s[0] for k, s in enumerate(states)}}
    expected = {"logits": logits}
    for k, level in enumerate(new):
        h, c = level if cell == "lstm" else (level, None)
        expected[f"h{k + 1}_out"] = h
        if cell == "lstm":
            inputs[f"c{k + 1}"] = states[k][1]
            expected[f"c{k + 1}_out"] = c
    _compare(run_program(tmp_path / f"lm.{fmt}.json", "step", inputs), expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_minimal_cell_language_model_step_exports_to_both_formats(tmp_path, fmt):
    """A step program runs no scan over a dynamic length: plain operators, which ONNX exports too."""
    from rnnkit.cli.main import main
    run = lm_run(tmp_path / "run", cell="mingru")
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / f"lm.{fmt}")]) == 0
    model, tok, _ = language_modeling.load_run(run)
    L, H = model.config.num_layers, model.config.hidden_size
    g = torch.Generator().manual_seed(8)
    token, h = torch.randint(0, tok.vocab_size, (3,), generator=g), torch.randn(L, 3, H, generator=g)
    with torch.no_grad():
        logits, h_out = model.step(token, h)
    got = run_program(tmp_path / f"lm.{fmt}.json", "step", {"token": token, "h": h})
    _compare(got, {"logits": logits, "h_out": h_out})


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_minimal_cells_export_over_padded_batches(tmp_path, cell, capsys):
    """The parallel-scan layers export as pt2 with the scan as one operator (``rnnkit::linear_scan``: the length
    stays dynamic); ONNX, which has no such operator, refuses in one line."""
    from rnnkit.cli.main import main
    run = classifier_run(tmp_path / "run", cell=cell)
    fmt = "pt2"
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / f"clf.{fmt}")]) == 0
    clf = classification.load_run(run)
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(0, clf.model.config.vocab_size, (4, 9), generator=g)
    lengths = torch.tensor([9, 2, 5, 1])
    tokens[torch.arange(9).unsqueeze(0) >= lengths.unsqueeze(1)] = clf.encoder.pad_id
    got = run_program(tmp_path / f"clf.{fmt}.json", "classifier", {"tokens": tokens, "lengths": lengths})
    with torch.no_grad():
        _compare(got, {"logits": clf.model(tokens, lengths)})
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "clf.onnx")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "rnnkit: error: ONNX has no operator for the parallel scan of MinGRU/MinLSTM over a sequence of any length: "
        "this program can't be exported to ONNX (export it with --format pt2)")
    assert not (tmp_path / "clf.onnx").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_ensemble_classifier_exports_its_mean(tmp_path, fmt):
    """`--ensemble K` runs export as one program whose logits are the log of the members' mean probabilities."""
    from rnnkit.cli.main import main
    run = classifier_run(tmp_path / "run", cell="gru", ensemble=3)
    out = tmp_path / f"ensemble.{fmt}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    clf = classification.load_run(run)
    assert len(clf.model) == 3
    tokens = torch.tensor([[3, 4, 5, 0], [4, 4, 0, 0]])
    lengths = torch.tensor([3, 2])
    tokens[tokens == 0] = clf.encoder.pad_id
    got = run_program(tmp_path / f"ensemble.{fmt}.json", "classifier", {"tokens": tokens, "lengths": lengths})
    with torch.no_grad():
        mean = clf.model.member_probabilities(tokens, lengths).mean(0)
    _compare(got, {"logits": mean.log()})


@pytest.mark.parametrize("fmt", FORMATS)
def test_translator_encoder_and_decoder_step(runs, exported, fmt):
    side = exported("seq2seq", fmt)
    meta = sidecar(side)
    assert list(meta["programs"]) == ["encoder", "decoder"] and meta["loop"]["first"] == "encoder"
    model, src_tok, tgt_tok, _ = seq2seq.load_run(runs["seq2seq"])
    g = torch.Generator().manual_seed(7)
    for n, s in ((1, 2), (3, 9)):
        src = torch.randint(0, src_tok.vocab_size, (s, n), generator=g)
        lengths = torch.randint(1, s + 1, (n,), generator=g)
        lengths[0] = s
        with torch.no_grad():
            state = model.encode(src, lengths)
        enc = run_program(side, "encoder", {"src": src, "src_lengths": lengths})
        _compare(enc, {"h": state.hidden, "feed": state.feed, "memory": state.memory, "cache": state.cache,
                       "mask": state.mask})
        token = torch.randint(0, tgt_tok.vocab_size, (n,), generator=g)
        state.hidden = state.hidden + 0.1 * torch.randn(state.hidden.shape, generator=g)
        inputs = {"token": token, "h": state.hidden, "feed": state.feed, "memory": state.memory,
                  "cache": state.cache, "mask": state.mask}
        with torch.no_grad():
            logits, new = model.step(token, state)
        got = run_program(side, "decoder", inputs)
        _compare(got, {"logits": logits, "h_out": new.hidden, "feed_out": new.feed, "attention": new.attention})


@pytest.mark.parametrize("fmt", FORMATS)
def test_captioner_encoder_and_decoder_step(runs, exported, fmt):
    side = exported("caption", fmt)
    meta = sidecar(side)
    assert meta["model"]["image_size"] == 16 and meta["loop"]["max_length"] == 8
    model, tok, _ = captioning.load_run(runs["caption"])
    g = torch.Generator().manual_seed(8)
    for n in (1, 3):
        images = torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
        with torch.no_grad():
            state = model.start(normalize(images))
        enc = run_program(side, "encoder", {"images": images})
        _compare(enc, {"h": state.h, "keys": state.keys, "cache": state.cache})
        token = torch.randint(0, tok.vocab_size, (n,), generator=g)
        with torch.no_grad():
            logits, new = model.step(token, state)
        got = run_program(side, "decoder", {"token": token, "h": state.h, "keys": state.keys,
                                            "cache": state.cache})
        _compare(got, {"logits": logits, "h_out": new.h, "attention": new.weights})


def test_the_files_beside_the_program(exported):
    """The sidecar names files that exist; tokenizers hold the vocabulary and how to encode."""
    side = exported("seq2seq", "pt2")
    meta = sidecar(side)
    folder = side.parent
    for program in meta["programs"].values():
        assert (folder / program["file"]).is_file()
        assert all({"name", "dtype", "shape"} <= set(p) for p in program["inputs"] + program["outputs"])
    assert set(meta["tokenizers"]) == {"source", "target"}
    src = sidecar(folder / meta["tokenizers"]["source"])
    assert src["level"] == "word" and src["lowercase"] and src["vocab"][src["eos_id"]] == "<eos>"
    assert "pretokenize" in src and "encode" in src
    assert meta["special_tokens"]["start"] == meta["loop"]["start_token"]
    assert "import rnnkit" in meta["usage"]


def test_exported_files_honour_the_umask(runs, tmp_path):
    """QA: the programs were written 0600 (mkstemp), the JSON beside them 0644."""
    import os
    from rnnkit.cli.main import main
    before = os.umask(0o022)
    try:
        assert main(["export", str(runs["lm"]), "--format", "pt2", "--out", str(tmp_path / "lm.pt2")]) == 0
    finally:
        os.umask(before)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name
