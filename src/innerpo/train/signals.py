"""SIGTERM and SIGINT (SLURM pre-emption, Ctrl-C): finish the step, checkpoint, exit."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
    """The run stopped on a signal after writing a checkpoint; resume it with --resume."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


@contextmanager
def stop_requests():
    """Yield a dict whose "signal" is set to the signal number when one arrives.

    The first signal only sets the flag (the loop checkpoints after the current step);
    the previous handlers come back at once, so a second Ctrl-C stops immediately.
    Outside the main thread (where Python allows no handlers) nothing is installed.
    """
    got: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def handler(signum, frame):
        got["signal"] = signum
        for s, h in previous.items():
            signal.signal(s, h)

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield got
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
