"""End to end: the shipped config, shrunk, trains each cell type and writes every artifact."""

import csv
import json
import logging
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY, compose_train, run_seqclf, start_seqclf
from omegaconf import open_dict

from seqclf.cli.train import train
from seqclf.data import WordTokenizer
from seqclf.runs.checkpoints import CheckpointError
from seqclf.tasks.classify.module import SeqClassifier


def run_files(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "metrics": metrics,
        "best": out / metrics["best_checkpoint"],
        "last": out / "checkpoints" / "last.ckpt",
        "events": sorted(out.glob("events.out.tfevents.*")),
    }


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_trains_one_epoch_and_writes_checkpoint_events_metrics(tmp_path, imdb_dir, cell):
    cfg = compose_train(tmp_path, [f"model={cell}", f"data.path={imdb_dir}"])
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    files = run_files(out)
    assert files["metrics"] == metrics
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test/loss"] > 0 and 0 <= metrics["val/acc_best"] <= 1
    assert metrics["epochs"] == 1 and metrics["global_step"] == 4 and metrics["seconds_per_epoch"] > 0
    assert files["best"].is_file() and files["last"].is_file() and files["events"]
    assert metrics["best_checkpoint"] == "checkpoints/epoch_001.ckpt"  # epochs count from 1, as the bar's
    assert 0 <= metrics["test/f1_macro"] <= 1 and metrics["labels"] == ["neg", "pos"]
    # The test's per-class report and confusion matrix, in the run folder.
    report = (out / "test_report.csv").read_text().splitlines()
    assert report[0] == "label,precision,recall,f1,support" and [r.split(",")[0] for r in report[1:]] == [
        "neg",
        "pos",
        "macro avg",
    ]
    assert sum(int(r.split(",")[4]) for r in report[1:3]) == 32  # limit_test_batches=2 of eval_batch_size=16
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"

    # The checkpoint describes itself: primitive hparams and the tokenizer, nothing else needed.
    model = SeqClassifier.load_from_checkpoint(files["last"], map_location="cpu")
    ckpt = torch.load(files["last"], map_location="cpu", weights_only=True)
    tokenizer = WordTokenizer.from_json(ckpt["TextDataModule"]["tokenizer"])
    assert ckpt["TextDataModule"]["labels"]["names"] == model.hparams.labels == ["neg", "pos"]
    assert tokenizer.to_json() == (out / "tokenizer.json").read_text()
    # The tiny data has fewer distinct words than data.vocab_size=40: the model is sized by the data.
    assert model.hparams.encoder["cell"] == cell and model.hparams.vocab_size == tokenizer.vocab_size == 28
    assert tokenizer.max_len == 12 and tokenizer.padding == "pre"


def test_last_checkpoint_follows_every_epoch(tmp_path, imdb_dir):
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "trainer.max_epochs=3", "optimizer.lr=0.0"])
    train(cfg)  # lr 0: validation accuracy never improves after epoch 0, so only last.ckpt moves on
    files = run_files(Path(cfg.paths.output_dir))
    assert torch.load(files["best"], weights_only=True)["epoch"] == 0
    assert torch.load(files["last"], weights_only=True)["epoch"] == 2


def test_csv_logger_can_replace_tensorboard(tmp_path, imdb_dir):
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "logger=csv"])
    train(cfg)
    header = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/acc"} <= set(header)


class RecomputeTrainMetrics(L.Callback):
    """The training loss and accuracy of every optimizer step, recomputed from what the loss
    function saw at that step (a hook on it: steps run inside a block, out of callbacks' reach),
    written to recomputed.json in the run folder when training ends."""

    def __init__(self):
        self.loss_sum = self.correct = self.count = 0.0

    def on_train_start(self, trainer, pl_module):
        def record(module, args, loss):
            if pl_module.training:
                logits, labels = args[0].detach(), args[1]
                self.loss_sum += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)) * len(
                    labels
                )
                self.correct += float(((logits > 0) == (labels > 0.5)).sum())
                self.count += len(labels)

        pl_module.loss_fn.register_forward_hook(record)

    def on_train_end(self, trainer, pl_module):
        totals = {"loss_sum": self.loss_sum, "correct": self.correct, "count": self.count}
        (Path(trainer.default_root_dir) / "recomputed.json").write_text(json.dumps(totals))


