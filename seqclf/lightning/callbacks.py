"""Lightning callbacks of our own (everything else comes from Lightning itself)."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn

import seqclf
from seqclf import threads
from seqclf.errors import ConfigError, check_positive_int
from seqclf.lightning import tracking
from seqclf.runs import plots


class EpochTimer(L.Callback):
    """Seconds per training epoch (training batches only, validation excluded), logged as
    ``time/epoch_s``; the CPU seconds of the process over the same span (steadier than wall time
    on a shared machine); and seconds from the start of the process to the first training step."""

    def __init__(self) -> None:
        self.epoch_s: list[float] = []
        self.epoch_cpu_s: list[float] = []
        self.first_step_s: float | None = None
        self._start: float | None = None
        self._last = self._cpu_start = self._cpu_last = 0.0

    def _begin(self) -> None:
        self._start = self._last = time.perf_counter()
        self._cpu_start = self._cpu_last = time.process_time()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._begin()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._start is None:  # a run restarted mid-epoch gets no on_train_epoch_start: time the rest
            self._begin()
        if self.first_step_s is None:
            self.first_step_s = time.perf_counter() - seqclf.START_TIME

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._last, self._cpu_last = time.perf_counter(), time.process_time()

    def _finish_epoch(self) -> None:
        if self._start is not None and self._last > self._start:
            self.epoch_s.append(self._last - self._start)
            self.epoch_cpu_s.append(self._cpu_last - self._cpu_start)
            self._start = self._last  # counted once

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation ends the epoch's training batches, and its checkpoints must include this epoch.
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._finish_epoch()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish_epoch()
        if self.epoch_s:
            pl_module.log("time/epoch_s", self.epoch_s[-1], sync_dist=True)

    def summary(self) -> dict[str, Any]:
        """The timings metrics.json records (none before the first epoch ends)."""
        if not self.epoch_s:
            return {}
        return {
            "seconds_per_epoch": statistics.median(self.epoch_s),
            "epoch_seconds": [round(s, 4) for s in self.epoch_s],
            "epoch_cpu_seconds": [round(s, 4) for s in self.epoch_cpu_s],
            "first_step_seconds": self.first_step_s,
        }

    def state_dict(self) -> dict[str, Any]:  # a resumed run reports the times of all its epochs
        return {"epoch_s": self.epoch_s, "epoch_cpu_s": self.epoch_cpu_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch_s, self.epoch_cpu_s = list(state["epoch_s"]), list(state["epoch_cpu_s"])


class RNGState(L.Callback):
    """Stores the random generators' states (torch, CUDA, NumPy, Python) in every checkpoint and
    restores them when training resumes (the next epoch's start, or its first batch when Lightning
    restarts mid-epoch, where it calls no on_train_epoch_start), so a resumed run draws the same
    dropout masks as one that never stopped. Restoring then, not at load time, keeps the
    sanity-check validation pass from consuming draws the original run never made.
    Plain lists and tensors only, so checkpoints load with ``torch.load(weights_only=True)``."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "python": random.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self._pending is not None:
            self._restore()

    def _restore(self) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


