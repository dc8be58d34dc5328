"""The validation split: a seeded, stratified share of the training reviews."""

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
