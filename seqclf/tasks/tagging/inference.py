"""A trained tagger from Python (seqclf.load): a tag for every word of a text or a list of words."""

from __future__ import annotations

import torch

from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer
from seqclf.models import SequenceTagger
from seqclf.runs import checkpoints


class TagProbabilities(torch.nn.Module):
    """The network with its readout: token ids in, each tag's probability at every step out (what an
    exported tagger gives; seqclf.export)."""

    def __init__(self, net: SequenceTagger):
        super().__init__()
        self.net = net

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens).softmax(dim=-1)


class Tagger:
    """A trained tagger and its tokenizer, from one checkpoint: a tag for every word of a text (split
    into words as training's data was, see ``WordTokenizer.words``) or of a list of words. A text
    longer than the tokenizer's ``max_len`` is tagged in consecutive pieces of ``max_len`` words."""

    task = "tagging"  # its entry in seqclf.tasks.TASKS
    reads_words = True  # an item may be a list of words (seqclf-predict's "tokens") as well as a text

    def __init__(self, net: SequenceTagger, tokenizer: WordTokenizer, labels: Labels, device: str = "cpu"):
        self.net, self.tokenizer, self.labels = net.to(device).eval(), tokenizer, labels
        self.device = device

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path, device: str) -> Tagger:
        return cls(checkpoints.network(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt), device)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names)

    def scores(self) -> tuple[torch.nn.Module, dict]:
        """What an export holds (seqclf.export): the network from token ids to (batch, time, tags)
        probabilities, and what a caller needs to read them (a text longer than ``max_len`` words is
        tagged in pieces of ``max_len``, as ``predict`` does)."""
        fields = {"output": "tag_probs", "output_shape": ["batch", "time", "tags"], "labels": self.label_names}
        return TagProbabilities(self.net), fields

    @torch.inference_mode()
    def predict(self, items: list, batch_size: int = 256, top_k: int | None = None) -> list[dict]:
        """One dict per item (a text, or a list of words): ``tags``, one per word; for a text also
        ``words``, the words they belong to. (``top_k`` is a classifier's; a tagger gives one tag.)"""
        if isinstance(items, str):
            items = [items]
        words = [self.tokenizer.words(item) if isinstance(item, str) else list(item) for item in items]
        n = self.tokenizer.max_len
        pieces = [(row, ws[start : start + n]) for row, ws in enumerate(words) for start in range(0, len(ws), n)]
        ids = torch.from_numpy(self.tokenizer.encode_tokens([p for _, p in pieces]).astype("int64"))
        picks = (
            []
            if not pieces
            else torch.cat([self.net(b.to(self.device)).argmax(-1).cpu() for b in ids.split(batch_size)])
        )
        tags: list[list[str]] = [[] for _ in items]
        for (row, piece), pick in zip(pieces, picks, strict=True):
            real = pick[n - len(piece) :] if self.tokenizer.padding == "pre" else pick[: len(piece)]
            tags[row].extend(self.label_names[k] for k in real.tolist())
        return [
            {"tags": t} if not isinstance(item, str) else {"words": w, "tags": t}
            for item, w, t in zip(items, words, tags, strict=True)
        ]
