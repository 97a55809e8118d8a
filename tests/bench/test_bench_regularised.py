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
