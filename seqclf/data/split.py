"""The validation split: a seeded share of the training texts, stratified by class or kept whole by group."""

from __future__ import annotations

import numpy as np

from seqclf.errors import DataError


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of row indices into (train, val) that keeps each label's share in both parts."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        val.append(rows[: int(round(len(rows) * fraction))])
    val_rows = np.sort(np.concatenate(val))
    train_rows = np.setdiff1d(np.arange(len(labels)), val_rows)
    if len(val_rows) == 0 or len(train_rows) == 0:
        raise DataError(
            f"data.val_fraction={fraction} leaves {len(train_rows)} training and {len(val_rows)} validation "
            f"reviews out of {len(labels)}; choose a fraction that leaves both non-empty."
        )
    return train_rows, val_rows


def grouped_split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of row indices into (train, val) that keeps each group's rows on one side (as
    scikit-learn's GroupShuffleSplit): whole groups, in a seeded order, go to validation until it
    holds about ``fraction`` of the rows."""
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(unique) < 2:
        raise DataError(
            f"data.group_column puts all {len(groups)} training texts in one group, so no group is left for "
            "validation; name a column whose values group only the texts that belong together (e.g. a product "
            "or thread id), or set data.group_column=null."
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    taken = np.cumsum(counts[order]) <= round(len(groups) * fraction)
    taken[0] = True  # at least one group, however large
    in_val = np.zeros(len(unique), dtype=bool)
    in_val[order[taken]] = True
    if in_val.all():
        in_val[order[-1]] = False
    val_rows = np.flatnonzero(in_val[inverse])
    return np.flatnonzero(~in_val[inverse]), val_rows
