"""`seqclf-train` / `python -m seqclf.train`: wire data, model, callbacks, loggers and trainer from
the Hydra config, fit, then test the best checkpoint. The work itself lives in the modules."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import lightning as L
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from seqclf import reporting
from seqclf.config import validate
from seqclf.errors import SeqclfError

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


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a config group such as ``callbacks`` or ``logger``."""
    return [hydra.utils.instantiate(node) for node in (group or {}).values() if node and "_target_" in node]


def train(cfg: DictConfig) -> dict:
    validate(cfg)
    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")  # the vocabulary size, a model hyperparameter, comes from the data
    datamodule.tokenizer.save(out / "tokenizer.json")
    model = hydra.utils.instantiate(cfg.model, vocab_size=datamodule.tokenizer.vocab_size)
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=instantiate_all(cfg.get("callbacks")),
        logger=instantiate_all(cfg.get("logger")),
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))

    test_metrics = {}
    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("No best checkpoint was saved; testing the final weights instead.")
        test_metrics = trainer.test(model, datamodule=datamodule, ckpt_path=best or None)[0]
    metrics = reporting.summarize(trainer, test_metrics, out)
    reporting.write_json(out / "metrics.json", metrics)
    log.info("Results (%s):\n%s", out, reporting.table(metrics))
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        return train(cfg).get("val/acc_best")
    except SeqclfError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # let the sweep record this job as failed
        print(f"seqclf-train: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
