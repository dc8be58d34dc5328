"""What a classifier's logits say: the predicted classes and each class's probability, for the
three kinds of task (binary: one logit; multi-class: one per class; multi-label: one per label)."""

from __future__ import annotations

import torch


def class_ids(logits: torch.Tensor, kind: str, threshold: float = 0.5) -> torch.Tensor:
    """Class ids (binary: logit > 0; multi-class: the largest), or 0/1 per label over ``threshold``."""
    if kind == "binary":
        return (logits > 0).long()
    if kind == "multiclass":
        return logits.argmax(dim=-1)
    return (logits.sigmoid() > threshold).long()


def probabilities(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """(batch, classes): each class's probability (multi-label: each label's, independently)."""
    if kind == "binary":
        p = logits.sigmoid()
        return torch.stack([1 - p, p], dim=-1)
    return logits.softmax(dim=-1) if kind == "multiclass" else logits.sigmoid()
