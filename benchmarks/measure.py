"""What the benchmark measures: seqclf against a hand-written PyTorch loop on the same encoded IMDB
tensors, a bare Lightning Trainer, data preparation, start-up, memory and runs sharing the cores.
``benchmarks/run.py`` runs these and prints the tables."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import open_dict
from torch.utils.data import DataLoader

from seqclf import threads
from seqclf.cli.config import load_config
from seqclf.cli.train import train
from seqclf.data import TextDataModule
from seqclf.data.batches import BatchOrder
from seqclf.lightning.callbacks import EpochTimer
from seqclf.models import RecurrentEncoder, SequenceClassifier
from seqclf.runs.files import GRAD_FLOW_FILE


def prepare(data: str, cache: Path, **settings) -> tuple[TextDataModule, float]:
    start = time.perf_counter()
    dm = TextDataModule(path=data, cache_dir=str(cache), progress=False, **settings)
    dm.prepare_data()
    dm.setup("fit")
    return dm, time.perf_counter() - start


class HandLoop:
    """The reference: index pre-encoded tensors, Adam, BCE with logits, nothing else."""

    def __init__(self, dm: TextDataModule, cell: str, batch_size: int, device: str, seed: int, fused: bool):
        torch.manual_seed(seed)
        self.x, self.y = dm.train_set.x.to(device), dm.train_set.y.to(device)
        self.model = SequenceClassifier(RecurrentEncoder(dm.tokenizer.vocab_size, cell)).to(device)
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
    dm: TextDataModule, cell: str, epochs: int, batch_size: int, device: str, seed: int, fused: bool
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
# everything timed by the epoch: seqclf_k1 is seqclf with data.steps_per_execution=1
LOOPS = (*HANDS, "bare_lightning", "seqclf_k1", "seqclf")


class Interleave(L.Callback):
    """Inside a seqclf run, at the first block start after at least ``SEGMENT`` optimizer steps,
    runs as many steps of each hand loop, and records each loop's seconds per step. Neighbouring
    segments share the machine's speed of the moment, which on a shared machine drifts too much for
    epoch-level comparisons."""

    SEGMENT = 16
    hands: dict[str, HandLoop] = {}
    segments: list[dict[str, float]] = []

    def __init__(self) -> None:
        self._start: float | None = None
        self._mark = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        steps = trainer.global_step - self._mark
        if self._start is not None and steps < self.SEGMENT and batch_idx > 0:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        segment = {}
        if self._start is not None and batch_idx > 0 and steps:  # one that crossed an epoch's end is dropped
            segment["seqclf"] = (time.perf_counter() - self._start) / steps
        for name, hand in self.hands.items():
            start = time.perf_counter()
            hand.steps(steps or self.SEGMENT)
            segment[name] = (time.perf_counter() - start) / (steps or self.SEGMENT)
        if "seqclf" in segment and trainer.global_step >= 3 * self.SEGMENT:  # warm-up left out
            self.segments.append(segment)
        self._mark, self._start = trainer.global_step, time.perf_counter()


def interleaved(
    dm: TextDataModule, data: str, cell: str, epochs: int, batch_size: int, device: str, work: Path
) -> dict[str, float]:
    """Paired ratios from blocks of steps interleaved in one seqclf run (see Interleave)."""
    Interleave.hands = {loop: HandLoop(dm, cell, batch_size, device, 0, loop == "hand_fused") for loop in HANDS}
    Interleave.segments = []
    seqclf_epochs(data, cell, epochs, batch_size, device, work, 0, extra_callback=f"{__name__}.Interleave")
    segments, med = Interleave.segments, statistics.median
    result = {f"{loop}_step_us": med(s[loop] for s in segments) * 1e6 for loop in ("seqclf", *HANDS)}
    for loop in HANDS:
        result[f"ratio_to_{loop}"] = med(s["seqclf"] / s[loop] for s in segments)
    return {**result, "segments": len(segments)}


class BareModule(L.LightningModule):
    """The least a LightningModule needs: seqclf's network, loss and optimizer, nothing else."""

    def __init__(self, vocab_size: int, cell: str):
        super().__init__()
        self.net, self.loss_fn = SequenceClassifier(RecurrentEncoder(vocab_size, cell)), torch.nn.BCEWithLogitsLoss()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        tokens, labels = batch
        return self.loss_fn(self.net(tokens), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3, fused=True)


