"""Run folders: recognise one, hold it while a process trains in it, and resume it. A run folder
is data: resuming one builds only what seqclf's own configs can build."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from seqclf import CONF_DIR, migrate
from seqclf.errors import NothingToDo, SeqclfError


def is_run(folder: Path) -> bool:
    """A run folder: one that Hydra wrote a composed config into."""
    return (folder / ".hydra" / "config.yaml").is_file()


def holds_results(folder: Path) -> bool:
    """A run folder with something a new run there would overwrite: a checkpoint, its metrics, or a
    completed status. A run that failed before its first checkpoint (bad data, say) holds none, and
    the same command, fixed, may run there again."""
    if not is_run(folder):
        return False
    from seqclf.runs import files

    checkpoints = folder / "checkpoints"
    return (
        (checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")))
        or (folder / files.METRICS_FILE).is_file()
        or files.read_status(folder).get("status") == "completed"
    )


def resume_target(resume: str | None) -> str | None:
    """The run folder ``resume=`` names, if it is one (else the run gets a new folder and fails there)."""
    if not resume:
        return None
    folder = Path(resume).expanduser().resolve()
    return str(folder) if is_run(folder) else None


@contextmanager
def hold(run: Path, advice: str = "wait for it to finish, or stop it, before resuming this run.") -> Iterator[None]:
    """Hold ``run`` for this process while it trains there: a second process (a second resume= of
    the same folder, a second sweep into one sweep folder) is refused, with ``advice``, instead of
    writing checkpoints and curves beside the first. The lock is the kernel's (flock), so a killed
    process releases it."""
    run.mkdir(parents=True, exist_ok=True)
    with open(run / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise SeqclfError(f"{run} is in use by another seqclf process (pid {holder}); {advice}") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:  # the file goes with the hold (a killed process leaves it, and the kernel's lock with it)
            (run / ".lock").unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)


_shipped_targets: set[str] = set()


def shipped_targets() -> set[str]:
    """Every ``_target_`` of the config files seqclf ships, read once: the check before a resume and
    the resume itself both ask. (A plain module variable, not functools.cache: joblib's workers
    unpickle this module's functions, and a cache wrapper does not pickle from ``__main__``.)"""
    if not _shipped_targets:
        _shipped_targets.update(config_targets(*(OmegaConf.load(p) for p in Path(CONF_DIR).rglob("*.yaml"))))
    return _shipped_targets


def config_targets(*configs) -> set[str]:
    """Every ``_target_`` (a class or function Hydra would build) anywhere in ``configs``."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("_target_"), str):
                found.add(node["_target_"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for cfg in configs:
        walk(OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg)
    return found


def resumable(resume: str) -> tuple[Path, DictConfig]:
    """The run folder ``resume=`` names and its composed config, if seqclf may resume it: a run
    folder is data, so its config may build only what seqclf's own configs can build."""
    run = Path(resume).expanduser().resolve()
    if run.is_file():
        raise SeqclfError(
            f"resume={resume} is a file; resume= takes a run folder (e.g. resume=outputs/train/runs/<date_time>) and "
            f"continues it in place. To start a new run from a checkpoint file, use ckpt_path={resume}."
        )
    if not is_run(run):
        raise SeqclfError(
            f"resume={resume}: {run} is not a seqclf run folder (it has no .hydra/config.yaml). "
            "Give the folder of an earlier run, e.g. resume=outputs/train/runs/<date_time>."
        )
    resumed = migrate.run_config(_load(run, "config.yaml", resume))
    unknown = config_targets(resumed) - shipped_targets()
    encoder = OmegaConf.select(resumed, "model.encoder._target_")
    if encoder in unknown:  # a user's own encoder: built only if it is an Encoder class
        from seqclf.models import encoders

        encoders.resolve(encoder)
        unknown.discard(encoder)
    if unknown:
        raise SeqclfError(
            f"resume={resume}: its .hydra/config.yaml asks to build {', '.join(sorted(unknown))}, which no "
            "seqclf config builds. A run folder is data: resuming it builds only what seqclf's own configs can. "
            "Remove those entries from the file, or start a new run."
        )
    return run, resumed


def _load(run: Path, name: str, resume: str) -> DictConfig:
    """A run folder's record in .hydra/, or one paragraph saying it is missing or damaged."""
    import yaml
    from omegaconf.errors import OmegaConfBaseException

    path = run / ".hydra" / name
    try:
        loaded = OmegaConf.load(path)
    except FileNotFoundError:
        problem = "is missing"
    except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException) as e:
        problem = f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    else:
        if isinstance(loaded, DictConfig):
            return loaded
        problem = "does not hold a mapping of settings"
    raise SeqclfError(
        f"resume={resume}: {path} {problem}; seqclf resumes a run from its .hydra/ record. Restore the file (from "
        "a copy of the run folder), or start a new run from its checkpoint with ckpt_path=<run>/checkpoints/last.ckpt."
    )


def resume_config(cfg: DictConfig, overrides: list[str], choices: DictConfig) -> DictConfig:
    """``resume=<run folder>``: that run's own composed config, with this command's value overrides
    on top (e.g. a larger ``trainer.max_epochs``), writing into the same folder, continuing from its
    newest checkpoint. ``cfg`` is this command's composed config, ``overrides`` its command line
    and ``choices`` its config groups (which must be the run's)."""
    from seqclf.runs import checkpoints  # torch: imported when a run is resumed, not by every command

    run, resumed = resumable(cfg.resume)
    old_choices = OmegaConf.select(_load(run, "hydra.yaml", cfg.resume), "hydra.runtime.choices", default={})
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "resume":
            continue
        if key in choices:  # a config group such as model=gru
            if choices[key] != old_choices.get(key):
                raise SeqclfError(
                    f"{override} contradicts the run being resumed ({key}={old_choices.get(key)}); a run cannot "
                    "change its config groups. Drop the override, or start a new run."
                )
            continue
        OmegaConf.update(resumed, key, OmegaConf.select(cfg, key), force_add=True)
    with open_dict(resumed):
        resumed.paths.output_dir = str(run)
        resumed.resume = str(run)
        resumed.ckpt_path = str(checkpoints.newest(run))
    return resumed


def check_left_to_do(resumed: DictConfig, ckpt: dict) -> None:
    """A completed run that has trained all its epochs (or steps) is not started again to re-test
    (a killed run's newest checkpoint, ``ckpt``, may count its last epoch processed before it was tested)."""
    epochs = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    max_epochs, max_steps = resumed.trainer.get("max_epochs"), resumed.trainer.get("max_steps", -1)
    if isinstance(epochs, int) and isinstance(max_epochs, int) and epochs >= max_epochs:
        raise NothingToDo(
            f"{resumed.resume} has already trained {epochs} epochs (trainer.max_epochs={max_epochs} asks for "
            f"{max_epochs}); add trainer.max_epochs=N with N more than {epochs} to train further. Its results are in "
            "its metrics.json."
        )
    if isinstance(max_steps, int) and max_steps > 0 and ckpt.get("global_step", 0) >= max_steps:
        raise NothingToDo(
            f"{resumed.resume} has already trained {ckpt['global_step']} steps (trainer.max_steps={max_steps} asks "
            f"for {max_steps}); add trainer.max_steps=N with N more than {ckpt['global_step']} to train further."
        )
