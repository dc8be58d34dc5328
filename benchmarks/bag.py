"""seqclf's bag of n-grams (model=bag) against the fasttext package on the same data, epochs and
dimensions, and the linear baselines (TF-IDF + logistic regression, the NB-weighted model) on the
same split: the texts as seqclf's data path reads them (its tokeniser, its stratified validation
share of train, the same words kept per review), written as fastText's input lines (shuffled:
IMDB's train split is sorted by label and fastText does not shuffle), each model's test accuracy
(the test split touched once per model) and wall time side by side.

    pip install -e ".[bench]"     # the fasttext package
    python benchmarks/bag.py --data ../shared/data/imdb --max-len 32
    python benchmarks/bag.py --data ../shared/data/imdb --max-len 256 --lr 0.003 0.01
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np


def seqclf_data(args, cache: Path):
    """The DataModule seqclf trains on: its splits, as token ids, and the tokenizer's words."""
    from seqclf.data import TextDataModule

    dm = TextDataModule(
        path=args.data, cache_dir=str(cache), vocab_size=args.vocab_size, max_len=args.max_len,
        truncation=args.truncation, padding="pre", progress=False, text_column=args.text_column,
        label_column=args.label_column,
    )  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    return dm


def fasttext_lines(split, vocab: list[str], names: list[str], seed: int) -> list[str]:
    """``__label__<class> words...`` per text, the padding left out, in a seeded shuffled order."""
    lines = []
    for ids, label in zip(split.x.tolist(), split.y.tolist(), strict=True):
        words = [vocab[i] for i in ids if i != 0]
        lines.append(f"__label__{names[int(label)]} {' '.join(words)}")
    random.Random(seed).shuffle(lines)
    return lines


def run_fasttext(args, dm, work: Path) -> dict:
    import fasttext

    vocab, names = dm.tokenizer.vocab, list(dm.labels.names)
    files = {split: work / f"{split}.txt" for split in ("train", "val", "test")}
    for split, path in files.items():
        path.write_text("\n".join(fasttext_lines(getattr(dm, f"{split}_set"), vocab, names, args.seed)) + "\n")

    def fit(lr: float):
        start = time.perf_counter()
        model = fasttext.train_supervised(
            str(files["train"]), dim=args.dim, wordNgrams=args.ngrams, bucket=args.buckets, epoch=args.epochs,
            lr=lr, thread=args.fasttext_threads, minCount=1, seed=args.seed, verbose=0,
        )  # fmt: skip
        return model, time.perf_counter() - start

    def scores(model, split: str) -> dict[str, float]:
        """acc and f1_macro as seqclf scores them, from fastText's first label for each text."""
        from seqclf.tasks.classify.baseline import scores as seqclf_scores

        lines = files[split].read_text().splitlines()
        words = [line.split(" ", 1)[1] if " " in line else "" for line in lines]
        truth = [names.index(line.split(" ", 1)[0].removeprefix("__label__")) for line in lines]
        predicted = [names.index(labels[0].removeprefix("__label__")) for labels in model.predict(words)[0]]
        return seqclf_scores(np.array(predicted), np.array(truth), len(names))

    scored = {lr: scores(fit(lr)[0], "val")["acc"] for lr in args.fasttext_lr}  # each rate on validation
    best = max(scored, key=scored.get)
    model, seconds = fit(best)
    test = scores(model, "test")
    return {"model": "fasttext", "lr": best, "val_acc": scored[best], "test_acc": test["acc"],
            "test_f1_macro": test["f1_macro"], "train_seconds": seconds, "threads": args.fasttext_threads}  # fmt: skip


