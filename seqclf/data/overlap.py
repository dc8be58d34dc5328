"""How much validation shares with training: texts that are the same once normalised, or that open with
the same words (entries of one product, posts of one thread, a template's siblings). A random
validation split rewards memorising them, so validation overstates test; the DataModule warns and
names data.group_column, which keeps a group's rows on one side."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HEAD_WORDS = 8  # texts opening with this many equal words count as siblings
# Shares of validation texts above which the overlap is reported as a warning (below: logged).
WARN_SAME = 0.01
WARN_HEAD = 0.05
_WORD = re.compile(r"\w+")


def _key(words: Sequence[str]) -> int:
    digest = hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def row_keys(texts: Sequence) -> np.ndarray:
    """Two int64 keys per text (a string, or a list of words): its normalised words (lowercase, word
    characters only) and its first HEAD_WORDS of them; a text with fewer words has no opening key (0)."""
    keys = np.zeros((len(texts), 2), dtype=np.int64)
    for i, text in enumerate(texts):
        words = _WORD.findall((text if isinstance(text, str) else " ".join(text)).lower())
        keys[i, 0] = _key(words)
        if len(words) >= HEAD_WORDS:
            keys[i, 1] = _key(words[:HEAD_WORDS])
    return keys


@dataclass(frozen=True)
class Overlap:
    rows: int  # validation texts
    same: int  # of them, the same normalised text as a training text
    head: int  # of them, opening with the same HEAD_WORDS words as a training text

    @property
    def flattering(self) -> bool:
        return self.rows > 0 and (self.same >= WARN_SAME * self.rows or self.head >= WARN_HEAD * self.rows)

    def describe(self) -> str:
        return (
            f"{self.same} of the {self.rows} validation texts ({self.same / max(self.rows, 1):.1%}) are the same "
            f"text as a training text once normalised, and {self.head} ({self.head / max(self.rows, 1):.1%}) open "
            f"with the same {HEAD_WORDS} words as one"
        )


def overlap(train: np.ndarray, val: np.ndarray) -> Overlap:
    """The validation rows (``val``, keys from row_keys) whose text or opening a training row shares."""
    same = np.isin(val[:, 0], train[:, 0])
    heads = train[:, 1][train[:, 1] != 0]
    head = (val[:, 1] != 0) & np.isin(val[:, 1], heads)
    return Overlap(rows=len(val), same=int(same.sum()), head=int(head.sum()))
