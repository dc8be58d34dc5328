"""Lightning's messages once: importing Lightning gives its ``lightning`` logger a console handler of
its own ("INFO: ..."), and its records reach the run's handlers (Hydra's terminal line and the run's
log file) as well, so each was printed twice. A command that has its own handlers keeps those only."""

from __future__ import annotations

import logging


def once() -> None:
    """Drop the ``lightning`` logger's own handlers when the root logger has handlers (a command's,
    which Hydra configured) that its records reach; without them (a user's Python session) keep them."""
    import lightning  # noqa: F401  (the handler is added when Lightning is imported)

    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()
