"""GeneratedSamples, a Lightning callback: a generator's writing after each validation epoch, in TensorBoard."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from seqclf.errors import ConfigError
from seqclf.lightning import tracking
from seqclf.tasks.generate.inference import Generator


class GeneratedSamples(L.Callback):
    """A generator's writing as it learns: ``per_label`` texts of each class (at most ``max_words``
    words, the same seed every epoch) after each validation epoch, in TensorBoard's text tab
    (``samples``)."""

    def __init__(self, per_label: int = 2, max_words: int = 30, temperature: float = 0.8, top_k: int | None = 40):
        for key, value in (("per_label", per_label), ("max_words", max_words)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"callbacks.samples.{key}={value!r} must be a positive integer.")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ConfigError(f"callbacks.samples.temperature={temperature!r} must be a number >= 0.")
        self.per_label, self.max_words, self.temperature, self.top_k = per_label, max_words, temperature, top_k

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if trainer.sanity_checking or not (writers or tracking.mlflow_loggers(trainer)) or trainer.global_rank != 0:
            return
        data = trainer.datamodule
        writer = Generator(pl_module.net, data.tokenizer, data.labels, str(pl_module.device))
        lines = []
        for label in writer.label_names:
            texts = writer.generate(label, self.per_label, self.max_words, self.temperature, self.top_k, seed=0)
            lines += [f"**{label}**: {text}" for text in texts]
        for logger in writers:
            logger.experiment.add_text("samples", "\n\n".join(lines), trainer.global_step)
        tracking.log_text(trainer, "samples", "\n\n".join(lines))
