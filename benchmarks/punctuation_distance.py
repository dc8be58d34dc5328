"""Punctuation restoration scored by how far each word is from the previous mark, for every run of
an experiment=punctuation sweep: where long dependencies would show, if the cells differ there.

    python benchmarks/punctuation_distance.py outputs/punctuation/multiruns/<sweep> --data ../shared/data/imdb

For each run's best checkpoint, the test split's words (the same pieces the run was tested on) are
grouped by their distance in words from the previous mark in the text (1: the word right after a
mark; the words of a piece before its first mark are left out, their previous mark is in another
piece); each group's micro-F1 over the marks (O excluded) is printed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from seqclf.data.text import IGNORE
from seqclf.runs import checkpoints
from seqclf.tasks.tagging.data import TaggingDataModule

BUCKETS = ((1, 2), (3, 5), (6, 10), (11, 20), (21, 10**9))


def distances(y: np.ndarray, outside: int) -> np.ndarray:
    """Per word: the words since the previous mark of its piece (0 where there is none yet or padding)."""
    out = np.zeros_like(y)
    for row in range(len(y)):
        since = 0  # 0: no mark seen yet in this piece
        for t, tag in enumerate(y[row]):
            if tag == IGNORE:
                break
            if since:
                out[row, t] = since
                since += 1
            if tag != outside:
                since = 1
    return out


def f1(pred: np.ndarray, gold: np.ndarray, outside: int) -> float:
    tp = int(((pred == gold) & (gold != outside)).sum())
    predicted, actual = int((pred != outside).sum()), int((gold != outside).sum())
    precision, recall = tp / predicted if predicted else 0.0, tp / actual if actual else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="an experiment=punctuation multirun folder")
    parser.add_argument("--data", required=True, help="the IMDB copy the runs were trained on (data.path)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    cache = tempfile.mkdtemp(prefix="seqclf-distance-")
    rows = []
    for run in sorted(p for p in args.sweep.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((run / "metrics.json").read_text())
        path = run / metrics["best_checkpoint"]
        ckpt = checkpoints.load(path)
        net, tokenizer, labels = (
            checkpoints.network(ckpt, path),
            checkpoints.tokenizer(ckpt, path),
            checkpoints.labels(ckpt),
        )
        dm = TaggingDataModule(
            path=args.data, derive="punctuation", tokens_column="text", word_split="tokenize", cache_dir=cache,
            tokenizer=tokenizer.to_json(), labels=labels.to_dict(), splits=["test"], progress=False,
        )  # fmt: skip
        dm.prepare_data()
        dm.setup("test")
        x, y = dm.test_set.x, dm.test_set.y.numpy()
        pred = torch.cat([net(b).argmax(-1) for b in x.split(2048)]).numpy()
        outside = labels.names.index("O")
        d = distances(y, outside)
        hp = ckpt["hyper_parameters"]
        row = {"run": f"{hp['cell']} {'bi' if hp['bidirectional'] else 'uni'}"}
        for lo, hi in BUCKETS:
            keep = (d >= lo) & (d <= hi)
            row[f"{lo}-{hi if hi < 10**9 else ''}"] = f1(pred[keep], y[keep], outside)
        rows.append(row)
        print(json.dumps(row))
    keys = list(rows[0])
    print("\n| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in rows:
        print("| " + " | ".join(v if isinstance(v, str) else f"{v:.3f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
