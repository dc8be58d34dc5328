"""Signals that end a run before Lightning's fit takes them over: SIGTERM or SIGHUP while the data is
read and tokenised records the run as interrupted and exits at once, and the tokeniser's worker
processes end with it (seqclf.data.text starts them so that they die with their parent). Lightning
handles the same signals during training (a clean stop after the step)."""

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
