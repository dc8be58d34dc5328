"""Punctuation restoration data made from any texts: each text's words, lowercased and stripped of
punctuation as the classifier's tokenizer strips them, each tagged with the mark that followed it
(O: none, COMMA, PERIOD, QUESTION, EXCLAMATION), in pieces of at most ``window`` words."""

from __future__ import annotations

import re

from seqclf.data.sources import Columns, RawSplit, to_raw
from seqclf.data.text import tokenize

MARKS = ("O", "COMMA", "PERIOD", "QUESTION", "EXCLAMATION")
# The marks a word can be followed by, as classes; ";" and ":" join the comma, as in the usual setups.
_CLASS = {",": 1, ";": 1, ":": 1, ".": 2, "?": 3, "!": 4}
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A number with decimals ("7.5", "1,000": no marks inside), a run of word characters (with inner
# apostrophes) or one mark; everything else separates.
_PIECE = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:['\u2019\u02bc][^\W_]+)*|[,;:.?!]")


def words_and_marks(text: str) -> tuple[list[str], list[int]]:
    """A text's words (as ``tokenize`` gives them) and, for each, the class of the first mark after
    it, before the next word (0 when none). Marks before the first word are dropped."""
    words: list[str] = []
    marks: list[int] = []
    for match in _PIECE.finditer(_BR.sub(" ", text)):
        piece = match.group()
        mark = _CLASS.get(piece)
        if mark is None:
            parts = tokenize(piece)  # the classifier's normalisation (e.g. "don't" -> "dont")
            words.extend(parts)
            marks.extend([0] * len(parts))
        elif marks and marks[-1] == 0:
            marks[-1] = mark
    return words, marks


def to_raw_marks(window: int):
    """A converter for seqclf.data.sources that reads a text column and gives tagging rows: each
    text's words and marks, cut into consecutive pieces of at most ``window`` words."""

    def convert(table, split: str, where: str, columns: Columns) -> RawSplit:
        texts = to_raw(table, split, where, Columns(columns.text, columns.text[0])).texts  # the texts only
        sentences, tags = [], []
        for text in texts:
            words, marks = words_and_marks(text)
            for start in range(0, len(words), window):
                sentences.append(words[start : start + window])
                tags.append([MARKS[m] for m in marks[start : start + window]])
        return RawSplit(texts=sentences, labels=tags, names=list(MARKS))

    return convert
