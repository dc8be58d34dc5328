"""What earlier seqclf versions wrote, read as today's: checkpoints and run folders' configs. Every
old format seqclf still reads is listed here, and migrated in one step when it is read, so the
rest of seqclf knows only today's."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from seqclf.models.checks import RECURRENT

# The checkpoint formats seqclf reads, by the number a checkpoint records as "seqclf_format" (none: 1):
#   1 - the network's shape (cell, embed_dim, hidden_size, num_layers, bidirectional) and the optimizer's
#       settings (lr, weight_decay, fused, gradient_clip_*, lr_schedule) as flat hyperparameters, the
#       network's layers as net.embedding.* and net.encoder.*; before classes (commit a22a542) also no
#       class names, the tokenizer under "IMDBDataModule" and val/acc's best as val_acc_best.*;
#   2 - hyperparameters "encoder" (its _target_ and settings) and "optimizer" (one record); the encoder's
#       layers as net.encoder.embedding.* and net.encoder.rnn.*.
CHECKPOINT_FORMAT = 2
_SHAPE = ("cell", "embed_dim", "hidden_size", "num_layers", "bidirectional")
_OPTIMIZER = ("lr", "weight_decay", "fused", "gradient_clip_val", "gradient_clip_algorithm", "lr_schedule")
# Classification's settings, which a tagger's and a generator's configs carried as nulls.
_CLASSIFICATION_ONLY = ("pooling", "class_weights", "threshold", "init_from")

# What earlier versions' configs built, and what builds it now: their run folders stay resumable.
_CALLBACKS = ("EpochTimer", "RNGState", "HParamsMetric", "ConfusionMatrixImage", "FreezePretrained", "ThreadShare")
_CHECKPOINTING = ("RunCheckpoint", "StepCheckpoint", "AtomicCheckpointIO")
RENAMED_TARGETS = {
    "lightning.pytorch.callbacks.ModelCheckpoint": "seqclf.lightning.checkpointing.RunCheckpoint",
    "seqclf.data.IMDBDataModule": "seqclf.data.TextDataModule",
    "seqclf.threads.ThreadShare": "seqclf.lightning.callbacks.ThreadShare",
    # the flat package of seqclf 0.1 (until the layout of tasks/, runs/, lightning/, cli/)
    "seqclf.module.SeqClassifier": "seqclf.tasks.classify.module.SeqClassifier",
    "seqclf.tagger.SeqTagger": "seqclf.tasks.tagging.module.SeqTagger",
    "seqclf.generator.SeqGenerator": "seqclf.tasks.generate.module.SeqGenerator",
    "seqclf.data.TaggingDataModule": "seqclf.tasks.tagging.data.TaggingDataModule",
    "seqclf.data.GenerationDataModule": "seqclf.tasks.generate.data.GenerationDataModule",
    "seqclf.callbacks.GeneratedSamples": "seqclf.tasks.generate.samples.GeneratedSamples",
    "seqclf.gradflow.GradientFlow": "seqclf.lightning.gradflow.GradientFlow",
    "seqclf.progress.StepProgressBar": "seqclf.lightning.progress.StepProgressBar",
    "seqclf.strategy.LoopbackDDPStrategy": "seqclf.lightning.strategy.LoopbackDDPStrategy",
    "seqclf.sweep.SweepSummary": "seqclf.runs.sweep.SweepSummary",
    **{f"seqclf.callbacks.{name}": f"seqclf.lightning.callbacks.{name}" for name in _CALLBACKS},
    **{
        f"{old}.{name}": f"seqclf.lightning.checkpointing.{name}"
        for old in ("seqclf.saving", "seqclf.checkpoints")
        for name in _CHECKPOINTING
    },  # fmt: skip
}
# Settings earlier versions' classes took and today's do not, by the class's name today
# (ThreadShare re-counted live runs every interval_s).
DROPPED_SETTINGS = {"seqclf.lightning.callbacks.ThreadShare": ("interval_s", "warmup", "trials")}
# Where Lightning kept a DataModule's state under an earlier class name.
_DATA_KEYS = {"IMDBDataModule": "TextDataModule"}
# The DataModules of the tasks with a target at every step (their checkpoints carried classification's keys as nulls).
_PER_STEP_DATA = ("TaggingDataModule", "GenerationDataModule")


# Where a run folder's TensorBoard events are: the run folder itself, or (seqclf 0.1) its tensorboard/.
EVENT_FOLDERS = ("", "tensorboard")


def checkpoint_state_key(key: str) -> str:
    """The key a checkpoint callback's state has in checkpoints: Lightning's ModelCheckpoint's, as
    runs saved before seqclf's RunCheckpoint keep it, so that their state resumes."""
    return "ModelCheckpoint" + key.removeprefix("RunCheckpoint") if key.startswith("RunCheckpoint") else key


