"""The tagger's own settings' checks (the monitored metric), torch-free."""

from __future__ import annotations

from seqclf.tasks.monitor import check_monitor

# The validation metrics a tagger logs, which ``monitor`` may name.
TAGGING_MONITORED = ("val/f1", "val/token_acc", "val/loss")


def check_tagging(monitor) -> None:
    """Raise a ConfigError for a monitored metric a tagger does not log."""
    check_monitor(monitor, TAGGING_MONITORED, "tagging")


def check_model(model, cfg) -> None:
    """The tagger's own model.* settings of a composed config (seqclf.tasks.check_model)."""
    check_tagging(model.get("monitor", cfg.monitor))
