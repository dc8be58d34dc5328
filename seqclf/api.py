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
from seqclf.models import RNNClassifier, readout


class Classifier:
    """A trained classifier and what turns text into its input, both from one checkpoint (the plain
    network: prediction needs no Lightning). ``threshold``: a multi-label model's (model.threshold)."""

    def __init__(
        self, net: RNNClassifier, tokenizer: WordTokenizer, labels: Labels, device: str = "cpu", threshold: float = 0.5
    ):
        self.net, self.tokenizer, self.labels = net.to(device).eval(), tokenizer, labels
        self.device, self.threshold = device, threshold

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
        names, kind = self.label_names, self.labels.kind
        tokens = torch.from_numpy(self.tokenizer.encode(texts).astype("int64"))
        logits = torch.cat([self.net(batch.to(self.device)).cpu() for batch in tokens.split(batch_size)])
        probs, picks = readout.probabilities(logits, kind), readout.class_ids(logits, kind, self.threshold)
        out = []
        for p, pick in zip(probs.tolist(), picks.tolist(), strict=True):
            ranked = sorted(range(len(names)), key=lambda k: -p[k])
            if self.labels.multi_label:
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
    threshold = float(ckpt["hyper_parameters"].get("threshold", 0.5))
    return Classifier(
        checkpoints.network(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt), device, threshold
    )
