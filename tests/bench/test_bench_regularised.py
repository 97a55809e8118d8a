"""``rnnkit bench --regularised`` on a tiny shape: every option set timed, and what each saves for its backward."""
from __future__ import annotations

import torch

from rnnkit.bench import regularised


def test_saved_bytes_counts_what_the_backward_keeps():
    w = torch.randn(5, 7, requires_grad=True)
    x = torch.randn(3, 5)
    assert regularised.saved_bytes(lambda: (x @ w).sum().backward()) == x.numel() * 4   # mm saves x (w is a leaf)


def test_the_report_has_every_configuration_and_the_masks_cost_memory(monkeypatch):
    monkeypatch.setattr(regularised, "QUICK_SHAPES", [(6, 3, 8)])
    threads = torch.get_num_threads()
    try:
        results = regularised.measure(6, 3, 8, rounds=1)
        text = regularised.run(quick=True)
    finally:
        torch.set_num_threads(threads)
    assert list(results) == list(regularised.CONFIGS)
    saved = {name: m for name, (_, m, _) in results.items()}
    assert {r for _, _, r in results.values()} == {1}
    masks = 2 * 2 * 6 * 3 * 8 + 2 * 3 * 8 * 4               # per layer: zoneout of h and C (T, N, H) as bools,
                                                             # dropout (N, H) floats
    assert saved["rd + wd + zoneout (compiled)"] == saved["rd + wd + zoneout (python BPTT)"]
    # weight drop keeps no mask (its backward remakes it from the key), and its dropped weight_hh takes the raw
    # one's place among the saved tensors: the masks above are the whole difference
    assert saved["rd + wd + zoneout (compiled)"] - saved["plain (compiled)"] == masks
    assert (saved["layer_norm, checkpoint_every=10 (compiled)"] < saved["plain (compiled)"]
            < saved["layer_norm (compiled)"])
    rows = [line for line in text.splitlines() if line.startswith("| ") and "configuration" not in line]
    assert [r.split("|")[1].strip() for r in rows] == list(regularised.CONFIGS)
    assert rows[0].split("|")[3].strip() == "1.00×"



def test_the_gpu_report_times_every_option_set_beside_torch_nn(monkeypatch):
    """``--device cuda``'s report, run on the CPU with the GPU stood in (the compiled loop in the CUDA-graph loop's
    place), so that its code runs in every test run; on a GPU benchmarks/gpu.sh --regularised runs it."""
    from rnnkit.bench import cuda
    configs = {name: {**kw, "engine": "compiled"} if kw.get("engine") == "cuda-graph" else kw
               for name, kw in regularised.CUDA_CONFIGS.items()}
    real = regularised.measure
    monkeypatch.setattr(regularised, "CUDA_CONFIGS", configs)
    monkeypatch.setattr(regularised, "QUICK_SHAPES", [(6, 3, 8)])
    monkeypatch.setattr(regularised, "measure", lambda *a: real(*a[:-1], device="cpu"))
    monkeypatch.setattr(cuda, "gpu_description", lambda: "a stand-in GPU")
    text = regularised.run(True, "rnnkit bench --regularised --device cuda", device="cuda")
    assert "GPU: a stand-in GPU" in text and "`rnnkit bench --regularised --device cuda --quick`" in text
    assert "ratios to cuDNN's plain LSTM" in text
    rows = {r.split("|")[1].strip(): r.split("|") for r in text.splitlines()
            if r.startswith("| ") and "configuration" not in r}
    assert list(rows) == list(configs) and rows[regularised.CUDA_BASE][3].strip() == "1.00×"
    layers = regularised.configured_layers(8, configs)
    assert type(layers[regularised.CUDA_BASE]) is torch.nn.LSTM and layers[regularised.CUDA_BASE].num_layers == 2
    assert all(float(r[2]) > 0 and r[3].strip().endswith("×") for r in rows.values())
