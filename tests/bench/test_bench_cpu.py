"""``rnnkit bench``'s CPU report on tiny shapes: every table present, the memory rows from a fresh process."""
from __future__ import annotations

import torch

from rnnkit.bench import cpu, memory, timing
from rnnkit.cells.spec import GRU, GRU_TORCH, LSTM, RNN_TANH


def test_each_cell_races_its_torch_twin_or_the_nearest_one():
    assert timing.CELLS == {
        "LSTM": (LSTM, LSTM), "GRU (PyTorch form)": (GRU_TORCH, GRU_TORCH), "GRU (Cho, lecture)": (GRU, GRU_TORCH),
        "RNN tanh": (RNN_TANH, RNN_TANH)}
    for _, peer in timing.CELLS.values():
        module, cell = timing.torch_module(peer, 4), timing.torch_cell(peer, 4)
        assert module.weight_hh_l0.shape == cell.weight_hh.shape == (peer.gates * 4, 4)


def test_the_fused_column_is_the_devices_own_loop():
    assert timing.fast_engine("cpu") == "compiled" and timing.fast_engine("cuda") == "cuda-graph"


def test_the_memory_rows_come_from_a_fresh_process():
    rows = memory.memory_in_subprocess([(3, 2, 4)])
    assert rows[0].startswith("| cell | (T, N, H) | BPTT's minimum | torch.nn | fused |")
    assert [r.split("|")[1].strip() for r in rows[2:]] == list(timing.CELLS)
    for row in rows[2:]:                                       # the minimum, then four measured columns
        cols = [c.strip() for c in row.split("|")[3:-1]]
        assert len(cols) == 5 and all(c == "n/a" or (" MB (" in c and c.endswith("×)")) for c in cols[1:])
    assert rows[2].split("|")[3].strip() == memory.megabytes(LSTM.saved_per_step * 2 * 4 * 3 * 4)


def test_the_cpu_report_has_every_table(monkeypatch):
    monkeypatch.setattr(cpu, "CELLS", {"LSTM": timing.CELLS["LSTM"],
                                       "GRU (Cho, lecture)": timing.CELLS["GRU (Cho, lecture)"]})
    monkeypatch.setattr(cpu, "QUICK_SHAPES", [(3, 2, 4)])
    monkeypatch.setattr(cpu, "memory_in_subprocess", lambda shapes: memory.memory_rows([(3, 2, 4)], cpu.CELLS))
    monkeypatch.setattr(cpu, "generation_rows", lambda: ["| what | µs per token | ×torch.nn |"])
    threads = torch.get_num_threads()
    try:
        text = cpu.run(True, command="rnnkit bench")
    finally:
        torch.set_num_threads(threads)
    assert "Command: `rnnkit bench --quick`" in text and "fused engine built with" in text
    for title in ("## Training step", "## Inference", "## Ratios of the fastest rounds", "## Peak memory growth",
                  "## Generation"):
        assert title in text
    rows = [line for line in text.splitlines()
            if line.startswith(("| LSTM | 3, 2, 4", "| GRU (Cho, lecture) | 3, 2, 4"))]
    assert len(rows) == 8                                       # two cells in the three timing tables and memory
    train = rows[0].split("|")
    assert float(train[3]) > 0 and "×)" in train[4] and train[-2].strip().endswith("%")
