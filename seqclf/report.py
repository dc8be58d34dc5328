"""What runs report: metrics.json and the result table of one run, and summaries of runs and
sweeps rebuilt from what is on disk.

``seqclf-report FOLDER`` (a sweep folder or a single run folder) writes ``summary.csv``,
``summary.md``, ``summary.png`` (validation accuracy per epoch, one line per run) and
``grad_flow.png`` (the gradient reaching each word in the last epoch, one line per run) into FOLDER.
After a multirun the Hydra callback ``SweepSummary`` does the same for the sweep folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import lightning as L
from hydra.experimental.callback import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from seqclf import atomic, plots
from seqclf.callbacks import EpochTimer
from seqclf.gradflow import FILE as GRAD_FLOW_FILE
from seqclf.resolvers import SWEEP_KEYS_ENV
from seqclf.runs import is_run

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
COLUMNS = (
    "run",
    "overrides",
    "status",
    "best",
    "val_acc_best",
    "test_acc",
    "epochs",
    "seconds_per_epoch",
    "grad_first_over_last",
    "error",
)


def find_runs(folder: Path) -> list[Path]:
    """The run folder itself, or every run folder below a sweep folder (in job order)."""
    if is_run(folder):
        return [folder]

    def job_number(run: Path) -> tuple[int, str]:
        hydra_cfg = run / ".hydra" / "hydra.yaml"
        num = OmegaConf.select(OmegaConf.load(hydra_cfg), "hydra.job.num") if hydra_cfg.is_file() else None
        return (num if isinstance(num, int) else sys.maxsize, str(run))

    return sorted((p.parent.parent for p in folder.rglob(".hydra/config.yaml")), key=job_number)


@rank_zero_only  # one writer per run, also under DDP
def write_json(path: Path, data: dict) -> None:
    """Atomically: a kill mid-write leaves the previous file."""
    atomic.write_json(path, data)


def write_status(folder: Path, status: str, **extra: Any) -> None:
    """``running`` at the start of a run, then ``completed``, ``failed`` (with the error) or ``interrupted``."""
    write_json(folder / STATUS_FILE, {"status": status, **extra})


def read_status(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / STATUS_FILE).read_text())
    except (OSError, ValueError):
        # No status file: a run from before status files, or killed before it could write one.
        return {"status": "completed" if (run / "metrics.json").is_file() else "unknown"}


def val_curve(run: Path) -> list[float]:
    """Validation accuracy per epoch from the TensorBoard events, else from the CSV logger."""
    events = run / "tensorboard"
    if any(events.glob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        logging.getLogger("tensorboard").setLevel(logging.WARNING)  # it narrates every file it reads

        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if "val/acc" in acc.Tags()["scalars"]:
            return [e.value for e in sorted(acc.Scalars("val/acc"), key=lambda e: e.step)]
    metrics_csv = run / "csv" / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open() as f:
            return [float(row["val/acc"]) for row in csv.DictReader(f) if row.get("val/acc")]
    return []


def run_overrides(run: Path) -> list[str]:
    """The run's command-line overrides, with those of each later ``resume=`` of it applied on top
    (a resume records its own in .hydra/resume-<time>/), in the order they were first given."""
    merged: dict[str, str] = {}
    files = [run / ".hydra" / "overrides.yaml", *sorted((run / ".hydra").glob("resume-*/overrides.yaml"))]
    for path in files:
        if path.is_file():
            for override in OmegaConf.to_container(OmegaConf.load(path)) or []:
                key = str(override).split("=", 1)[0].lstrip("+~")
                if key != "resume":
                    merged[key] = str(override)
    return list(merged.values())


def summarize_run(run: Path, root: Path) -> dict[str, Any]:
    overrides = run_overrides(run)
    status = read_status(run)
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    curve = val_curve(run)
    best = metrics.get("val/acc_best", max(curve) if curve else None)
    grad_norm = _last_grad_norm(run)
    return {
        "run": str(run.relative_to(root)) if run != root else run.name,
        "overrides": " ".join(str(o) for o in overrides),
        "status": status.get("status", "unknown"),
        "val_acc_best": best,
        "test_acc": metrics.get("test/acc"),
        "epochs": metrics.get("epochs", len(curve) or None),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "grad_first_over_last": grad_norm[0] / grad_norm[-1] if grad_norm else None,
        "error": status.get("error", ""),
        "curve": curve,
        "grad_norm": grad_norm,
    }


def _last_grad_norm(run: Path) -> list[float]:
    """The gradient norm at each word in the run's last probed epoch (seqclf.gradflow), if any."""
    try:
        return json.loads((run / GRAD_FLOW_FILE).read_text())["grad_norm"][-1]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return []