def target(name: Any) -> Any:
    """Today's name of a class an earlier config named (others as they are)."""
    return RENAMED_TARGETS.get(name, name)


def checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` (a loaded checkpoint) in today's format, changed in place and returned; a checkpoint
    in today's format is left as it is. Lightning's own loading of a checkpoint to resume calls it
    too (the task modules' on_load_checkpoint), before the weights and the DataModule's state load."""
    if ckpt.get("seqclf_format", 1) >= CHECKPOINT_FORMAT:
        return ckpt
    for old, new in _DATA_KEYS.items():
        if old in ckpt and new not in ckpt:
            ckpt[new] = ckpt.pop(old)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict):
        _flat_hparams(hp, per_step=any(isinstance(ckpt.get(k), dict) for k in _PER_STEP_DATA))
    state = ckpt.get("state_dict")
    if isinstance(state, dict):
        renamed = {_state_key(key): value for key, value in state.items()}
        state.clear()
        state.update(renamed)
    ckpt["seqclf_format"] = CHECKPOINT_FORMAT
    return ckpt


def _flat_hparams(hp: dict[str, Any], per_step: bool) -> None:
    if "encoder" not in hp:
        encoder = {"_target_": RECURRENT, **{key: hp.pop(key) for key in _SHAPE if key in hp}}
        encoder["dropout"] = hp.get("dropout", 0.0)
        hp["encoder"] = encoder
    if "optimizer" not in hp:
        hp["optimizer"] = {key: hp.pop(key) for key in _OPTIMIZER if key in hp}
    if per_step:  # a tagger's or a generator's
        for key in _CLASSIFICATION_ONLY:
            hp.pop(key, None)


def _state_key(key: str) -> str:
    if key.startswith("net.encoder."):
        return "net.encoder.rnn." + key.removeprefix("net.encoder.")
    if key.startswith("net.embedding."):
        return "net.encoder.embedding." + key.removeprefix("net.embedding.")
    if key.startswith("val_acc_best."):  # before the monitored metric was a setting
        return "best_score." + key.removeprefix("val_acc_best.")
    return key


def run_config(cfg: DictConfig) -> DictConfig:
    """A run folder's composed config (its .hydra/config.yaml) in today's form, changed in place and
    returned: classes renamed since, settings dropped since, and the model's flat settings of
    format 1 as today's encoder and optimizer nodes."""
    with open_dict(cfg):
        for node in _nodes(cfg):
            if "_target_" in node:
                node._target_ = target(node._target_)
            for key in DROPPED_SETTINGS.get(node.get("_target_"), ()):
                node.pop(key, None)
        model = cfg.get("model")
        if model is not None and "encoder" not in model and "cell" in model:
            _flat_model(model)
    return cfg


def _nodes(node):
    """Every mapping in a config (lists' items included), the config itself first."""
    if OmegaConf.is_dict(node):
        yield node
        keys = list(node.keys())
    elif OmegaConf.is_list(node):
        keys = range(len(node))
    else:
        return
    for key in keys:  # an interpolation is another node's value, not a node of its own
        if not OmegaConf.is_interpolation(node, key) and OmegaConf.is_config(node[key]):
            yield from _nodes(node[key])


def _flat_model(model: DictConfig) -> None:
    written = OmegaConf.to_container(model, resolve=False)  # values or interpolations, as written
    encoder = {"_target_": RECURRENT}
    for key in _SHAPE:
        if key in written:
            encoder[key] = written[key]
            model.pop(key)
    encoder["dropout"] = "${..dropout}"
    model.encoder = encoder
    model._recursive_ = False  # the task's module builds its encoder (conf/model_base.yaml)
    for key in _OPTIMIZER:
        model.pop(key, None)
    model.optimizer = "${optimizer}"
    if model.get("_target_") != "seqclf.tasks.classify.module.SeqClassifier":
        for key in _CLASSIFICATION_ONLY:
            if key in model and model[key] is None:
                model.pop(key)


def old_setting(key: str) -> str | None:
    """Today's name of a setting a command line may give in its earlier form (model.hidden_size is
    model.encoder.hidden_size, model.lr optimizer.lr), or None."""
    group, _, name = key.lstrip("+~").partition(".")
    if group == "model" and name in _SHAPE:
        return f"model.encoder.{name}"
    if group == "model" and name in _OPTIMIZER:
        return f"optimizer.{name}"
    return None
