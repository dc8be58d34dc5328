"""MLflow tracking beside TensorBoard (logger=mlflow, Lightning's MLFlowLogger): the run's MLflow run
recorded in its folder, so that a resumed run continues it; and, when the run ends, what the run
folder holds that TensorBoard shows as images and tables (the metrics, the test report, the
confusion matrix, the config) logged as the MLflow run's artifacts, with the checkpoint's path."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from seqclf.atomic import write_json
from seqclf.errors import SeqclfError
from seqclf.lightning import private

TARGET = "seqclf.lightning.tracking.MLflowLogger"
# Lightning's own, which a user's config may name instead (its resumed runs may refuse changed parameters).
TARGETS = (TARGET, "lightning.pytorch.loggers.MLFlowLogger", "lightning.pytorch.loggers.mlflow.MLFlowLogger")
RUN_FILE = "mlflow.json"  # in the run folder: the MLflow run(s) this run logs to
# The run folder's files an MLflow run gets as artifacts, when they are there.
ARTIFACTS = (
    "metrics.json",
    "test_report.csv",
    "confusion_matrix.png",
    "grad_flow.png",
    "grad_flow.json",
    "tokenizer.json",
    "train.log",
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
)


class MLflowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger, able to continue a run: MLflow refuses to change a logged parameter,
    and a resumed run logs its hyperparameters again, some perhaps changed (a larger
    ``eval_batch_size``, say); those go to tags, ``seqclf.resumed.<key>``, and new ones to params."""

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        logged = self.experiment.get_run(self.run_id).data.params
        if not logged:
            return super().log_hyperparams(params)
        flat = {k: str(v)[:250] for k, v in private.logged_params(params).items()}  # as Lightning cuts them
        new = {k: v for k, v in flat.items() if k not in logged}
        if new:
            super().log_hyperparams(new)
        for key, value in flat.items():
            if key in logged and logged[key] != value:
                self.experiment.set_tag(self.run_id, f"seqclf.resumed.{key}", value)
        return None


def _nodes(loggers: DictConfig | None) -> dict[str, DictConfig]:
    if not loggers:
        return {}
    return {name: node for name, node in loggers.items() if OmegaConf.is_dict(node) and node.get("_target_") in TARGETS}


def continue_runs(loggers: DictConfig | None, run_dir: Path) -> None:
    """A resumed run's MLflow loggers continue the MLflow runs its folder recorded (``run_id``)."""
    recorded = read(run_dir)
    for name, node in _nodes(loggers).items():
        if name in recorded and node.get("run_id") is None:
            with open_dict(node):
                node.run_id = recorded[name]["run_id"]


def read(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise SeqclfError(
            f"{path} is not the JSON seqclf writes (the MLflow run this run logs to); it was changed by hand or cut "
            "short. Delete it to log the resumed run as a new MLflow run."
        ) from None


@contextlib.contextmanager
def store_held(loggers: DictConfig | None) -> Iterator[None]:
    """Hold each local (sqlite) MLflow store for this process while its loggers are built and their
    runs created: a sweep's jobs side by side (the joblib launcher), or two runs started at once,
    would otherwise both create a new store's tables (sqlite: "duplicate column name") or the same
    experiment. The kernel's lock (flock) beside the store, released when the process ends."""
    with contextlib.ExitStack() as held:
        for node in _nodes(loggers).values():
            uri = str(node.get("tracking_uri") or "")
            if uri.startswith("sqlite:///"):
                store = Path(uri.removeprefix("sqlite:///"))
                store.parent.mkdir(parents=True, exist_ok=True)
                lock = held.enter_context(open(store.with_name(store.name + ".lock"), "a+"))  # noqa: SIM115
                fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def remember(config: DictConfig | None, loggers: list, run_dir: Path) -> None:
    """Write the MLflow run of each MLflow logger to the run folder. ``loggers``: the config group
    ``config`` instantiated (seqclf.cli.instantiate.instantiate_all), in its order."""
    built = [(name, node) for name, node in (config or {}).items() if node and "_target_" in node]
    runs = {}
    for (name, node), logger in zip(built, loggers, strict=True):
        if isinstance(logger, MLFlowLogger):
            if node.get("run_id") is None:
                _create_experiment(node)
            runs[name] = {"run_id": logger.run_id, "experiment_id": logger.experiment_id,
                          "tracking_uri": node.get("tracking_uri")}  # fmt: skip
    if runs:
        write_json(Path(run_dir) / RUN_FILE, runs)


def _create_experiment(node: DictConfig) -> None:
    """The logger's experiment, created unless there: a sweep's jobs run side by side (the joblib
    launcher) all find it missing, and the one that creates it second would fail in Lightning's
    logger; here that one finds it made."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(node.get("tracking_uri"))
    name = node.get("experiment_name") or "lightning_logs"
    if client.get_experiment_by_name(name) is not None:
        return
    try:
        client.create_experiment(name, artifact_location=node.get("artifact_location"))
    except MlflowException:
        if client.get_experiment_by_name(name) is None:  # not the other job's: a real failure
            raise


def mlflow_loggers(trainer) -> list:
    return [lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)] if trainer.is_global_zero else []


def log_images(trainer, images: dict) -> None:
    """Images (HWC arrays) that TensorBoard gets, to the MLflow runs too: each under its tag, at this step."""
    for logger in mlflow_loggers(trainer):
        for tag, image in images.items():
            logger.experiment.log_image(logger.run_id, image, key=tag, step=trainer.global_step)


def log_text(trainer, tag: str, text: str) -> None:
    """Text that TensorBoard gets (a generator's samples), to the MLflow runs too: ``<tag>/step_<step>.txt``."""
    for logger in mlflow_loggers(trainer):
        logger.experiment.log_text(logger.run_id, text, f"{tag}/step_{trainer.global_step:06d}.txt")


def record(loggers: Iterable, run_dir: Path, checkpoint: str) -> None:
    """The run folder's results as each MLflow run's artifacts, and the checkpoint's path as a tag."""
    for logger in loggers:
        if not isinstance(logger, MLFlowLogger):
            continue
        client, run_id = logger.experiment, logger.run_id
        client.set_tag(run_id, "seqclf.run_dir", str(run_dir))
        if checkpoint:
            client.set_tag(run_id, "seqclf.checkpoint", checkpoint)
        for name in ARTIFACTS:
            path = Path(run_dir) / name
            if path.is_file():
                folder = str(Path(name).parent) if Path(name).parent != Path(".") else None
                client.log_artifact(run_id, str(path), folder)
