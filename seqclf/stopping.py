"""Signals that end a run before Lightning's fit takes them over: SIGTERM and SIGHUP during data
preparation become an exception, so the run records that it was interrupted and the tokeniser's
worker processes are ended with it (the default action would kill the process on the spot)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Stopped(Exception):
    """A signal asked the run to end."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum, frame) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Stopped; the previous handlers are restored after
    (Lightning installs its own for training). Only in the main thread, where handlers can be set."""
    try:
        previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
