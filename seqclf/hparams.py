"""The checks of every model.* and optimizer.* setting: the network's (cell, sizes, pooling, the
softmax), the optimizer's and each task's. Torch-free, so that seqclf-train refuses a bad value
before torch and Lightning load (seqclf.tasks.check_model); the networks and the task modules call
the same checks when they are built."""

from __future__ import annotations

import math
from collections.abc import Sequence

from seqclf.errors import ConfigError, check_positive_int
from seqclf.monitor import check_monitor

# The recurrent cells (seqclf.models.rnn.CELLS maps each to its torch module): nn.RNN (tanh), nn.LSTM, nn.GRU.
CELL_NAMES = ("rnn", "lstm", "gru")
# What represents a review: the encoder's output at the last step, its maximum over the review's
# own steps (padding left out), or both side by side.
POOLINGS = ("last", "max", "last_max")


def check_settings(cell, embed_dim, hidden_size, num_layers, dropout, pooling) -> None:
    """Raise a ConfigError naming the first setting of the network that cannot work, and the fix."""
    if cell not in CELL_NAMES:
        raise ConfigError(
            f"model.cell={cell!r} is not a known cell type; choose one of {', '.join(CELL_NAMES)} (e.g. model=gru)."
        )
    for key, value in (("embed_dim", embed_dim), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        check_positive_int(f"model.{key}", value)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout={dropout!r} must lie in [0, 1).")
    if pooling not in POOLINGS:
        raise ConfigError(f"model.pooling={pooling!r} is not valid; choose one of {', '.join(POOLINGS)}.")


def check_cutoffs(cutoffs, vocab_size) -> None:
    """Raise a ConfigError unless ``cutoffs`` is null or ascending word ranks inside a vocabulary of
    ``vocab_size`` entries (``data.vocab_size`` before the data is read, the fitted one after)."""
    if cutoffs is None:
        return
    ranks = list(cutoffs) if isinstance(cutoffs, Sequence) and not isinstance(cutoffs, str) else None
    if (
        not ranks
        or any(isinstance(c, bool) or not isinstance(c, int) for c in ranks)
        or ranks != sorted(set(ranks))
        or ranks[0] < 1
        or (isinstance(vocab_size, int) and ranks[-1] >= vocab_size)
    ):
        raise ConfigError(
            f"model.softmax_cutoffs={cutoffs!r} must be null (a full softmax) or ascending word ranks from 1 to "
            f"below the vocabulary's size ({vocab_size}), e.g. model.softmax_cutoffs=[1000,5000]."
        )


LR_SCHEDULES = ("none", "cosine", "plateau")


def check_optimizer(lr, weight_decay, lr_schedule, gradient_clip_val, gradient_clip_algorithm) -> None:
    """Raise a ConfigError naming the first optimizer setting (``optimizer.*``) that cannot work."""
    for key, value in (("lr", lr), ("weight_decay", weight_decay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"optimizer.{key}={value!r} must be a number >= 0 (e.g. optimizer.{key}=0.001).")
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(
            f"optimizer.lr_schedule={lr_schedule!r} is not valid; choose one of {', '.join(LR_SCHEDULES)}."
        )
    if gradient_clip_val is not None and (
        isinstance(gradient_clip_val, bool)
        or not isinstance(gradient_clip_val, (int, float))
        or not math.isfinite(gradient_clip_val)
        or gradient_clip_val < 0
    ):
        raise ConfigError(f"optimizer.gradient_clip_val={gradient_clip_val!r} must be null or a number >= 0.")
    if gradient_clip_algorithm not in ("norm", "value"):
        raise ConfigError(
            f"optimizer.gradient_clip_algorithm={gradient_clip_algorithm!r} is not valid; choose norm or value."
        )


def refuse_settings(task: str, does: str, **settings) -> None:
    """A ConfigError for the first of ``settings`` (classification's) that is set for another ``task``,
    which ``does`` something else (e.g. "a tagger gives a tag at every word")."""
    for key, value in settings.items():
        if value is not None:
            raise ConfigError(
                f"model.{key}={value!r} applies to classification; {does}. Drop it (task={task} sets it to null)."
            )


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


# The validation metrics a tagger logs, which ``monitor`` may name.
TAGGING_MONITORED = ("val/f1", "val/token_acc", "val/loss")
# Classification settings a tagger has no use for; each must be null (conf/task/tagging.yaml sets them so).
NOT_FOR_TAGGING = ("pooling", "class_weights", "threshold", "init_from")


def check_tagging(monitor, **classification) -> None:
    """Raise a ConfigError for a monitored metric a tagger does not log, or a classification-only setting."""
    check_monitor(monitor, TAGGING_MONITORED, "tagging")
    refuse_settings("tagging", "a tagger gives a tag at every word", **classification)


# The validation metrics a generator logs, which ``monitor`` may name.
GENERATION_MONITORED = ("val/perplexity", "val/loss")
# Classification settings a generator has no use for; each must be null (conf/task/generate.yaml sets them so).
NOT_FOR_GENERATION = ("pooling", "class_weights", "threshold", "init_from")


def check_generation(monitor, bidirectional, **classification) -> None:
    """Raise a ConfigError for a monitored metric a generator does not log, a bidirectional model (a
    writer cannot read the words it has not written yet) or a classification-only setting."""
    check_monitor(monitor, GENERATION_MONITORED, "generation")
    if bidirectional:
        raise ConfigError(
            "model.bidirectional=true: a generator writes left to right and cannot read the words to come; "
            "use model.bidirectional=false."
        )
    refuse_settings("generate", "a generator writes words", **classification)
