"""The files in a run folder that seqclf writes and later reads back: status.json, metrics.json,
the TensorBoard (or CSV) curves, the recorded overrides and the gradient probe's record. Each is
written and read here, by one function each, and a damaged one reads as missing, with a warning."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from seqclf import atomic, migrate
from seqclf.runs.folders import is_run

GRAD_FLOW_FILE = "grad_flow.json"  # GradientFlow's record in the run folder; seqclf-report's sweep plot reads it

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
METRICS_FILE = "metrics.json"
BASELINE_FILE = "baseline.json"  # seqclf-baseline's linear models on the run's split
# What a DDP process other than the first logs when it fails; other_process_error looks for it.
DDP_FAILURE = "This DDP process failed:"


def find_runs(folder: Path) -> list[Path]:
    """The run folder itself, or every run folder below a sweep folder (in job order)."""
    if is_run(folder):
        return [folder]

    def job_number(run: Path) -> tuple[int, str]:
        hydra_cfg = _read_yaml(run / ".hydra" / "hydra.yaml")
        num = OmegaConf.select(hydra_cfg, "hydra.job.num") if hydra_cfg is not None else None
        return (num if isinstance(num, int) else sys.maxsize, str(run))

    return sorted((p.parent.parent for p in folder.rglob(".hydra/config.yaml")), key=job_number)


def last_completed(folder: Path) -> Path | None:
    """The run below ``folder`` (runs and sweep jobs) that completed last, by when it wrote its status;
    a run still training, or one that failed, is never it."""
    done = [run for run in find_runs(folder) if read_status(run).get("status") == "completed"]
    return max(done, key=lambda run: ((run / STATUS_FILE).stat().st_mtime_ns, str(run)), default=None)


def _read_yaml(path: Path):
    """The YAML file's content; None if there is none, with a warning if it is damaged (a killed job
    can leave one cut short)."""
    if not path.is_file():
        return None
    try:
        return OmegaConf.load(path)
    except Exception as e:  # YAML's parser errors have no common base class worth naming
        log.warning("%s is unreadable (%s); read as missing.", path, str(e).splitlines()[0] if str(e) else e)
        return None


def _rank_zero_only():
    """Lightning's ``rank_zero_only`` (the same object, torch-free), its rank set as Lightning sets it
    when imported (the same environment variables), so the commands can ask before they import
    Lightning; Lightning keeps a rank already set. Imported when first used: a command that stops at
    a config error does not pay for lightning_utilities."""
    from lightning_utilities.core.rank_zero import rank_zero_only

    if not getattr(rank_zero_only, "rank", None):
        ranks = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
        rank_zero_only.rank = next((int(os.environ[k]) for k in ranks if k in os.environ), 0)
    return rank_zero_only


def __getattr__(name: str):
    if name == "rank_zero_only":
        return _rank_zero_only()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_json(path: Path, data: dict) -> None:
    """Atomically (a kill mid-write leaves the previous file), by the first process only: one writer
    per run, also under DDP."""
    if _rank_zero_only().rank == 0:
        atomic.write_json(path, data)


def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if there is none, with a warning if it is damaged."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("%s is unreadable (%s); read as missing.", path, e)
        return None
    if not isinstance(data, dict):
        log.warning("%s does not hold a JSON object; read as missing.", path)
        return None
    return data


def write_status(run: Path, status: str, **extra: Any) -> None:
    """``running`` at the start of a run, then ``completed``, ``failed`` (with the error) or ``interrupted``."""
    write_json(run / STATUS_FILE, {"status": status, **extra})


def read_status(run: Path) -> dict[str, Any]:
    status = _read_json(run / STATUS_FILE)
    if status is None:  # a run from before status files, or killed before it could write one
        return {"status": "completed" if (run / METRICS_FILE).is_file() else "unknown"}
    return status


def write_metrics(run: Path, metrics: dict[str, Any]) -> None:
    write_json(run / METRICS_FILE, metrics)


def read_metrics(run: Path) -> dict[str, Any]:
    return _read_json(run / METRICS_FILE) or {}


def write_baseline(run: Path, result: dict[str, Any]) -> None:
    write_json(run / BASELINE_FILE, result)


def read_baseline(run: Path) -> dict[str, Any]:
    """seqclf-baseline's best baseline of the run (by the validation score it chose by), or {}."""
    result = _read_json(run / BASELINE_FILE) or {}
    key = str(result.get("chosen_by") or "val/acc").removeprefix("val/")
    return max(result.get("baselines") or [], key=lambda b: b.get("val", {}).get(key, 0.0), default={})


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a logged scalar, from the run's TensorBoard events, else its CSV log."""
    return scalar_series(run, (tag,))[tag]


