"""The ``${seqclf.*}`` resolvers: conf/hydra/default.yaml's names of run and sweep-job folders, and the
monitored metric's mode and direction."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

from omegaconf import OmegaConf

from seqclf.cli.study import trials_held
from seqclf.runs.folders import resume_target
from seqclf.tasks.monitor import direction, monitor_mode

SWEEP_KEYS_ENV = "SEQCLF_SWEEP_KEYS"  # set by seqclf.runs.sweep.SweepSummary when a multirun starts


def job_dirname(task_overrides: list[str], job_num: int) -> str:
    """A multirun job's folder name: its values of the swept keys, as Hydra's override_dirname
    would write them (``model=gru,seed=2``), without the overrides every job shares (those can
    make a name longer than a file system allows). Paths' slashes become underscores, and the name gets a
    digest of what it was, so that two paths never share a folder."""
    swept = os.environ.get(SWEEP_KEYS_ENV)
    keys = set(swept.split(",")) if swept else None
    kept = sorted(o for o in task_overrides if keys is None or o.split("=", 1)[0].lstrip("+~") in keys)
    name = ",".join(kept)
    if "/" in name:  # a path's slashes cannot be in a folder's name; a digest keeps X/a/b and X/a_b apart
        name = f"{name.replace('/', '_')}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"
    name = name or f"job{job_num}"
    if len(name) > 200:
        name = f"{name[:180]}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


def study_seed(seed: int, storage: str | None, study_name: str | None) -> int:
    """The sampler's seed for this invocation of a search: ``seed`` plus the trials its study already
    holds. Optuna's sweeper re-opens a study to continue it, and a sampler seeded alike in each new
    process would propose the first trials again; the same command from an empty study still
    proposes the same trials. Storage other than a sqlite file keeps ``seed``."""
    return int(seed) + trials_held(storage, study_name)


def study_key(*facts) -> str:
    """What a search optimises, as a short name for its Optuna study (``val_acc-1a2b3c4d``): the data (its
    folder, resolved, or Hub name and config; its columns), the task's model and, last, the monitored
    metric. Searches of other data or another metric then keep studies of their own instead of feeding
    one TPE model and reporting one best value across them."""
    plain = [os.path.abspath(os.path.expanduser(str(f))) if i == 0 and f else f for i, f in enumerate(facts)]
    monitor = str(facts[-1]).replace("/", "_")  # the monitored metric comes last: readable in the name
    return f"{monitor}-{hashlib.sha1(repr(plain).encode()).hexdigest()[:8]}"


def mlflow_experiment(task_name: str) -> str:
    """logger=mlflow's experiment: the task's runs in one (``train``), each sweep in one of its own
    (``train/<sweep folder>``, a run per job)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return f"{task_name}/{os.path.basename(os.path.normpath(HydraConfig.get().sweep.dir))}"
    return str(task_name)


def basename(path: str) -> str:
    """A folder's own name (logger=mlflow's run name: the run folder's)."""
    return os.path.basename(os.path.normpath(str(path)))


def register() -> None:
    """Used by conf/hydra/default.yaml: a resumed run keeps its folder, and Hydra's record of the
    resuming command goes to .hydra/resume-<time>/, leaving the run's original config intact.
    ``seqclf.cwd`` is the start folder; `${hydra:runtime.cwd}` is not set yet when Hydra creates a
    sweep folder."""
    OmegaConf.register_new_resolver("seqclf.cwd", os.getcwd, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("seqclf.job_dirname", job_dirname, replace=True)
    # the monitored metric's mode (callbacks) and direction (the Optuna sweeper)
    OmegaConf.register_new_resolver("seqclf.mode", monitor_mode, replace=True)
    OmegaConf.register_new_resolver("seqclf.direction", direction, replace=True)
    OmegaConf.register_new_resolver("seqclf.study_seed", study_seed, replace=True)
    OmegaConf.register_new_resolver("seqclf.study_key", study_key, replace=True)
    OmegaConf.register_new_resolver("seqclf.mlflow_experiment", mlflow_experiment, replace=True)
    OmegaConf.register_new_resolver("seqclf.basename", basename, replace=True)
    OmegaConf.register_new_resolver(
        "seqclf.run_dir", lambda resume, default: resume_target(resume) or default, replace=True
    )
    OmegaConf.register_new_resolver(
        "seqclf.hydra_subdir",
        lambda resume: f".hydra/resume-{datetime.now():%Y-%m-%d_%H-%M-%S_%f}" if resume_target(resume) else ".hydra",
        replace=True,
        use_cache=True,
    )
