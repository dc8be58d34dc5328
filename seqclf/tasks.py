"""What a task is, in one place: its LightningModule (network, loss, metrics; the training engine is
shared), its DataModule, the checks on its settings, and how its checkpoints are recognised. Each
task's code lives in its own files: classification in seqclf.module and seqclf.data.datamodule,
tagging in seqclf.tagger and seqclf.data.tagging, generation in seqclf.generator and
seqclf.data.generation; the commands choose by the config or checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from seqclf.errors import ConfigError


@dataclass(frozen=True)
class Task:
    name: str
    module: str  # the LightningModule's import path (the model's _target_)
    datamodule: str  # the DataModule's import path (the data's _target_); its class name keys its state in checkpoints

    @property
    def data_key(self) -> str:
        return self.datamodule.rsplit(".", 1)[1]


TASKS = {
    "classify": Task("classify", "seqclf.module.SeqClassifier", "seqclf.data.TextDataModule"),
    "tagging": Task("tagging", "seqclf.tagger.SeqTagger", "seqclf.data.TaggingDataModule"),
    "generate": Task("generate", "seqclf.generator.SeqGenerator", "seqclf.data.GenerationDataModule"),
}
# Targets older configs and run folders name.
_ALIASES = {"seqclf.data.IMDBDataModule": "seqclf.data.TextDataModule"}


def of_config(cfg) -> Task:
    """The task a composed config trains: its model's, which its data must match."""
    model_target, data_target = cfg.model.get("_target_"), cfg.data.get("_target_")
    data_target = _ALIASES.get(data_target, data_target)
    task = next((t for t in TASKS.values() if t.module == model_target), None)
    if task is None:
        raise ConfigError(
            f"model._target_={model_target} is not a seqclf task's model; use task=classify, task=tagging or "
            "task=generate."
        )
    if data_target != task.datamodule:
        other = next((t for t in TASKS.values() if t.datamodule == data_target), None)
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
    cannot work (each check lives with the code that owns the setting)."""
    from seqclf import hparams

    task, model = of_config(cfg), cfg.model
    monitor = model.get("monitor", cfg.get("monitor"))
    pooling = model.get("pooling") if task.name == "classify" else "last"  # the others have no pooling
    hparams.check_settings(model.cell, model.embed_dim, model.hidden_size, model.num_layers, model.dropout, pooling)
    hparams.check_optimizer(
        model.lr, model.weight_decay, model.lr_schedule, model.gradient_clip_val, model.gradient_clip_algorithm
    )
    if task.name == "classify":
        hparams.check_classification(model.get("class_weights"), model.get("threshold", 0.5), monitor)
    elif task.name == "tagging":
        hparams.check_tagging(monitor, **{key: model.get(key) for key in hparams.NOT_FOR_TAGGING})
    else:
        hparams.check_generation(
            monitor, model.bidirectional, **{key: model.get(key) for key in hparams.NOT_FOR_GENERATION}
        )
        hparams.check_cutoffs(model.get("softmax_cutoffs"), cfg.data.vocab_size)
    return task