def run_linear(args, dm) -> list[dict]:
    """TF-IDF of word 1-2 grams + logistic regression, and the NB-weighted model (binary data only), as
    seqclf-baseline fits them (seqclf.tasks.classify.baseline), each C chosen on the validation share."""
    from seqclf.tasks.classify import baseline as linear

    vocab, num_classes = dm.tokenizer.vocab, len(dm.labels.names)
    splits = [linear.split_of(getattr(dm, f"{s}_set"), vocab) for s in ("train", "val", "test")]
    rows = []
    for kind in ["tfidf", "nb"] if num_classes == 2 else ["tfidf"]:
        fitted = linear.fit(kind, *splits, num_classes, grid=args.linear_c)
        rows.append({"model": fitted["model"], "setting": f"C={fitted['C']}", "val_acc": fitted["val"]["acc"],
                     "test_acc": fitted["test"]["acc"], "test_f1_macro": fitted["test"]["f1_macro"],
                     "train_seconds": fitted["fit_seconds"],
                     "threads": 1})  # fmt: skip
    return rows


def run_seqclf(args, lr: float, out: Path, test: bool) -> dict:
    from seqclf.cli.config import load_config
    from seqclf.cli.train import train

    overrides = [
        "model=bag", f"data.path={args.data}", f"data.text_column={args.text_column}",
        f"data.label_column={args.label_column}", f"data.vocab_size={args.vocab_size}", f"data.max_len={args.max_len}",
        f"data.truncation={args.truncation}", f"trainer.max_epochs={args.epochs}",
        f"model.encoder.embed_dim={args.dim}",
        f"model.encoder.ngrams={args.ngrams}", f"model.encoder.buckets={args.buckets}", f"optimizer.lr={lr}",
        f"data.batch_size={args.batch_size}", f"seed={args.seed}", "callbacks.grad_flow=null", "data.progress=false",
        "callbacks.progress_bar.refresh_rate=0", f"test={str(test).lower()}",
    ]  # fmt: skip
    cfg = load_config(overrides, out)
    start = time.perf_counter()
    metrics = train(cfg)
    seconds = time.perf_counter() - start
    return {"model": "seqclf model=bag", "lr": lr, "val_acc_best": metrics["val/acc_best"],
            "test_acc": metrics.get("test/acc"), "test_f1_macro": metrics.get("test/f1_macro"),
            "train_seconds": metrics["seconds_per_epoch"] * metrics["epochs"],
            "command_seconds": seconds, "threads": metrics["threads"]["train"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="an IMDB copy in the Hub's layout (or any data.path)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--max-len", type=int, default=256)
    parser.add_argument("--truncation", default="pre", help="pre: each review's last words; post: its first")
    parser.add_argument("--vocab-size", type=int, default=300_000, help="large enough to keep every word")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--ngrams", type=int, default=2)
    parser.add_argument("--buckets", type=int, default=262_144)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--lr", type=float, nargs="+", default=[0.003], help="seqclf's Adam rates; the best on validation is tested"
    )
    parser.add_argument(
        "--fasttext-lr", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0], help="the best on validation is tested"
    )
    parser.add_argument("--fasttext-threads", type=int, default=2)
    parser.add_argument("--linear-c", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=None, help="write the results as JSON here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dm = seqclf_data(args, work / "cache")
        print(f"{len(dm.train_set)} training and {len(dm.test_set)} test texts, {args.max_len} words "
              f"({args.truncation}), vocabulary {dm.tokenizer.vocab_size}")  # fmt: skip
        rows = [*run_linear(args, dm), run_fasttext(args, dm, work)]
        tried = [run_seqclf(args, lr, work / f"lr{lr}", test=False) for lr in args.lr] if len(args.lr) > 1 else []
        best = max(tried, key=lambda r: r["val_acc_best"])["lr"] if tried else args.lr[0]
        rows.append(run_seqclf(args, best, work / "best", test=True))
    for row in [*tried, *rows]:
        print(json.dumps(row))
    print("\n| model | test acc | test macro-F1 | training wall time | threads |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        setting = row.get("setting") or f"lr {row['lr']}"
        model, acc, f1, seconds = (
            f"{row['model']} ({setting})",
            row["test_acc"],
            row["test_f1_macro"],
            row["train_seconds"],
        )
        print(f"| {model} | {acc:.4f} | {f1:.4f} | {seconds:.1f} s | {row['threads']} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "tried": tried, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
