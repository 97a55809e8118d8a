"""Ctrl-C and ``kill`` while training: the first signal stops at a step boundary, a second ends the process."""
from __future__ import annotations

import os
import signal
import threading
from typing import Any


class StopSignals:
    """SIGINT and SIGTERM while training (installed by :meth:`Trainer.fit` in the main thread).

    The first signal is noted (:attr:`received`) and the loop stops at its next safe point: after the step or
    the save under way, so the saved state is a step boundary; during an evaluation (which changes nothing) it
    raises :class:`KeyboardInterrupt` at once. A second signal ends the process at once, by that signal (the last
    saved state stays; a temporary file it leaves is cleared by the next command that owns the run folder)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.interruptible = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        self.received = None
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            os.write(2, f"\nrnnkit: second {signal.Signals(signum).name}: stopping at once; the last saved state "
                        f"is kept\n".encode())
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self.interruptible:
            raise KeyboardInterrupt
