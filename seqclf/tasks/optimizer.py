"""The optimizer's settings (``optimizer.*``) as one record, checked once: the config's, the task
modules' and checkpoints' (a plain dict in hparams). Torch-free."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from seqclf.errors import ConfigError

LR_SCHEDULES = ("none", "cosine", "plateau", "one_cycle")


@dataclass(frozen=True)
class OptimizerSettings:
    """The optimizer's settings (``optimizer.*``), one record that the config, the task modules and
    checkpoints share (as a plain dict in hparams): Adam's learning rate and L2 weight decay, torch's
    fused kernel, gradient clipping before each step, the learning-rate schedule, and discriminative
    rates (``lower_lr_factor``: the encoder's rate is the head's divided by it, the word embedding's
    divided by it again; ULMFiT's 2.6)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    fused: bool = True
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    lr_schedule: str = "none"
    lower_lr_factor: float = 1.0

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
        factor = self.lower_lr_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 1:
            raise ConfigError(
                f"optimizer.lower_lr_factor={factor!r} must be a number >= 1 (1: one rate for every layer; ULMFiT's "
                "2.6: the encoder learns 2.6 times slower than the head, the word embedding 2.6 times slower again)."
            )
        if not isinstance(self.fused, bool):
            raise ConfigError(f"optimizer.fused={self.fused!r} must be true or false.")
