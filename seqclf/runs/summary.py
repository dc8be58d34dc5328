"""Summaries: of one finished fit (what metrics.json records), and of a run or a sweep's runs,
rebuilt from their folders (summary.csv, summary.md, summary.png and grad_flow.png)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqclf.runs import files, plots
from seqclf.tasks.monitor import monitor_mode

if TYPE_CHECKING:  # seqclf-report reads run folders without Lightning
    import lightning as L

COLUMNS = (
    "run",
    "overrides",
    "status",
    "best",
    "monitor",
    "val_best",
    "val_f1_macro",
    "test_acc",
    "test_f1_macro",
    "test_f1",  # a tagger's: micro-F1 over every tag but O
    # seqclf-baseline's best linear model on the run's split (chosen on validation), if it was fitted
    "baseline",
    "baseline_test_acc",
    "baseline_test_f1_macro",
    "epochs",
    "seconds_per_epoch",
    "grad_first_over_last",
    "error",
)


def fit_summary(trainer: L.Trainer, out: Path) -> dict:
    """What a comparison of runs needs from a finished fit: the best value of the monitored metric
    and its checkpoint, epochs, steps and timings."""
    metrics: dict = {}
    ckpt = trainer.checkpoint_callback
    module = trainer.lightning_module
    # the last epoch's training metrics, each task's own (debug=overfit checks that train/acc reaches 1)
    for key, value in trainer.callback_metrics.items():
        if key.startswith("train/") and not key.endswith("_step"):
            metrics[key] = float(value)
    best = module.best_monitored
    if best is not None:
        metrics[f"{module.hparams.monitor}_best"] = best
    if ckpt is not None and ckpt.best_model_path:
        metrics["best_checkpoint"] = os.path.relpath(ckpt.best_model_path, out)
    metrics["epochs"] = trainer.current_epoch
    stopper = trainer.early_stopping_callback
    if stopper is not None and stopper.stopped_epoch > 0:
        metrics["stopped_early"] = (
            f"after epoch {stopper.stopped_epoch + 1}: {stopper.monitor} had not improved for {stopper.patience} "
            f"epoch{'s' if stopper.patience != 1 else ''} (callbacks.early_stopping.patience)"
        )
    metrics["global_step"] = trainer.global_step
    from seqclf.lightning.callbacks import EpochTimer

    timer = next((c for c in trainer.callbacks if isinstance(c, EpochTimer)), None)
    if timer is not None:
        metrics.update(timer.summary())
    return metrics


def table(metrics: dict) -> str:
    """A run's results as aligned ``key  value`` lines for the log."""
    rows = [
        (k, f"{v:.4f}" if isinstance(v, float) else str(v))
        for k, v in metrics.items()
        if v is not None and not isinstance(v, list)
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def summarize_run(run: Path, root: Path) -> dict[str, Any]:
    status = files.read_status(run)
    metrics = files.read_metrics(run)
    # the monitored metric: its best is in metrics.json (val/acc for runs from before it was a setting)
    monitor = next(
        (k.removesuffix("_best") for k in metrics if k.startswith("val/") and k.endswith("_best")), "val/acc"
    )
    tags = (monitor, "val/f1_macro", "train/loss", "val/loss")
    series = files.scalar_series(run, tags)
    curve, f1_curve, train_loss, val_loss = ([value for _, value in series[tag]] for tag in tags)
    pick = min if monitor_mode(monitor) == "min" else max
    best = metrics.get(f"{monitor}_best", pick(curve) if curve else None)
    best_epoch = curve.index(pick(curve)) if curve else None
    grad_norm = files.last_grad_norm(run)
    linear = files.read_baseline(run)
    return {
        "run": str(run.relative_to(root)) if run != root else run.name,
        "overrides": files.run_overrides(run),
        "cell": files.run_cell(run),
        "status": status.get("status", "unknown"),
        "monitor": monitor,
        "val_best": best,
        "val_f1_macro": f1_curve[best_epoch] if best_epoch is not None and best_epoch < len(f1_curve) else None,
        "test_acc": metrics.get("test/acc"),
        "test_f1_macro": metrics.get("test/f1_macro"),
        "test_f1": metrics.get("test/f1"),
        "baseline": linear.get("model"),
        "baseline_test_acc": linear.get("test", {}).get("acc"),
        "baseline_test_f1_macro": linear.get("test", {}).get("f1_macro"),
        "epochs": metrics.get("epochs", len(curve) or None),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "grad_first_over_last": grad_norm[0] / grad_norm[-1] if grad_norm else None,
        "error": status.get("error", ""),
        "curve": curve,
        "losses": (train_loss, val_loss),
        "grad_norm": grad_norm,
    }


def _fmt(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(value)
    if not isinstance(value, float):
        return str(value)
    if column == "seconds_per_epoch":  # 0.00412, 0.853, 12.41, 431
        return f"{value:.3g}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if column == "grad_first_over_last":
        return f"{value:.3g}"  # spans orders of magnitude: 1e-05 as readable as 0.8
    return f"{value:.4f}"  # accuracies, F1, losses


def shared_overrides(rows: list[dict[str, Any]]) -> list[str]:
    """The overrides every run has (data.path, say): said once, not in every row or legend."""
    if len(rows) < 2:
        return []
    common = set.intersection(*(set(row["overrides"]) for row in rows))
    return [o for o in rows[0]["overrides"] if o in common]


def write_summary(folder: str | Path) -> list[dict[str, Any]]:
    """Write summary.csv, summary.md and summary.png into ``folder``; return the rows, whose
    ``overrides`` are each run's own (those all runs share are left out)."""
    folder = Path(folder).resolve()
    rows = [summarize_run(run, folder) for run in files.find_runs(folder)]
    shared = shared_overrides(rows)
    for row in rows:
        row["overrides"] = [o for o in row["overrides"] if o not in shared]
    scored = [row for row in rows if row["status"] == "completed" and row["val_best"] is not None]
    # runs of one sweep share their monitored metric; a folder of mixed runs ranks by the first's
    sign = -1 if scored and monitor_mode(scored[0]["monitor"]) == "min" else 1
    best = max(scored, key=lambda row: sign * row["val_best"], default=None)
    for row in rows:
        row["best"] = "best" if row is best else ""
    with (folder / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: _fmt(c, row[c]) for c in COLUMNS} for row in rows)
    # The table people read leaves out what no run has (a classifier's test_f1, no errors); the CSV keeps
    # every column, so scripts see the same columns whatever ran.
    shown = [c for c in COLUMNS if c in ("run", "status") or any(_fmt(c, row[c]) for row in rows)]
    lines = [f"Every run: `{' '.join(shared)}`", ""] if shared else []
    lines += ["| " + " | ".join(shown) + " |", "|" + " --- |" * len(shown)]
    for row in rows:
        cells = [_fmt(c, row[c]).replace("|", "\\|").replace("\n", " ") for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    _plot(rows, folder)
    return rows


# Overrides that say where things are, not what was trained: left out of legends.
_WHERE = ("data.path=", "data.cache_dir=", "paths.", "hydra.", "ckpt_path=", "task_name=")


def legend_label(row: dict[str, Any]) -> str:
    """What identifies a run in a plot: its cell and its own overrides (paths left out), its status."""
    shown = [o for o in row["overrides"] if not o.lstrip("+~").startswith(_WHERE)]
    if not any(o.startswith("model=") for o in shown) and row.get("cell"):
        shown.insert(0, f"model={row['cell']}")
    return f"{' '.join(shown) or row['run']} ({row['status']})"


def _plot(rows: list[dict[str, Any]], folder: Path) -> None:
    labels = [legend_label(row) for row in rows]
    # colour by the first swept value, line style by the second, marker by the third
    styles = plots.distinct_styles([[o for o in row["overrides"] if not o.startswith(_WHERE)] for row in rows])
    monitors = sorted({row["monitor"] for row in rows}) or ["val/acc"]
    plots.epoch_curves(
        [(label, row["curve"]) for label, row in zip(labels, rows, strict=True)],
        folder / "summary.png",
        ylabel=" or ".join(monitors),
        title=f"{' or '.join(monitors)} per epoch",
        styles=styles,
        losses=[row["losses"] for row in rows],
    )
    probed = [i for i, row in enumerate(rows) if row["grad_norm"]]
    if probed:
        plots.position_curves(
            [(labels[i], rows[i]["grad_norm"]) for i in probed],
            "|dLoss/dx_t| (batch mean, log scale)",
            "gradient reaching each word, last epoch",
            log_y=True,
            path=folder / "grad_flow.png",
            styles=[styles[i] for i in probed],
        )
