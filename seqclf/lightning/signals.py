"""Signals that end a run: SIGTERM or SIGHUP while the data is read and tokenised records the run as
interrupted and exits at once, and the tokeniser's worker processes end with it (seqclf.data.text
starts them so that they die with their parent). During training Lightning handles SIGTERM (a clean
stop after the step); SIGHUP (a closed terminal or SSH session), which it leaves to the default of
dying on the spot, stops the run as an exception would, recorded as interrupted."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from seqclf import cli
from seqclf.runs import files

log = logging.getLogger(__name__)
SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


@contextlib.contextmanager
def exit_on_signals(out: Path) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP write ``interrupted`` into the run's status.json, say so in
    its train.log and on the terminal, and exit with 128 + the signal's number. Exiting from the
    handler rather than raising keeps the tokeniser's process pool out of it (an exception in the
    middle of its bookkeeping can leave it waiting for ever). The previous handlers come back after."""

    def stop(signum, frame) -> None:
        name = signal.Signals(signum).name
        with contextlib.suppress(Exception):  # the exit must happen whatever the disk says
            files.write_status(out, "interrupted", error=f"stopped by {name}")
            cli.log_to_files(log, f"Stopped by {name} while preparing the data.")
        print(f"seqclf-train: stopped by {name} while preparing the data; start the run again.", file=sys.stderr)
        sys.stderr.flush()
        os._exit(128 + signum)

    try:
        previous = {s: signal.signal(s, stop) for s in SIGNALS}
    except ValueError:  # not the main thread: handlers cannot be set
        previous = {}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class HangUp(BaseException):
    """SIGHUP during training: Lightning's handling of an exception runs (its callbacks' on_exception,
    the loggers' finalisation, the teardown) and lets it through, then the run is recorded as
    interrupted. Not a KeyboardInterrupt, which Lightning turns into exit status 1."""


@contextlib.contextmanager
def hangup_as_interrupt() -> Iterator[None]:
    """Within the block, SIGHUP raises HangUp in the main thread; the previous handler comes back after."""

    def hang_up(signum, frame) -> None:
        raise HangUp()

    hup = getattr(signal, "SIGHUP", None)
    try:
        previous = signal.signal(hup, hang_up) if hup is not None else None
    except ValueError:  # not the main thread
        hup = None
    try:
        yield
    finally:
        if hup is not None:
            signal.signal(hup, previous)