class HParamsMetric(L.Callback):
    """Fills TensorBoard's HPARAMS tab: the run's hyperparameters (model and data) with the best of
    the monitored metric (``val/acc_best`` by default) as the metric, written when fitting ends so
    the value is the real best."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = pl_module.best_monitored
        if best is None:
            return
        params = {**pl_module.hparams, **(trainer.datamodule.hparams if trainer.datamodule else {})}
        # TensorBoard shows a boolean as 0.0000/1.0000: as text it reads true/false
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.log_hyperparams(params, {f"{pl_module.hparams.monitor}_best": best}, step=trainer.global_step)


class ConfusionMatrixImage(L.Callback):
    """The validation confusion matrix (rows normalised, class names on the axes) as a TensorBoard
    image, ``val/confusion_matrix``: after every validation epoch (``images=epoch``), once when
    fitting ends (``end``), or never (``off``)."""

    IMAGES = ("epoch", "end", "off")

    def __init__(self, images: str = "end") -> None:
        if images not in self.IMAGES:
            raise ConfigError(
                f"callbacks.confusion_matrix.images={images!r} is not valid; choose one of {', '.join(self.IMAGES)}."
            )
        self.images = images

    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = pl_module.reports.get("val")
        writers = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if report is None or not (writers or tracking.mlflow_loggers(trainer)) or not trainer.is_global_zero:
            return
        image = plots.confusion_matrix(
            report["confusion"],
            report["labels"],
            f"validation, epoch {trainer.current_epoch + 1}",
            support=report["support"] if report.get("multi_label") else None,
        )
        for writer in writers:
            writer.add_image("val/confusion_matrix", image, trainer.global_step, dataformats="HWC")
        tracking.log_images(trainer, {"val/confusion_matrix": image})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the module's on_validation_epoch_end, which computes the report (callbacks' run first)
        if self.images == "epoch" and not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            self._draw(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.images == "end":
            self._draw(trainer, pl_module)


class FreezePretrained(BaseFinetuning):
    """A classifier started from a generator (``model.init_from``) trains its new output layer alone
    for the first ``epochs`` epochs, then every layer, so that the new layer's first, random gradients
    do not disturb what the language model learnt (ULMFiT's gradual unfreezing, in one step; with
    ``gradual``, one layer group more each epoch, from the top: ``groups``). Without
    ``init_from`` it does nothing. It freezes the whole encoder: a bidirectional classifier's new
    backward direction waits with the pretrained layers. Lightning's BaseFinetuning keeps its state in checkpoints; the
    frozen layers are made trainable again at every epoch from ``epochs`` on, so a resumed run is too."""

    def __init__(self, epochs: int = 1, gradual: bool = False) -> None:
        super().__init__()
        self.epochs = check_positive_int("callbacks.freeze_pretrained.epochs", epochs)
        if not isinstance(gradual, bool):
            raise ConfigError(f"callbacks.freeze_pretrained.gradual={gradual!r} must be true or false.")
        self.gradual = gradual

    @staticmethod
    def groups(encoder: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
        """The encoder's layer groups, top first, for gradual unfreezing: each recurrent layer (both
        directions; an encoder without torch cells is one group), then the word embeddings."""
        words = {id(p) for table in encoder.word_embeddings() for p in table.parameters()}
        rest = [p for p in encoder.parameters() if id(p) not in words]
        cells = next((m for m in encoder.modules() if isinstance(m, torch.nn.RNNBase)), None)
        layers = [rest]
        if cells is not None:
            named = dict(cells.named_parameters())
            by_layer = [
                [p for name, p in named.items() if name.removesuffix("_reverse").endswith(f"_l{i}")]
                for i in reversed(range(cells.num_layers))
            ]
            inside = {id(p) for layer in by_layer for p in layer}
            by_layer[0] += [p for p in rest if id(p) not in inside]  # beside the cells (a hybrid's bag): on top
            layers = by_layer
        return [*layers, [p for table in encoder.word_embeddings() for p in table.parameters()]]

    @staticmethod
    def _pretrained(pl_module: L.LightningModule) -> list[torch.nn.Module] | None:
        if not pl_module.hparams.get("init_from"):
            return None
        return [pl_module.net.encoder]

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        layers = self._pretrained(pl_module)
        if layers:
            self.freeze(layers)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer) -> None:
        layers = self._pretrained(pl_module)
        if not layers or epoch < self.epochs:
            return
        if not self.gradual:
            self.make_trainable(layers)
            return
        # ULMFiT's gradual unfreezing: one more group each epoch, from the top (set from the epoch
        # alone, so a resumed run has the same layers training)
        opened = epoch - self.epochs + 1
        for i, group in enumerate(self.groups(pl_module.net.encoder)):
            for p in group:
                p.requires_grad = i < opened


class ThreadShare(L.Callback):
    """Evaluation with the plan's evaluation count (its batches side by side, a thread each:
    seqclf.threads.side_by_side), training with its training count; the plan is saved in every
    checkpoint, so a resumed run uses the counts it started with."""

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        threads.use("eval")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        threads.use("train")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        threads.use("eval")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        threads.use("eval")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if threads.current() is not None:
            checkpoint["threads"] = threads.current().to_dict()
