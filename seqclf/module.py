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
        fused: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = RNNClassifier(vocab_size, cell, embed_dim, hidden_size, num_layers, bidirectional, dropout)
        self.loss_fn = nn.BCEWithLogitsLoss()
        # The epoch's detached training losses, logits and labels, reduced once at the epoch's end. A
        # training step of the lecture's model takes ~2 ms on a CPU: self.log or torchmetrics calls
        # (0.3-1 ms each) or even running sums (~50 us of small tensor ops) each step would show.
        self._train_out: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._checked = 0  # entries of _train_out already checked for NaN/inf losses
        self._first_step = 0  # global step of the epoch's first batch
        # One metric object per evaluation stage; validate_args=False skips checks that sync the device.
        self.val_acc = BinaryAccuracy(validate_args=False)
        self.test_acc = BinaryAccuracy(validate_args=False)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets _current_fx_name around every hook call, ~45 times per training step;
        # nn.Module.__setattr__ first looks through parameters, buffers and submodules (~2 us), and a
        # plain string attribute ends up where object.__setattr__ puts it anyway.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

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
        self._train_out.append((loss.detach(), logits.detach(), labels))
        # Lightning hands step values to the loggers every `log_every_n_steps` steps only.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self._check_losses()
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _check_losses(self) -> None:
        """Stop on a NaN/inf training loss, naming the first bad step. Checked at logging steps, before
        validation, at the epoch's end and before every checkpoint save (so no checkpoint ever holds
        poisoned weights), rather than each step, where the check would cost as much as the rest of our
        step code and wait for the device on an accelerator."""
        new = self._train_out[self._checked :]
        if not new:
            return
        finite = torch.isfinite(torch.stack([loss for loss, _, _ in new]))
        if bool(finite.all()):
            self._checked += len(new)
            return
        index = self._checked + int((~finite).nonzero()[0])
        step = self._first_step + index // self.trainer.accumulate_grad_batches
        raise TrainingError(
            f"the training loss is {float(self._train_out[index][0])} at step {step} (epoch {self.current_epoch}); "
            "training stopped and the checkpoints of the last good epoch are kept. Lower optimizer.lr, "
            "clip gradients (trainer.gradient_clip_val=1.0) or check the data, then resume or start again."
        )

    def on_train_epoch_start(self) -> None:
        self._train_out, self._checked, self._first_step = [], 0, self.global_step

    def on_train_epoch_end(self) -> None:
        self._check_losses()
        if self._train_out:
            steps = zip(*self._train_out, strict=True)
            losses, logits, labels = (torch.cat([t.reshape(-1) for t in ts]) for ts in steps)
            counts = torch.tensor([len(t) for _, t, _ in self._train_out], device=losses.device, dtype=losses.dtype)
            correct = ((logits > 0) == (labels > 0.5)).sum().to(losses.dtype)
            sums = torch.stack([(losses * counts).sum(), correct, counts.sum()])
        else:
            sums = torch.zeros(3, device=self.device)
        self._train_out = []  # the epoch's tensors are not kept alive until the next one
        loss_sum, correct, count = self.all_gather(sums).reshape(-1, 3).sum(0)  # over all ranks
        if count > 0:
            self.log("train/loss", loss_sum / count, sync_dist=True)  # equal on all ranks already;
            self.log("train/acc", correct / count, prog_bar=True, sync_dist=True)  # sync_dist says so

    def on_validation_start(self) -> None:  # not a validation pass over poisoned weights
        self._check_losses()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self._check_losses()

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
        # fused: one kernel per parameter instead of a dozen small ops (same algorithm and results to
        # float rounding); on a CPU it takes ~0.5 ms off a ~2.5 ms LSTM step of the lecture's model.
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, fused=hp.fused)
