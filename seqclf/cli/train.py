"""`seqclf-train` / `python -m seqclf.cli.train`: wire data, model, callbacks, loggers and trainer from
the Hydra config, fit, then test the best checkpoint. The work itself lives in the modules."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

import seqclf
from seqclf import CONF_DIR, cli
from seqclf.atomic import check_writable
from seqclf.cli import resolvers, study
from seqclf.errors import SeqclfError
from seqclf.runs import files, folders

if TYPE_CHECKING:
    from seqclf import threads

# Lightning and torch are imported where training needs them: `seqclf-train --help` and a mistyped
# setting answer before they load (docs/performance.md, Start-up).
log = logging.getLogger(__name__)
resolvers.register()  # before Hydra composes the run folder's name


def train(cfg: DictConfig) -> dict:
    """Check ``cfg``, then train and test (seqclf-train's main, after its own checks, calls ``_train``)."""
    from seqclf.cli.config import validate

    validate(cfg)
    return _train(cfg)


def _train(cfg: DictConfig) -> dict:
    from seqclf import threads

    with threads.registered():
        return _fit_and_test(cfg)


def _fit_and_test(cfg: DictConfig) -> dict:
    import lightning as L
    from hydra.utils import get_class

    from seqclf.cli.config import chosen_model_settings
    from seqclf.cli.instantiate import instantiate, instantiate_all
    from seqclf.lightning import signals, tracking
    from seqclf.runs import checkpoints, reports, summary
    from seqclf.tasks.classify import pretrained

    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = cfg.get("ckpt_path")
    ckpt = checkpoints.load(ckpt_path) if ckpt_path else None  # safely, before Lightning loads it
    if ckpt is not None:  # its own model unless the command chose another; fail now, not after loading the data
        with open_dict(cfg):
            adopted = checkpoints.adopt_model(ckpt, cfg.model, chosen_model_settings(cfg))
        if adopted:
            files.rank_zero_only(log.info)("The model's settings from %s: %s", ckpt_path, " ".join(adopted))
        checkpoints.check_model(ckpt, OmegaConf.to_container(cfg.model, resolve=True), ckpt_path)
        checkpoints.check_restart(ckpt, cfg, ckpt_path)
    plan = threads_plan(cfg, ckpt)  # before torch's first parallel work; the same counts for the whole run
    counts = (plan.train, plan.eval, plan.why)
    message = "Threads: %d for training; evaluation: %d batches at once, a thread each (%s)"
    files.rank_zero_only(log.info)(message, *counts)

    callbacks = instantiate_all(cfg.get("callbacks"))  # their settings are checked before the data is read
    given = {}  # a generator's vocabulary, with this run's length and sides, when the model starts from one
    start = None
    if cfg.model.get("init_from") and ckpt is not None:  # continued: the checkpoint holds the vocabulary and weights
        given["tokenizer"] = checkpoints.tokenizer(ckpt, ckpt_path).to_json()
    elif cfg.model.get("init_from"):
        start = pretrained.load(cfg.model.init_from, cfg.model)
        d = cfg.data
        given["tokenizer"] = pretrained.tokenizer(start, d.max_len, d.padding, d.truncation).to_json()
    loaded = None  # pretrained word vectors, read and checked against the encoder before the data
    if cfg.model.get("vectors") and ckpt is None:
        from seqclf.models import encoders
        from seqclf.models import vectors as word_vectors

        loaded = word_vectors.read(cfg.model.vectors)
        word_vectors.check_fits(encoders.build(encoders.spec(cfg.model.encoder), vocab_size=4), loaded)
    # The loader applies limit_train_batches: Lightning would count its blocks, not the batches in them.
    datamodule = instantiate(cfg.data, limit_train_batches=cfg.trainer.get("limit_train_batches"), **given)
    with signals.exit_on_signals(out):  # Lightning handles SIGTERM during fit; before it, seqclf does
        datamodule.prepare_data()
        datamodule.setup("fit")  # the vocabulary size, a model hyperparameter, comes from the data
    if start is not None:
        pretrained.warn_unknown(datamodule.train_set.x, start)
    files.rank_zero_only(datamodule.tokenizer.save)(out / "tokenizer.json")
    labels = datamodule.labels
    # the classes (tags) and their counts, hyperparameters too, come from the data
    inputs = get_class(cfg.model._target_).data_inputs(datamodule)
    model = instantiate(cfg.model, vocab_size=datamodule.tokenizer.vocab_size, **inputs)
    vectors = None  # what the pretrained word vectors gave the vocabulary, when the run starts from them
    if ckpt is not None:  # now with the vocabulary size too
        checkpoints.check_model(ckpt, dict(model.hparams), ckpt_path)
        del ckpt
    elif start is not None:  # a resumed run's weights are its checkpoint's
        pretrained.apply(start, model.net)
        files.rank_zero_only(log.info)(
            "The encoder (embedding and cells%s) starts from %s",
            ", the forward direction; the backward one afresh" if cfg.model.encoder.get("bidirectional") else "",
            start.path,
        )
    elif loaded is not None:
        vectors = word_vectors.apply(model.net.encoder, datamodule.tokenizer.vocab, loaded).to_dict()
        del loaded
        message = "The word embedding starts from %s (%s, %d-d): %d of the vocabulary's %d words found%s"
        extra = f", {vectors['subwords']} more built from their subwords" if vectors["subwords"] else ""
        files.rank_zero_only(log.info)(
            message, vectors["path"], vectors["format"], vectors["dim"], vectors["found"], vectors["words"], extra
        )
    if cfg.get("resume"):  # an MLflow logger continues the run's MLflow run
        tracking.continue_runs(cfg.get("logger"), out)
    with tracking.store_held(cfg.get("logger")):  # a sweep's jobs side by side create one store, one experiment
        loggers = instantiate_all(cfg.get("logger"))
        files.rank_zero_only(tracking.remember)(cfg.get("logger"), loggers, out)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, limit_train_batches=None)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    fit_summary = summary.fit_summary(trainer, out)  # before test() loads the best checkpoint's states

    test_metrics = {}
    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("No best checkpoint was saved; testing the final weights instead.")
        # verbose=False: Lightning's own table repeats, unrounded, what seqclf's result table prints
        test_metrics = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)[0]
    metrics = {
        **{k: float(v) for k, v in test_metrics.items()},
        **fit_summary,
        "labels": list(labels.names),
        "max_len": datamodule.max_len,  # the words per text (data.max_len=auto: as fitted to the training texts)
        "class_weights": weights.tolist() if (weights := getattr(model, "class_weight", None)) is not None else None,
        "threads": plan.to_dict(),
    }
    if vectors is not None:
        metrics["vectors"] = vectors
    if cfg.get("resume"):  # resumed in place: each earlier segment's results stay, oldest first
        earlier = files.read_metrics(out)
        if earlier:
            if "vectors" in earlier:  # what the run started from
                metrics["vectors"] = earlier["vectors"]
            metrics["history"] = [*earlier.pop("history", []), earlier]
    files.write_metrics(out, metrics)
    if "test" in model.reports:
        files.rank_zero_only(reports.write)(out, model.reports["test"])
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    files.rank_zero_only(tracking.record)(trainer.loggers, out, best)
    files.rank_zero_only(log.info)("Results (%s):\n%s", out, summary.table(metrics))
    return metrics


