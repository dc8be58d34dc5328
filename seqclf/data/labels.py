"""The classes of a dataset: their names in a fixed order, fitted on the train split, and the labels of
every split as ids (one per text, or a 0/1 row per text for multi-label data).

The order of the classes:
- the dataset names them (the Hub's ``ClassLabel``, kept in Parquet files written by ``datasets``):
  the dataset's own order, ids as given;
- integer labels it does not name: the sorted distinct values of train, named by ``data.label_names``
  when that has one name per class (IMDB's preset: neg, pos), else by the numbers themselves;
- string labels: their sorted distinct values in train (Unicode code point order: "B" before "a");
- lists of labels (multi-label): the same rules over every label in the lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from seqclf.errors import DataError, row_name

log = logging.getLogger(__name__)

KINDS = ("binary", "multiclass", "multilabel")
# The classes of checkpoints written before seqclf had classes: IMDB's.
IMDB_NAMES = ("neg", "pos")
HIDDEN = -1  # what GLUE-style test splits hold where the label is withheld


def _count(rows: Sequence, noun: str) -> str:
    return f"{len(rows)} {noun}{'s' if len(rows) != 1 else ''}"


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _integer(value) -> int | None:
    """``value`` as an int if it is an integer (1.0 is: a column with a missing value reads as floats)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


def _missing(value) -> bool:
    """None, NaN or an empty string: no label (an empty cell of a JSON or CSV file)."""
    return value is None or value == "" or (isinstance(value, (float, np.floating)) and value != value)


