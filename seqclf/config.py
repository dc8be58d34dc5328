"""Checks on the composed configuration, made before any data is loaded."""

from __future__ import annotations

import hashlib
import math
import os
from datetime import datetime
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqclf.data.text import SIDES
from seqclf.errors import ConfigError
from seqclf.models.rnn import CELLS, POOLINGS

LR_SCHEDULES = ("none", "cosine", "plateau")
POSITIVE_INTS = (
    "model.embed_dim",
    "model.hidden_size",
    "model.num_layers",
    "data.max_len",
    "data.batch_size",
    "data.eval_batch_size",
    "trainer.max_epochs",
)


def validate(cfg: DictConfig) -> None:
    """Raise a ConfigError naming the first bad value, its valid range and how to fix it."""
    cell = OmegaConf.select(cfg, "model.cell")
    if cell not in CELLS:
        raise ConfigError(
            f"model.cell={cell!r} is not a known cell type; choose one of {', '.join(CELLS)} (e.g. model=gru)."
        )
    schedule = OmegaConf.select(cfg, "model.lr_schedule")
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"optimizer.lr_schedule={schedule!r} is not valid; choose one of {', '.join(LR_SCHEDULES)}.")
    pooling = OmegaConf.select(cfg, "model.pooling")
    if pooling not in POOLINGS:
        raise ConfigError(f"model.pooling={pooling!r} is not valid; choose one of {', '.join(POOLINGS)}.")
    for key in POSITIVE_INTS:
        value = OmegaConf.select(cfg, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key}={value!r} must be a positive integer.")
    vocab_size = OmegaConf.select(cfg, "data.vocab_size")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
        raise ConfigError(
            f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (2 special tokens + 1 word)."
        )
    fraction = OmegaConf.select(cfg, "data.val_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"data.val_fraction={fraction!r} must lie strictly between 0 and 1 (e.g. 0.1).")
    for key in ("data.padding", "data.truncation"):
        value = OmegaConf.select(cfg, key)
        if value not in SIDES:
            raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(SIDES)}.")
    for key, unset, fix in (
        ("trainer.gradient_clip_val", (None, 0), "set optimizer.gradient_clip_val instead"),
        ("trainer.accumulate_grad_batches", (None, 1), "use a larger data.batch_size instead"),
    ):
        value = OmegaConf.select(cfg, key)
        if value not in unset:
            raise ConfigError(
                f"{key}={value!r} does not apply to seqclf's training step, which runs several optimizer steps per "
                f"call (data.steps_per_execution); {fix}."
            )
    for key in ("optimizer.lr", "optimizer.weight_decay"):
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{key}={value!r} must be a number >= 0 (e.g. {key}=0.001).")
    accelerator = OmegaConf.select(cfg, "trainer.accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} (trainer=gpu) needs a CUDA GPU, and torch sees none here; use "
            "trainer=default (CUDA when present, else CPU) or trainer=cpu."
        )
    dropout = OmegaConf.select(cfg, "model.dropout")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout={dropout!r} must lie in [0, 1).")


def is_run(folder: Path) -> bool:
    """A run folder: one that Hydra wrote a composed config into."""
    return (folder / ".hydra" / "config.yaml").is_file()


def _resume_target(resume: str | None) -> str | None:
    """The run folder ``resume=`` names, if it is one (else the run gets a new folder and fails there)."""
    if not resume:
        return None
    folder = Path(resume).expanduser().resolve()
    return str(folder) if is_run(folder) else None


SWEEP_KEYS_ENV = "SEQCLF_SWEEP_KEYS"  # set by seqclf.report.SweepSummary when a multirun starts


def job_dirname(task_overrides: list[str], job_num: int) -> str:
    """A multirun job's folder name: its values of the swept keys, as Hydra's override_dirname
    would write them (``model=gru,seed=2``), without the overrides every job shares (those can
    make a name longer than a file system allows). Paths' slashes become underscores."""
    swept = os.environ.get(SWEEP_KEYS_ENV)
    keys = set(swept.split(",")) if swept else None
    kept = sorted(o for o in task_overrides if keys is None or o.split("=", 1)[0].lstrip("+~") in keys)
    name = ",".join(kept).replace("/", "_") or f"job{job_num}"
    if len(name) > 200:
        name = f"{name[:180]}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


def _register_resolvers() -> None:
    """Used by conf/hydra/default.yaml: a resumed run keeps its folder, and Hydra's record of the
    resuming command goes to .hydra/resume-<time>/, leaving the run's original config intact.
    ``seqclf.cwd`` is the start folder; `${hydra:runtime.cwd}` is not set yet when Hydra creates a
    sweep folder."""
    OmegaConf.register_new_resolver("seqclf.cwd", os.getcwd, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("seqclf.job_dirname", job_dirname, replace=True)
    OmegaConf.register_new_resolver(
        "seqclf.run_dir", lambda resume, default: _resume_target(resume) or default, replace=True
    )
    OmegaConf.register_new_resolver(
        "seqclf.hydra_subdir",
        lambda resume: f".hydra/resume-{datetime.now():%Y-%m-%d_%H-%M-%S_%f}" if _resume_target(resume) else ".hydra",
        replace=True,
        use_cache=True,
    )


_register_resolvers()
