"""seqclf against a hand-written PyTorch loop on the same encoded IMDB tensors, in one process.

    python benchmarks/run.py --data ../shared/data/imdb
    python benchmarks/run.py --data ../shared/data/imdb --device cuda --batch-size 1024

Prints tables and writes the same numbers as JSON (``--out``): per cell type the median
training-epoch seconds of two hand-written loops, a bare Lightning Trainer, seqclf with one
optimizer step per training_step call (K=1) and seqclf as shipped (training batches only, as timed
by seqclf's EpochTimer; validation excluded on all loops) and the ratios. The first hand loop is
the textbook one (``torch.optim.Adam(params, lr)``); the second uses the optimizer seqclf uses
(Adam with ``fused=True``), so its ratio is the framework's own overhead. The same ratios also
come from segments of steps interleaved in one seqclf epoch (see measure.Interleave), which share
the machine's speed of the moment. Also: the gradient probe's share of an epoch; data preparation
cold (tokenise, fit the vocabulary, encode, pad, cache; median of --prep-runs) and warm (from the
cache); the time from the start of a `seqclf-train` process to its first training step with a
warm cache, and that process's peak RSS; and on a CPU, two `seqclf-train` runs at once against one
alone (--concurrency-cells).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
from pathlib import Path

import lightning as L
import torch
from measure import (
    LOOPS,
    PROBE_SECONDS,
    Interleave,
    bare_lightning,
    concurrency,
    epochs_with_validation,
    evaluation,
    first_step_and_rss,
    hand_loop,
    interleaved,
    prepare,
    seqclf_epochs,
)


def measure_cell(args, dm, data: str, cell: str, work: Path) -> dict:
    """Alternating rounds of every loop's epochs, so drifts in machine speed hit all loops."""
    med = statistics.median
    epochs: dict[str, list[float]] = {k: [] for k in LOOPS}
    cpu_epochs: dict[str, list[float]] = {k: [] for k in LOOPS}
    for r in range(args.rounds):
        for loop in LOOPS:
            if loop.startswith("seqclf"):
                k = 1 if loop == "seqclf_k1" else None
                run = work / f"{cell}{r}-{loop}"
                wall, cpu = seqclf_epochs(data, cell, args.epochs, args.batch_size, args.device, run, r, None, k)
            elif loop == "bare_lightning":
                wall, cpu = bare_lightning(dm, cell, args.epochs, args.batch_size, args.device, r)
            else:
                wall, cpu = hand_loop(dm, cell, args.epochs, args.batch_size, args.device, r, loop == "hand_fused")
            epochs[loop] += wall[args.warmup :]
            cpu_epochs[loop] += cpu[args.warmup :]

    def paired(ours: list[float], ref: list[float]) -> float:
        # Each epoch against the reference epoch of the same round and number: the machine's speed
        # drifts over minutes, and a pair shares the drift.
        return med(o / h for o, h in zip(ours, ref, strict=True))

    probe = med(PROBE_SECONDS.get(cell, [0.0]))
    return {
        **{f"{loop}_epoch_s": times for loop, times in epochs.items()},
        **{f"{loop}_epoch_cpu_s": times for loop, times in cpu_epochs.items()},
        **{f"{loop}_median_s": med(times) for loop, times in epochs.items()},
        "ratio": paired(epochs["seqclf"], epochs["hand"]),
        "ratio_same_optimizer": paired(epochs["seqclf"], epochs["hand_fused"]),
        "k1_ratio_same_optimizer": paired(epochs["seqclf_k1"], epochs["hand_fused"]),
        "bare_lightning_ratio_same_optimizer": paired(epochs["bare_lightning"], epochs["hand_fused"]),
        "ratio_to_bare_lightning": paired(epochs["seqclf"], epochs["bare_lightning"]),
        "cpu_ratio_same_optimizer": paired(cpu_epochs["seqclf"], cpu_epochs["hand_fused"]),
        "grad_flow_s": probe,
        "grad_flow_share": probe / med(epochs["seqclf"]),
        "interleaved": interleaved(dm, data, cell, 1, args.batch_size, args.device, work / f"{cell}-segments"),
    }


