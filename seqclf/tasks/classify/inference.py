"""A trained classifier from Python (seqclf.load): texts in, each class's probability out, and the
reading trace; the plain network, no Lightning."""

from __future__ import annotations

import torch

from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer
from seqclf.models import SequenceClassifier
from seqclf.runs import checkpoints
from seqclf.tasks.classify import readout


class Probabilities(torch.nn.Module):
    """The network with its readout: token ids in, each class's probability out (what an exported
    classifier gives; seqclf.export)."""

    def __init__(self, net: SequenceClassifier, kind: str):
        super().__init__()
        self.net, self.kind = net, kind

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return readout.probabilities(self.net(tokens), self.kind)


class Classifier:
    """A trained classifier and what turns text into its input, both from one checkpoint (the plain
    network: prediction needs no Lightning). ``threshold``: a multi-label model's (model.threshold)."""

    task = "classify"  # its entry in seqclf.tasks.TASKS

    def __init__(
        self,
        net: SequenceClassifier,
        tokenizer: WordTokenizer,
        labels: Labels,
        device: str = "cpu",
        threshold: float = 0.5,
    ):
        self.net, self.tokenizer, self.labels = net.to(device).eval(), tokenizer, labels
        self.device, self.threshold = device, threshold

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path, device: str) -> Classifier:
        threshold = ckpt["hyper_parameters"].get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise checkpoints.CheckpointError(
                f"{path}: its model.threshold is {threshold!r}, not a probability between 0 and 1; the checkpoint is "
                "damaged or was changed by hand (a checkpoint seqclf-train writes holds the number it trained with)."
            )
        parts = checkpoints.network(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt)
        return cls(*parts, device, threshold)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names)

    def scores(self) -> tuple[torch.nn.Module, dict]:
        """What an export holds (seqclf.export): the network from token ids to (batch, classes)
        probabilities, and what a caller needs to read them."""
        fields = {
            "output": "probs",
            "output_shape": ["batch", "classes"],
            "labels": self.label_names,
            "kind": self.labels.kind,
            "threshold": self.threshold,
        }
        return Probabilities(self.net, self.labels.kind), fields

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

    @torch.inference_mode()
    def trace(self, texts: list[str], batch_size: int = 256) -> list[dict]:
        """The reading trace: for each text, ``words`` (those the model reads: the last or first
        ``max_len``, as in training) and ``trace``, each class's probability after each of them (the
        output layer applied to every step's state; the last entry is ``predict``'s probs)."""
        if isinstance(texts, str):
            texts = [texts]
        try:
            logits = torch.cat(
                [
                    self.net.trace(batch.to(self.device)).cpu()
                    for batch in torch.from_numpy(self.tokenizer.encode(texts).astype("int64")).split(batch_size)
                ]
            )
        except ValueError as e:  # seqclf-predict names its own setting (trace=true) before this
            raise checkpoints.CheckpointError(f"trace(): {e}; trace a model that reads in one direction.") from None
        names, out = self.label_names, []
        for text, steps in zip(texts, logits, strict=True):
            words = self.tokenizer.kept_words(text)
            real = steps[len(steps) - len(words) :] if self.tokenizer.padding == "pre" else steps[: len(words)]
            if real.shape[-1] == 1:  # binary: one logit per step, as readout expects it
                real = real.squeeze(-1)
            probs = readout.probabilities(real, self.labels.kind).tolist()
            out.append({"words": words, "trace": [{n: round(p[k], 4) for k, n in enumerate(names)} for p in probs]})
        return out