def summarize(trainer: L.Trainer, out: Path) -> dict:
    """What a comparison of runs needs from a finished fit: best validation accuracy and its
    checkpoint, epochs, steps and timings."""
    metrics: dict = {}
    ckpt = trainer.checkpoint_callback
    best = trainer.lightning_module.best_val_acc
    if best is not None:
        metrics["val/acc_best"] = best
    if ckpt is not None and ckpt.best_model_path:
        metrics["best_checkpoint"] = os.path.relpath(ckpt.best_model_path, out)
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    timer = next((c for c in trainer.callbacks if isinstance(c, EpochTimer)), None)
    if timer is not None and timer.epoch_s:
        metrics["seconds_per_epoch"] = statistics.median(timer.epoch_s)
        metrics["epoch_seconds"] = [round(s, 4) for s in timer.epoch_s]
        metrics["epoch_cpu_seconds"] = [round(s, 4) for s in timer.epoch_cpu_s]
        metrics["first_step_seconds"] = timer.first_step_s
    return metrics


def table(metrics: dict) -> str:
    rows = [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in metrics.items() if not isinstance(v, list)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    # 4 significant digits: accuracies to 0.0001, seconds to 0.01, ratios of 1e-6 readable
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_summary(folder: str | Path) -> list[dict[str, Any]]:
    """Write summary.csv, summary.md and summary.png into ``folder``; return the rows."""
    folder = Path(folder).resolve()
    rows = [summarize_run(run, folder) for run in find_runs(folder)]
    scored = [row for row in rows if row["status"] == "completed" and row["val_acc_best"] is not None]
    best = max(scored, key=lambda row: row["val_acc_best"], default=None)
    for row in rows:
        row["best"] = "best" if row is best else ""
    with (folder / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: _fmt(v) for k, v in row.items()} for row in rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        cells = [_fmt(row[c]).replace("|", "\\|").replace("\n", " ") for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    _plot(rows, folder)
    return rows


def _labels(rows: list[dict[str, Any]]) -> list[str]:
    """Each run's legend label: only the overrides that differ between runs (the swept ones)."""
    shared = set.intersection(*(set(row["overrides"].split()) for row in rows)) if len(rows) > 1 else set()
    labels = []
    for row in rows:
        label = " ".join(o for o in row["overrides"].split() if o not in shared) or row["run"]
        labels.append(f"{label} ({row['status']})")
    return labels


def _plot(rows: list[dict[str, Any]], folder: Path) -> None:
    labels = _labels(rows)
    plots.epoch_curves(
        [(label, row["curve"]) for label, row in zip(labels, rows, strict=True)],
        folder / "summary.png",
        ylabel="validation accuracy",
        title="val/acc per epoch",
    )
    probed = [(label, row["grad_norm"]) for label, row in zip(labels, rows, strict=True) if row["grad_norm"]]
    if probed:
        plots.position_curves(
            probed,
            "|dLoss/dx_t| (batch mean, log scale)",
            "gradient reaching each word, last epoch",
            log_y=True,
            path=folder / "grad_flow.png",
        )


class SweepSummary(Callback):
    """Hydra callback: names job folders by their swept values, and when the multirun ends
    summarises its jobs and fails the command if any job failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        swept = [o.key_or_group for o in overrides if o.is_sweep_override()]
        swept += list(OmegaConf.select(config, "hydra.sweeper.params") or {})  # a search's (Optuna) space
        # Read by seqclf.resolvers.job_dirname (hydra.sweep.subdir); launchers' workers inherit it.
        os.environ[SWEEP_KEYS_ENV] = ",".join(swept)
        storage = OmegaConf.select(config, "hydra.sweeper.storage")
        if isinstance(storage, str) and storage.startswith("sqlite:///"):  # sqlite creates no folders
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir)
        failed = [row for row in rows if row["status"] != "completed"]
        log.info("Sweep summary (%d jobs) in %s:\n%s", len(rows), sweep_dir, (sweep_dir / "summary.md").read_text())
        if failed:
            names = ", ".join(row["overrides"] or row["run"] for row in failed)
            print(f"seqclf-train: error: {len(failed)} of {len(rows)} jobs did not complete: {names}", file=sys.stderr)
            sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    description = __doc__.split("\n\n")[1].replace("``", "")  # the docstring's reST quotes, not for a terminal
    parser = argparse.ArgumentParser(prog="seqclf-report", description=description)
    parser.add_argument("folder", help="a sweep folder (outputs/train/multiruns/...) or a run folder")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir() or not find_runs(folder):
        parser.error(f"{folder} is neither a run folder (with .hydra/config.yaml) nor a folder containing runs")
    rows = write_summary(folder)
    print((folder / "summary.md").read_text(), end="")
    wrote = "summary.csv, summary.md, summary.png" + (" and grad_flow.png" if any(r["grad_norm"] for r in rows) else "")
    print(f"{len(rows)} run(s); wrote {wrote} in {folder}")


if __name__ == "__main__":
    main()
