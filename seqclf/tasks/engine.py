"""The training engine every task shares: blocks of optimizer steps per ``training_step`` call, the
optimizer and its schedule, the NaN guard, step-loss logging, the best monitored score, and the
evaluation loop's loss. A task's module (seqclf.tasks.<task>.module) adds its network, loss,
metrics and what it logs."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torchmetrics import MaxMetric, MeanMetric, MinMetric

from seqclf import migrate, threads
from seqclf.data.text import IGNORE
from seqclf.errors import TrainingError
from seqclf.lightning import private
from seqclf.tasks.monitor import monitor_mode
from seqclf.tasks.optimizer import OptimizerSettings


def token_cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of (batch, time, classes) logits over the real steps only (``IGNORE`` elsewhere):
    their mean (0 for a batch with none) or sum."""
    total = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    return total if reduction == "sum" else total / (target != IGNORE).sum().clamp(min=1)


class TaskModule(L.LightningModule):
    """The training logic of every task. Each ``training_step`` call runs several optimizer steps,
    one per batch of the block it is given (``data.steps_per_execution``, as Keras'
    ``steps_per_execution``): Lightning's per-call work (hook dispatch, progress, logging) is paid
    once per block instead of once per step. This is manual optimization, so
    ``trainer.global_step`` still counts optimizer steps.

    A task sets ``self.net``, calls ``init_engine`` after ``save_hyperparameters`` (hparams
    ``optimizer``, an OptimizerSettings record as a dict, and ``monitor``) and defines:
    - ``loss(logits, target)``: the mean loss of a batch;
    - ``update_train(logits, target)``: the training metrics, given a block's outputs;
    - ``train_metrics()``: those metrics by name, logged as ``train/<name>`` each epoch;
    - ``score_inputs(logits, target)``: what the validation or test scores count from a batch (pure:
      evaluation batches may run side by side, seqclf.threads.side_by_side);
    - ``update_scores(stage, inputs, target)`` and ``compute_scores(stage)``: those scores by name
      (logged as ``<stage>/<name>``), reset after computing."""

    def init_engine(self, monitor: str) -> None:
        self.automatic_optimization = False
        self.optimizer_settings = OptimizerSettings.of(self.hparams.optimizer)
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.best_score = MinMetric() if monitor_mode(monitor) == "min" else MaxMetric()
        self.best_score.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self.reports: dict[str, dict] = {}  # the last detailed report of each stage, when the task has one
        self._direct = False  # set when training starts (see _nothing_wraps_a_step)
        self._frozen: list[torch.nn.Parameter] = []  # word vectors kept as given this epoch (on_train_epoch_start)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seqclf_format"] = migrate.CHECKPOINT_FORMAT

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """An earlier version's checkpoint, resumed by Lightning, is read as today's (seqclf.migrate)."""
        migrate.checkpoint(checkpoint)

    # -- the engine --------------------------------------------------------------------------------
    def loss_weights(self, target: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """What each batch's mean loss (``target`` split by ``sizes``) stands for in an epoch's mean:
        its texts, so the epoch's loss is the same however the batches fall, in one process or several."""
        return torch.tensor(sizes, dtype=torch.float32, device=target.device)

    @property
    def best_monitored(self) -> float | None:
        """The best value of the monitored metric so far; None before the first validation epoch."""
        best = float(self.best_score.min_value if isinstance(self.best_score, MinMetric) else self.best_score.max_value)
        return best if math.isfinite(best) else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)

    def training_step(self, block, block_idx: int) -> None:
        tokens, labels, sizes = block
        optimizer, *sparse = self._optimizers()
        clip = self.optimizer_settings.gradient_clip_val
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
            for other in sparse:
                other.zero_grad()
            if self._direct:
                loss.backward()
            else:
                self.manual_backward(loss)
            for weight in self._frozen:
                weight.grad = None
            if clip:  # the dense parameters' gradients (a sparse embedding's are not clipped)
                self.clip_gradients(optimizer, clip, self.optimizer_settings.gradient_clip_algorithm)
            if self._direct:  # the raw optimizer, and the step count behind trainer.global_step
                private.step(optimizer)
            else:
                optimizer.step()
            for other in sparse:  # the same step, counted once: by the dense optimizer's
                other.optimizer.step()
            if self.optimizer_settings.lr_schedule == "one_cycle":
                for schedule in self._schedules():
                    if schedule.last_epoch < schedule.total_steps - 1:  # steps added on resume keep the last rate
                        schedule.step()
            losses.append(loss.detach())
            logits.append(out.detach())
        if not losses:
            return
        losses = torch.stack(losses)
        self._check_losses(losses)
        # Lightning counts one logging step per call; its loggers' x-axis should be optimizer steps.
        private.add_logged_steps(self.trainer, len(losses) - 1)
        self.train_loss.update(losses, weight=self.loss_weights(labels, sizes[: len(losses)]).to(losses.dtype))
        self.update_train(torch.cat(logits), labels)
        self._log_step_losses(losses)

    def on_train_epoch_end(self) -> None:
        # Logged once an epoch: each self.log call costs Lightning's bookkeeping, per call.
        self.log("train/loss", self.train_loss)
        for name, metric in self.train_metrics().items():
            self.log(f"train/{name}", metric)
        if self.optimizer_settings.lr_schedule == "cosine":  # manual optimization: the module steps its schedule
            for schedule in self._schedules():
                schedule.step()

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

    def on_train_epoch_start(self) -> None:
        """Pretrained word vectors (hparams ``vectors``) stay as given for the first ``freeze_vectors``
        epochs (``all``: throughout), so the first, random gradients of the layers above do not undo
        them; decided from the epoch, so a resumed run freezes as the uninterrupted one did. Their
        gradients are dropped before each step (the optimizer then skips them, weight decay included)
        rather than not computed: under DDP the set of parameters with gradients must not change."""
        freeze = self.hparams.get("freeze_vectors") or 0
        frozen = bool(self.hparams.get("vectors")) and (freeze == "all" or self.current_epoch < int(freeze))
        self._frozen = [table.weight for table in self.net.encoder.word_embeddings()] if frozen else []

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

    def eval_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, object]:
        """An evaluation batch's mean loss and what the stage's scores count from it. It changes no
        state: the batches of a block may run side by side (seqclf.threads.side_by_side)."""
        logits = self(x)
        return self.loss(logits, y), self.score_inputs(logits, y)

    def _eval_step(self, block, stage: str) -> None:
        """One block of evaluation batches (or one batch), each scored as a batch of its own: the
        same numbers for any block size. On a CPU the batches run side by side on the run's
        evaluation threads (seqclf.threads.side_by_side); the scores are counted here, in order.
        Lightning's sanity check runs a few calls before training; it takes the first batch of each,
        as it would take a batch per call."""
        tokens, target, *sizes = block
        sizes = list(sizes[0]) if sizes else [len(target)]
        if self.trainer.sanity_checking:
            sizes = sizes[:1]
        seen = sum(sizes)
        tokens, target = tokens[:seen], target[:seen]
        loss_metric = getattr(self, f"{stage}_loss")
        weights = self.loss_weights(target, sizes)
        batches = list(zip(tokens.split(sizes), target.split(sizes), strict=True))
        outputs = threads.side_by_side(lambda batch: self.eval_batch(*batch), batches, tokens.device)
        for (loss, inputs), (_, y), weight in zip(outputs, batches, weights, strict=True):
            self.update_scores(stage, inputs, y)
            loss_metric.update(loss, weight=weight)

    def log_curves(self, values: dict[str, float]) -> None:
        """Curves for the loggers only (each class's scores): one call per logger, at the x value of
        the epoch's other validation metrics. ``self.log`` costs Lightning's bookkeeping per name
        (about a millisecond), which a dataset of many classes would pay many times an epoch; these
        values, computed from counts already reduced over processes, need none of it."""
        step = private.logged_step(self.trainer)
        for logger in self.loggers:
            logger.log_metrics(values, step=step)

    def _eval_epoch_end(self, stage: str) -> dict[str, torch.Tensor]:
        """Log the stage's loss and the task's scores; return the scalars by metric name."""
        loss_metric = getattr(self, f"{stage}_loss")
        # torchmetrics' compute() has reduced over all processes already.
        scores = self.compute_scores(stage)
        scalars = {f"{stage}/loss": loss_metric.compute(), **{f"{stage}/{k}": v for k, v in scores.items()}}
        for name, value in scalars.items():
            self.log(name, value, prog_bar=name.endswith(("/loss", "/acc", "/f1")), sync_dist=True)
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
            if self.optimizer_settings.lr_schedule == "plateau":
                for schedule in self._schedules():
                    schedule.step(scalars[monitor])

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        """Adam (torch's fused kernel: one kernel per parameter instead of a dozen small ops, the same
        algorithm and results to float rounding), and, for the embedding tables that give sparse
        gradients (a bag of n-grams'), torch's SparseAdam: it updates the rows a batch reads, where
        Adam would update every row of a table of hundreds of thousands at every step (Adam's moments
        of the other rows are left as they are: "lazy" Adam; weight decay applies to the dense ones)."""
        hp = self.optimizer_settings
        tables = self._sparse_tables()
        dense = [p for p in self.parameters() if not any(p is t for t in tables)]
        sparse_lr = hp.lr / hp.lower_lr_factor**2  # the sparse tables hold words (and a bag's n-grams)
        optimizers = [
            torch.optim.Adam(self._layer_groups(dense), lr=hp.lr, weight_decay=hp.weight_decay, fused=hp.fused)
        ]
        if tables:
            optimizers.append(torch.optim.SparseAdam(tables, lr=sparse_lr))
        schedules = [self._schedule(optimizer) for optimizer in optimizers]
        if schedules[0] is None:
            return optimizers[0] if len(optimizers) == 1 else optimizers
        configs = [{"scheduler": schedule, "interval": "epoch"} for schedule in schedules]
        if len(optimizers) == 1:
            return {"optimizer": optimizers[0], "lr_scheduler": configs[0]}
        return optimizers, configs

    def _layer_groups(self, params: list[torch.nn.Parameter]) -> list:
        """``params`` as Adam's parameter groups: one (every layer at optimizer.lr), or, with
        optimizer.lower_lr_factor f above 1, the head and the rest at lr, the encoder at lr / f and its
        word embedding at lr / f**2 (ULMFiT's discriminative fine-tuning), the groups that have any."""
        factor = self.optimizer_settings.lower_lr_factor
        if factor == 1:
            return params
        words = {id(table.weight) for table in self.net.encoder.word_embeddings()}
        encoder = {id(p) for p in self.net.encoder.parameters()}
        depth = [2 if id(p) in words else 1 if id(p) in encoder else 0 for p in params]
        lr = self.optimizer_settings.lr
        groups = [{"params": [p for p, d in zip(params, depth, strict=True) if d == k], "lr": lr / factor**k}
                  for k in range(3)]  # fmt: skip
        return [group for group in groups if group["params"]]

    def _training_steps(self) -> int:
        """The optimizer steps of this run (on this process): trainer.max_steps, else the epochs' steps."""
        trainer = self.trainer
        if trainer.max_steps > 0:
            return trainer.max_steps
        trainer.estimated_stepping_batches  # noqa: B018 - sets up the training data, whose blocks count the steps
        return max(1, trainer.max_epochs * trainer.train_dataloader.sampler.num_steps)

    def _schedule(self, optimizer):
        hp = self.optimizer_settings
        if hp.lr_schedule == "one_cycle":  # stepped after every optimizer step (training_step)
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[group["lr"] for group in optimizer.param_groups], total_steps=self._training_steps(),
                pct_start=0.1, anneal_strategy="linear", cycle_momentum=False, div_factor=32.0, final_div_factor=1.0,
            )  # fmt: skip
        if hp.lr_schedule == "cosine":  # from lr to 0 over the run's epochs
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_epochs))
        if hp.lr_schedule == "plateau":  # halve lr when the monitored metric has not improved for an epoch
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=monitor_mode(self.hparams.monitor), factor=0.5, patience=1
            )
        return None

    def _sparse_tables(self) -> list[torch.nn.Parameter]:
        return [
            m.weight for m in self.modules() if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and m.sparse
        ]

    def _optimizers(self) -> list:
        """The dense parameters' optimizer first, then the sparse tables' (if any)."""
        optimizers = self.optimizers()
        return optimizers if isinstance(optimizers, list) else [optimizers]

    def _schedules(self) -> list:
        schedules = self.lr_schedulers()
        return schedules if isinstance(schedules, list) else [schedules]


class PerStepModule(TaskModule):
    """A task with a target at every step (tagging, generation): cross-entropy over the real steps,
    and a batch's loss weighs by its real steps in the epoch's mean."""

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the batch's real steps (0 for a batch with none)."""
        return token_cross_entropy(logits, target)

    def loss_weights(self, target: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        return torch.stack([(y != IGNORE).sum() for y in target.split(sizes)]).float()
