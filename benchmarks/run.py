"""seqclf against a hand-written PyTorch loop on the same encoded IMDB tensors, in one process.

    python benchmarks/run.py --data ../shared/data/imdb
    python benchmarks/run.py --data ../shared/data/imdb --device cuda --batch-size 1024

Prints tables and writes the same numbers as JSON (``--out``): per cell type the median
training-epoch seconds of two hand-written loops, a bare Lightning Trainer and seqclf (training
batches only, as timed by seqclf's EpochTimer; validation excluded on all sides) and the ratios.
The first hand loop is the textbook one (``torch.optim.Adam(params, lr)``); the second uses the
optimizer seqclf uses (Adam with ``fused=True``), so its ratio is the framework's own overhead.
The same ratios also come from blocks of 10 steps interleaved in one seqclf epoch (see
Interleave), which share the machine's speed of the moment. Also: data preparation cold
(tokenise, fit the vocabulary, encode, pad, cache; median of --prep-runs) and warm (from the
cache); the time from the start of a `seqclf-train` process to its first training step with a
warm cache; and that process's peak RSS.
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
from omegaconf import open_dict
from torch.utils.data import DataLoader

from seqclf.callbacks import EpochTimer
from seqclf.data import IMDBDataModule
from seqclf.data.imdb import Batches
from seqclf.gradflow import FILE as GRAD_FLOW_FILE
from seqclf.models import RNNClassifier
from seqclf.train import load_config, train


def prepare(data: str, cache: Path) -> tuple[IMDBDataModule, float]:
    start = time.perf_counter()
    dm = IMDBDataModule(path=data, cache_dir=str(cache), progress=False)
    dm.prepare_data()
    dm.setup("fit")
    return dm, time.perf_counter() - start


class HandLoop:
    """The reference: index pre-encoded tensors, Adam, BCE with logits, nothing else."""

    def __init__(self, dm: IMDBDataModule, cell: str, batch_size: int, device: str, seed: int, fused: bool):
        torch.manual_seed(seed)
        self.x, self.y = dm.train_set.x.to(device), dm.train_set.y.to(device)
        self.model = RNNClassifier(dm.tokenizer.vocab_size, cell).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=fused or None)
        self.loss_fn = torch.nn.BCEWithLogitsLoss()
        self.batch_size, self.device = batch_size, device
        self.order, self.next_row = torch.randperm(len(self.y), device=device), 0

    def steps(self, n: int | None = None) -> None:
        """``n`` training steps (None: the rest of the epoch), starting a new epoch when one ends."""
        model, optimizer, loss_fn, x, y = self.model, self.optimizer, self.loss_fn, self.x, self.y
        stop = len(y) if n is None else self.next_row + n * self.batch_size
        for i in range(self.next_row, min(stop, len(y)), self.batch_size):
            rows = self.order[i : i + self.batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            optimizer.step()
        self.next_row = stop
        if stop >= len(y):
            self.order, self.next_row = torch.randperm(len(y), device=self.device), 0
        if self.device == "cuda":
            torch.cuda.synchronize()


def hand_loop(
    dm: IMDBDataModule, cell: str, epochs: int, batch_size: int, device: str, seed: int, fused: bool
) -> tuple[list[float], list[float]]:
    """Epochs of the hand-written loop: wall and CPU seconds each."""
    loop = HandLoop(dm, cell, batch_size, device, seed, fused)
    times, cpu_times = [], []
    for _ in range(epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        loop.steps()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


HANDS = ("hand", "hand_fused")  # the textbook loop, and the one with seqclf's optimizer
SIDES = (*HANDS, "bare_lightning", "seqclf")  # everything timed by the epoch


class Interleave(L.Callback):
    """Inside a seqclf run, after every ``BLOCK`` training steps, runs ``BLOCK`` steps of each hand
    loop, and records the seconds of each side's block. Neighbouring blocks share the machine's speed
    of the moment, which on a shared machine drifts too much for epoch-level comparisons."""

    BLOCK = 10
    hands: dict[str, HandLoop] = {}
    blocks: list[dict[str, float]] = []

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx % self.BLOCK:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        block = {}
        if self._start is not None and batch_idx > 0:  # a block that crossed an epoch's end is dropped
            block["seqclf"] = time.perf_counter() - self._start
        for name, hand in self.hands.items():
            start = time.perf_counter()
            hand.steps(self.BLOCK)
            block[name] = time.perf_counter() - start
        if "seqclf" in block and batch_idx >= 3 * self.BLOCK:  # warm-up left out
            self.blocks.append(block)
        self._start = time.perf_counter()


def interleaved(
    dm: IMDBDataModule, data: str, cell: str, epochs: int, batch_size: int, device: str, work: Path
) -> dict[str, float]:
    """Paired ratios from blocks of steps interleaved in one seqclf run (see Interleave)."""
    Interleave.hands = {side: HandLoop(dm, cell, batch_size, device, 0, side == "hand_fused") for side in HANDS}
    Interleave.blocks = []
    seqclf_epochs(data, cell, epochs, batch_size, device, work, 0, extra_callback=f"{__name__}.Interleave")
    blocks, med = Interleave.blocks, statistics.median
    result = {f"{side}_step_us": med(b[side] for b in blocks) / Interleave.BLOCK * 1e6 for side in ("seqclf", *HANDS)}
    for side in HANDS:
        result[f"ratio_to_{side}"] = med(b["seqclf"] / b[side] for b in blocks)
    return {**result, "blocks": len(blocks)}


class BareModule(L.LightningModule):
    """The least a LightningModule needs: seqclf's network, loss and optimizer, nothing else."""

    def __init__(self, vocab_size: int, cell: str):
        super().__init__()
        self.net, self.loss_fn = RNNClassifier(vocab_size, cell), torch.nn.BCEWithLogitsLoss()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        tokens, labels = batch
        return self.loss_fn(self.net(tokens), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3, fused=True)


