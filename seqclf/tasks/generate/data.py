"""The generation LightningDataModule (one-to-many): any classification dataset's texts as a language
model reads them, each starting with its class's start token (``<s:pos>``; ``<s>`` for unlabelled
text), then its words, then ``</s>`` when the text ends within ``max_len`` words; the target at every
step is the next token. Everything else (sources, cache, validation split, batches, blocks of
steps) is the text DataModule's."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seqclf.data import settings, sources
from seqclf.data.batches import EncodedSplit
from seqclf.data.datamodule import TextDataModule
from seqclf.data.labels import Labels
from seqclf.data.text import IGNORE, SPECIALS, UNK_ID, WordTokenizer, rank_words, tokenize
from seqclf.errors import ConfigError, DataError

START, END = "<s>", "</s>"


def start_token(label: str) -> str:
    """The first input of a text of class ``label``: the label, fed once."""
    return f"<s:{label}>"


class GenerationDataModule(TextDataModule):
    """A classification dataset (``text_column``, ``label_column``, as TextDataModule reads it) as
    next-word prediction conditioned on the class. ``truncation``: ``post`` keeps each text's first
    ``max_len`` words, ``pre`` its last. ``unlabelled_split`` (e.g. IMDB's ``unsupervised``) adds
    that split's texts to training with the plain ``<s>``: language-model pretraining on every
    review; the test split is never trained on. The vocabulary (``vocab_size`` in all): the two
    specials, ``<s>``, ``</s>``, a start token per class, then the most frequent training words."""

    def __init__(self, unlabelled_split: str | None = None, padding: str = "post", truncation: str = "post", **kw):
        settings.check_generation({"unlabelled_split": unlabelled_split, "padding": padding, **kw})
        kw = {key: settings.plain(value) for key, value in kw.items()}  # hparams (checkpoints) hold plain data only
        super().__init__(padding=padding, truncation=truncation, **kw)
        if unlabelled_split is not None and "train" in self.split_names:
            self.split_names["unlabelled"] = (unlabelled_split,)
        self.unlabelled_split = unlabelled_split

    def _cache_key(self) -> dict[str, Any]:
        return {"task": "generate", "unlabelled_split": self.unlabelled_split}

    def _fit_labels(self, train: sources.RawSplit) -> Labels:
        labels = super()._fit_labels(train)
        if labels.multi_label:  # a text starts from one class's start token
            raise DataError(
                f"{self._where('train')} has several labels per text (multi-label); a generator writes a text from "
                "one class, its first input. Train it on data with one label per text, or on the texts alone with "
                "data.label_column naming a column of one label each."
            )
        return labels

    def _encode(self, raw: dict[str, sources.RawSplit], labels: Labels) -> tuple[WordTokenizer, dict[str, np.ndarray]]:
        words = {role: [tokenize(text) for text in split.texts] for role, split in raw.items()}
        tokenizer = self.given_tokenizer
        if tokenizer is None:
            starts = [START, END, *(start_token(name) for name in labels.names)]
            room = self.vocab_size - len(SPECIALS) - len(starts)
            if room < 1:
                raise ConfigError(f"data.vocab_size={self.vocab_size} leaves no room for words after {len(starts) + 2} "
                                  "special and start tokens; give a larger data.vocab_size.")  # fmt: skip
            ranked = rank_words(words["train"] + words.get("unlabelled", []), room)
            tokenizer = WordTokenizer([*SPECIALS, *starts, *ranked], self.max_len, self.padding, self.truncation)
        arrays = {}
        for role, split in raw.items():
            if role == "unlabelled":  # its labels are hidden (IMDB's -1): the plain start token stands for them
                starts = [START] * len(split.texts)
            else:
                starts = [start_token(labels.names[k]) for k in labels.encode(split.labels, self._where(role))]
            arrays[f"{role}_x"], arrays[f"{role}_y"] = sequences(tokenizer, words[role], starts)
        return tokenizer, arrays

    def _strata(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each text's class, read from its start token: the classifier's strata, so the same data and
        seed give the same validation texts. A generator a classifier starts from (model.init_from)
        has then never read a validation text, nor the class it is given as."""
        return x[:, 0]

    def _training_set(self, x: np.ndarray, y: np.ndarray, arrays: dict[str, np.ndarray]) -> EncodedSplit:
        """The labelled training rows and the unlabelled texts: trained on, never validated or tested on."""
        if "unlabelled_x" in arrays:
            x, y = np.concatenate([x, arrays["unlabelled_x"]]), np.concatenate([y, arrays["unlabelled_y"]])
        return self._encoded(x, y)

    def _encoded(self, x: np.ndarray, y: np.ndarray) -> EncodedSplit:
        return EncodedSplit(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64)))

    def _class_counts(self, y: np.ndarray) -> list[int]:
        """Tokens of each vocabulary entry among the training targets (the unigram model's counts)."""
        return [int(c) for c in np.bincount(y[y != IGNORE], minlength=self.tokenizer.vocab_size)]


def sequences(tokenizer: WordTokenizer, texts: list[list[str]], starts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (the start token, then the words) and targets (the words, then ``</s>`` when the text
    ends within ``max_len`` words), ``max_len`` steps each, padded at the end (targets: IGNORE)."""
    n, index = tokenizer.max_len, tokenizer.index
    inputs, targets = [], []
    for words, start in zip(texts, starts, strict=True):
        kept = words[-n:] if tokenizer.truncation == "pre" else words[:n]
        ends = [index[END]] if len(kept) == len(words) else []
        seq = [index[start], *(index.get(w, UNK_ID) for w in kept), *ends][: n + 1]
        inputs.append(seq[:-1])
        targets.append(seq[1:])
    return tokenizer.place(inputs, 0), tokenizer.place(targets, IGNORE, np.int64)
