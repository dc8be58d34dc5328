"""The unigram model's test perplexity for a generator's data: each next token predicted by its
frequency among the training targets (add-one smoothed), whatever came before. A generator's
perplexity is worth what it gains over this.

    python benchmarks/writer_baseline.py outputs/writer/multiruns/<sweep>/model=lstm/checkpoints/last.ckpt \
        --data ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import math
import tempfile

import numpy as np

from seqclf.data.text import IGNORE
from seqclf.runs import checkpoints
from seqclf.tasks.generate.data import GenerationDataModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="a generator's checkpoint (its vocabulary and classes)")
    parser.add_argument("--data", required=True, help="the data it was trained on (data.path)")
    args = parser.parse_args()
    ckpt = checkpoints.load(args.ckpt)
    tokenizer, labels = checkpoints.tokenizer(ckpt, args.ckpt), checkpoints.labels(ckpt)
    dm = GenerationDataModule(
        path=args.data, label_names=list(labels.names), tokenizer=tokenizer.to_json(), labels=labels.to_dict(),
        cache_dir=tempfile.mkdtemp(prefix="seqclf-unigram-"), progress=False,
    )  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    train = dm.train_set.y.numpy()
    counts = np.bincount(train[train != IGNORE], minlength=tokenizer.vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    test = dm.test_set.y.numpy()
    test = test[test != IGNORE]
    print(f"unigram test perplexity: {math.exp(-log_p[test].mean()):.1f} ({len(test)} test tokens, "
          f"vocabulary {tokenizer.vocab_size}, {dm.max_len} words a text)")  # fmt: skip


if __name__ == "__main__":
    main()
