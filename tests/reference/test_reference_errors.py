"""The NumPy reference names its cells by their kernels; a user-facing name is refused with the way to convert it
(QA: ``forward("rnn", ...)`` listed the names without saying why 'rnn' wasn't one)."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.cells.spec import recurrence
from rnnkit.reference import forward


def test_a_user_facing_name_is_refused_with_the_conversion():
    x, h0 = np.zeros((2, 1, 3)), np.zeros((1, 4))
    params = {"weight_ih": np.zeros((4, 3)), "weight_hh": np.zeros((4, 4))}
    with pytest.raises(ValueError, match=r"unknown cell 'rnn'; the reference takes the kernels' names: rnn_tanh, .*"
                                         r"recurrence\(name\).kernel turns 'rnn' or 'gru-torch' into one"):
        forward("rnn", x, h0, params)
    out, _, _ = forward(recurrence("rnn").kernel, x, h0, params)
    assert out.shape == (2, 1, 4) and not out.any()
