"""batchify layout (incl. DDP rank split) and BPTT windows on hand examples."""

import pytest
import torch

from rnnkit.data import BPTTStream, DataError, batchify


def test_batchify_columns_are_consecutive_chunks():
    data = batchify(torch.arange(26), batch_size=4)  # 24 used, 2 dropped
    expected = torch.tensor(
        [
            [0, 6, 12, 18],
            [1, 7, 13, 19],
            [2, 8, 14, 20],
            [3, 9, 15, 21],
            [4, 10, 16, 22],
            [5, 11, 17, 23],
        ]
    )
    assert torch.equal(data, expected)
    assert data.dtype == torch.long and data.is_contiguous()
    assert torch.equal(batchify(list(range(26)), 4), expected)


def test_batchify_rank_split_reads_own_columns():
    full = batchify(torch.arange(26), batch_size=4)
    rank0 = batchify(torch.arange(26), batch_size=2, rank=0, world_size=2)
    rank1 = batchify(torch.arange(26), batch_size=2, rank=1, world_size=2)
    assert torch.equal(rank0, full[:, :2])
    assert torch.equal(rank1, full[:, 2:])
    assert torch.equal(rank1[0], torch.tensor([12, 18]))
    # three ranks of two columns: 26 // 6 = 4 rows each
    r2 = batchify(torch.arange(26), batch_size=2, rank=2, world_size=3)
    assert torch.equal(r2, torch.tensor([[16, 20], [17, 21], [18, 22], [19, 23]]))


def test_batchify_too_short_message():
    with pytest.raises(DataError) as err:
        batchify(torch.arange(15), batch_size=4, world_size=2, source="tiny.txt")
    msg = str(err.value)
    assert msg.startswith("tiny.txt: corpus too short")
    assert "8 columns need at least 16 tokens" in msg
    assert "only 15" in msg
    assert batchify(torch.arange(16), batch_size=4, world_size=2).shape == (2, 4)


def test_batchify_bad_arguments():
    with pytest.raises(DataError, match="rank"):
        batchify(torch.arange(30), batch_size=2, rank=2, world_size=2)
    with pytest.raises(DataError, match="1-D"):
        batchify(torch.zeros(3, 4, dtype=torch.long), batch_size=2)


def test_bptt_windows_targets_shifted_by_one():
    data = batchify(torch.arange(26), batch_size=4)  # 6 rows
    stream = BPTTStream(data, bptt=2)
    assert len(stream) == 3  # ceil((6 - 1) / 2)
    windows = list(stream)
    assert [x.shape for x, _ in windows] == [(2, 4), (2, 4), (1, 4)]
    x0, y0 = windows[0]
    assert torch.equal(x0, torch.tensor([[0, 6, 12, 18], [1, 7, 13, 19]]))
    assert torch.equal(y0, torch.tensor([[1, 7, 13, 19], [2, 8, 14, 20]]))
    x2, y2 = windows[2]
    assert torch.equal(x2, torch.tensor([[4, 10, 16, 22]]))
    assert torch.equal(y2, torch.tensor([[5, 11, 17, 23]]))
    for x, y in windows:  # every target is the next token of its column
        assert torch.equal(y, x + 1)


def test_bptt_iter_from_resumes_exactly():
    stream = BPTTStream(batchify(torch.arange(100), batch_size=3), bptt=5)  # 33 rows
    assert len(stream) == 7  # ceil(32 / 5)
    full = list(stream)
    resumed = list(stream.iter_from(4))
    assert len(resumed) == 3
    for (a, b), (c, d) in zip(full[4:], resumed):
        assert torch.equal(a, c) and torch.equal(b, d)
    assert list(stream.iter_from(len(stream))) == []
    with pytest.raises(ValueError):
        stream.iter_from(8)


def test_bptt_exact_fit_and_too_short():
    stream = BPTTStream(torch.arange(10).view(5, 2), bptt=4)
    assert len(stream) == 1 and stream.window(0)[0].shape == (4, 2)
    with pytest.raises(DataError, match="too short"):
        BPTTStream(torch.arange(4).view(1, 4), bptt=3, source="x.txt")
