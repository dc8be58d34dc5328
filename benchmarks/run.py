"""seqclf against a hand-written PyTorch loop on the same encoded IMDB tensors, in one process.

    python benchmarks/run.py --data ../shared/data/imdb
    python benchmarks/run.py --data ../shared/data/imdb --device cuda --batch-size 1024

Prints a table and writes the same numbers as JSON (``--out``): per cell type the median
training-epoch seconds of the hand-written loop and of seqclf (training batches only, as timed by
seqclf's EpochTimer; validation excluded on both sides) and their ratio; data preparation cold
(tokenise, fit the vocabulary, encode, pad, cache) and warm (from the cache); the time from the
start of a `seqclf-train` process to its first training step with a warm cache; and that
process's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from seqclf.data import IMDBDataModule
from seqclf.models import RNNClassifier
from seqclf.train import load_config, train


def prepare(data: str, cache: Path) -> tuple[IMDBDataModule, float]:
    start = time.perf_counter()
    dm = IMDBDataModule(path=data, cache_dir=str(cache), progress=False)
    dm.prepare_data()
    dm.setup("fit")
    return dm, time.perf_counter() - start


def hand_loop(
    dm: IMDBDataModule, cell: str, epochs: int, batch_size: int, device: str, seed: int
) -> tuple[list[float], list[float]]:
    """The reference: index pre-encoded tensors, Adam, BCE with logits, nothing else."""
    torch.manual_seed(seed)
    x, y = dm.train_set.x.to(device), dm.train_set.y.to(device)
    model = RNNClassifier(dm.tokenizer.vocab_size, cell).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times, cpu_times = [], []
    for _ in range(epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(y), batch_size):
            rows = order[i : i + batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


def seqclf_epochs(
    data: str, cell: str, epochs: int, batch_size: int, device: str, work: Path, seed: int
) -> tuple[list[float], list[float]]:
    """`seqclf-train` as shipped (callbacks, TensorBoard logger, progress bar), minus the final test."""
    overrides = [
        f"data.path={data}",
        f"model={cell}",
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        f"trainer.max_epochs={epochs}",
        f"data.batch_size={batch_size}",
        f"seed={seed}",
        "data.progress=false",
        "test=false",
    ]
    cfg = load_config(overrides, output_dir=work)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        metrics = train(cfg)  # the progress bar still runs, unseen
    return metrics["epoch_seconds"], metrics["epoch_cpu_seconds"]


def first_step_and_rss(data: str, work: Path, cache: Path, device: str) -> tuple[float, float, float]:
    """A `seqclf-train` process with a warm cache, one full epoch with the default settings:
    seconds from process start to the first step, wall seconds, and its peak RSS in MB."""
    run_root = work / "cli"
    args = [
        sys.executable, "-m", "seqclf.train", f"data.path={data}", "trainer.max_epochs=1",
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}", f"paths.log_dir={run_root}",
    ]  # fmt: skip
    env = {**os.environ, "SEQCLF_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    metrics = json.loads(next(run_root.glob("train/runs/*/metrics.json")).read_text())
    return metrics["first_step_seconds"], wall, rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="local IMDB folder (the Hub's layout, CSV or JSON Lines)")
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=["rnn", "lstm", "gru"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round and side")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of hand loop and seqclf")
    parser.add_argument(
        "--warmup", type=int, default=1, help="first epochs of each round left out of the ratios, on both sides"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    if args.epochs <= args.warmup:
        parser.error(f"--epochs {args.epochs} leaves no epoch after --warmup {args.warmup}")
    for name in ("lightning.pytorch", "lightning.fabric"):  # keep the table readable
        logging.getLogger(name).setLevel(logging.WARNING)
    data = str(Path(args.data).resolve())

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for file in Path(data).rglob("*"):  # cold means "not tokenised yet", not "not in the page cache"
            if file.is_file():
                file.read_bytes()
        _, cold = prepare(data, work / "cache")
        dm, warm = prepare(data, work / "cache")
        first_step, wall, rss_mb = first_step_and_rss(data, work, work / "cache", args.device)
        cells = {}
        for cell in args.cells:
            hand, ours, hand_cpu, ours_cpu = [], [], [], []
            for r in range(args.rounds):  # alternate, so drifts in machine speed hit both sides
                wall, cpu = hand_loop(dm, cell, args.epochs, args.batch_size, args.device, seed=r)
                hand, hand_cpu = hand + wall[args.warmup :], hand_cpu + cpu[args.warmup :]
                wall, cpu = seqclf_epochs(data, cell, args.epochs, args.batch_size, args.device, work / f"{cell}{r}", r)
                ours, ours_cpu = ours + wall[args.warmup :], ours_cpu + cpu[args.warmup :]
            med = statistics.median
            cells[cell] = {
                "hand_epoch_s": hand,
                "seqclf_epoch_s": ours,
                "hand_epoch_cpu_s": hand_cpu,
                "seqclf_epoch_cpu_s": ours_cpu,
                "hand_median_s": med(hand),
                "seqclf_median_s": med(ours),
                # Each seqclf epoch against the hand-loop epoch of the same round and number: the
                # machine's speed drifts over minutes, and a pair shares the drift.
                "ratio": med(o / h for o, h in zip(ours, hand, strict=True)),
                "cpu_ratio": med(o / h for o, h in zip(ours_cpu, hand_cpu, strict=True)),
            }

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    result = {
        "machine": {
            "device": args.device,
            "device_name": device_name,
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
        "settings": {
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "data": data,
        },
        "data_prep_cold_s": cold,
        "data_prep_warm_s": warm,
        "first_step_s": first_step,
        "one_epoch_run_wall_s": wall,
        "peak_rss_mb": rss_mb,
        "cells": cells,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{args.device} ({device_name}), batch {args.batch_size}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    print("| cell | hand loop s/epoch | seqclf s/epoch | ratio (paired) | CPU-time ratio (paired) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cell, c in cells.items():
        times = f"{c['hand_median_s']:.2f} | {c['seqclf_median_s']:.2f}"
        print(f"| {cell} | {times} | {c['ratio']:.2f}x | {c['cpu_ratio']:.2f}x |")
    print(f"\ndata preparation (train+test): cold {cold:.2f} s, warm {warm:.3f} s")
    print(f"process start to first training step (warm cache): {first_step:.2f} s")
    print(f"peak RSS of a one-epoch default run: {rss_mb:.0f} MB")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
