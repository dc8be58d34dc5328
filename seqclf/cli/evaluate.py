"""`seqclf-eval ckpt_path=...`: test a checkpoint on the test split (data.test_split names another);
the metrics go to a JSON file beside the checkpoint, the per-class report and confusion matrix into
the eval's run folder. Everything about the model and its input comes from the checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from seqclf import CONF_DIR, cli, tasks, threads
from seqclf.cli import resolvers
from seqclf.cli.instantiate import instantiate
from seqclf.errors import SeqclfError
from seqclf.runs import checkpoints, files, reports, summary

if TYPE_CHECKING:  # Lightning loads when the evaluation starts: a refused command answers before it
    import lightning as L
    import torch

log = logging.getLogger(__name__)
resolvers.register()  # before Hydra composes the run folder's name


# The data settings that say which columns hold what, which a checkpoint's DataModule records.
COLUMN_SETTINGS = ("text_column", "label_column", "label_names", "tokens_column", "tags_column", "tag_names")


def _given(cfg: DictConfig) -> set[str]:
    """The keys this command's own overrides set (``data``, ``data.path``, ...)."""
    from hydra.core.hydra_config import HydraConfig

    task = OmegaConf.select(cfg, "hydra.overrides.task")
    if task is None and HydraConfig.initialized():
        task = HydraConfig.get().overrides.task
    return {str(o).split("=", 1)[0].lstrip("+~") for o in task or []}


def _columns_of(ckpt: dict, cfg: DictConfig) -> None:
    """The columns the model was trained on, unless this command names them or another preset: a
    checkpoint trained with data.text_column=description reads that column again."""
    saved, given = ckpt.get("datamodule_hyper_parameters") or {}, _given(cfg)
    if "data" in given:
        return
    with open_dict(cfg):
        for key in COLUMN_SETTINGS:
            if key in saved and key in cfg.data and f"data.{key}" not in given:
                cfg.data[key] = saved[key]


def prepare(cfg: DictConfig) -> tuple[Path, torch.nn.Module, L.LightningDataModule]:
    """The checkpoint's path, its model and the DataModule that encodes the test split with its
    tokenizer: every check seqclf-eval makes before it reads any data."""
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise SeqclfError("ckpt_path is required: seqclf-eval ckpt_path=path/to/checkpoint.ckpt [data.path=DIR]")
    path = Path(cfg.ckpt_path).expanduser().resolve()
    ckpt = checkpoints.load(path)
    task = tasks.of_checkpoint(ckpt)
    _columns_of(ckpt, cfg)
    if cfg.data.get("_target_") in [tasks.TASKS[other].datamodule for other in task.reads_data_of]:
        with open_dict(cfg):  # e.g. a generator reads classification data: the same settings, its own DataModule
            cfg.data._target_ = task.datamodule
    if cfg.data.get("_target_") != task.datamodule:
        raise SeqclfError(
            f"{path} is a {task.name} checkpoint, and data={OmegaConf.select(cfg, 'hydra.runtime.choices.data')} is "
            f"not {task.name} data; name the data it was trained on, e.g. data=conll2003 or data=imdb_punctuation "
            "(its settings are in the run's .hydra/config.yaml)."
        )
    model = checkpoints.model(ckpt, path)
    tokenizer = checkpoints.tokenizer(ckpt, path)
    fixed = {"vocab_size": tokenizer.vocab_size, "max_len": tokenizer.max_len, "padding": tokenizer.padding,
             "truncation": tokenizer.truncation}  # fmt: skip
    ignored = [key for key in fixed if f"data.{key}" in _given(cfg) and cfg.data.get(key) != fixed[key]]
    if ignored:
        raise SeqclfError(
            f"{', '.join(f'data.{k}={cfg.data.get(k)}' for k in ignored)}: the checkpoint's tokenizer decides how its "
            f"texts are read ({', '.join(f'{k}={fixed[k]}' for k in ignored)}), so this setting would be ignored. "
            "Drop it; to read texts otherwise, train a model that does."
        )
    labels = checkpoints.labels(ckpt).to_dict()
    return path, model, instantiate(cfg.data, tokenizer=tokenizer.to_json(), labels=labels, splits=["test"])


def evaluate(cfg: DictConfig) -> dict:
    path, model, datamodule = prepare(cfg)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    with threads.registered():
        # evaluation as a training run evaluates: batches side by side, a thread each, so the numbers
        # are those of the run's own test for the same batches
        threads.plan("auto", 0, threads.model_work(model.hparams, datamodule.eval_batch_size, datamodule.max_len))
        threads.use("eval")
        tested = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    metrics = {k: float(v) for k, v in tested.items()}
    result = {
        "checkpoint": str(path),
        "data": datamodule.path or datamodule.hub_name,
        "split": datamodule.split_names["test"][0],
        "test_texts": len(datamodule.test_set),
        **metrics,
    }
    target = path.with_suffix(".test.json")
    files.write_json(target, result)
    # a classifier's per-class report and confusion matrix, a tagger's per-type report; a generator has none
    written = reports.write(cfg.paths.output_dir, model.reports["test"]) if "test" in model.reports else []
    also = f"; reports: {', '.join(str(p) for p in written)}" if written else ""
    log.info("Test metrics of %s (written to %s%s):\n%s", path, target, also, summary.table(metrics))
    return result


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    from seqclf.lightning import messages

    messages.once()
    with cli.errors_as_messages("seqclf-eval"):
        evaluate(cfg)


def console() -> None:
    """The seqclf-eval command: the overrides and the checkpoint are checked before Hydra creates
    a run folder (seqclf.cli.check_overrides)."""
    cli.console("eval", "seqclf-eval", main, check=lambda cfg, overrides: prepare(cfg))


if __name__ == "__main__":
    console()
