"""The checks of every model.* and optimizer.* setting: the recurrent encoder's (cell, sizes), the
pooling, the softmax, the optimizer's record and each task's. Torch-free, so that seqclf-train
refuses a bad value before torch and Lightning load (seqclf.tasks.check_model)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from seqclf.errors import ConfigError, check_positive_int
from seqclf.monitor import check_monitor

# seqclf's own encoder class (seqclf.models.encoders.RecurrentEncoder), named without importing torch.
RECURRENT = "seqclf.models.encoders.RecurrentEncoder"
# The recurrent cells (seqclf.models.encoders.CELLS maps each to its torch module): nn.RNN (tanh), nn.LSTM, nn.GRU.
CELL_NAMES = ("rnn", "lstm", "gru")
# What represents a text (seqclf.models.pooling): the encoder's summary at the last step, each
# unit's maximum over the text's own steps (padding left out), or both side by side.
POOLINGS = ("last", "max", "last_max")


def check_recurrent(cell, embed_dim, hidden_size, num_layers, dropout) -> None:
    """Raise a ConfigError naming the first setting of the recurrent encoder that cannot work, and the fix."""
    if cell not in CELL_NAMES:
        raise ConfigError(
            f"model.encoder.cell={cell!r} is not a known cell type; choose one of {', '.join(CELL_NAMES)} "
            "(e.g. model=gru)."
        )
    for key, value in (("embed_dim", embed_dim), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        check_positive_int(f"model.encoder.{key}", value)
    check_dropout("model.encoder.dropout", dropout)


def check_dropout(key: str, dropout) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"{key}={dropout!r} must lie in [0, 1).")


def check_pooling(pooling) -> None:
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


@dataclass(frozen=True)
class OptimizerSettings:
    """The optimizer's settings (``optimizer.*``), one record that the config, the task modules and
    checkpoints share (as a plain dict in hparams): Adam's learning rate and L2 weight decay, torch's
    fused kernel, gradient clipping before each step, and the learning-rate schedule per epoch."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    fused: bool = True
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    lr_schedule: str = "none"

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> OptimizerSettings:
        """The record of ``settings`` (a config node or hparams' dict), checked; a ConfigError names
        the first setting that cannot work."""
        settings = {str(k): v for k, v in (settings or {}).items()}
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ConfigError(f"optimizer.{unknown[0]} is not an optimizer setting; they are {', '.join(known)}.")
        record = cls(**settings)
        record.check()
        return record

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        for key in ("lr", "weight_decay"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"optimizer.{key}={value!r} must be a number >= 0 (e.g. optimizer.{key}=0.001).")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"optimizer.lr_schedule={self.lr_schedule!r} is not valid; choose one of {', '.join(LR_SCHEDULES)}."
            )
        clip = self.gradient_clip_val
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, (int, float)) or not math.isfinite(clip) or clip < 0
        ):
            raise ConfigError(f"optimizer.gradient_clip_val={clip!r} must be null or a number >= 0.")
        algorithm = self.gradient_clip_algorithm
        if algorithm not in ("norm", "value"):
            raise ConfigError(f"optimizer.gradient_clip_algorithm={algorithm!r} is not valid; choose norm or value.")
        if not isinstance(self.fused, bool):
            raise ConfigError(f"optimizer.fused={self.fused!r} must be true or false.")


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


def check_tagging(monitor) -> None:
    """Raise a ConfigError for a monitored metric a tagger does not log."""
    check_monitor(monitor, TAGGING_MONITORED, "tagging")


# The validation metrics a generator logs, which ``monitor`` may name.
GENERATION_MONITORED = ("val/perplexity", "val/loss")


def check_generation(monitor, encoder) -> None:
    """Raise a ConfigError for a monitored metric a generator does not log, or a recurrent encoder
    that reads backwards too (a writer cannot read the words it has not written yet; any other
    encoder says whether it reads in order when it is built)."""
    check_monitor(monitor, GENERATION_MONITORED, "generation")
    if (encoder or {}).get("bidirectional"):
        raise ConfigError(
            "model.encoder.bidirectional=true: a generator writes left to right and cannot read the words to come; "
            "use model.encoder.bidirectional=false."
        )
