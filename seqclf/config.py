"""Checks on the composed configuration, made before any data is loaded."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqclf.errors import ConfigError
from seqclf.instantiate import instantiate
from seqclf.models.rnn import check_settings
from seqclf.module import check_optimizer

_TRAINER_KEYS_THAT_DO_NOT_APPLY = (
    ("trainer.gradient_clip_val", (None, 0), "set optimizer.gradient_clip_val instead"),
    ("trainer.accumulate_grad_batches", (None, 1), "use a larger data.batch_size instead"),
)
_PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "bf16", "bf16-mixed", "16-true", "bf16-true")


def validate(cfg: DictConfig) -> None:
    """Raise a ConfigError naming the first bad value, its valid range and how to fix it, before any
    data is read or any run folder exists. Each part's settings are checked by the code that owns
    them (the network's, the optimizer's, the DataModule's); the rest are checked here."""
    seed = OmegaConf.select(cfg, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed={seed!r} must be an integer from 0 to 4294967295 (e.g. seed=1).")
    task_name = str(OmegaConf.select(cfg, "task_name"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", task_name):
        raise ConfigError(
            f"task_name={task_name!r} names the folder under outputs/ for its runs: use letters, digits, '.', '_' "
            "and '-' only (e.g. task_name=lecture)."
        )
    model = cfg.model
    check_settings(model.cell, model.embed_dim, model.hidden_size, model.num_layers, model.dropout, model.pooling)
    check_optimizer(
        model.lr, model.weight_decay, model.lr_schedule, model.gradient_clip_val, model.gradient_clip_algorithm
    )
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs={max_epochs!r} must be a positive integer.")
    for key, unset, fix in _TRAINER_KEYS_THAT_DO_NOT_APPLY:
        value = OmegaConf.select(cfg, key)
        if value not in unset:
            raise ConfigError(
                f"{key}={value!r} does not apply to seqclf's training step, which runs several optimizer steps per "
                f"call (data.steps_per_execution); {fix}."
            )
    precision = str(OmegaConf.select(cfg, "trainer.precision"))
    if precision not in _PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} is not a precision Lightning knows; choose 32-true (the default), "
            "bf16-mixed or 16-mixed (GPU), or 64-true."
        )
    accelerator = OmegaConf.select(cfg, "trainer.accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} (trainer=gpu) needs a CUDA GPU, and torch sees none here; use "
            "trainer=default (CUDA when present, else CPU) or trainer=cpu."
        )
    # The DataModule checks its own settings when built; building it reads no data.
    instantiate(cfg.data, limit_train_batches=OmegaConf.select(cfg, "trainer.limit_train_batches"))


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