def bare_lightning(
    dm: TextDataModule, cell: str, epochs: int, batch_size: int, device: str, seed: int
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
    loader = DataLoader(dm.train_set, sampler=BatchOrder(len(dm.train_set), batch_size, seed), batch_size=None)
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
    steps_per_execution: int | None = None,
) -> tuple[list[float], list[float]]:
    """`seqclf-train` as shipped (callbacks, TensorBoard logger, progress bar), minus the final test;
    ``steps_per_execution`` overrides the default block size."""
    overrides = [
        *([f"data.steps_per_execution={steps_per_execution}"] if steps_per_execution else []),
        f"threads={torch.get_num_threads()}",  # the hand loops' count: the loops differ in the loop alone
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
        sys.executable, "-m", "seqclf.cli.train", f"data.path={data}", "trainer.max_epochs=1",
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}", f"paths.log_dir={run_root}",
    ]  # fmt: skip
    env = {**os.environ, "SEQCLF_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    metrics = json.loads(next(run_root.glob("train/runs/*/metrics.json")).read_text())
    return metrics["first_step_seconds"], wall, rss_mb


def concurrency(data: str, model: str, work: Path, cache: Path, steps: int = 200, runs: int = 2) -> dict[str, float]:
    """Seconds per epoch of ``steps`` training steps of the lecture's model (``model``: a cell, or
    ``cell:units`` for a larger one): one `seqclf-train` process alone, then ``runs`` started at once
    (each sharing the cores with the others)."""
    cell, _, units = model.partition(":")

    def start(name: str) -> tuple[subprocess.Popen, Path]:
        root = work / "concurrency" / name.replace(":", "-")
        args = [
            sys.executable, "-m", "seqclf.cli.train", "experiment=lecture", f"model={cell}", f"data.path={data}",
            *([f"model.encoder.hidden_size={units}"] if units else []), f"trainer.limit_train_batches={steps}",
            "trainer.max_epochs=3", "trainer=cpu", "test=false",
            "callbacks.progress_bar.refresh_rate=0", f"paths.log_dir={root}",
        ]  # fmt: skip
        env = {**os.environ, "SEQCLF_CACHE_DIR": str(cache)}
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), root

    def epoch_s(root: Path) -> tuple[float, list[int]]:
        metrics = json.loads(next(root.glob("lecture/runs/*/metrics.json")).read_text())
        return statistics.median(metrics["epoch_seconds"][1:]), metrics["threads"]["train"]  # first epoch: warm-up

    alone, root = start(f"{model}-alone")
    alone.wait()
    alone_s, alone_threads = epoch_s(root)
    together = [start(f"{model}-together{i}") for i in range(runs)]
    for proc, _ in together:
        proc.wait()
    each = [epoch_s(root) for _, root in together]
    return {
        "alone_s": alone_s,
        "alone_threads": alone_threads,
        "together_s": [s for s, _ in each],
        "together_threads": [t for _, t in each],
        "slowdown": max(s for s, _ in each) / alone_s,
    }


def train_quietly(overrides: list[str], work: Path, callback: str) -> dict:
    """`seqclf-train` with ``overrides`` and this module's ``callback`` class added, its output hidden."""
    cfg = load_config(overrides, output_dir=work)
    with open_dict(cfg):
        cfg.callbacks.benchmark = {"_target_": f"{__name__}.{callback}"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return train(cfg)


def hand_evaluate(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> None:
    """The reference evaluation: the network over every review in batches, no gradients."""
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
    model.train()


class EvalInterleave(L.Callback):
    """Times each seqclf validation pass (its own evaluation count, seqclf.threads) and, right after it,
    the hand evaluation of the same reviews with one thread and with all the hand loops' threads:
    neighbouring passes share the machine's speed of the moment."""

    hand_threads = 2
    rows: list[dict[str, float]] = []

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._threads = threads.current().eval  # seqclf's evaluation count: batches side by side, a thread each

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {"seqclf": time.perf_counter() - self._start, "seqclf_threads": self._threads}
        x = trainer.datamodule.val_set.x
        before = torch.get_num_threads()
        for n in sorted({1, self.hand_threads}):
            torch.set_num_threads(n)
            start = time.perf_counter()
            hand_evaluate(pl_module.net, x)
            row[f"hand_{n}"] = time.perf_counter() - start
        torch.set_num_threads(before)
        if trainer.current_epoch > 0:  # the first pass warms up
            self.rows.append(row)


def evaluation(
    data: str, cell: str, work: Path, epochs: int = 6, threads: int = 2, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """Validation of the 25,000 test reviews at batch 1024, as the lecture's experiment validates
    every epoch: seqclf (threads=auto) against the hand loop's evaluation at its faster thread count."""
    EvalInterleave.hand_threads, EvalInterleave.rows = threads, []
    overrides = [
        "experiment=lecture", f"model={cell}", f"data.path={data}", "trainer=cpu", f"trainer.max_epochs={epochs}",
        "trainer.limit_train_batches=16", "data.progress=false", "test=false", "threads=auto", *extra,
    ]  # fmt: skip
    train_quietly(overrides, work, "EvalInterleave")
    rows, med = EvalInterleave.rows, statistics.median
    best_hand = [min(r[f"hand_{n}"] for n in {1, threads}) for r in rows]
    return {
        "seqclf_s": med(r["seqclf"] for r in rows),
        "seqclf_threads": rows[0]["seqclf_threads"] if rows else None,
        **{f"hand_{n}_threads_s": med(r[f"hand_{n}"] for r in rows) for n in sorted({1, threads})},
        "ratio_to_best_hand": med(r["seqclf"] / h for r, h in zip(rows, best_hand, strict=True)),
        "passes": len(rows),
    }


class EpochInterleave(L.Callback):
    """The lecture's whole epoch against the fused-Adam hand loop, paired at a fine grain as the
    training case is: at the first block start after at least ``SEGMENT`` optimizer steps, as many
    steps of the hand loop; after each validation pass, the hand evaluation of the same reviews; each
    with seqclf's thread count for that part. Everything a seqclf epoch does counts: its blocks and
    Lightning's work between them (block start to block start), its validation, and what runs from
    validation's end to the next epoch's first block (the checkpoints, the epoch-end hooks)."""

    SEGMENT = Interleave.SEGMENT
    hand: HandLoop | None = None
    eval_x: torch.Tensor | None = None
    counts: dict[str, int] = {}  # seqclf's thread counts, read when training starts
    rows: list[dict[str, float]] = []  # per epoch: seconds of each part

    def __init__(self) -> None:
        self._start: float | None = None
        self._mark = 0
        self._row: dict[str, float] = {}
        self._warm = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        plan = threads.current()  # seqclf's counts: the hand loop trains and evaluates with them
        EpochInterleave.counts = {"train": plan.train, "eval": plan.eval}

    def _hand(self, part: str, run) -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(self.counts[part])
        start = time.perf_counter()
        run()
        self._row[f"hand_{part}"] = self._row.get(f"hand_{part}", 0.0) + time.perf_counter() - start
        torch.set_num_threads(before)

    def _seqclf(self, part: str) -> None:
        self._row[f"seqclf_{part}"] = self._row.get(f"seqclf_{part}", 0.0) + time.perf_counter() - self._start

    def _train_segment(self, trainer: L.Trainer) -> None:
        self._seqclf("train")
        steps = trainer.global_step - self._mark
        if steps:  # also called where validation has turned gradients off
            with torch.inference_mode(False), torch.enable_grad():
                self._hand("train", lambda: self.hand.steps(steps))
        self._mark = trainer.global_step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self._start is None:
            self._mark = trainer.global_step
        elif batch_idx == 0:  # a new epoch: the previous one ended
            self._seqclf("rest")
            self._close_epoch()
        elif trainer.global_step - self._mark >= self.SEGMENT:
            self._train_segment(trainer)
        else:
            return
        self._start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None and not trainer.sanity_checking:
            self._train_segment(trainer)
            self._start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None and not trainer.sanity_checking:
            self._seqclf("val")
            self._hand("eval", lambda: hand_evaluate(self.hand.model, self.eval_x))
            self._start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seqclf("rest")
        self._close_epoch()

    def _close_epoch(self) -> None:
        row, self._row = self._row, {}
        if self._warm:
            row["seqclf"] = row["seqclf_train"] + row.get("seqclf_val", 0.0) + row["seqclf_rest"]
            row["hand"] = row["hand_train"] + row.get("hand_eval", 0.0)
            self.rows.append(row)
        self._warm = True  # the first epoch warms up


def epochs_with_validation(
    data: str, cell: str, cache: Path, work: Path, epochs: int = 5, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """The lecture's epoch, validation on the 25,000 test reviews included: seqclf (threads=auto)
    against the fused-Adam hand loop followed by the hand evaluation (EpochInterleave), in one run.
    Both train on the lecture's rows: all 25,000 training reviews (it validates on the test split)."""
    dm, _ = prepare(data, cache, val_split="test")
    dm.setup("test")
    EpochInterleave.hand, EpochInterleave.eval_x = HandLoop(dm, cell, 32, "cpu", 0, fused=True), dm.test_set.x
    EpochInterleave.rows = []
    overrides = [
        "experiment=lecture", f"model={cell}", f"data.path={data}", "trainer=cpu", f"trainer.max_epochs={epochs}",
        "data.progress=false", "test=false", "threads=auto", *extra,
    ]  # fmt: skip
    train_quietly(overrides, work, "EpochInterleave")
    rows, med = EpochInterleave.rows, statistics.median
    return {
        **{f"{key}_s": med(r[key] for r in rows) for key in rows[0]},
        "ratio": med(r["seqclf"] / r["hand"] for r in rows),
        "threads": EpochInterleave.counts,
        "epochs": len(rows),
    }
