"""The shipped configuration: where it lives, composing it outside the command line, and the checks
made on a composed one before any data is loaded."""

from __future__ import annotations

import re
from pathlib import Path

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from seqclf import CONF_DIR, resolvers, tasks, threads
from seqclf.data import settings as data_settings
from seqclf.errors import ConfigError, check_positive_int
from seqclf.instantiate import instantiate

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
    threads.check_setting(OmegaConf.select(cfg, "threads", default="auto"))
    task_name = str(OmegaConf.select(cfg, "task_name"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", task_name):
        raise ConfigError(
            f"task_name={task_name!r} names the folder under outputs/ for its runs: use letters, digits, '.', '_' "
            "and '-' only (e.g. task_name=lecture)."
        )
    tasks.check_model(cfg)
    check_positive_int("trainer.max_epochs", OmegaConf.select(cfg, "trainer.max_epochs"))
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
    if accelerator in ("gpu", "cuda") and not _cuda_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} (trainer=gpu) needs a CUDA GPU, and torch sees none here; use "
            "trainer=default (CUDA when present, else CPU) or trainer=cpu."
        )
    # seqclf's DataModules' checks run without building them (and without torch); another class
    # checks its own settings when built, which reads no data.
    limit = OmegaConf.select(cfg, "trainer.limit_train_batches")
    data = OmegaConf.to_container(cfg.data, resolve=True)
    if not data_settings.check(data.pop("_target_", None), {**data, "limit_train_batches": limit}):
        instantiate(cfg.data, limit_train_batches=limit)


def _cuda_available() -> bool:
    import torch  # here: the other checks need no torch

    return torch.cuda.is_available()


def load_config(overrides: list[str] | tuple = (), output_dir: str | Path | None = None) -> DictConfig:
    """The shipped config composed outside `seqclf-train` (tests, benchmarks, notebooks), with every
    path under ``output_dir`` (the run in ``output_dir/run``, the data cache in ``output_dir/cache``)."""
    resolvers.register()
    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = hydra.compose("train", overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        root = Path(output_dir).resolve()
        with open_dict(cfg):
            cfg.paths.root_dir = str(root)
            cfg.paths.log_dir = str(root / "outputs")
            cfg.paths.output_dir = str(root / "run")
            cfg.paths.cache_dir = str(root / "cache")
    HydraConfig.instance().set_config(cfg)  # for `${hydra:...}` interpolations
    return cfg


def chosen_model_settings(cfg: DictConfig) -> set[str]:
    """The model settings this run's command chose: named in an override (``model=gru`` chooses the
    cell, ``model.hidden_size=64`` that size) or set to other than the shipped default (by an
    experiment, say). What is left was not chosen, and a checkpoint may set it (seqclf.checkpoints.adopt_model)."""
    overrides = OmegaConf.select(cfg, "hydra.overrides.task")
    if overrides is None and HydraConfig.initialized():
        overrides = HydraConfig.get().overrides.task
    chosen = set()
    for override in overrides or ():
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "model":
            chosen.add("cell")
        elif key.startswith("model."):
            chosen.add(key.split(".", 1)[1])
    defaults = OmegaConf.load(Path(CONF_DIR) / "model_base.yaml")
    group = next(d["model"] for d in OmegaConf.load(Path(CONF_DIR) / "train.yaml").defaults if "model" in d)
    defaults.cell = OmegaConf.load(Path(CONF_DIR) / "model" / f"{group}.yaml").cell
    for key, value in cfg.model.items():
        if key in defaults and not OmegaConf.is_interpolation(defaults, key) and defaults[key] != value:
            chosen.add(key)
    return chosen
