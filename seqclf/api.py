"""seqclf from Python: load a checkpoint and classify texts with it, no config or data needed.

import seqclf
model = seqclf.load("outputs/train/runs/<run>/checkpoints/last.ckpt")
model.predict(["A wonderful, moving film.", "Dull."])  # [{"label": "pos", "probs": {...}}, ...]
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqclf import checkpoints
from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer
from seqclf.module import SeqClassifier


class Classifier:
    """A trained classifier and what turns text into its input, both from one checkpoint."""

    def __init__(self, module: SeqClassifier, tokenizer: WordTokenizer, labels: Labels, device: str = "cpu"):
        self.module, self.tokenizer, self.labels = module.to(device).eval(), tokenizer, labels
        self.device = device

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names)

    @torch.inference_mode()
    def predict(self, texts: list[str], batch_size: int = 256, top_k: int | None = None) -> list[dict]:
        """One dict per text: ``label`` (multi-label: ``labels``, those over the model's threshold) and
        ``probs`` (class name -> probability, most probable first; the ``top_k`` first when given)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return []
        names, module = self.label_names, self.module
        tokens = torch.from_numpy(self.tokenizer.encode(texts).astype("int64"))
        logits = torch.cat([module(batch.to(self.device)).cpu() for batch in tokens.split(batch_size)])
        out = []
        for p, pick in zip(module.probabilities(logits).tolist(), module.predicted(logits).tolist(), strict=True):
            ranked = sorted(range(len(names)), key=lambda k: -p[k])
            if module.hparams.multi_label:
                record = {"labels": [names[k] for k in ranked if pick[k]]}
            else:
                record = {"label": names[pick]}
            record["probs"] = {names[k]: round(p[k], 6) for k in ranked[:top_k]}
            out.append(record)
        return out


def load(path: str | Path, device: str = "auto") -> Classifier:
    """The classifier in a checkpoint written by seqclf-train, loaded safely (tensors and plain values
    only); ``device``: auto (CUDA when present), cpu or cuda."""
    ckpt = checkpoints.load(path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return Classifier(
        checkpoints.model(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt), device
    )
