"""``rnnkit bench --device cuda``'s report, run on the CPU with the CUDA calls stood in, so that the code a GPU
runs once a session is exercised in every test run (its figures come from benchmarks/gpu.sh on a GPU)."""
from __future__ import annotations

import torch

from rnnkit.bench import cuda, generation, timing


def test_the_cuda_report_has_every_table(monkeypatch):
    cpu_impls = timing.implementations
    monkeypatch.setattr(cuda, "implementations", lambda *a, device: cpu_impls(*a, device="cpu"))
    monkeypatch.setattr(cuda, "CELLS", {"LSTM": timing.CELLS["LSTM"],
                                        "GRU (Cho, lecture)": timing.CELLS["GRU (Cho, lecture)"]})
    monkeypatch.setattr(cuda, "QUICK_SHAPES", [(3, 2, 4)])
    monkeypatch.setattr(cuda, "gpu_description", lambda: "a stand-in GPU")
    monkeypatch.setattr(cuda, "generation_rows",
                        lambda device: generation.generation_rows(H=8, vocab=5, steps=2, device="cpu"))
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    for name in ("memory_allocated", "max_memory_allocated", "memory_reserved"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: 2**20)
    text = cuda.run(True, "rnnkit bench --device cuda --quick")
    assert "GPU: a stand-in GPU" in text and "Command: `rnnkit bench --device cuda --quick`" in text
    for title in ("## Training step", "## Inference", "## Peak GPU memory growth", "## Generation"):
        assert title in text
    assert "| rnnkit layer.step, one compiled call |" in text and "| torch.nn.LSTM called per step |" in text
    rows = [line for line in text.splitlines() if line.startswith("| LSTM | 3, 2, 4") or
            line.startswith("| GRU (Cho, lecture) | 3, 2, 4")]
    assert len(rows) == 6                                       # two cells in each of the three tables
    train = rows[0].split("|")
    assert float(train[3]) > 0 and "×)" in train[4]           # torch.nn ms, then fused with its ratio
