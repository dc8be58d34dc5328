"""The classification task: loss and metrics around the plain SequenceClassifier network, for binary,
multi-class and multi-label data, trained by the shared engine (seqclf.tasks.engine)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy, MultilabelExactMatch

from seqclf.data.labels import IMDB_NAMES, Labels
from seqclf.errors import ConfigError
from seqclf.models import encoders
from seqclf.models.networks import classifier_of
from seqclf.tasks.classify import readout
from seqclf.tasks.classify.checks import check_classification
from seqclf.tasks.classify.scores import StageScores
from seqclf.tasks.engine import TaskModule
from seqclf.tasks.optimizer import OptimizerSettings


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


class SeqClassifier(TaskModule):
    """Text classifier: binary (one logit, BCE: the lecture's model), multi-class (a logit per class,
    softmax cross-entropy) or multi-label (a logit per label, BCE, ``threshold`` decides). Every
    argument is a primitive, recorded by ``save_hyperparameters()``, so
    ``SeqClassifier.load_from_checkpoint(path)`` needs nothing else: ``labels`` (the class names),
    ``class_counts`` and ``train_texts`` come from the data at instantiation; ``init_from`` records
    the generator checkpoint whose layers seqclf-train started the network from (seqclf.tasks.classify.pretrained).
    The training itself is the engine's (seqclf.tasks.engine.TaskModule)."""

    def __init__(
        self,
        vocab_size: int,
        encoder: dict | None = None,
        pooling: str = "last",
        dropout: float = 0.0,
        optimizer: dict | None = None,
        labels: list[str] | None = None,
        multi_label: bool = False,
        class_weights: str | dict | None = None,
        class_counts: list[int] | None = None,
        train_texts: int | None = None,
        threshold: float = 0.5,
        monitor: str = "val/acc",
        init_from: str | None = None,
        vectors: str | None = None,
        freeze_vectors: int | str = 0,
    ):
        super().__init__()
        check_classification(class_weights, threshold, monitor)
        if monitor == "val/f1_micro" and not multi_label:
            raise ConfigError("monitor=val/f1_micro is logged for multi-label data only; use val/f1_macro or val/acc.")
        # Hydra's containers (ListConfig, DictConfig) become plain data in hparams and checkpoints.
        task = Labels(tuple(str(name) for name in labels or IMDB_NAMES), multi_label)
        labels = list(task.names)
        if hasattr(class_weights, "items"):
            class_weights = {str(k): float(v) for k, v in class_weights.items()}
        class_counts = [int(c) for c in class_counts] if class_counts is not None else None
        encoder, optimizer = encoders.spec(encoder), OptimizerSettings.of(optimizer).to_dict()
        self.save_hyperparameters()
        self.kind = task.kind
        self.net = classifier_of(self.hparams)
        weights = resolve_class_weights(class_weights, labels, class_counts, multi_label, train_texts)
        self.register_buffer("class_weight", None if weights is None else torch.tensor(weights), persistent=False)
        self.loss_fn = nn.BCEWithLogitsLoss() if self.kind == "binary" else None  # the lecture's loss
        # One metric object per stage; validate_args=False skips checks that sync the device.
        num = len(labels)
        if multi_label:
            self.train_acc = MultilabelExactMatch(num, validate_args=False)
        else:
            self.train_acc = MulticlassAccuracy(num, average="micro", validate_args=False)
        self.val_scores, self.test_scores = StageScores(num, multi_label), StageScores(num, multi_label)
        self.init_engine(monitor)

    @staticmethod
    def data_inputs(datamodule) -> dict:
        """The hyperparameters that come from the data: the classes and their counts."""
        labels = datamodule.labels
        return {
            "labels": list(labels.names),
            "multi_label": labels.multi_label,
            "class_counts": datamodule.class_counts,
            "train_texts": len(datamodule.train_set),
        }

    @property
    def label_names(self) -> list[str]:
        return list(self.hparams.labels or IMDB_NAMES)

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

    def update_train(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.train_acc.update(self.predicted(logits), target.long())

    def train_metrics(self) -> dict:
        return {"acc": self.train_acc}

    def score_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.predicted(logits)

    def update_scores(self, stage: str, predicted: torch.Tensor, target: torch.Tensor) -> None:
        getattr(self, f"{stage}_scores").update(predicted, target)

    def compute_scores(self, stage: str) -> dict[str, torch.Tensor]:
        """Accuracy and F1 (validation: each class's too, under ``val_per_class/``); the per-class
        report is kept in ``self.reports[stage]`` (seqclf.runs.reports)."""
        scores = getattr(self, f"{stage}_scores")
        scalars, report = scores.compute()
        if stage == "val" and not self.trainer.sanity_checking:
            self.log_curves(
                {
                    f"val_per_class/{score}/{label}": value
                    for score in ("precision", "recall", "f1")
                    for label, value in zip(self.label_names, report[score], strict=True)
                }
            )
        self.reports[stage] = {"labels": self.label_names, "multi_label": self.hparams.multi_label, **report}
        scores.reset()
        return scalars