@pytest.mark.parametrize("fused, steps_per_execution", [(True, 16), (False, 16), (True, 3)])
def test_epoch_training_metrics_cover_every_step(tmp_path, imdb_dir, fused, steps_per_execution):
    overrides = [f"data.path={imdb_dir}", "logger=csv", f"optimizer.fused={fused}"]
    cfg = compose_train(tmp_path, [*overrides, f"data.steps_per_execution={steps_per_execution}"])
    with open_dict(cfg):
        cfg.callbacks.recompute = {"_target_": "test_train.RecomputeTrainMetrics"}
    train(cfg)
    out = Path(cfg.paths.output_dir)
    recomputed = json.loads((out / "recomputed.json").read_text())
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    (logged,) = [row for row in rows if row["train/loss"]]
    assert recomputed["count"] == 4 * 8
    assert float(logged["train/loss"]) == pytest.approx(recomputed["loss_sum"] / recomputed["count"], rel=1e-5)
    assert float(logged["train/acc"]) == pytest.approx(recomputed["correct"] / recomputed["count"])


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_command_line_runs_started_together_get_their_own_folders(tmp_path, imdb_dir, cli_env):
    args = [f"data.path={imdb_dir}", *TINY]
    procs = [start_seqclf("train", *args, env=cli_env, cwd=tmp_path) for _ in range(2)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    runs = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:  # composed config, checkpoints, events, tokenizer and metrics, all in the run folder
        assert (run / ".hydra" / "config.yaml").is_file() and (run / "tokenizer.json").is_file()
        files = run_files(run)
        assert files["best"].is_file() and files["last"].is_file() and files["events"]
    assert "test/acc" in logs[0]


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_no_hub_and_no_data_path_exits_with_help(tmp_path, cli_env):
    result = run_seqclf("train", env={**cli_env, "HF_HOME": str(tmp_path / "hf")}, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "data.path" in result.stderr and "HF_DATASETS_OFFLINE" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_step_checkpoints_on_request(tmp_path, imdb_dir):
    from seqclf.runs import checkpoints

    # Blocks of 2 steps end at steps 2, 4 and 5: step 3 is reached in the block that ends at 4.
    every = ["callbacks.step_checkpoint.every_n_train_steps=3", "data.steps_per_execution=2"]
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "trainer.limit_train_batches=5", *every])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    step = torch.load(run / "checkpoints" / "last-step.ckpt", weights_only=True)
    assert step["global_step"] == 4
    assert checkpoints.newest(run) == run / "checkpoints" / "last.ckpt"  # 5 steps beat 4


