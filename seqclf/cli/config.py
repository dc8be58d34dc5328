"""The shipped configuration: where it lives, composing it outside the command line, and the checks
made on a composed one before any data is loaded."""

from __future__ import annotations

import re
from pathlib import Path

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from seqclf import CONF_DIR, tasks, threads
from seqclf.cli import resolvers
from seqclf.cli.instantiate import instantiate
from seqclf.errors import ConfigError, check_positive_int

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
    data_task = tasks.of_data(data.pop("_target_", None))
    if data_task is not None:
        data_task.check_data({**data, "limit_train_batches": limit})
    else:
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
    """The model settings this run's command chose, by their names under ``model`` (``encoder.cell``,
    ``pooling``): named in an override (``model=gru`` chooses the encoder's class and cell,
    ``model.encoder.hidden_size=64`` that size) or set to other than the shipped default (by an
    experiment, say). What is left was not chosen, and a checkpoint may set it
    (seqclf.runs.checkpoints.adopt_model)."""
    overrides = OmegaConf.select(cfg, "hydra.overrides.task")
    if overrides is None and HydraConfig.initialized():
        overrides = HydraConfig.get().overrides.task
    chosen = set()
    for override in overrides or ():
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "model":
            chosen |= {"encoder._target_", "encoder.cell"}
        elif key.startswith("model."):
            chosen.add(key.split(".", 1)[1])
    defaults = _shipped_model(OmegaConf.select(cfg, "hydra.runtime.choices.task") or "classify")
    given = OmegaConf.to_container(cfg.model, resolve=False)
    for key, value in _leaves(defaults):
        if not (isinstance(value, str) and value.startswith("${")) and _select(given, key) != value:
            chosen.add(key)
    return chosen


def _shipped_model(task: str) -> dict:
    """The model node of the shipped default run of ``task``, as written (its interpolations unresolved)."""
    conf = Path(CONF_DIR)
    group = next(d["model"] for d in OmegaConf.load(conf / "train.yaml").defaults if "model" in d)
    option = OmegaConf.load(conf / "model" / f"{group}.yaml")
    merged = OmegaConf.create()
    for entry in option.pop("defaults", []):  # shared files: /<file>@_here_ or /<file>@<key>
        name, _, key = entry.lstrip("/").partition("@")
        shared = OmegaConf.load(conf / f"{name}.yaml")
        merged = OmegaConf.merge(merged, shared if key == "_here_" else {key: shared})
    task_model = OmegaConf.load(conf / "task" / f"{task}.yaml").get("model") or {}
    return OmegaConf.to_container(OmegaConf.merge(merged, option, task_model), resolve=False)


def _leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _select(node: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
