"""Training logic: loss, optimiser and metrics around the plain RNNClassifier network."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import BinaryAccuracy

from seqclf.errors import ConfigError, TrainingError
from seqclf.models import RNNClassifier

LR_SCHEDULES = ("none", "cosine", "plateau")


def check_optimizer(lr, weight_decay, lr_schedule, gradient_clip_val, gradient_clip_algorithm) -> None:
    """Raise a ConfigError naming the first optimizer setting (``optimizer.*``) that cannot work."""
    for key, value in (("lr", lr), ("weight_decay", weight_decay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"optimizer.{key}={value!r} must be a number >= 0 (e.g. optimizer.{key}=0.001).")
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(
            f"optimizer.lr_schedule={lr_schedule!r} is not valid; choose one of {', '.join(LR_SCHEDULES)}."
        )
    if gradient_clip_val is not None and (
        isinstance(gradient_clip_val, bool)
        or not isinstance(gradient_clip_val, (int, float))
        or not math.isfinite(gradient_clip_val)
        or gradient_clip_val < 0
    ):
        raise ConfigError(f"optimizer.gradient_clip_val={gradient_clip_val!r} must be null or a number >= 0.")
    if gradient_clip_algorithm not in ("norm", "value"):
        raise ConfigError(
            f"optimizer.gradient_clip_algorithm={gradient_clip_algorithm!r} is not valid; choose norm or value."
        )


class SeqClassifier(L.LightningModule):
    """Binary sentiment classifier. Every argument is a primitive, recorded by
    ``save_hyperparameters()``, so ``SeqClassifier.load_from_checkpoint(path)`` needs nothing else.

    Each ``training_step`` call runs several optimizer steps, one per batch of the block it is given
    (``data.steps_per_execution``, as Keras' ``steps_per_execution``): Lightning's per-call work
    (hook dispatch, progress, logging) is paid once per block instead of once per step. This is
    manual optimization, so ``trainer.global_step`` still counts optimizer steps."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 16,
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        fused: bool = True,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        lr_schedule: str = "none",
    ):
        super().__init__()
        check_optimizer(lr, weight_decay, lr_schedule, gradient_clip_val, gradient_clip_algorithm)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.net = RNNClassifier(
            vocab_size, cell, embed_dim, hidden_size, num_layers, bidirectional, dropout, pooling=pooling
        )
        self.loss_fn = nn.BCEWithLogitsLoss()
        # One metric object per stage; validate_args=False skips checks that sync the device.
        self.train_acc = BinaryAccuracy(validate_args=False)
        self.train_loss = MeanMetric()
        self.val_acc = BinaryAccuracy(validate_args=False)
        self.test_acc = BinaryAccuracy(validate_args=False)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self._direct = False  # set when training starts (see _nothing_wraps_a_step)

    @property
    def best_val_acc(self) -> float | None:
        """The best validation accuracy so far; None before the first validation epoch."""
        best = float(self.val_acc_best.max_value)  # -inf until then
        return best if math.isfinite(best) else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)

    def training_step(self, block, block_idx: int) -> None:
        tokens, labels, sizes = block
        optimizer = self.optimizers()
        clip = self.hparams.gradient_clip_val
        max_steps = self.trainer.max_steps
        if max_steps >= 0:  # stop at max_steps exactly, also in the middle of a block
            sizes = sizes[: max(0, max_steps - self.global_step)]
        seen = sum(sizes)
        labels = labels[:seen]
        losses, logits = [], []
        for x, y in zip(tokens[:seen].split(sizes), labels.split(sizes), strict=True):
            out = self(x)
            loss = self.loss_fn(out, y)
            optimizer.zero_grad()
            if self._direct:
                loss.backward()
            else:
                self.manual_backward(loss)
            if clip:
                self.clip_gradients(optimizer, clip, self.hparams.gradient_clip_algorithm)
            if self._direct:  # the raw optimizer, and the step count behind trainer.global_step
                optimizer._on_before_step()
                optimizer.optimizer.step()
                optimizer._on_after_step()
            else:
                optimizer.step()
            losses.append(loss.detach())
            logits.append(out.detach())
        if not losses:
            return
        losses = torch.stack(losses)
        self._check_losses(losses)
        # Lightning counts one logging step per call; its loggers' x-axis should be optimizer steps.
        self.trainer.fit_loop.epoch_loop._batches_that_stepped += len(losses) - 1
        self.train_loss.update(losses, weight=torch.tensor(sizes, dtype=losses.dtype, device=losses.device))
        self.train_acc.update((torch.cat(logits) > 0).long(), labels.long())
        self._log_step_losses(losses)

    def on_train_epoch_end(self) -> None:
        # Logged once an epoch: each self.log call costs Lightning's bookkeeping, per call.
        self.log("train/loss", self.train_loss)
        self.log("train/acc", self.train_acc)
        if self.hparams.lr_schedule == "cosine":  # manual optimization: the module steps its schedule
            self.lr_schedulers().step()

    def _log_step_losses(self, losses: torch.Tensor) -> None:
        """``train/loss_step`` of every log_every_n_steps-th optimizer step of the block, written to the
        loggers at the x value Lightning would give that step (its own step logging counts calls)."""
        every, first = self.trainer.log_every_n_steps, self.global_step - len(losses)
        if not every:
            return
        for step in range((first // every + 1) * every, self.global_step + 1, every):
            loss = losses[step - first - 1]
            for logger in self.loggers:
                logger.log_metrics({"train/loss_step": float(loss)}, step=step - 1)
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def on_train_start(self) -> None:
        self._direct = self._nothing_wraps_a_step()

    def _nothing_wraps_a_step(self) -> bool:
        """Whether Lightning's per-step machinery has nothing to do here. manual_backward and the wrapped
        optimizer's step exist for mixed-precision scaling (precision plugins), DDP's gradient-sync set-up
        before each backward, and the backward and optimizer-step hooks; they dispatch each hook to every
        callback whether it listens or not, which costs more per step than the lecture model's optimizer
        step itself. With 32-bit precision on one device and no listener, the step calls torch directly
        and only counts the step for ``global_step``; anything else takes Lightning's path."""
        trainer = self.trainer
        if type(trainer.precision_plugin) is not Precision or type(trainer.strategy) is not SingleDeviceStrategy:
            return False
        hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
        if any(is_overridden(hook, callback, L.Callback) for hook in hooks for callback in trainer.callbacks):
            return False
        own = (*hooks, "backward", "optimizer_step")
        return not any(is_overridden(hook, self, L.LightningModule) for hook in own)

    def _check_losses(self, losses: torch.Tensor) -> None:
        """Stop on a NaN/inf training loss, naming its optimizer step, before any checkpoint can hold
        the weights it poisoned. Once per block: on an accelerator the check waits for the device."""
        finite = torch.isfinite(losses)
        if bool(finite.all()):
            return
        index = int((~finite).nonzero()[0])
        step = self.global_step - len(losses) + index
        raise TrainingError(
            f"the training loss is {float(losses[index])} at step {step} (epoch {self.current_epoch}); "
            "training stopped and the checkpoints of the last good epoch are kept. Lower optimizer.lr, "
            "clip gradients (optimizer.gradient_clip_val=1.0) or check the data, then resume or start again."
        )

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
            if self.hparams.lr_schedule == "plateau":
                self.lr_schedulers().step(acc)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        # fused: one kernel per parameter instead of a dozen small ops, the same algorithm and results
        # to float rounding (see the README's performance section for what it saves).
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, fused=hp.fused)
        if hp.lr_schedule == "cosine":  # from lr to 0 over the run's epochs
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_epochs))
        elif hp.lr_schedule == "plateau":  # halve lr when val/acc has not improved for an epoch
            schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
        else:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
