"""Writing checkpoints in training: atomically, into a run folder that may be resumed, moved or
copied, and every N optimizer steps when a training_step call runs several."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from seqclf import migrate
from seqclf.atomic import write_atomic
from seqclf.lightning import private

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in its own folder, fsyncs it and renames it into
    place, so a kill at any moment leaves either the previous file or the new one, both whole.
    (Lightning's own save stages the file in the system temp folder, and moving it from there
    is a copy, not a rename, whenever that folder is on another file system.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        write_atomic(path, lambda f: torch.save(checkpoint, f))


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint for a run folder that may be resumed, moved or copied:
    - resumed in a moved or copied folder, the checkpoint's paths into the old folder are read as
      the same files in this one, where they are (Lightning would forget its best and last checkpoints and keep a
      ``best_model_path`` into the other folder);
    - its file names may say ``{epoch_number}``, the epoch counted from 1;
    - it says nothing about the folder holding checkpoints: each run has its own, so they are this
      run's (resumed), and it removes the temporary files of a save that a kill interrupted (the run
      folder is held by this process alone, seqclf.runs.folders.hold).
    """

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, torch.Tensor]:
        """Also ``epoch_number``, for file names: epochs count from 1 wherever seqclf shows them
        (Lightning's ``epoch`` is the 0-based index)."""
        candidates = super()._monitor_candidates(trainer)
        candidates["epoch_number"] = torch.tensor(trainer.current_epoch + 1)
        return candidates

    def _remove_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        """Say which checkpoint file the run removes, and why (Lightning removes them without a word)."""
        if trainer.is_global_zero:
            kept = f"the best {self.save_top_k} by {self.monitor}" if self.monitor else "the newest"
            log.info("Removing %s: no longer among %s (callbacks.model_checkpoint.save_top_k).", filepath, kept)
        super()._remove_checkpoint(trainer, filepath)

    @property
    def state_key(self) -> str:
        """Lightning's own key for a ModelCheckpoint (seqclf.migrate): earlier runs resume their state."""
        return migrate.checkpoint_state_key(super().state_key)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Checkpoint directory .* exists and is not empty")
            super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and os.path.isdir(self.dirpath):
            for stale in Path(self.dirpath).glob(".*.ckpt.*.tmp"):  # seqclf.atomic.write_atomic's names
                stale.unlink(missing_ok=True)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:
            old_dir, new_dir = Path(old), Path(self.dirpath)

            def moved(path):
                if not path or not Path(path).is_relative_to(old_dir):
                    return path
                return str(new_dir / Path(path).relative_to(old_dir))

            kept = [state_dict.get(k) for k in ("best_model_path", "last_model_path") if state_dict.get(k)]
            if not kept or not all(Path(moved(path)).is_file() for path in kept):
                # Not this run moved: a new run started from another's checkpoint (ckpt_path=). Its
                # best is its own, not a file in the other run's folder.
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "The dirpath has changed")
                    super().load_state_dict(state_dict)
                self.best_model_path = ""
                return
            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                "best_model_path": moved(state_dict.get("best_model_path")),
                "kth_best_model_path": moved(state_dict.get("kth_best_model_path")),
                "last_model_path": moved(state_dict.get("last_model_path")),
                "best_k_models": {moved(k): v for k, v in (state_dict.get("best_k_models") or {}).items()},
            }
        super().load_state_dict(state_dict)


class StepCheckpoint(RunCheckpoint):
    """``every_n_train_steps`` as optimizer steps when a ``training_step`` call runs a block of
    several: saved at the end of the block in which a multiple of N was reached. (Lightning's own
    test is ``global_step % N == 0``, which a step count moving a block at a time can jump over,
    and under manual optimization it warns at every save.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._seen_step = trainer.global_step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Nothing: it saves on optimizer steps only (Lightning's would copy every logged metric each
        epoch to find that out)."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Nothing, as at an epoch's end."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        every, step = private.save_every(self), trainer.global_step
        crossed = every >= 1 and step // every > self._seen_step // every
        self._seen_step = step
        if crossed:
            private.save_on_steps(self, trainer)
