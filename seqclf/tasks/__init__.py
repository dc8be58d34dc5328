"""What a task is, in one place, and the registry every command asks: a task's LightningModule and
DataModule, the checks on its settings, the plain network built from a checkpoint's hparams, its
Python inference object (seqclf.load), what seqclf-predict writes for an empty text, which commands
use its checkpoints, and how those checkpoints are recognised. Torch-free: the checks run before
torch loads; everything heavier is imported when asked for. Adding a task: its modules and one
entry in TASKS."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from seqclf import migrate
from seqclf.data import settings as data_settings
from seqclf.errors import ConfigError, SeqclfError
from seqclf.models import checks
from seqclf.tasks import optimizer
from seqclf.tasks.classify import checks as classify
from seqclf.tasks.generate import checks as generate
from seqclf.tasks.tagging import checks as tagging


def _get(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Task:
    name: str
    noun: str  # what its checkpoints are, in a sentence: "a classifier"
    module: str  # the LightningModule's import path (the model's _target_)
    datamodule: str  # the DataModule's import path (the data's _target_); its class name keys its state in checkpoints
    network: str  # the function that builds the plain network from a checkpoint's hparams
    inference: str  # the class seqclf.load returns for its checkpoints (from_checkpoint)
    commands: tuple[str, ...]  # the commands that use its checkpoints, besides seqclf-train and seqclf-eval
    check_model: Callable[[Any, Any], None]  # (model node, composed config): its own model.* settings
    check_data: Callable[[Mapping], None]  # its DataModule's data.* settings, without building it
    empty_prediction: dict = field(default_factory=dict)  # seqclf-predict's record for an empty text
    reads_data_of: tuple[str, ...] = ()  # other tasks whose data presets its DataModule reads (their settings)

    @property
    def data_key(self) -> str:
        return self.datamodule.rsplit(".", 1)[1]

    def build_network(self, hp: Mapping[str, Any]):
        """The plain network (an nn.Module, untrained) that a checkpoint's hyperparameters ``hp`` describe."""
        return _get(self.network)(hp)

    def inference_class(self):
        return _get(self.inference)

    def module_class(self):
        return _get(self.module)

    def require(self, command: str, path: Any) -> None:
        """A SeqclfError naming the commands that use this task's checkpoints, unless ``command`` is one."""
        if command in self.commands:
            return
        uses = " or ".join(self.commands)
        raise SeqclfError(
            f"{path} is {self.noun}'s checkpoint (task={self.name}), which {command} does not use; use {uses} "
            f"with it (e.g. {uses.split(' or ')[0]} ckpt_path={path} ...)."
        )


TASKS = {
    "classify": Task(
        "classify",
        "a classifier",
        "seqclf.tasks.classify.module.SeqClassifier",
        "seqclf.data.TextDataModule",
        "seqclf.models.networks.classifier_of",
        "seqclf.tasks.classify.inference.Classifier",
        ("seqclf-predict",),
        classify.check_model,
        data_settings.check_text,
        {"label": None, "probs": None, "error": "empty text: nothing to classify"},
    ),
    "tagging": Task(
        "tagging",
        "a tagger",
        "seqclf.tasks.tagging.module.SeqTagger",
        "seqclf.tasks.tagging.data.TaggingDataModule",
        "seqclf.models.networks.tagger_of",
        "seqclf.tasks.tagging.inference.Tagger",
        ("seqclf-predict",),
        tagging.check_model,
        data_settings.check_tagging_data,
        {"tags": None, "error": "empty text: nothing to tag"},
    ),
    "generate": Task(
        "generate",
        "a generator",
        "seqclf.tasks.generate.module.SeqGenerator",
        "seqclf.tasks.generate.data.GenerationDataModule",
        "seqclf.models.networks.language_model_of",
        "seqclf.tasks.generate.inference.Generator",
        ("seqclf-generate",),
        generate.check_model,
        data_settings.check_generation_data,
        reads_data_of=("classify",),
    ),
}


def of_data(target: Any) -> Task | None:
    """The task whose DataModule ``target`` names (an earlier name included), or None (not seqclf's)."""
    target = migrate.target(target)
    return next((t for t in TASKS.values() if t.datamodule == target), None)


def of_config(cfg) -> Task:
    """The task a composed config trains: its model's, which its data must match."""
    model_target, data_target = cfg.model.get("_target_"), migrate.target(cfg.data.get("_target_"))
    task = next((t for t in TASKS.values() if t.module == model_target), None)
    if task is None:
        raise ConfigError(
            f"model._target_={model_target} is not a seqclf task's model; use task=classify, task=tagging or "
            "task=generate."
        )
    if data_target != task.datamodule:
        other = of_data(data_target)
        kind = f"{other.name} data" if other else f"not {task.name} data"
        raise ConfigError(
            f"the data ({data_target}) is {kind}, but task={task.name} trains {model_target}; choose the task and "
            f"data together: task=tagging with a tagging preset (data=conll2003), task=classify with a "
            "classification one (data=imdb)."
        )
    return task


def of_checkpoint(ckpt: dict) -> Task:
    """The task a checkpoint was trained for, by the DataModule state it holds (classification when none)."""
    return next((t for t in TASKS.values() if isinstance(ckpt.get(t.data_key), dict)), TASKS["classify"])


def check_model(cfg) -> Task:
    """Raise a ConfigError naming the first model or optimizer setting of the config's task that
    cannot work. seqclf's own encoders are checked here, without torch; another encoder class is
    imported and checked when it is built."""
    task, model = of_config(cfg), cfg.model
    encoder = model.get("encoder")
    if not OmegaConf.is_dict(encoder) or "_target_" not in encoder:
        raise ConfigError(
            f"model.encoder={encoder!r} must be a mapping with a _target_ (an encoder class) and its settings; "
            "choose one with model=rnn|lstm|gru."
        )
    checks.check_encoder(OmegaConf.to_container(encoder, resolve=True))
    checks.check_dropout("model.dropout", model.get("dropout", 0.0))
    checks.check_vectors(model.get("vectors"), model.get("freeze_vectors", 0), model.get("init_from"))
    optimizer.OptimizerSettings.of(model.get("optimizer"))
    task.check_model(model, cfg)
    return task
