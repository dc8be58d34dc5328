"""Classification scores of one stage (validation or test), with torchmetrics (synced under DDP):
accuracy, macro-F1 (and micro-F1 for multi-label), per-class precision, recall, F1 and support,
and a confusion matrix (multi-label: how often each true label came with each predicted one)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix, MultilabelExactMatch, MultilabelStatScores


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


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den in float32, and 0 where den is 0, as torchmetrics divides (zero_division=0)."""
    num, den = num.float(), den.float()
    return torch.where(den != 0, num / torch.where(den != 0, den, 1.0), 0.0)


def reduce_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> dict[str, torch.Tensor]:
    """Precision, recall and F1 from true/false positive and false negative counts (per class, or
    summed for the micro average), as torchmetrics computes them."""
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def macro(scores: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """The mean of per-class ``scores`` over the ``counted`` classes, summed as torchmetrics sums it
    (single-label data counts the classes that occur in the targets or the predictions)."""
    weights = counted.float()
    return _ratio(weights * scores, weights.sum().expand_as(scores)).sum()


class StageScores(nn.Module):
    """``update(preds, target)`` with predicted class ids (or 0/1 rows for multi-label) and the true
    ones; ``compute()`` gives the stage's scalars and its per-class report; ``reset()`` after.

    Each batch updates counts only, one torchmetrics state per kind (single-label: the confusion
    matrix; multi-label: each label's true/false positives and negatives, exact-match accuracy and the
    label co-occurrence); the scores come from those counts once per epoch, as torchmetrics' own
    score metrics compute them (tests/test_scores.py compares them)."""

    def __init__(self, num_classes: int, multi_label: bool) -> None:
        super().__init__()
        self.multi_label = multi_label
        if multi_label:
            kw = {"num_labels": num_classes, "validate_args": False}
            self.acc = MultilabelExactMatch(**kw)  # the whole set of labels right
            self.stats = MultilabelStatScores(average=None, **kw)  # tp, fp, tn, fn, support per label
            self.confusion = LabelCooccurrence(num_classes)
        else:
            self.confusion = MulticlassConfusionMatrix(num_classes=num_classes, validate_args=False)

    def _metrics(self) -> tuple:
        return (self.acc, self.stats, self.confusion) if self.multi_label else (self.confusion,)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        target = target.long()
        for metric in self._metrics():
            metric.update(preds, target)

    def compute(self) -> tuple[dict[str, torch.Tensor], dict[str, list]]:
        """(scalars: acc, f1_macro[, f1_micro]; report: precision, recall, f1, support per class, the
        confusion matrix (rows = true class) and, for multi-label data, the micro averages, as plain data)."""
        if self.multi_label:
            tp, fp, _, fn, _ = self.stats.compute().unbind(dim=1)
            confusion = self.confusion.compute()
            support, matrix = confusion["support"], confusion["matrix"]
            counted = torch.ones_like(tp, dtype=torch.bool)
        else:
            matrix = self.confusion.compute()
            tp = matrix.diagonal()
            support = matrix.sum(dim=1)
            fp, fn = matrix.sum(dim=0) - tp, support - tp
            counted = (tp + fp + fn) > 0
        per_class = reduce_counts(tp, fp, fn)
        report = {name: values.tolist() for name, values in per_class.items()}
        report["support"], report["confusion"] = support.tolist(), matrix.tolist()
        scalars = {"f1_macro": macro(per_class["f1"], counted)}
        if self.multi_label:
            micro = reduce_counts(tp.sum(), fp.sum(), fn.sum())
            report["micro"] = {name: float(value) for name, value in micro.items()}
            scalars = {"acc": self.acc.compute(), **scalars, "f1_micro": micro["f1"]}
        else:
            scalars = {"acc": _ratio(tp.sum(), support.sum()), **scalars}
        return scalars, report

    def reset(self) -> None:
        for metric in self._metrics():
            metric.reset()
