"""What a finished run reports: metrics.json and the short table printed at the end."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import lightning as L

from seqclf.callbacks import EpochTimer


def summarize(trainer: L.Trainer, test_metrics: dict, out: Path) -> dict:
    """Final test metrics of the best checkpoint plus what a comparison of runs needs."""
    metrics: dict = {k: float(v) for k, v in test_metrics.items()}
    ckpt = trainer.checkpoint_callback
    best = float(trainer.lightning_module.val_acc_best.max_value)
    if math.isfinite(best):  # -inf until a validation epoch has run
        metrics["val/acc_best"] = best
    if ckpt is not None and ckpt.best_model_path:
        metrics["best_checkpoint"] = os.path.relpath(ckpt.best_model_path, out)
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    timer = next((c for c in trainer.callbacks if isinstance(c, EpochTimer)), None)
    if timer is not None and timer.epoch_s:
        metrics["seconds_per_epoch"] = statistics.median(timer.epoch_s)
        metrics["epoch_seconds"] = [round(s, 4) for s in timer.epoch_s]
        metrics["first_step_seconds"] = timer.first_step_s
    return metrics


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def table(metrics: dict) -> str:
    rows = [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in metrics.items() if not isinstance(v, list)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
