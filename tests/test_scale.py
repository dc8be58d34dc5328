"""Scaling out: DDP on CPU processes (gloo) and Hydra launcher plugins for sweeps."""

import csv
import json
import os
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from conftest import TINY, compose_train, run_seqclf, single_and_ddp

from seqclf.runs import files


def val_acc(run_dir: Path) -> list[float]:
    return [value for _, value in files.scalars(run_dir, "val/acc")]


@pytest.mark.slow
@pytest.mark.parametrize("data", ["imdb", "topics"])
def test_ddp_on_two_cpu_processes_writes_one_run_and_matches_a_single_process(tmp_path, data, request, cli_env):
    """2 ranks x batch 8 take the same steps as 1 process x batch 16: each epoch's order depends on
    the seed only, and rank r gets batches r, r+2, ... of it, so the averaged gradients are equal.
    Binary IMDB, and three topics with string labels, class weights and macro-F1 monitored."""
    # Whole evaluation splits: a limit counts batches per process, so 2 processes would see twice as many.
    evaluate_all = ["trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0"]
    dataset = {
        "imdb": [f"data.path={request.getfixturevalue('imdb_dir')}"],
        "topics": [f"data.path={request.getfixturevalue('topics_dir')}", "data.text_column=quip",
                   "data.label_column=topic", "model.class_weights=balanced", "monitor=val/f1_macro"],
    }[data]  # fmt: skip
    # The default eval batch holds the whole validation split: one batch for two processes.
    common = [*dataset, *TINY, "data.eval_batch_size=1024", *evaluate_all]
    single_dir, run_dir = single_and_ddp(tmp_path, common, cli_env)  # one run folder each
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch_001.ckpt", "last.ckpt"]
    metrics, single_metrics = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, single_dir))
    assert metrics["epochs"] == 1 and metrics["global_step"] == single_metrics["global_step"] == 4
    assert val_acc(run_dir) == pytest.approx(val_acc(single_dir), abs=1e-6)
    assert metrics["test/acc"] == pytest.approx(single_metrics["test/acc"], abs=1e-6)
    assert metrics["test/f1_macro"] == pytest.approx(single_metrics["test/f1_macro"], abs=1e-6)
    assert (run_dir / "test_report.csv").read_text() == (single_dir / "test_report.csv").read_text()
    a = torch.load(single_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.slow
def test_validation_reduced_across_ranks_equals_one_process(tmp_path, imdb_dir, cli_env):
    """The same checkpoint evaluated by 1 and by 2 processes gives the same accuracy."""
    common = [f"data.path={imdb_dir}", *TINY, "data.eval_batch_size=10", "trainer.limit_test_batches=1.0"]
    trained = run_seqclf("train", *common, env=cli_env, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    results = {}
    for name, extra in {
        "one": ["trainer=cpu"],
        "two": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"],
    }.items():
        done = run_seqclf("evaluate", f"ckpt_path={ckpt}", f"data.path={imdb_dir}", "data.eval_batch_size=10",
                          "data.progress=false", *extra, env=cli_env, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = json.loads(ckpt.with_suffix(".test.json").read_text())
    assert results["one"]["test/acc"] == pytest.approx(results["two"]["test/acc"], abs=1e-6)
    assert results["one"]["test/loss"] == pytest.approx(results["two"]["test/loss"], abs=1e-5)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_parallel_sweep_with_the_joblib_launcher(tmp_path, imdb_dir, cli_env):
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=rnn,gru", f"data.path={imdb_dir}", *TINY]
    result = run_seqclf("train", *args, env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = list((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["model=gru", "model=rnn"]
    with (sweep / "summary.csv").open() as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["completed", "completed"]
    assert (sweep / "summary.png").is_file()


def test_slurm_launcher_config_composes_and_instantiates(tmp_path):
    cfg = compose_train(tmp_path, ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.timeout_min == 120
    assert launcher.submitit_folder.endswith("/.submitit/%j")
    plugin = hydra.utils.instantiate(launcher)
    assert type(plugin).__name__ == "SlurmLauncher"


@pytest.mark.slow
def test_submitit_local_executor_runs_a_sweep(tmp_path, imdb_dir, cli_env):
    """submitit's local executor stands in for a SLURM cluster."""
    args = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "model=rnn,lstm",
            f"data.path={imdb_dir}", *TINY]  # fmt: skip
    result = run_seqclf("train", *args, env=cli_env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = list((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["run"] for r in rows) == ["model=lstm", "model=rnn"]
    assert all(r["status"] == "completed" for r in rows)


def test_a_single_machine_ddp_rendezvous_listens_on_the_loopback_only(monkeypatch):
    import torch
    from lightning.fabric.plugins.environments import LightningEnvironment

    from seqclf.lightning.strategy import LoopbackDDPStrategy

    def strategy(environment):
        ddp = LoopbackDDPStrategy(cluster_environment=environment, parallel_devices=[torch.device("cpu")] * 2)
        ddp._configure_launcher()
        return ddp

    for var in ("MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "SEQCLF_LOOPBACK_RENDEZVOUS"):
        monkeypatch.delenv(var, raising=False)
    ours = strategy(LightningEnvironment())
    port = ours._socket.getsockname()[1]
    assert ours._socket.getsockname()[0] == "127.0.0.1"
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("127.0.0.1", str(port))
    ours._socket.close()
    monkeypatch.delenv("SEQCLF_LOOPBACK_RENDEZVOUS")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.7")  # the user's rendezvous is left alone
    assert strategy(LightningEnvironment())._socket is None
    monkeypatch.delenv("MASTER_ADDR")
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process that torchrun (or this strategy) started
    assert strategy(LightningEnvironment())._socket is None


class FailOnSecondProcess(L.Callback):
    """Stands in for a crash in one DDP process only."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == 1:
            raise RuntimeError("a fault in process 1")


@pytest.mark.slow
def test_a_ddp_process_that_fails_is_named_as_the_cause(tmp_path, imdb_dir, cli_env):
    env = {**cli_env, "PYTHONPATH": str(Path(__file__).parent)}  # every process imports this callback
    args = [f"data.path={imdb_dir}", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
            "+callbacks.fail._target_=test_scale.FailOnSecondProcess"]  # fmt: skip
    result = run_seqclf("train", *args, env=env, cwd=tmp_path)
    assert result.returncode == 1 and "a DDP process failed first: train_ddp_process_1.log" in result.stderr
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed"
    assert "train_ddp_process_1.log" in status["error"] and "a fault in process 1" in status["error"], status
