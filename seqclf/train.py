"""`seqclf-train` / `python -m seqclf.train`: wire data, model, callbacks, loggers and trainer from
the Hydra config, fit, then test the best checkpoint. The work itself lives in the modules."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import hydra
import lightning as L
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

import seqclf
from seqclf import checkpoints, cli, report, threads
from seqclf.config import is_run, validate
from seqclf.errors import SeqclfError
from seqclf.instantiate import instantiate, instantiate_all

log = logging.getLogger(__name__)

# The configs ship inside the package in a wheel, and beside it in a source checkout.
_HERE = Path(__file__).resolve().parent
CONF_DIR = str(_HERE / "conf" if (_HERE / "conf").is_dir() else _HERE.parent / "conf")


def load_config(overrides: list[str] | tuple = (), output_dir: str | Path | None = None) -> DictConfig:
    """The shipped config composed outside `seqclf-train` (tests, benchmarks, notebooks), with every
    path under ``output_dir`` (the run in ``output_dir/run``, the data cache in ``output_dir/cache``)."""
    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = hydra.compose("train", overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        root = Path(output_dir).resolve()
        with open_dict(cfg):
            cfg.paths.root_dir = str(root)
            cfg.paths.log_dir = str(root / "outputs")
            cfg.paths.output_dir = str(root / "run")
            cfg.paths.cache_dir = str(root / "cache")
    HydraConfig.instance().set_config(cfg)  # for `${hydra:...}` interpolations
    return cfg


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
    if not is_run(run):
        raise SeqclfError(
            f"resume={resume}: {run} is not a seqclf run folder (it has no .hydra/config.yaml). "
            "Give the folder of an earlier run, e.g. resume=outputs/train/runs/<date_time>."
        )
    resumed = OmegaConf.load(run / ".hydra" / "config.yaml")
    unknown = config_targets(resumed) - shipped_targets()
    if unknown:
        raise SeqclfError(
            f"resume={resume}: its .hydra/config.yaml asks to build {', '.join(sorted(unknown))}, which no "
            "seqclf config builds. A run folder is data: resuming it builds only what seqclf's own configs can. "
            "Remove those entries from the file, or start a new run."
        )
    return run, resumed


def check_command(cfg: DictConfig) -> None:
    """seqclf-train's checks before Hydra creates or touches a run folder (seqclf.cli.check_overrides)."""
    if cfg.get("resume"):
        resumable(cfg.resume)
    else:
        validate(cfg)


def resume_config(cfg: DictConfig) -> DictConfig:
    """``resume=<run folder>``: that run's own composed config, with this command's value overrides
    on top (e.g. a larger ``trainer.max_epochs``), writing into the same folder, continuing from its
    newest checkpoint."""
    run, resumed = resumable(cfg.resume)
    old_choices = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra.runtime.choices
    hydra_cfg = HydraConfig.get()
    for override in hydra_cfg.overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "resume":
            continue
        if key in hydra_cfg.runtime.choices:  # a config group such as model=gru
            if hydra_cfg.runtime.choices[key] != old_choices.get(key):
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
    log.info("Resuming %s from %s", run, resumed.ckpt_path)
    return resumed


def train(cfg: DictConfig) -> dict:
    validate(cfg)
    with threads.share(cfg.get("threads", "auto")):  # set before torch's first parallel work
        return _train(cfg)


def _train(cfg: DictConfig) -> dict:
    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = cfg.get("ckpt_path")
    ckpt = checkpoints.load(ckpt_path) if ckpt_path else None  # safely, before Lightning loads it
    if ckpt is not None:  # fail now, not after loading the data
        checkpoints.check_model(ckpt, OmegaConf.to_container(cfg.model, resolve=True), ckpt_path)

    callbacks = instantiate_all(cfg.get("callbacks"))  # their settings are checked before the data is read
    # The loader applies limit_train_batches: Lightning would count its blocks, not the batches in them.
    datamodule = instantiate(cfg.data, limit_train_batches=cfg.trainer.get("limit_train_batches"))
    datamodule.prepare_data()
    datamodule.setup("fit")  # the vocabulary size, a model hyperparameter, comes from the data
    rank_zero_only(datamodule.tokenizer.save)(out / "tokenizer.json")
    model = instantiate(cfg.model, vocab_size=datamodule.tokenizer.vocab_size)
    if ckpt is not None:  # now with the vocabulary size too
        checkpoints.check_model(ckpt, dict(model.hparams), ckpt_path)
        del ckpt
    loggers = instantiate_all(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, limit_train_batches=None)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    fit_summary = report.summarize(trainer, out)  # before test() loads the best checkpoint's states

    test_metrics = {}
    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("No best checkpoint was saved; testing the final weights instead.")
        # verbose=False: Lightning's own table repeats, unrounded, what seqclf's result table prints
        test_metrics = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)[0]
    metrics = {**{k: float(v) for k, v in test_metrics.items()}, **fit_summary, "threads": threads.history()}
    report.write_json(out / "metrics.json", metrics)
    rank_zero_only(log.info)("Results (%s):\n%s", out, report.table(metrics))
    return metrics


_jobs_started = 0  # jobs this process has run (a sweep's basic or joblib launcher runs several)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run one training job. In a multirun a failing job is recorded (status.json, the summary)
    and the sweep goes on; the command then exits non-zero (seqclf.report.SweepSummary)."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    out = Path(HydraConfig.get().runtime.output_dir)
    global _jobs_started
    if _jobs_started:  # a later job of a sweep in this process: first_step_seconds counts from its own start
        seqclf.START_TIME = time.perf_counter()
    _jobs_started += 1
    if cfg.get("resume"):
        # A refused resume= leaves the run it names as it was (its status.json included).
        with cli.errors_as_messages("seqclf-train"):
            cfg = resume_config(cfg)
    try:
        report.write_status(out, "running")
        metrics = train(cfg)
    except SIGTERMException:  # Lightning stops cleanly, then exits 0 unless told otherwise
        report.write_status(out, "interrupted")
        cli.log_to_files(log, "Stopped by SIGTERM.")
        print(f"seqclf-train: stopped by SIGTERM; resume=<run folder> continues {out}.", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except (KeyboardInterrupt, SystemExit):
        report.write_status(out, "interrupted")
        raise
    except Exception as e:
        report.write_status(out, "failed", error=f"{type(e).__name__}: {e}")
        if multirun:
            log.exception("This job failed; the sweep goes on.")
            return None
        message = cli.explain(e)
        if message is None:
            raise
        cli.log_to_files(log, message)  # the run's train.log keeps the reason too
        cli.fail("seqclf-train", message)
    report.write_status(out, "completed")
    return metrics.get("val/acc_best")


def console() -> None:
    """The seqclf-train command: the overrides are checked first (seqclf.cli.check_overrides)."""
    cli.check_overrides(CONF_DIR, "train", sys.argv[1:], "seqclf-train", check=check_command)
    main()


if __name__ == "__main__":
    console()
