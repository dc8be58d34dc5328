"""Training logic: loss, optimiser and metrics around the plain RNNClassifier network."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import BinaryAccuracy

from seqclf.errors import TrainingError
from seqclf.models import RNNClassifier


class SeqClassifier(L.LightningModule):
    """Binary sentiment classifier. Every argument is a primitive, recorded by
    ``save_hyperparameters()``, so ``SeqClassifier.load_from_checkpoint(path)`` needs nothing else."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 16,
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = RNNClassifier(vocab_size, cell, embed_dim, hidden_size, num_layers, bidirectional, dropout)
        self.loss_fn = nn.BCEWithLogitsLoss()
        # Training loss and accuracy are running sums (loss * n, correct, n) rather than self.log and
        # torchmetrics calls each step: those cost 0.3-1 ms of Python per call, against ~2 ms for a
        # whole training step of the lecture's model on a CPU.
        self.register_buffer("train_sums", torch.zeros(3), persistent=False)
        # One metric object per evaluation stage; validate_args=False skips checks that sync the device.
        self.val_acc = BinaryAccuracy(validate_args=False)
        self.test_acc = BinaryAccuracy(validate_args=False)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best

    @property
    def best_val_acc(self) -> float | None:
        """The best validation accuracy so far; None before the first validation epoch."""
        best = float(self.val_acc_best.max_value)  # -inf until then
        return best if math.isfinite(best) else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        tokens, labels = batch
        logits = self(tokens)
        loss = self.loss_fn(logits, labels)
        with torch.no_grad():
            self.train_sums[0] += loss * len(labels)
            self.train_sums[1] += ((logits > 0) == (labels > 0.5)).sum()
            self.train_sums[2] += len(labels)
        # Lightning hands step values to the loggers every `log_every_n_steps` steps only.
        log_step = (self.global_step + 1) % self.trainer.log_every_n_steps == 0
        if log_step:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        # A NaN/inf loss poisons the running sum. Checked every step on the CPU, where it is free,
        # and at logging steps on accelerators, where a check waits for the device.
        every_step = self.device.type == "cpu"
        if (log_step or every_step) and not torch.isfinite(self.train_sums[0]):
            value, when = (loss.item(), "at") if every_step else ("nan or inf", "at or before")
            raise TrainingError(
                f"the training loss is {value} {when} step {self.global_step} (epoch {self.current_epoch}); "
                "training stopped and the checkpoints of the last good epoch are kept. Lower optimizer.lr, "
                "clip gradients (trainer.gradient_clip_val=1.0) or check the data, then resume or start again."
            )
        return loss

    def on_train_epoch_start(self) -> None:
        self.train_sums.zero_()

    def on_train_epoch_end(self) -> None:
        loss_sum, correct, count = self.all_gather(self.train_sums).reshape(-1, 3).sum(0)  # over all ranks
        if count > 0:
            self.log("train/loss", loss_sum / count, sync_dist=True)  # equal on all ranks already;
            self.log("train/acc", correct / count, prog_bar=True, sync_dist=True)  # sync_dist says so

    def _eval_step(self, batch, stage: str) -> None:
        tokens, labels = batch
        logits = self(tokens)
        getattr(self, f"{stage}_acc").update((logits > 0).long(), labels.long())
        getattr(self, f"{stage}_loss").update(self.loss_fn(logits, labels), weight=len(labels))

    def _eval_epoch_end(self, stage: str) -> torch.Tensor:
        acc_metric, loss_metric = getattr(self, f"{stage}_acc"), getattr(self, f"{stage}_loss")
        acc = acc_metric.compute()
        # torchmetrics' compute() has reduced over all processes already.
        self.log(f"{stage}/loss", loss_metric.compute(), prog_bar=True, sync_dist=True)
        self.log(f"{stage}/acc", acc, prog_bar=True, sync_dist=True)
        acc_metric.reset()
        loss_metric.reset()
        return acc

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        acc = self._eval_epoch_end("val")
        if not self.trainer.sanity_checking:  # a few sanity batches are not a validation score
            self.val_acc_best.update(acc)
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
