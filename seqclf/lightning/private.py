"""The private Lightning attributes seqclf relies on, in one place. The training engine steps the
raw optimizer and counts the step as Lightning's wrapped one would (``LightningOptimizer``'s
``_on_before_step``/``_on_after_step``), moves the loggers' step counter by the optimizer steps of a
block (``fit_loop.epoch_loop._batches_that_stepped``), and the training loader reads how many blocks
of an epoch are done (``fit_loop.epoch_loop.batch_progress``), and the step checkpoint saves
through ModelCheckpoint's own steps (``_every_n_train_steps``, ``_should_skip_saving_checkpoint``,
``_save_topk_checkpoint``, ``_save_last_checkpoint``: ``save_on_steps`` here). Two classes extend
private methods: ``seqclf.lightning.checkpointing.RunCheckpoint`` (``ModelCheckpoint._monitor_candidates``,
``_remove_checkpoint``) and
``seqclf.lightning.strategy.LoopbackDDPStrategy`` (``DDPStrategy._configure_launcher``, its ``_launcher``,
``_timeout``, ``_get_process_group_backend``, and the private ``_SubprocessScriptLauncher`` and
``_init_dist_connection`` imported here). The MLflow logger flattens hyperparameters as Lightning's
does (``_convert_params``, ``_flatten_dict``: ``logged_params``). ``missing()`` names any that a
Lightning release no longer has (tests/test_lightning_private.py fails on it, naming them); the
releases seqclf was tested with are ``TESTED``, and another one is said once, at import."""

from __future__ import annotations

import warnings

import lightning
from lightning.fabric.utilities.distributed import _init_dist_connection as init_dist_connection
from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher as SubprocessScriptLauncher

__all__ = [
    "SubprocessScriptLauncher",
    "add_logged_steps",
    "blocks_done",
    "init_dist_connection",
    "logged_params",
    "logged_step",
    "missing",
    "save_every",
    "save_on_steps",
    "step",
]

TESTED = ("2.6",)  # the Lightning minor releases these attributes were checked against (pyproject.toml)


def step(optimizer) -> None:
    """One step of a LightningOptimizer's raw optimizer, counted for ``trainer.global_step`` and
    its hooks' bookkeeping as ``optimizer.step()`` would, without the hooks' dispatch."""
    optimizer._on_before_step()
    optimizer.optimizer.step()
    optimizer._on_after_step()


def logged_params(params) -> dict:
    """Hyperparameters as Lightning's loggers write them: namespaces as dicts, nested keys joined by ``/``."""
    return _flatten_dict(_convert_params(params))


def add_logged_steps(trainer, steps: int) -> None:
    """Advance the step the loggers' x-axis counts by ``steps`` (Lightning counts one per training_step call)."""
    trainer.fit_loop.epoch_loop._batches_that_stepped += steps


def logged_step(trainer) -> int:
    """The x value Lightning gives the metrics it logs now (epoch-end ones: the optimizer steps so far)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def blocks_done(trainer) -> int:
    """The training_step calls of the current epoch already completed (restored from a checkpoint on resume)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.completed


def save_every(checkpoint) -> int:
    """A ModelCheckpoint's ``every_n_train_steps`` (0: it does not save on steps)."""
    return checkpoint._every_n_train_steps


def save_on_steps(checkpoint, trainer) -> None:
    """What a ModelCheckpoint does when its step count is reached: its top-k and last saves, unless
    Lightning would skip saving now (sanity check, fast_dev_run, a process that does not write)."""
    if checkpoint._should_skip_saving_checkpoint(trainer):
        return
    candidates = checkpoint._monitor_candidates(trainer)
    checkpoint._save_topk_checkpoint(trainer, candidates)
    checkpoint._save_last_checkpoint(trainer, candidates)


_CHECKPOINT_METHODS = (
    "_monitor_candidates",
    "_should_skip_saving_checkpoint",
    "_save_topk_checkpoint",
    "_save_last_checkpoint",
    "_remove_checkpoint",
)


def missing() -> list[str]:
    """The attributes above that this Lightning release lacks, by name (none: all is well)."""
    import torch
    from lightning.pytorch.core.optimizer import LightningOptimizer

    optimizer = LightningOptimizer(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    gone = [
        f"LightningOptimizer.{name}" for name in ("_on_before_step", "_on_after_step") if not hasattr(optimizer, name)
    ]
    trainer = lightning.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    loop = trainer.fit_loop.epoch_loop
    for name in ("_batches_that_stepped", "batch_progress"):
        if not hasattr(loop, name):
            gone.append(f"fit_loop.epoch_loop.{name}")
    if hasattr(loop, "batch_progress") and not hasattr(loop.batch_progress.current, "completed"):
        gone.append("fit_loop.epoch_loop.batch_progress.current.completed")
    gone += _missing_overridden()
    return gone


def _missing_overridden() -> list[str]:
    """The private methods and attributes seqclf's subclasses override or read."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.strategies import DDPStrategy

    gone = [f"ModelCheckpoint.{name}" for name in _CHECKPOINT_METHODS if not hasattr(ModelCheckpoint, name)]
    if not hasattr(ModelCheckpoint(every_n_train_steps=3), "_every_n_train_steps"):
        gone.append("ModelCheckpoint()._every_n_train_steps")
    gone += [
        f"DDPStrategy.{name}"
        for name in ("_configure_launcher", "_get_process_group_backend")
        if not hasattr(DDPStrategy, name)
    ]
    strategy = DDPStrategy()
    gone += [f"DDPStrategy().{name}" for name in ("_launcher", "_timeout") if not hasattr(strategy, name)]
    return gone


if ".".join(lightning.__version__.split(".")[:2]) not in TESTED:
    warnings.warn(
        f"seqclf was tested with Lightning {', '.join(TESTED)}, and this is {lightning.__version__}; it relies on "
        "private Lightning attributes (seqclf.lightning.private): run its test, pytest "
        "tests/test_lightning_private.py, or pin lightning to a tested release (constraints.txt).",
        stacklevel=1,
    )
