"""logger=mlflow: a run's hyperparameters, every curve TensorBoard gets, its images and its result
files reach a local MLflow store under outputs/, read back here with MLflow's own client; a
resumed run continues its MLflow run; a sweep is one experiment with a run per job, its jobs side
by side too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import TINY, TOPIC_COLUMNS, compose_train, run_seqclf
from omegaconf import OmegaConf

from seqclf.errors import SeqclfError
from seqclf.lightning import tracking

mlflow = pytest.importorskip("mlflow")


def client_of(run: Path):
    recorded = json.loads((run / tracking.RUN_FILE).read_text())["mlflow"]
    return mlflow.tracking.MlflowClient(recorded["tracking_uri"]), recorded["run_id"]


def artifacts(client, run_id: str, folder: str | None = None) -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, folder):
        out += artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def tensorboard_scalars(run: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in run.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, topics_dir):
    """A tiny classification run logging to TensorBoard and MLflow: (its folder, the work folder, env)."""
    work = tmp_path_factory.mktemp("mlflow")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "SEQCLF_CACHE_DIR": str(work / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [*TINY, f"data.path={topics_dir}", *TOPIC_COLUMNS, "logger=[tensorboard,mlflow]"]
    done = run_seqclf("train", *args, env=env, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (work / "outputs" / "train" / "runs").iterdir()
    return run, work, env


def test_an_mlflow_run_gets_what_tensorboard_gets_and_the_runs_files(tracked_run):
    run, work, _ = tracked_run
    client, run_id = client_of(run)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == run.name
    assert client.get_experiment(got.info.experiment_id).name == "train"
    # the same curves, at the same steps
    assert set(got.data.metrics) == tensorboard_scalars(run) and "val/acc" in got.data.metrics
    steps = [m.step for m in client.get_metric_history(run_id, "val/acc")]
    assert steps == sorted(steps) and len(steps) >= 1
    # the model's and data's hyperparameters, nested keys joined as Lightning joins them
    params = got.data.params
    assert params["encoder/cell"] == "lstm" and params["label_column"] == "topic" and "optimizer/lr" in params
    files = artifacts(client, run_id)
    for name in ("metrics.json", "test_report.csv", "confusion_matrix.png", ".hydra/config.yaml", "train.log"):
        assert name in files, files
    assert any(f.startswith("images/val~confusion_matrix") and f.endswith(".png") for f in files), files
    assert Path(got.data.tags["seqclf.checkpoint"]).is_file()
    assert got.data.tags["seqclf.run_dir"] == str(run)
    # the store and its artifacts under outputs/, nothing else beside them
    assert sorted(p.name for p in (work / "outputs").iterdir()) == ["mlflow-artifacts", "mlflow.db", "mlflow.db.lock",
                                                                   "train"]  # fmt: skip
    assert sorted(p.name for p in work.iterdir()) == ["cache", "outputs"]


@pytest.mark.slow  # a resume and a sweep: pytest -m slow (CI runs both)
def test_a_resumed_run_continues_its_mlflow_run_and_a_sweep_is_one_experiment(tmp_path, topics_dir, cli_env):
    cli_env.pop("MLFLOW_TRACKING_URI", None)
    args = [*TINY, f"data.path={topics_dir}", *TOPIC_COLUMNS, "logger=mlflow"]
    done = run_seqclf("train", *args, "hydra.run.dir=outputs/first", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "outputs" / "first"
    client, run_id = client_of(run)
    before = len(client.get_metric_history(run_id, "val/acc"))
    more = run_seqclf("train", f"resume={run}", "trainer.max_epochs=4", "data.eval_batch_size=32", env=cli_env,
                      cwd=tmp_path)  # fmt: skip
    assert more.returncode == 0, more.stderr[-3000:]
    assert client_of(run)[1] == run_id
    got = client.get_run(run_id)
    assert len(client.get_metric_history(run_id, "val/acc")) > before and got.info.status == "FINISHED"
    # MLflow keeps a parameter's first value; the resumed run's change is a tag
    assert got.data.params["eval_batch_size"] != "32" and got.data.tags["seqclf.resumed.eval_batch_size"] == "32"
    assert len(client.search_runs([got.info.experiment_id])) == 1

    # Two jobs side by side on a new store: one creates its tables and the sweep's experiment, the other waits.
    (fresh := tmp_path / "fresh").mkdir()
    side_by_side = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    sweep = run_seqclf("train", "-m", *args, "model=rnn,gru", *side_by_side, env=cli_env, cwd=fresh)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    (folder,) = (fresh / "outputs" / "train" / "multiruns").iterdir()
    client = mlflow.tracking.MlflowClient(f"sqlite:///{fresh}/outputs/mlflow.db")
    experiment = client.get_experiment_by_name(f"train/{folder.name}")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["model=gru", "model=rnn"]
    assert {r.data.params["encoder/cell"] for r in runs} == {"rnn", "gru"}


def test_the_store_is_under_outputs_unless_mlflow_tracking_uri_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    node = compose_train(tmp_path, ["logger=mlflow"]).logger.mlflow
    assert node.tracking_uri == f"sqlite:///{tmp_path}/outputs/mlflow.db"
    assert node.artifact_location == f"{tmp_path}/outputs/mlflow-artifacts" and node.experiment_name == "train"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://localhost:5000")
    assert compose_train(tmp_path, ["logger=mlflow"]).logger.mlflow.tracking_uri == "http://localhost:5000"


def test_a_damaged_record_of_the_mlflow_run_is_one_paragraph(tmp_path):
    (tmp_path / tracking.RUN_FILE).write_text("{not json")
    loggers = OmegaConf.create({"mlflow": {"_target_": tracking.TARGET, "run_id": None}})
    with pytest.raises(SeqclfError, match="mlflow.json is not the JSON seqclf writes.*Delete it"):
        tracking.continue_runs(loggers, tmp_path)
    (tmp_path / tracking.RUN_FILE).write_text(json.dumps({"mlflow": {"run_id": "abc"}}))
    tracking.continue_runs(loggers, tmp_path)
    assert loggers.mlflow.run_id == "abc"