@dataclass(frozen=True)
class Labels:
    """The classes of a dataset. Binary data gets one output (a logit for the second class, the
    lecture's model); multi-class data one per class (softmax); multi-label one per label (a
    sigmoid each)."""

    names: tuple[str, ...]
    multi_label: bool = False
    # The integer labels the names stand for, when the data gave integers it did not name; else ids
    # are the positions in ``names`` (and string labels are the names themselves).
    values: tuple[int, ...] | None = None

    @property
    def kind(self) -> str:
        return "multilabel" if self.multi_label else "binary" if len(self.names) == 2 else "multiclass"

    @property
    def num_outputs(self) -> int:
        return 1 if self.kind == "binary" else len(self.names)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "multi_label": self.multi_label, "values": self.values and list(self.values)}

    @classmethod
    def from_dict(cls, data: dict) -> Labels:
        values = data.get("values")
        return cls(tuple(data["names"]), bool(data.get("multi_label")), tuple(values) if values else None)

    @classmethod
    def fit(
        cls,
        values: Sequence,
        where: str,
        source_names: Sequence[str] | None = None,
        label_names: Sequence | None = None,
    ) -> Labels:
        """The classes of the train split's label ``values`` (see the module's docstring for the order)."""
        multi = [_is_list(v) for v in values]
        if any(multi) and not all(multi):
            row = multi.index(not multi[0])
            raise DataError(
                f"{where}: row 1 has the label {values[0]!r} but {row_name(row)} has {values[row]!r}; a label column "
                "holds either one label per row or a list of labels per row (multi-label), not both."
            )
        multi_label = bool(multi) and multi[0]
        missing = next((row for row, v in enumerate(values) if _missing(v)), None)
        if missing is not None:
            raise DataError(
                f"{where}: {row_name(missing)} has no label ({values[missing]!r}); give every training text a "
                "label, or drop the unlabelled rows."
            )
        flat = [x for v in values for x in v] if multi_label else list(values)
        for given, setting in ((source_names, "the data's own class names (its ClassLabel)"), (label_names,
                                "data.label_names")):  # fmt: skip
            twice = sorted({str(n) for n in given or () if [str(m) for m in given].count(str(n)) > 1})
            if twice:
                raise DataError(
                    f"{where}: {setting} name {', '.join(repr(n) for n in twice)} more than once; each class needs a "
                    "name of its own (predictions and reports are keyed by it)."
                )
        if source_names:
            labels = cls(tuple(str(n) for n in source_names), multi_label)
        else:
            ints = [_integer(v) for v in flat]
            if flat and all(i is not None for i in ints):
                distinct = sorted(set(ints))
                names = [str(i) for i in distinct]
                if label_names and len(label_names) == len(distinct):
                    names = [str(n) for n in label_names]
                elif label_names:
                    log.warning(
                        "data.label_names=%s names %d classes, but %s has %d (%s); the classes are named by their "
                        "numbers. Give one name per class, in the order of their ids, to name them.",
                        list(label_names), len(label_names), where, len(distinct), ", ".join(names[:10]),
                    )  # fmt: skip
                labels = cls(tuple(names), multi_label, tuple(distinct))
            elif all(isinstance(v, str) for v in flat):
                labels = cls(tuple(sorted(set(flat))), multi_label)
            else:
                bad = next(i for i, v in enumerate(flat) if not isinstance(v, str) and _integer(v) is None)
                raise DataError(
                    f"{where}: the label {flat[bad]!r} is neither an integer nor a string; labels are class ids "
                    "(0, 1, ...), class names, or lists of them (multi-label)."
                )
        if not multi_label and len(labels.names) < 2:
            raise DataError(
                f"{where}: every text has the label {labels.names[0] if labels.names else None!r}; training needs "
                "texts of at least two classes."
            )
        if multi_label and not labels.names:
            raise DataError(f"{where}: no row has any label; multi-label training needs labelled texts.")
        if multi_label and len(labels.names) == 1:
            raise DataError(
                f"{where}: every label list holds only {labels.names[0]!r} (or nothing): one label, present or not, is "
                f"a two-class task; give each text one label instead ({labels.names[0]!r} or another class, e.g. "
                f"not_{labels.names[0]}), in a column of one label per row."
            )
        return labels

    def _id(self, value):
        """The class id of one label value, or None if it is not one of the classes."""
        if isinstance(value, str):
            try:
                return self.names.index(value)
            except ValueError:
                return None
        i = _integer(value)
        if i is None:
            return None
        if self.values is not None:
            return self.values.index(i) if i in self.values else None
        return i if 0 <= i < len(self.names) else None

    def encode(self, values: Sequence, where: str, name_row: Callable[[int], str] = row_name) -> np.ndarray:
        """Class ids (int64, one per row) or, for multi-label data, a (rows, classes) 0/1 uint8 array.
        A label that is not one of train's classes, or a hidden one (-1, missing), is a DataError naming
        its row by ``name_row`` (a tagger's: the sentence and the word)."""
        if self.multi_label:
            out = np.zeros((len(values), len(self.names)), dtype=np.uint8)
            for row, value in enumerate(values):
                if not _is_list(value):
                    raise DataError(
                        f"{where}: {name_row(row)} has the label {value!r}, not a list; the train split's labels are "
                        "lists (multi-label), so every split's must be."
                    )
                for label in value:
                    k = self._id(label)
                    if k is None:
                        self._unknown(label, row, where, name_row=name_row)
                    out[row, k] = 1
            return out
        ids = [self._id(v) for v in values]
        if None in ids:
            missing = [row for row, k in enumerate(ids) if k is None]
            hidden = [row for row in missing if _missing(values[row]) or _integer(values[row]) == HIDDEN]
            if hidden and len(hidden) == len(values):
                raise DataError(
                    f"{where} has no labels (every row is {values[0]!r}: hidden, as in GLUE's test sets, or missing); "
                    "it cannot score a model. Evaluate on a split with labels, e.g. data.test_split=validation."
                )
            row = missing[0]
            if row in hidden:
                raise DataError(
                    f"{where}: {name_row(row)} has no label ({values[row]!r}); give every row a label, or drop the "
                    f"unlabelled rows ({_count(hidden, 'row')} of this split have none)."
                )
            unknown = [r for r in missing if r not in hidden]
            self._unknown(values[row], row, where, [values[r] for r in unknown], name_row)
        return np.asarray(ids, dtype=np.int64)

    def _unknown(self, value, row: int, where: str, unknown: Sequence | None = None, name_row=row_name):
        shown = ", ".join(self.names[:30]) + (" ..." if len(self.names) > 30 else "")
        seen = sorted({repr(v) for v in (unknown or [value])})
        also = (
            f" In all, {_count(unknown, 'row')} of this split have a label train lacks: {', '.join(seen[:10])}"
            f"{' ...' if len(seen) > 10 else ''}."
            if unknown and len(unknown) > 1
            else ""
        )
        raise DataError(
            f"{where}: {name_row(row)} has the label {value!r}, which is not one of the classes fitted on the train "
            f"split ({shown}).{also} A model cannot learn or score a class it never sees in training: add such texts "
            "to train, or drop them from this split."
        )

    def counts(self, encoded: np.ndarray) -> list[int]:
        """Texts per class (multi-label: texts carrying each label)."""
        if self.multi_label:
            return [int(c) for c in encoded.sum(axis=0)]
        return [int(c) for c in np.bincount(encoded, minlength=len(self.names))]
