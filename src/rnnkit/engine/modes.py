"""The recurrences the engine knows, by name, and how many gate blocks each has."""
from __future__ import annotations

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "gru_reset_after": 3}
MODES = tuple(GATES)


def check_mode(mode: str) -> str:
    if mode not in GATES:
        raise ValueError(f"unknown recurrence {mode!r}; expected one of {MODES}")
    return mode


def has_cell_state(mode: str) -> bool:
    """Only the LSTM carries a second state, the cell ``C``."""
    return mode == "lstm"
