"""seqclf from Python: load a checkpoint and classify (or tag) texts with it, no config or data needed.

import seqclf
model = seqclf.load("outputs/train/runs/<run>/checkpoints/last.ckpt")
model.predict(["A wonderful, moving film.", "Dull."])  # [{"label": "pos", "probs": {...}}, ...]
model.trace(["A wonderful, moving film."])  # the class probabilities after each word
tagger = seqclf.load("outputs/punctuation/runs/<run>/checkpoints/last.ckpt")
tagger.predict(["what a film i loved it"])  # [{"words": [...], "tags": ["O", "O", "EXCLAMATION", ...]}]
writer = seqclf.load("outputs/generate/runs/<run>/checkpoints/last.ckpt")
writer.generate("pos", n=2, seed=1)  # ["this is one of the best films ...", "..."]
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqclf import checkpoints, tasks
from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer
from seqclf.errors import SeqclfError
from seqclf.models import LanguageModel, SequenceClassifier, SequenceTagger, readout
from seqclf.models.sampling import sample


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
        threshold = float(ckpt["hyper_parameters"].get("threshold", 0.5))
        parts = checkpoints.network(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt)
        return cls(*parts, device, threshold)

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
        except ValueError as e:
            raise checkpoints.CheckpointError(f"trace=true: {e}.") from None
        names, out = self.label_names, []
        for text, steps in zip(texts, logits, strict=True):
            words = self.tokenizer.kept_words(text)
            real = steps[len(steps) - len(words) :] if self.tokenizer.padding == "pre" else steps[: len(words)]
            if real.shape[-1] == 1:  # binary: one logit per step, as readout expects it
                real = real.squeeze(-1)
            probs = readout.probabilities(real, self.labels.kind).tolist()
            out.append({"words": words, "trace": [{n: round(p[k], 4) for k, n in enumerate(names)} for p in probs]})
        return out


class Tagger:
    """A trained tagger and its tokenizer, from one checkpoint: a tag for every word of a text (split
    into words as training's data was, see ``WordTokenizer.words``) or of a list of words. A text
    longer than the tokenizer's ``max_len`` is tagged in consecutive pieces of ``max_len`` words."""

    task = "tagging"  # its entry in seqclf.tasks.TASKS

    def __init__(self, net: SequenceTagger, tokenizer: WordTokenizer, labels: Labels, device: str = "cpu"):
        self.net, self.tokenizer, self.labels = net.to(device).eval(), tokenizer, labels
        self.device = device

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path, device: str) -> Tagger:
        return cls(checkpoints.network(ckpt, path), checkpoints.tokenizer(ckpt, path), checkpoints.labels(ckpt), device)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names)

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
        if value.isdigit() and int(value) < len(names):
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
        from seqclf.data.generation import END, start_token

        index, vocab, label = self.tokenizer.index, self.tokenizer.vocab, self.label(label)
        start = index[start_token(label)]
        banned = [i for i, word in enumerate(vocab[: index[END] + 1 + len(self.label_names)]) if word != END]
        # each class its own draws: the same seed gives the same texts, and a class's do not echo another's
        generator = torch.Generator(device=self.device).manual_seed(seed * 1_000_003 + self.label_names.index(label))
        starts = torch.full((n,), start, dtype=torch.long, device=self.device)
        written = sample(self.net, starts, max_words, index[END], banned, temperature, top_k, generator)
        return [" ".join(vocab[i] for i in ids) for ids in written]


def load(path: str | Path, device: str = "auto", command: str | None = None) -> Classifier | Tagger | Generator:
    """The classifier (or tagger, or generator) in a checkpoint written by seqclf-train, loaded safely
    (tensors and plain values only): its task's inference object (seqclf.tasks); ``device``: auto
    (CUDA when present), cpu or cuda. ``command``: the command asking, refused (one paragraph naming
    the right one) when the checkpoint's task is not one it serves."""
    ckpt = checkpoints.load(path)
    task = tasks.of_checkpoint(ckpt)
    if command is not None:
        task.require(command, path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return task.inference_class().from_checkpoint(ckpt, path, device)