def print_tables(result: dict) -> None:
    machine, cells = result["machine"], result["cells"]
    print(f"\n{machine['device']} ({machine['device_name']}), batch {result['settings']['batch_size']}, ", end="")
    print(f"torch {machine['torch']}, {machine['cpus']} CPUs, {machine['torch_threads']} torch threads on every loop")
    if cells:
        print_training(cells)
    if result.get("evaluation"):
        print("\nValidation of 25,000 reviews at batch 1024, interleaved with the hand loop's evaluation (median):")
        print(
            "| cell | seqclf s (batches at once) | hand, 1 thread s | hand, all threads s | seqclf / faster hand "
            "| passes |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for cell, e in result["evaluation"].items():
            hand = [e[k] for k in sorted(k for k in e if k.startswith("hand_"))]
            print(
                f"| {cell} | {e['seqclf_s']:.3f} ({e['seqclf_threads']}) | {hand[0]:.3f} | {hand[-1]:.3f} "
                f"| {e['ratio_to_best_hand']:.2f}x | {e['passes']} |"
            )
    if result.get("epochs_with_validation"):
        print("\nThe lecture's whole epoch, validation on 25,000 reviews included, against the fused-Adam hand loop")
        print("and hand evaluation interleaved with it (segments of steps, each validation pass); seconds per epoch")
        print("after the first (median), the ratio (median of the epochs'), and the parts:")
        print(
            "| cell | seqclf | hand | seqclf / hand | training: seqclf, hand | validation: seqclf, hand "
            "| seqclf's rest | threads: train, eval | epochs |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for cell, e in result["epochs_with_validation"].items():
            t = e["threads"]
            print(
                f"| {cell} | {e['seqclf_s']:.2f} | {e['hand_s']:.2f} | {e['ratio']:.2f}x "
                f"| {e['seqclf_train_s']:.2f}, {e['hand_train_s']:.2f} "
                f"| {e['seqclf_val_s']:.3f}, {e['hand_eval_s']:.3f} "
                f"| {e['seqclf_rest_s']:.3f} | {t['train']}, {t['eval']} | {e['epochs']} |"
            )
    if result.get("concurrency"):
        print("\nTwo seqclf-train runs at once against one alone (200 steps an epoch, median after the first):")
        print("| model | alone s/epoch (threads) | each of two at once s/epoch (threads) | slowdown |")
        print("| --- | ---: | ---: | ---: |")
        for cell, c in result["concurrency"].items():
            together = ", ".join(f"{s:.2f} ({t})" for s, t in zip(c["together_s"], c["together_threads"], strict=True))
            print(f"| {cell} | {c['alone_s']:.2f} ({c['alone_threads']}) | {together} | {c['slowdown']:.2f}x |")
    runs = ", ".join(f"{t:.2f}" for t in result["data_prep_cold_runs_s"])
    print(f"\ndata preparation (train+test): cold {result['data_prep_cold_s']:.2f} s (median of {runs}), ", end="")
    print(f"warm {result['data_prep_warm_s']:.3f} s")
    if result["first_step_s"] is not None:
        print(f"process start to first training step (warm cache): {result['first_step_s']:.2f} s")
        print(f"peak RSS of a one-epoch default run: {result['peak_rss_mb']:.0f} MB")


def print_training(cells: dict) -> None:
    print("\nSeconds per training epoch (median), and paired ratios:")
    print(
        "| cell | hand loop | hand loop, fused Adam | bare Lightning | seqclf K=1 | seqclf | seqclf / hand "
        "| seqclf K=1 / hand fused | seqclf / hand fused | bare Lightning / hand fused |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell, c in cells.items():
        times = " | ".join(f"{c[f'{loop}_median_s']:.2f}" for loop in LOOPS)
        keys = ("ratio", "k1_ratio_same_optimizer", "ratio_same_optimizer", "bare_lightning_ratio_same_optimizer")
        print(f"| {cell} | {times} | " + " | ".join(f"{c[k]:.2f}x" for k in keys) + " |")
    print(
        f"\nInterleaved in one seqclf epoch: segments of at least {Interleave.SEGMENT} steps of seqclf, the hand "
        "loop and the fused-Adam hand loop in turn (median of the segments' paired ratios):"
    )
    print("| cell | seqclf us/step | hand us/step | hand fused us/step | seqclf / hand | seqclf / hand fused | n |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell, c in cells.items():
        i = c["interleaved"]
        steps = f"{i['seqclf_step_us']:.0f} | {i['hand_step_us']:.0f} | {i['hand_fused_step_us']:.0f}"
        print(f"| {cell} | {steps} | {i['ratio_to_hand']:.2f}x | {i['ratio_to_hand_fused']:.2f}x | {i['segments']} |")
    print("\nGradientFlow (grad/*, gates/*) per validation epoch, against a seqclf training epoch:")
    for cell, c in cells.items():
        print(f"  {cell}: {c['grad_flow_s'] * 1000:.0f} ms, {c['grad_flow_share']:.1%} of an epoch")


SECTIONS = ("prep", "startup", "train", "eval", "concurrency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="local IMDB folder (the Hub's layout, CSV or JSON Lines)")
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=["rnn", "lstm", "gru"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round and loop")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of all loops")
    parser.add_argument(
        "--warmup", type=int, default=1, help="first epochs of each round left out of the ratios, on all loops"
    )
    parser.add_argument("--prep-runs", type=int, default=3, help="cold data preparations, each into a new cache")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--concurrency-cells",
        nargs="*",
        default=["lstm", "gru", "lstm:128"],
        help="models for the two-runs-at-once case (CPU): a cell, or cell:units for a larger one",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        default=list(SECTIONS),
        choices=SECTIONS,
        help="what to measure (default: everything)",
    )
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads for every timed loop"
    )
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    if args.epochs <= args.warmup:
        parser.error(f"--epochs {args.epochs} leaves no epoch after --warmup {args.warmup}")
    for name in ("lightning.pytorch", "lightning.fabric"):  # keep the tables readable
        logging.getLogger(name).setLevel(logging.WARNING)
    data = str(Path(args.data).resolve())
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for file in Path(data).rglob("*"):  # cold means "not tokenised yet", not "not in the page cache"
            if file.is_file():
                file.read_bytes()
        sections = set(args.sections)
        colds = [prepare(data, work / f"cache-cold{i}")[1] for i in range(args.prep_runs if "prep" in sections else 1)]
        dm, warm = prepare(data, work / "cache-cold0")
        first_step = run_wall = rss_mb = None
        if "startup" in sections:
            first_step, run_wall, rss_mb = first_step_and_rss(data, work, work / "cache-cold0", args.device)
        cells = {cell: measure_cell(args, dm, data, cell, work) for cell in args.cells} if "train" in sections else {}
        evals, full_epochs = {}, {}
        if "eval" in sections and args.device == "cpu":
            evals = {cell: evaluation(data, cell, work / f"eval-{cell}", threads=args.threads) for cell in args.cells}
            full_epochs = {
                cell: epochs_with_validation(data, cell, work / "cache-cold0", work / f"epochs-{cell}")
                for cell in args.cells
            }
        together = {}
        if "concurrency" in sections and args.device == "cpu":
            together = {c: concurrency(data, c, work, work / "cache-cold0") for c in args.concurrency_cells}

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    result = {
        "machine": {
            "device": args.device,
            "device_name": device_name,
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
        "settings": {k: getattr(args, k) for k in ("batch_size", "epochs", "rounds", "warmup")} | {"data": data},
        "data_prep_cold_s": statistics.median(colds),
        "data_prep_cold_runs_s": colds,
        "data_prep_warm_s": warm,
        "first_step_s": first_step,
        "one_epoch_run_wall_s": run_wall,
        "peak_rss_mb": rss_mb,
        "cells": cells,
        "evaluation": evals,
        "epochs_with_validation": full_epochs,
        "concurrency": together,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
