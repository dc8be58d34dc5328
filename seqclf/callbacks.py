"""Lightning callbacks of our own (everything else comes from Lightning itself)."""

from __future__ import annotations

import time

import lightning as L

import seqclf


class EpochTimer(L.Callback):
    """Seconds per training epoch (training batches only, validation excluded) and seconds from
    the start of the process to the first training step; logged as ``time/epoch_s``."""

    def __init__(self) -> None:
        self.epoch_s: list[float] = []
        self.first_step_s: float | None = None
        self._start = self._last = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.first_step_s is None:
            self.first_step_s = time.perf_counter() - seqclf.START_TIME

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._last > self._start:
            self.epoch_s.append(self._last - self._start)
            pl_module.log("time/epoch_s", self.epoch_s[-1])
