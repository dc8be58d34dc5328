"""The tagging LightningDataModule: sentences as lists of words with a tag per word, from the Hub's
token-classification layout, local Parquet or JSON Lines files, CoNLL column files, or made from a
classification dataset's texts (``derive=punctuation``). Everything else (cache, validation split,
batches, blocks of steps) is the text DataModule's."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from seqclf.data import settings as data_settings
from seqclf.data import sources
from seqclf.data.batches import EncodedSplit
from seqclf.data.datamodule import TextDataModule
from seqclf.data.labels import Labels
from seqclf.data.text import IGNORE, WordTokenizer
from seqclf.errors import DataError
from seqclf.tasks.tagging import punctuation

log = logging.getLogger(__name__)

DERIVED = dict(zip(data_settings.DERIVED_TAGS, (punctuation,), strict=True))


class TaggingDataModule(TextDataModule):
    """Tagging data: ``tokens_column`` holds each sentence's words (a list), ``tags_column`` a tag
    per word (ids named by the data's ``ClassLabel``, by ``tag_names``, or the tag strings
    themselves). A CoNLL file (``.conll``, or ``.txt`` here) gives its first column as ``tokens`` and
    its last as ``tags``. ``derive=punctuation`` reads the texts of ``tokens_column`` instead and
    tags each word with the punctuation mark that followed it (seqclf.tasks.tagging.punctuation), in pieces
    of ``max_len`` words. ``word_split`` says how seqclf-predict splits a raw text into words
    (``whitespace``, or the classifier's rule, ``tokenize``). Padding and truncation default to ``post``: the words
    beyond ``max_len`` are not trained on (a warning counts them) and seqclf-predict tags long
    texts piece by piece, every word."""

    def __init__(
        self,
        tokens_column: str = "tokens",
        tags_column: str = "tags",
        tag_names: list[str] | None = None,
        derive: str | None = None,
        word_split: str = "whitespace",
        padding: str = "post",
        truncation: str = "post",
        **settings,
    ):
        own = {"tokens_column": tokens_column, "tags_column": tags_column, "derive": derive, "word_split": word_split}
        data_settings.check_tagging({**own, "max_len": settings.get("max_len", 64)})
        # hparams (checkpoints) hold plain data: Hydra's lists become lists
        tag_names = data_settings.plain(tag_names)
        settings = {key: data_settings.plain(value) for key, value in settings.items()}
        super().__init__(
            text_column=tokens_column,
            label_column=tags_column,
            label_names=tag_names,
            padding=padding,
            truncation=truncation,
            **settings,
        )
        self.derive, self.word_split = derive, word_split

    def _cache_key(self) -> dict[str, Any]:
        return {"task": "tagging", "derive": self.derive, "word_split": self.word_split}

    def _read_raw(self, convert=None, text_files: str = "conll") -> dict[str, sources.RawSplit]:
        if self.derive == "punctuation":
            return super()._read_raw(punctuation.to_raw_marks(self.max_len), "fasttext")
        return super()._read_raw(sources.to_raw_tokens, text_files)

    def _fit_labels(self, train: sources.RawSplit) -> Labels:
        tags = [tag for sentence in train.labels for tag in sentence]
        return Labels.fit(tags, self._where("train"), train.names, self.label_names)

    def _encode(self, raw: dict[str, sources.RawSplit], labels: Labels) -> tuple[WordTokenizer, dict[str, np.ndarray]]:
        tokenizer = self.given_tokenizer
        if tokenizer is None:
            sides = {"max_len": self.max_len, "padding": self.padding, "truncation": self.truncation}
            tokenizer = WordTokenizer.fit_tokens(raw["train"].texts, self.vocab_size, **sides, split=self.word_split)[0]
        arrays = {}
        for role, split in raw.items():
            arrays[f"{role}_x"] = tokenizer.encode_tokens(split.texts)
            flat = self._tags(split.labels, labels, role)
            ends = np.cumsum([len(sentence) for sentence in split.labels])[:-1]
            arrays[f"{role}_y"] = tokenizer.place(np.split(flat, ends), IGNORE, np.int64)
            if not (arrays[f"{role}_y"] != IGNORE).any():  # nothing to learn from or score
                raise DataError(
                    f"{self._where(role)} has no tagged words within data.max_len={tokenizer.max_len} (its "
                    f"{len(split.texts)} sentences are empty); give a split with tagged words."
                )
            cut = sum(len(sentence) > tokenizer.max_len for sentence in split.texts)
            if cut:
                log.warning(
                    "%d of the %d sentences of %s are longer than data.max_len=%d words; the words beyond it (%s "
                    "truncation) are left out of training and scores. seqclf-predict tags every word.",
                    cut, len(split.texts), self._where(role), tokenizer.max_len, tokenizer.truncation,
                )  # fmt: skip
        return tokenizer, arrays

    def _tags(self, sentences: list[list], labels: Labels, role: str) -> np.ndarray:
        """Every word's tag id, in one array; a tag that cannot be scored is named by its sentence and word."""
        starts = np.cumsum([0, *(len(sentence) for sentence in sentences)])

        def name(word: int) -> str:
            sentence = int(np.searchsorted(starts, word, side="right")) - 1
            return f"sentence {sentence + 1}, word {word - starts[sentence] + 1},"

        return labels.encode([t for sentence in sentences for t in sentence], self._where(role), name)

    def _encoded(self, x: np.ndarray, y: np.ndarray) -> EncodedSplit:
        return EncodedSplit(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64)))

    def _class_counts(self, y: np.ndarray) -> list[int]:
        """Words per tag in the training rows."""
        return [int(c) for c in np.bincount(y[y != IGNORE], minlength=len(self.labels.names))]
