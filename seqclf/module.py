"""Training logic: loss, optimiser and metrics around the plain RNNClassifier network, for binary,
multi-class and multi-label classification."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric, MeanMetric, MinMetric
from torchmetrics.classification import MulticlassAccuracy, MultilabelExactMatch

from seqclf.data.labels import IMDB_NAMES, Labels
from seqclf.errors import ConfigError, TrainingError
from seqclf.models import RNNClassifier, readout
from seqclf.monitor import check_monitor, monitor_mode
from seqclf.scores import StageScores

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


def check_classification(class_weights, threshold, monitor) -> None:
    """Raise a ConfigError for a class-weight setting, threshold or monitored metric that cannot work
    (the class names in a weight mapping are checked against the data's when the model is built)."""
    check_monitor(monitor)
    if not (class_weights is None or class_weights == "balanced" or hasattr(class_weights, "items")):
        raise ConfigError(
            f"model.class_weights={class_weights!r} is not valid; choose null, balanced, or a mapping from class name "
            "to weight (e.g. model.class_weights='{pos: 2.0}')."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ConfigError(f"model.threshold={threshold!r} must lie strictly between 0 and 1 (e.g. 0.5).")


def resolve_class_weights(
    spec, names: list[str], counts: list[int] | None, multi_label: bool, total: int | None
) -> list[float] | None:
    """``model.class_weights`` as one weight per class: null (none), ``balanced`` (inversely
    proportional to the class's share of the training texts, as scikit-learn's; multi-label: each
    label's negatives over its positives, the positive term's weight) or a mapping name -> weight
    (classes it does not name weigh 1)."""
    if spec is None:
        return None
    if spec == "balanced":
        if counts is None:
            raise ConfigError("model.class_weights=balanced needs the training texts' class counts (from the data).")
        total = total or sum(counts)
        if multi_label:
            return [(total - c) / c if c else 1.0 for c in counts]
        return [total / (len(names) * c) if c else 1.0 for c in counts]
    if isinstance(spec, dict) or hasattr(spec, "items"):
        unknown = [str(k) for k in spec if str(k) not in names]
        if unknown:
            raise ConfigError(
                f"model.class_weights names {unknown}, which are not classes of this data ({', '.join(names)})."
            )
        weights = {str(k): v for k, v in spec.items()}
        bad = [k for k, v in weights.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0]
        if bad:
            raise ConfigError(f"model.class_weights: the weight of {bad[0]!r} must be a number >= 0.")
        return [float(weights.get(name, 1.0)) for name in names]
    raise ConfigError(
        f"model.class_weights={spec!r} is not valid; choose null, balanced, or a mapping from class name to weight "
        "(e.g. model.class_weights='{pos: 2.0}')."
    )


class SeqClassifier(L.LightningModule):
    """Text classifier: binary (one logit, BCE: the lecture's model), multi-class (a logit per class,
    softmax cross-entropy) or multi-label (a logit per label, BCE, ``threshold`` decides). Every
    argument is a primitive, recorded by ``save_hyperparameters()``, so
    ``SeqClassifier.load_from_checkpoint(path)`` needs nothing else: ``labels`` (the class names),
    ``class_counts`` and ``train_texts`` come from the data at instantiation.

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
        labels: list[str] | None = None,
        multi_label: bool = False,
        class_weights: str | dict | None = None,
        class_counts: list[int] | None = None,
        train_texts: int | None = None,
        threshold: float = 0.5,
        monitor: str = "val/acc",
    ):
        super().__init__()
        check_optimizer(lr, weight_decay, lr_schedule, gradient_clip_val, gradient_clip_algorithm)
        check_classification(class_weights, threshold, monitor)
        if monitor == "val/f1_micro" and not multi_label:
            raise ConfigError("monitor=val/f1_micro is logged for multi-label data only; use val/f1_macro or val/acc.")
        # Hydra's containers (ListConfig, DictConfig) become plain data in hparams and checkpoints.
        task = Labels(tuple(str(name) for name in labels or IMDB_NAMES), multi_label)
        labels = list(task.names)
        if hasattr(class_weights, "items"):
            class_weights = {str(k): float(v) for k, v in class_weights.items()}
        class_counts = [int(c) for c in class_counts] if class_counts is not None else None
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.kind = task.kind
        self.net = RNNClassifier(
            vocab_size,
            cell,
            embed_dim,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            pooling=pooling,
            num_outputs=task.num_outputs,
        )
        weights = resolve_class_weights(class_weights, labels, class_counts, multi_label, train_texts)
        self.register_buffer("class_weight", None if weights is None else torch.tensor(weights), persistent=False)
        self.loss_fn = nn.BCEWithLogitsLoss() if self.kind == "binary" else None  # the lecture's loss
        # One metric object per stage; validate_args=False skips checks that sync the device.
        num = len(labels)
        if multi_label:
            self.train_acc = MultilabelExactMatch(num, validate_args=False)
        else:
            self.train_acc = MulticlassAccuracy(num, average="micro", validate_args=False)
        self.train_loss = MeanMetric()
        self.val_scores, self.test_scores = StageScores(num, multi_label), StageScores(num, multi_label)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.best_score = MinMetric() if monitor_mode(monitor) == "min" else MaxMetric()
        self.best_score.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self.reports: dict[str, dict] = {}  # the last per-class report of each stage (seqclf.classreport)
        self._direct = False  # set when training starts (see _nothing_wraps_a_step)

    @property
    def label_names(self) -> list[str]:
        return list(self.hparams.labels or IMDB_NAMES)

    @property
    def best_monitored(self) -> float | None:
        """The best value of the monitored metric so far; None before the first validation epoch."""
        best = float(self.best_score.min_value if isinstance(self.best_score, MinMetric) else self.best_score.max_value)
        return best if math.isfinite(best) else None

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints written before the monitored metric was a setting kept val/acc's best as val_acc_best."""
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith("val_acc_best.")]:
            state["best_score." + key.split(".", 1)[1]] = state.pop(key)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The task's loss: BCE on one logit (binary), cross-entropy (multi-class) or BCE per label
        (multi-label); ``model.class_weights`` weigh each text's loss by its class (binary,
        multi-class) or each label's positive term (multi-label)."""
        w = self.class_weight
        if self.kind == "multiclass":
            return F.cross_entropy(logits, target, weight=w, reduction=reduction)
        if self.kind == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, target, pos_weight=w, reduction=reduction)
        if w is None and reduction == "mean":
            return self.loss_fn(logits, target)
        weight = None if w is None else w[target.long()]
        return F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction=reduction)

    def predicted(self, logits: torch.Tensor) -> torch.Tensor:
        return readout.class_ids(logits, self.kind, self.hparams.threshold)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return readout.probabilities(logits, self.kind)

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
            loss = self.loss(out, y)
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
        self.train_acc.update(self.predicted(torch.cat(logits)), labels.long())
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
        getattr(self, f"{stage}_scores").update(self.predicted(logits), labels)
        getattr(self, f"{stage}_loss").update(self.loss(logits, labels), weight=len(labels))

    def _eval_epoch_end(self, stage: str) -> dict[str, torch.Tensor]:
        """Log the stage's loss and scores (validation: also each class's, under ``val_per_class/``)
        and keep its per-class report in ``self.reports[stage]``; return the scalars by metric name."""
        scores, loss_metric = getattr(self, f"{stage}_scores"), getattr(self, f"{stage}_loss")
        # torchmetrics' compute() has reduced over all processes already.
        scalars, report = scores.compute()
        scalars = {f"{stage}/loss": loss_metric.compute(), **{f"{stage}/{k}": v for k, v in scalars.items()}}
        for name, value in scalars.items():
            self.log(name, value, prog_bar=name.endswith(("/loss", "/acc")), sync_dist=True)
        if stage == "val" and not self.trainer.sanity_checking:
            for score in ("precision", "recall", "f1"):
                for label, value in zip(self.label_names, report[score], strict=True):
                    self.log(f"val_per_class/{score}/{label}", value, sync_dist=True)
        self.reports[stage] = {"labels": self.label_names, "multi_label": self.hparams.multi_label, **report}
        scores.reset()
        loss_metric.reset()
        return scalars

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        scalars = self._eval_epoch_end("val")
        if not self.trainer.sanity_checking:  # a few sanity batches are not a validation score
            monitor = self.hparams.monitor
            self.best_score.update(scalars[monitor])
            self.log(f"{monitor}_best", self.best_score.compute(), prog_bar=True, sync_dist=True)
            if self.hparams.lr_schedule == "plateau":
                self.lr_schedulers().step(scalars[monitor])

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
        elif hp.lr_schedule == "plateau":  # halve lr when the monitored metric has not improved for an epoch
            schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=monitor_mode(hp.monitor), factor=0.5, patience=1
            )
        else:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
