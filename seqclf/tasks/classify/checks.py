"""The classifier's own settings' checks (model.class_weights, model.threshold, the monitored metric), torch-free."""

from __future__ import annotations

from seqclf.errors import ConfigError
from seqclf.models.checks import check_pooling
from seqclf.tasks.monitor import check_monitor

# The validation metrics a classifier logs, which ``monitor`` may name.
CLASSIFICATION_MONITORED = ("val/acc", "val/f1_macro", "val/f1_micro", "val/loss")


def check_classification(class_weights, threshold, monitor) -> None:
    """Raise a ConfigError for a class-weight setting, threshold or monitored metric that cannot work
    (the class names in a weight mapping are checked against the data's when the model is built)."""
    check_monitor(monitor, CLASSIFICATION_MONITORED, "val/f1_micro: multi-label data only")
    if not (class_weights is None or class_weights == "balanced" or hasattr(class_weights, "items")):
        raise ConfigError(
            f"model.class_weights={class_weights!r} is not valid; choose null, balanced, or a mapping from class name "
            "to weight (e.g. model.class_weights='{pos: 2.0}')."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ConfigError(f"model.threshold={threshold!r} must lie strictly between 0 and 1 (e.g. 0.5).")


def check_model(model, cfg) -> None:
    """The classifier's own model.* settings of a composed config (seqclf.tasks.check_model)."""
    check_pooling(model.get("pooling"))
    check_classification(model.get("class_weights"), model.get("threshold", 0.5), model.get("monitor", cfg.monitor))
