"""A trained generator from Python (seqclf.load): texts written for a class, seeded."""

from __future__ import annotations

import torch

from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer
from seqclf.errors import SeqclfError
from seqclf.models import LanguageModel
from seqclf.runs import checkpoints
from seqclf.tasks.generate.sampling import sample


class Generator:
    """A trained generator and its vocabulary, from one checkpoint: texts written for a class."""

    task = "generate"  # its entry in seqclf.tasks.TASKS

    def __init__(self, net: LanguageModel, tokenizer: WordTokenizer, labels: Labels, device: str = "cpu"):
        self.net, self.tokenizer, self.labels = net.to(device).eval(), tokenizer, labels
        self.device = device

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path, device: str) -> Generator:
        return cls(checkpoints.network(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt), device)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names)

    def label(self, value: str) -> str:
        """A class by its name or id (``pos`` or ``1`` for IMDB's), or a SeqclfError naming the classes."""
        names = self.label_names
        if value in names:
            return value
        if value.isascii() and value.isdigit() and int(value) < len(names):
            return names[int(value)]
        raise SeqclfError(
            f"label={value} is not a class of this generator; its classes are {', '.join(names)} "
            f"(or their ids 0-{len(names) - 1})."
        )

    def generate(
        self,
        label: str,
        n: int = 5,
        max_words: int = 60,
        temperature: float = 0.8,
        top_k: int | None = 40,
        seed: int = 1,
    ) -> list[str]:
        """``n`` texts of class ``label`` (a name or id), each at most ``max_words`` words; the same
        arguments give the same texts (sampled with a generator seeded by ``seed`` and the class)."""
        from seqclf.tasks.generate.data import END, start_token

        index, vocab, label = self.tokenizer.index, self.tokenizer.vocab, self.label(label)
        start = index[start_token(label)]
        banned = [i for i, word in enumerate(vocab[: index[END] + 1 + len(self.label_names)]) if word != END]
        # each class its own draws: the same seed gives the same texts, and a class's do not echo another's
        generator = torch.Generator(device=self.device).manual_seed(seed * 1_000_003 + self.label_names.index(label))
        starts = torch.full((n,), start, dtype=torch.long, device=self.device)
        written = sample(self.net, starts, max_words, index[END], banned, temperature, top_k, generator)
        return [" ".join(vocab[i] for i in ids) for ids in written]
