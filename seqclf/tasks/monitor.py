"""The monitored metric (``monitor``): what picks the best checkpoint, stops early, schedules the
learning rate on a plateau and scores a search trial, and whether higher or lower is better."""

from __future__ import annotations

from seqclf.errors import ConfigError


def check_monitor(monitor, logged: tuple[str, ...], note: str = "") -> str:
    """``monitor`` if it is one of the validation metrics the task logs (``logged``)."""
    if monitor not in logged:
        raise ConfigError(
            f"monitor={monitor!r} is not a validation metric this task logs; choose one of {', '.join(logged)}"
            + (f" ({note})." if note else ".")
        )
    return monitor


def monitor_mode(monitor: str) -> str:
    """max when higher is better, min for a loss or a perplexity (Lightning's ``mode``)."""
    return "min" if str(monitor).endswith(("loss", "perplexity")) else "max"


def direction(monitor: str) -> str:
    """Optuna's name for the same: maximize or minimize."""
    return "minimize" if monitor_mode(monitor) == "min" else "maximize"
