"""The monitored metric (``monitor``): what picks the best checkpoint, stops early, schedules the
learning rate on a plateau and scores a search trial, and whether higher or lower is better."""

from __future__ import annotations

from seqclf.errors import ConfigError

MONITORED = ("val/acc", "val/f1_macro", "val/f1_micro", "val/loss")


def check_monitor(monitor) -> str:
    """``monitor`` if it is a validation metric seqclf logs (val/f1_micro needs multi-label data)."""
    if monitor not in MONITORED:
        raise ConfigError(
            f"monitor={monitor!r} is not a validation metric seqclf logs; choose one of {', '.join(MONITORED)} "
            "(val/f1_micro: multi-label data only)."
        )
    return monitor


def monitor_mode(monitor: str) -> str:
    """max when higher is better, min for a loss (Lightning's ``mode``)."""
    return "min" if str(monitor).endswith("loss") else "max"


def direction(monitor: str) -> str:
    """Optuna's name for the same: maximize or minimize."""
    return "minimize" if monitor_mode(monitor) == "min" else "maximize"
