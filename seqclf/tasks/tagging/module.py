"""The tagging task (many-to-many): a tag for every word, from the plain SequenceTagger network, trained
by the shared engine (seqclf.tasks.engine); cross-entropy over the real words only, token accuracy and
entity-level (BIO tags) or per-word F1 (seqclf.tasks.tagging.scores)."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy

from seqclf.data.text import IGNORE
from seqclf.errors import ConfigError
from seqclf.models import encoders
from seqclf.models.networks import tagger_of
from seqclf.tasks.engine import PerStepModule
from seqclf.tasks.optimizer import OptimizerSettings
from seqclf.tasks.tagging.checks import check_tagging
from seqclf.tasks.tagging.scores import TagScores


class SeqTagger(PerStepModule):
    """A tag per word: SequenceTagger's logits at every step, cross-entropy over the real words (padding
    steps are ``IGNORE``d). ``labels`` are the tag names, from the data at instantiation; every
    argument is a primitive, so ``SeqTagger.load_from_checkpoint(path)`` needs nothing else."""

    def __init__(
        self,
        vocab_size: int,
        encoder: dict | None = None,
        dropout: float = 0.0,
        optimizer: dict | None = None,
        labels: list[str] | None = None,
        monitor: str = "val/f1",
        vectors: str | None = None,
        freeze_vectors: int | str = 0,
    ):
        super().__init__()
        check_tagging(monitor)
        if not labels or len(labels) < 2:
            raise ConfigError(f"a tagger needs at least two tags (labels={labels!r}), fitted on the data.")
        labels = [str(name) for name in labels]  # Hydra's ListConfig becomes a plain list in hparams
        encoder, optimizer = encoders.spec(encoder), OptimizerSettings.of(optimizer).to_dict()
        self.save_hyperparameters()
        self.net = tagger_of(self.hparams)
        self.train_acc = MulticlassAccuracy(len(labels), average="micro", ignore_index=IGNORE, validate_args=False)
        self.val_scores, self.test_scores = TagScores(labels), TagScores(labels)
        self.init_engine(monitor)

    @staticmethod
    def data_inputs(datamodule) -> dict:
        """The hyperparameters that come from the data: the tag names."""
        return {"labels": list(datamodule.labels.names)}

    @property
    def label_names(self) -> list[str]:
        return list(self.hparams.labels)

    def update_train(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.train_acc.update(logits.argmax(dim=-1).flatten(), target.flatten())

    def train_metrics(self) -> dict:
        return {"token_acc": self.train_acc}

    def score_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=-1)

    def update_scores(self, stage: str, predicted: torch.Tensor, target: torch.Tensor) -> None:
        getattr(self, f"{stage}_scores").update(predicted, target)

    def compute_scores(self, stage: str) -> dict[str, torch.Tensor]:
        """Token accuracy, precision, recall and F1 (validation: each type's F1 too, under
        ``val_per_class/``); the per-type report is kept in ``self.reports[stage]``."""
        scores = getattr(self, f"{stage}_scores")
        scalars, report = scores.compute()
        if stage == "val" and not self.trainer.sanity_checking:
            self.log_curves({f"val_per_class/f1/{name}": row["f1"] for name, row in report.items()})
        micro = {k: float(scalars[k]) for k in ("precision", "recall", "f1")}
        support = sum(row["support"] for row in report.values())
        rows = [
            *({"label": name, **row} for name, row in report.items()),
            {"label": "micro avg", **micro, "support": support},
        ]
        self.reports[stage] = {"task": "tagging", "bio": scores.bio, "types": report, "micro": micro, "rows": rows}
        scores.reset()
        return scalars
