"""The progress bar, counting optimizer steps rather than ``training_step`` calls."""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, but its training count is optimizer steps: each ``training_step`` call
    runs a block of ``data.steps_per_execution`` steps, so the bar advances by a block at a time and
    refreshes whenever it passes a multiple of ``refresh_rate`` steps. Its epochs count from 1."""

    @property
    def total_train_batches(self) -> int | float:
        sampler = getattr(self.trainer.train_dataloader, "sampler", None)
        steps = getattr(sampler, "num_steps", None)
        return super().total_train_batches if steps is None else steps

    def on_train_epoch_start(self, trainer: L.Trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        # Epochs count from 1 wherever seqclf shows them (checkpoint names, plots, the gradient probe).
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}{total}")

    def _steps_per_call(self, trainer: L.Trainer) -> int:
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        return getattr(sampler, "steps_per_execution", 1)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        bar = self.train_progress_bar
        if bar is None or not self.is_enabled:
            return
        k = self._steps_per_call(trainer)
        n = (batch_idx + 1) * k
        total = bar.total if bar.total is not None and math.isfinite(bar.total) else n
        n = min(n, total)
        if n // self.refresh_rate > (n - k) // self.refresh_rate or n == total:
            bar.n = n
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))
