"""Classification scores of one stage (validation or test), with torchmetrics (synced under DDP):
accuracy, macro-F1 (and micro-F1 for multi-label), per-class precision, recall, F1 and support,
and a confusion matrix (multi-label: how often each true label came with each predicted one)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
    MultilabelStatScores,
)


class LabelCooccurrence(Metric):
    """Multi-label: ``matrix[i, j]`` counts texts that carry label i and were predicted label j (the
    diagonal: true positives), ``support[i]`` texts that carry label i."""

    full_state_update = False

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.add_state("matrix", torch.zeros(num_labels, num_labels, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("support", torch.zeros(num_labels, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        target = target.long()
        self.matrix += target.T @ preds.long()
        self.support += target.sum(dim=0)

    def compute(self) -> dict[str, torch.Tensor]:
        return {"matrix": self.matrix, "support": self.support}


class StageScores(nn.Module):
    """``update(preds, target)`` with predicted class ids (or 0/1 rows for multi-label) and the true
    ones; ``compute()`` gives the stage's scalars and its per-class report; ``reset()`` after."""

    def __init__(self, num_classes: int, multi_label: bool) -> None:
        super().__init__()
        self.multi_label = multi_label
        if multi_label:
            kw = {"num_labels": num_classes, "validate_args": False}
            self.acc = MultilabelExactMatch(**kw)  # the whole set of labels right
            self.averaged = MetricCollection(
                {
                    "f1_macro": MultilabelF1Score(average="macro", **kw),
                    "f1_micro": MultilabelF1Score(average="micro", **kw),
                }
            )
            self.per_class = MetricCollection(
                {
                    "precision": MultilabelPrecision(average=None, **kw),
                    "recall": MultilabelRecall(average=None, **kw),
                    "f1": MultilabelF1Score(average=None, **kw),
                }
            )
            self.confusion = LabelCooccurrence(num_classes)
            self.stats = MultilabelStatScores(average=None, **kw)  # tp, fp, tn, fn, support per label
        else:
            kw = {"num_classes": num_classes, "validate_args": False}
            self.acc = MulticlassAccuracy(average="micro", **kw)
            self.averaged = MetricCollection({"f1_macro": MulticlassF1Score(average="macro", **kw)})
            self.per_class = MetricCollection(
                {
                    "precision": MulticlassPrecision(average=None, **kw),
                    "recall": MulticlassRecall(average=None, **kw),
                    "f1": MulticlassF1Score(average=None, **kw),
                }
            )
            self.confusion = MulticlassConfusionMatrix(**kw)

    def _metrics(self) -> tuple:
        return (self.acc, self.averaged, self.per_class, self.confusion, *((self.stats,) if self.multi_label else ()))

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        target = target.long()
        for metric in self._metrics():
            metric.update(preds, target)

    def compute(self) -> tuple[dict[str, torch.Tensor], dict[str, list]]:
        """(scalars: acc, f1_macro[, f1_micro]; report: precision, recall, f1, support per class, the
        confusion matrix (rows = true class) and, for multi-label data, the micro averages, as plain data)."""
        scalars = {"acc": self.acc.compute(), **self.averaged.compute()}
        report = {name: values.tolist() for name, values in self.per_class.compute().items()}
        confusion = self.confusion.compute()
        if self.multi_label:
            report["support"] = confusion["support"].tolist()
            report["confusion"] = confusion["matrix"].tolist()
            tp, fp, _, fn, _ = (float(v) for v in self.stats.compute().sum(dim=0))
            precision, recall = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            report["micro"] = {"precision": precision, "recall": recall, "f1": f1}
        else:
            report["support"] = confusion.sum(dim=1).tolist()
            report["confusion"] = confusion.tolist()
        return scalars, report

    def reset(self) -> None:
        for metric in self._metrics():
            metric.reset()