def threads_plan(cfg: DictConfig, ckpt: dict | None) -> threads.Plan:
    """The run's thread counts, from its settings (the model's and batches' sizes) and, when it
    continues a checkpoint, the counts recorded there."""
    from seqclf import threads
    from seqclf.data.settings import planned_length

    d, length = cfg.data, planned_length(cfg.data.max_len)
    return threads.plan(
        cfg.get("threads", "auto"),
        threads.model_work(cfg.model, d.batch_size, length),
        threads.model_work(cfg.model, d.eval_batch_size, length),
        recorded=(ckpt or {}).get("threads"),
    )


_jobs_started = 0  # jobs this process has run (a sweep's basic or joblib launcher runs several)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run one training job. In a multirun a failing job is recorded (status.json, the summary)
    and the sweep goes on; the command then exits non-zero (seqclf.runs.sweep.SweepSummary)."""
    from seqclf.lightning import messages

    messages.once()
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    out = Path(HydraConfig.get().runtime.output_dir)
    global _jobs_started
    if _jobs_started:  # a later job of a sweep in this process: first_step_seconds counts from its own start
        seqclf.START_TIME = time.perf_counter()
    _jobs_started += 1
    held = contextlib.ExitStack()
    try:  # refused before the run's status changes
        from seqclf.cli.config import validate

        if cfg.get("resume"):
            hydra_cfg = HydraConfig.get()
            cfg = folders.resume_config(cfg, hydra_cfg.overrides.task, hydra_cfg.runtime.choices)
        validate(cfg)
        if files.rank_zero_only.rank == 0:  # DDP's other processes run this too, in the folder the first one holds
            held.enter_context(folders.hold(out))
    except Exception as e:
        if multirun:
            files.write_status(out, "failed", error=f"{type(e).__name__}: {e}")
            _job_failed(e)
            return None
        message = cli.explain(e)
        if message is None:
            raise
        cli.fail("seqclf-train", message)
    with held:
        return _run(cfg, out, multirun)


def _job_failed(error: Exception) -> None:
    """A sweep job's failure in the log: a mistake the user can fix as its one paragraph, a crash with its traceback."""
    message = cli.explain(error)
    if message is None:
        log.exception("This job failed; the sweep goes on.")
    else:
        log.error("This job failed; the sweep goes on: %s", message)