def bare_lightning(
    dm: IMDBDataModule, cell: str, epochs: int, batch_size: int, device: str, seed: int
) -> tuple[list[float], list[float]]:
    """A bare Lightning Trainer over the same batches: no logger, checkpoints, progress bar, summary
    or validation; only seqclf's epoch timer. What Lightning's own training loop costs."""
    torch.manual_seed(seed)
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator=device, devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], limit_val_batches=0,
        use_distributed_sampler=False,
    )  # fmt: skip
    loader = DataLoader(dm.train_set, sampler=Batches(len(dm.train_set), batch_size, seed), batch_size=None)
    trainer.fit(BareModule(dm.tokenizer.vocab_size, cell), train_dataloaders=loader)
    return timer.epoch_s, timer.epoch_cpu_s


PROBE_SECONDS: dict[str, list[float]] = {}  # per cell: GradientFlow's seconds per validation epoch


def seqclf_epochs(
    data: str,
    cell: str,
    epochs: int,
    batch_size: int,
    device: str,
    work: Path,
    seed: int,
    extra_callback: str | None = None,
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
    if extra_callback:
        with open_dict(cfg):
            cfg.callbacks.benchmark = {"_target_": extra_callback}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        metrics = train(cfg)  # the progress bar still runs, unseen
    probe = Path(cfg.paths.output_dir) / GRAD_FLOW_FILE  # the GradientFlow callback's own timings
    PROBE_SECONDS.setdefault(cell, []).extend(json.loads(probe.read_text())["seconds"] if probe.is_file() else [])
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
    parser.add_argument("--prep-runs", type=int, default=3, help="cold data preparations, each into a new cache")
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
        colds = [prepare(data, work / f"cache-cold{i}")[1] for i in range(args.prep_runs)]
        cold = statistics.median(colds)
        dm, warm = prepare(data, work / "cache-cold0")
        first_step, run_wall, rss_mb = first_step_and_rss(data, work, work / "cache-cold0", args.device)
        med = statistics.median
        cells = {}
        for cell in args.cells:
            epochs: dict[str, list[float]] = {k: [] for k in SIDES}
            cpu_epochs: dict[str, list[float]] = {k: [] for k in epochs}
            for r in range(args.rounds):  # alternate, so drifts in machine speed hit all sides
                for side in epochs:
                    if side == "seqclf":
                        run = work / f"{cell}{r}"
                        wall, cpu = seqclf_epochs(data, cell, args.epochs, args.batch_size, args.device, run, r)
                    elif side == "bare_lightning":
                        wall, cpu = bare_lightning(dm, cell, args.epochs, args.batch_size, args.device, r)
                    else:
                        fused = side == "hand_fused"
                        wall, cpu = hand_loop(dm, cell, args.epochs, args.batch_size, args.device, r, fused)
                    epochs[side] += wall[args.warmup :]
                    cpu_epochs[side] += cpu[args.warmup :]

            def paired(ours: list[float], ref: list[float]) -> float:
                # Each seqclf epoch against the hand-loop epoch of the same round and number: the
                # machine's speed drifts over minutes, and a pair shares the drift.
                return med(o / h for o, h in zip(ours, ref, strict=True))

            cells[cell] = {
                **{f"{side}_epoch_s": times for side, times in epochs.items()},
                **{f"{side}_epoch_cpu_s": times for side, times in cpu_epochs.items()},
                **{f"{side}_median_s": med(times) for side, times in epochs.items()},
                "ratio": paired(epochs["seqclf"], epochs["hand"]),
                "ratio_same_optimizer": paired(epochs["seqclf"], epochs["hand_fused"]),
                "bare_lightning_ratio_same_optimizer": paired(epochs["bare_lightning"], epochs["hand_fused"]),
                "ratio_to_bare_lightning": paired(epochs["seqclf"], epochs["bare_lightning"]),
                "cpu_ratio": paired(cpu_epochs["seqclf"], cpu_epochs["hand"]),
                "cpu_ratio_same_optimizer": paired(cpu_epochs["seqclf"], cpu_epochs["hand_fused"]),
                "grad_flow_s": med(PROBE_SECONDS.get(cell, [0.0])),
                "grad_flow_share": med(PROBE_SECONDS.get(cell, [0.0])) / med(epochs["seqclf"]),
                "interleaved": interleaved(dm, data, cell, 1, args.batch_size, args.device, work / f"{cell}-blocks"),
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
        "data_prep_cold_runs_s": colds,
        "data_prep_warm_s": warm,
        "first_step_s": first_step,
        "one_epoch_run_wall_s": run_wall,
        "peak_rss_mb": rss_mb,
        "cells": cells,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{args.device} ({device_name}), batch {args.batch_size}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    print("\nSeconds per training epoch (median), and paired ratios:")
    print(
        "| cell | hand loop | hand loop, fused Adam | bare Lightning | seqclf "
        "| seqclf / hand | seqclf / hand fused | bare Lightning / hand fused | seqclf / bare Lightning |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell, c in cells.items():
        times = " | ".join(f"{c[f'{side}_median_s']:.2f}" for side in SIDES)
        keys = ("ratio", "ratio_same_optimizer", "bare_lightning_ratio_same_optimizer", "ratio_to_bare_lightning")
        print(f"| {cell} | {times} | " + " | ".join(f"{c[k]:.2f}x" for k in keys) + " |")
    print(
        f"\nInterleaved in one seqclf epoch: blocks of {Interleave.BLOCK} steps of seqclf, the hand loop and "
        "the fused-Adam hand loop in turn (median of the blocks' paired ratios):"
    )
    print("| cell | seqclf us/step | hand us/step | hand fused us/step | seqclf / hand | seqclf / hand fused | n |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell, c in cells.items():
        i = c["interleaved"]
        steps = f"{i['seqclf_step_us']:.0f} | {i['hand_step_us']:.0f} | {i['hand_fused_step_us']:.0f}"
        print(f"| {cell} | {steps} | {i['ratio_to_hand']:.2f}x | {i['ratio_to_hand_fused']:.2f}x | {i['blocks']} |")
    print("\nGradientFlow (grad/*, gates/*) per validation epoch, against a seqclf training epoch:")
    for cell, c in cells.items():
        print(f"  {cell}: {c['grad_flow_s'] * 1000:.0f} ms, {c['grad_flow_share']:.1%} of an epoch")
    runs = ", ".join(f"{t:.2f}" for t in colds)
    print(f"\ndata preparation (train+test): cold {cold:.2f} s (median of {runs}), warm {warm:.3f} s")
    print(f"process start to first training step (warm cache): {first_step:.2f} s")
    print(f"peak RSS of a one-epoch default run: {rss_mb:.0f} MB")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
