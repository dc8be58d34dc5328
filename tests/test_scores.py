"""seqclf.tasks.classify.scores derives every score from counts kept per batch; the scores must be torchmetrics' own."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)

from seqclf.tasks.classify.scores import StageScores


def batches(num_classes: int, multi_label: bool, seed: int, absent: int | None) -> list[tuple]:
    """Four batches of predictions and targets; class ``absent`` never occurs in either."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for size in (7, 64, 1, 33):
        if multi_label:
            preds = torch.randint(0, 2, (size, num_classes), generator=g)
            target = torch.randint(0, 2, (size, num_classes), generator=g)
            if absent is not None:
                preds[:, absent], target[:, absent] = 0, 0
        else:
            preds = torch.randint(0, num_classes, (size,), generator=g)
            target = torch.randint(0, num_classes, (size,), generator=g)
            if absent is not None:
                preds[preds == absent], target[target == absent] = 0, 0
        out.append((preds, target))
    return out


@pytest.mark.parametrize(
    ("num_classes", "multi_label", "absent"),
    [(2, False, None), (5, False, None), (5, False, 3), (17, False, 0), (4, True, None), (4, True, 2)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_scores_are_those_torchmetrics_computes(num_classes, multi_label, absent, seed):
    if multi_label:
        kw = {"num_labels": num_classes}
        reference = {
            "acc": MultilabelExactMatch(**kw),
            "f1_macro": MultilabelF1Score(average="macro", **kw),
            "f1_micro": MultilabelF1Score(average="micro", **kw),
            "precision": MultilabelPrecision(average=None, **kw),
            "recall": MultilabelRecall(average=None, **kw),
            "f1": MultilabelF1Score(average=None, **kw),
        }
    else:
        kw = {"num_classes": num_classes}
        reference = {
            "acc": MulticlassAccuracy(average="micro", **kw),
            "f1_macro": MulticlassF1Score(average="macro", **kw),
            "precision": MulticlassPrecision(average=None, **kw),
            "recall": MulticlassRecall(average=None, **kw),
            "f1": MulticlassF1Score(average=None, **kw),
        }
    scores = StageScores(num_classes, multi_label)
    for preds, target in batches(num_classes, multi_label, seed, absent):
        scores.update(preds, target)
        for metric in reference.values():
            metric.update(preds, target)
    scalars, report = scores.compute()
    expected = {name: metric.compute() for name, metric in reference.items()}
    for name, value in scalars.items():
        assert torch.equal(value, expected[name]), name  # bit for bit
    for name in ("precision", "recall", "f1"):
        assert report[name] == expected[name].tolist(), name
    if multi_label:
        assert report["micro"]["f1"] == float(expected["f1_micro"])
    else:
        assert sum(report["support"]) == 105 and len(report["confusion"]) == num_classes
    scores.reset()
    preds, target = batches(num_classes, multi_label, seed + 7, absent)[1]
    scores.update(preds, target)
    assert scores.compute()[1]["support"] != report["support"]  # reset forgot the earlier batches


def test_a_stage_with_one_class_everywhere_scores_without_dividing_by_zero():
    scores = StageScores(3, False)
    scores.update(torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    scalars, report = scores.compute()
    assert float(scalars["acc"]) == 1.0 and float(scalars["f1_macro"]) == 1.0  # classes 1, 2 never occur
    assert report["precision"] == [1.0, 0.0, 0.0] and report["support"] == [5, 0, 0]
