"""Tagging scores of one stage, synced under DDP: token accuracy, and precision, recall and F1 over
every tag but the outside one ("O"): entity-level with seqeval for BIO/IOB2 tags (as CoNLL's
conlleval and Hugging Face's run_ner.py report them), per word otherwise; each entity type's or
tag's own too."""

from __future__ import annotations

import re

import torch
from torchmetrics import Metric

from seqclf.data.text import IGNORE

OUTSIDE = "O"
_BIO = re.compile(r"[BIESLU]-.+")


def is_bio(names: list[str] | tuple[str, ...]) -> bool:
    """Whether tags are a BIO-style scheme (B-PER, I-PER, O, ...): entities span several words."""
    return any(n.startswith("B-") for n in names) and all(n == OUTSIDE or _BIO.fullmatch(n) for n in names)


class TagScores(Metric):
    """``update(preds, target)`` with (batch, time) tag ids (``IGNORE`` at padding); ``compute()`` gives
    ``({token_acc, precision, recall, f1}, report)``, the report holding each type's precision,
    recall, F1 and support."""

    full_state_update = False

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names, self.bio = list(names), is_bio(names)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(preds.int())
        self.target.append(target.int())

    def compute(self) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
        preds, target = _cat(self.preds), _cat(self.target)
        real = target != IGNORE
        words = int(real.sum())
        acc = float((preds == target)[real].sum()) / words if words else 0.0
        averages, report = self._entities(preds, target, real) if self.bio else self._per_word(preds, target, real)
        scalars = {"token_acc": acc, **averages}
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in scalars.items()}, report

    def _entities(self, preds, target, real) -> tuple[dict, dict]:
        from seqeval.metrics import classification_report  # imports scikit-learn: only when scoring

        true, pred = [], []
        for p, t, r in zip(preds.tolist(), target.tolist(), real.tolist(), strict=True):
            true.append([self.names[x] for x, keep in zip(t, r, strict=True) if keep])
            pred.append([self.names[x] for x, keep in zip(p, r, strict=True) if keep])
        found = classification_report(true, pred, output_dict=True, zero_division=0)
        micro = found.pop("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
        for key in ("macro avg", "weighted avg"):
            found.pop(key, None)
        report = {name: _scores(row) for name, row in found.items()}
        return {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1-score"]}, report

    def _per_word(self, preds, target, real) -> tuple[dict, dict]:
        p, t = preds[real].long(), target[real].long()
        n = len(self.names)
        confusion = torch.bincount(t * n + p, minlength=n * n).reshape(n, n)
        tp, predicted, support = confusion.diag(), confusion.sum(dim=0), confusion.sum(dim=1)
        scored = [k for k, name in enumerate(self.names) if name != OUTSIDE]
        report = {
            self.names[k]: _scores(
                {"precision": _ratio(tp[k], predicted[k]), "recall": _ratio(tp[k], support[k]), "support": support[k]}
            )
            for k in scored
        }
        precision = _ratio(tp[scored].sum(), predicted[scored].sum())
        recall = _ratio(tp[scored].sum(), support[scored].sum())
        return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}, report


def _cat(parts) -> torch.Tensor:
    """The state after DDP's gather is one tensor; before, a list of batches (maybe none)."""
    if isinstance(parts, torch.Tensor):
        return parts
    return torch.cat(parts) if parts else torch.zeros((0, 0), dtype=torch.int32)


def _ratio(a, b) -> float:
    return float(a) / float(b) if float(b) else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _scores(row: dict) -> dict:
    p, r = float(row["precision"]), float(row["recall"])
    f1 = float(row["f1-score"]) if "f1-score" in row else _f1(p, r)
    return {"precision": p, "recall": r, "f1": f1, "support": int(row["support"])}