def _run(cfg: DictConfig, out: Path, multirun: bool) -> float | None:
    """One job's training with its status.json kept, and a known error as one paragraph."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from seqclf.lightning import signals

    try:
        if cfg.get("resume"):
            log.info("Resuming %s from %s", out, cfg.ckpt_path)
        files.write_status(out, "running")
        with signals.hangup_as_interrupt():
            metrics = _train(cfg)  # validated in main
    except signals.HangUp:  # a closed terminal: recorded, and the exit status says which signal
        files.write_status(out, "interrupted", error="stopped by SIGHUP")
        cli.log_to_files(log, "Stopped by SIGHUP.")
        print(f"seqclf-train: stopped by SIGHUP; resume=<run folder> continues {out}.", file=sys.stderr)
        sys.exit(128 + signal.SIGHUP)
    except SIGTERMException:  # Lightning stops cleanly, then exits 0 unless told otherwise
        files.write_status(out, "interrupted", error="stopped by SIGTERM")
        cli.log_to_files(log, "Stopped by SIGTERM.")
        print(f"seqclf-train: stopped by SIGTERM; resume=<run folder> continues {out}.", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except (KeyboardInterrupt, SystemExit):
        files.write_status(out, "interrupted")
        raise
    except Exception as e:
        if files.rank_zero_only.rank != 0:  # into its train_ddp_process_<rank>.log, for the first one to read
            log.exception("%s rank %d", files.DDP_FAILURE, files.rank_zero_only.rank)
            raise
        error = f"{type(e).__name__}: {e}"
        cause = files.other_process_error(out)
        files.write_status(out, "failed", error=f"{cause} (in another DDP process; then {error})" if cause else error)
        if multirun:
            _job_failed(e)
            return None
        message = cli.explain(e)
        if message is None and cause:  # a crash elsewhere: its own traceback is in its log, not here
            cli.log_to_files(log, f"A DDP process failed first: {cause}")
            print(f"seqclf-train: a DDP process failed first: {cause} (the log is in {out}).", file=sys.stderr)
            sys.exit(1)
        if message is None:
            raise
        cli.log_to_files(log, message)  # the run's train.log keeps the reason too
        cli.fail("seqclf-train", message)
    files.write_status(out, "completed")
    return metrics.get(cfg.get("optimized_metric") or f"{cfg.get('monitor', 'val/acc')}_best")


def check_command(cfg: DictConfig, overrides: list[str]) -> None:
    """seqclf-train's checks before Hydra creates or touches a run folder (seqclf.cli.check_overrides):
    a refused command leaves no new folder behind and changes nothing in the run it names."""
    from seqclf.cli.config import validate

    if cfg.get("resume"):
        from seqclf.runs import checkpoints

        resumed = folders.resume_config(cfg, overrides, cfg.hydra.runtime.choices)
        validate(resumed)
        check_writable(resumed.resume, f"resume={cfg.resume}")
        with folders.hold(Path(resumed.resume)):  # free now, held again once the run starts
            pass
        ckpt = checkpoints.load(resumed.ckpt_path)
        if files.read_status(Path(resumed.resume)).get("status") == "completed":
            folders.check_left_to_do(resumed, ckpt)  # a finished run is not started again
        checkpoints.check_restart(ckpt, resumed, resumed.ckpt_path)
        check_writable(resumed.data.cache_dir, f"data.cache_dir={resumed.data.cache_dir}")
    else:
        validate(cfg)
        if not str(cfg.hydra.run.dir).strip():
            raise SeqclfError("hydra.run.dir='' names no folder; give the run a folder of its own (or leave it out).")
        run_dir = Path(cfg.hydra.run.dir).expanduser()
        if run_dir.exists() and not run_dir.is_dir():
            raise SeqclfError(f"hydra.run.dir={run_dir} is a file, not a folder; give a folder for the run.")
        # DDP's other processes are started in the first one's run folder (Lightning sets hydra.run.dir)
        if files.rank_zero_only.rank == 0 and folders.holds_results(run_dir.resolve()):
            raise SeqclfError(
                f"hydra.run.dir={run_dir} already holds a run; a new run there would overwrite its config, checkpoints "
                f"and metrics. Continue that run with resume={run_dir}, or give another folder."
            )
        if cfg.model.get("init_from"):
            from seqclf.tasks.classify import pretrained

            pretrained.load(cfg.model.init_from, cfg.model)
        if cfg.model.get("vectors"):
            from seqclf.models.checks import check_vectors_file

            check_vectors_file(cfg.model.vectors)
        chosen = "hydra.run.dir" if any(o.startswith("hydra.run.dir=") for o in overrides) else "paths.log_dir"
        check_writable(Path(cfg.hydra.run.dir).parent, f"{chosen}={OmegaConf.select(cfg, chosen)}")
        check_writable(cfg.data.cache_dir, f"data.cache_dir={cfg.data.cache_dir}")


def check_sweep(cfg: DictConfig) -> None:
    """seqclf-train -m's checks before Hydra starts: a search's study file, and a sweep folder that
    already holds runs (the jobs check their own values)."""
    study.check_storage(OmegaConf.select(cfg, "hydra.sweeper.storage"))
    sweep_dir = Path(str(OmegaConf.select(cfg, "hydra.sweep.dir"))).expanduser()
    if sweep_dir.is_dir():
        held = [run for run in files.find_runs(sweep_dir) if folders.holds_results(run)]
        if held:
            raise SeqclfError(
                f"hydra.sweep.dir={sweep_dir} already holds a sweep ({len(held)} run(s) with results, e.g. "
                f"{held[0].name}); a new sweep there would write its jobs over theirs. Give another folder (or leave "
                "hydra.sweep.dir out: each sweep gets a folder of its own)."
            )


def console() -> None:
    """The seqclf-train command: the overrides are checked first (seqclf.cli.check_overrides)."""
    cli.console("train", "seqclf-train", main, check=check_command, check_sweep=check_sweep)


if __name__ == "__main__":
    console()