def scalar_series(run: Path, tags: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    """``scalars`` of several tags, each log of the run read once."""
    found: dict[str, list[tuple[int, float]]] = {}
    for events in (run / folder for folder in migrate.EVENT_FOLDERS):
        if all(tag in found for tag in tags) or not any(events.glob("events.out.tfevents.*")):
            continue
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        logging.getLogger("tensorboard").setLevel(logging.WARNING)  # it narrates every file it reads
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in set(tags) & set(acc.Tags()["scalars"]) - set(found):
            found[tag] = sorted((e.step, e.value) for e in acc.Scalars(tag))
    metrics_csv = run / "csv" / "metrics.csv"
    if not all(tag in found for tag in tags) and metrics_csv.is_file():
        with metrics_csv.open() as f:
            rows = list(csv.DictReader(f))
        for tag in set(tags) - set(found):
            found[tag] = [(int(row["step"]), float(row[tag])) for row in rows if row.get(tag)]
    return {tag: found.get(tag, []) for tag in tags}


def other_process_error(run: Path, wait_s: float = 2.0) -> str | None:
    """The error another DDP process logged before it died (``train_ddp_process_<rank>.log``), which
    is why this one failed too; None if there is none. Waits briefly: this process may notice the
    broken connection before the other has finished writing."""
    deadline = time.monotonic() + wait_s
    logs = sorted(run.glob("train_ddp_process_*.log"))
    while logs:
        for path in logs:
            lines = path.read_text(errors="replace").splitlines()
            failed = next((i for i, line in enumerate(lines) if DDP_FAILURE in line), None)
            if failed is not None:
                error = next((ln for ln in reversed(lines[failed:]) if ln and not ln.startswith(" ")), lines[failed])
                return f"{path.name}: {error.strip()}"
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return None


def run_overrides(run: Path) -> list[str]:
    """The run's command-line overrides, with those of each later ``resume=`` of it applied on top
    (a resume records its own in .hydra/resume-<time>/), in the order they were first given."""
    merged: dict[str, str] = {}
    files = [run / ".hydra" / "overrides.yaml", *sorted((run / ".hydra").glob("resume-*/overrides.yaml"))]
    for path in files:
        recorded = _read_yaml(path)
        if recorded is not None:
            for override in OmegaConf.to_container(recorded) or []:
                key = str(override).split("=", 1)[0].lstrip("+~")
                if key != "resume":
                    merged[key] = str(override)
    return list(merged.values())


def run_cell(run: Path) -> str | None:
    """The run's recurrent cell (rnn, lstm or gru), from its composed config (None: another encoder)."""
    config = _read_yaml(run / ".hydra" / "config.yaml")
    return None if config is None else OmegaConf.select(migrate.run_config(config), "model.encoder.cell")


def last_grad_norm(run: Path) -> list[float]:
    """The gradient norm at each word in the run's last probed epoch (seqclf.lightning.gradflow), if any."""
    record = _read_json(run / GRAD_FLOW_FILE) or {}
    norms = record.get("grad_norm")
    return norms[-1] if isinstance(norms, list) and norms and isinstance(norms[-1], list) else []