class StopAtStep(L.Callback):
    """Stands in for a kill: stops the run before the training block that starts at ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


@pytest.mark.parametrize("data, stop_at", [("imdb", 6), ("imdb", 16), ("topics", 16)])
def test_resume_from_a_step_checkpoint_mid_epoch_equals_an_uninterrupted_run(tmp_path, request, data, stop_at):
    """Blocks of 3 steps, 10 steps an epoch (blocks end at 3, 6, 9, 10, 13, 16, ...), a step checkpoint
    every 4 steps; dropout, so the random state matters too. Binary IMDB, and three topics with string
    labels, class weights and macro-F1 monitored."""
    dataset = {
        "imdb": [f"data.path={request.getfixturevalue('imdb_dir')}"],
        "topics": [f"data.path={request.getfixturevalue('topics_dir')}", "data.text_column=quip",
                   "data.label_column=topic", "model.class_weights=balanced", "monitor=val/f1_macro"],
    }[data]  # fmt: skip
    overrides = [
        *dataset,
        "trainer.deterministic=true",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=10",
        "data.steps_per_execution=3",
        "model.dropout=0.3",
        "callbacks.step_checkpoint.every_n_train_steps=4",
    ]
    straight = compose_train(tmp_path / "straight", overrides)
    train(straight)
    killed = compose_train(tmp_path / "killed", overrides)
    with open_dict(killed):
        killed.callbacks.kill = {"_target_": "test_train.StopAtStep", "step": stop_at}
    with pytest.raises(RuntimeError, match="killed"):
        train(killed)
    step_ckpt = Path(killed.paths.output_dir) / "checkpoints" / "last-step.ckpt"
    assert torch.load(step_ckpt, weights_only=True)["global_step"] == stop_at  # a block boundary past 4k
    resumed = compose_train(tmp_path / "resumed", [*overrides, f"ckpt_path={step_ckpt}"])
    metrics = train(resumed)
    a = torch.load(Path(straight.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 30
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert all(0 < s < 60 for s in metrics["epoch_seconds"])  # the restarted epoch timed from its restart


def test_early_stopping_is_one_override_and_callbacks_none_still_trains(tmp_path, imdb_dir):
    # lr 0: val/acc never improves after the first epoch, so patience 1 stops after the second.
    stop = ["callbacks=[default,early_stopping]", "callbacks.early_stopping.patience=1", "optimizer.lr=0.0"]
    cfg = compose_train(tmp_path / "stop", [f"data.path={imdb_dir}", "trainer.max_epochs=6", *stop])
    stopped = train(cfg)
    assert stopped["epochs"] == 2  # and it says why, in metrics.json and the results table
    assert (
        stopped["stopped_early"]
        == "after epoch 2: val/acc had not improved for 1 epoch (callbacks.early_stopping.patience)"
    )
    assert 0 <= stopped["train/acc"] <= 1 and stopped["train/loss"] > 0  # the last epoch's
    bare = compose_train(tmp_path / "bare", [f"data.path={imdb_dir}", "callbacks=none"])
    metrics = train(bare)
    assert metrics["global_step"] == 4 and 0 <= metrics["test/acc"] <= 1


@pytest.mark.parametrize(
    "schedule, lr, expected",
    [
        ("cosine", 0.01, [0.01 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]),
        ("plateau", 1e-6, [1e-6, 1e-6, 1e-6, 5e-7]),  # too small to learn: val/acc stalls, halved after 2 epochs
    ],
)
def test_learning_rate_schedules(tmp_path, imdb_dir, schedule, lr, expected):
    overrides = [f"optimizer.lr_schedule={schedule}", f"optimizer.lr={lr}", "trainer.max_epochs=4", "logger=csv"]
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", *overrides])
    train(cfg)
    rows = csv.DictReader((Path(cfg.paths.output_dir) / "csv" / "metrics.csv").open())
    assert [float(row["lr-Adam"]) for row in rows if row.get("lr-Adam")] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_ckpt_path_continues_with_the_checkpoints_own_model_unless_another_is_chosen(tmp_path, imdb_dir, caplog):
    caplog.set_level(logging.INFO, logger="seqclf.cli.train")
    first = compose_train(tmp_path / "rnn", [f"data.path={imdb_dir}", "model=rnn", "model.encoder.bidirectional=true"])
    train(first)
    ckpt = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    more = compose_train(tmp_path / "more", [f"data.path={imdb_dir}", f"ckpt_path={ckpt}", "trainer.max_epochs=2"])
    metrics = train(more)  # no model=rnn: the checkpoint says which cell and shape it has
    assert metrics["epochs"] == 2
    saved = torch.load(Path(more.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert (
        saved["hyper_parameters"]["encoder"]["cell"] == "rnn" and saved["hyper_parameters"]["encoder"]["bidirectional"]
    )
    assert "model.encoder.cell=rnn model.encoder.bidirectional=True" in caplog.text
    other = compose_train(tmp_path / "gru", [f"data.path={imdb_dir}", f"ckpt_path={ckpt}", "model=gru"])
    with pytest.raises(CheckpointError, match=r"model.encoder.cell='gru' \(checkpoint: 'rnn'\)"):
        train(other)  # chosen explicitly: refused, naming what differs
