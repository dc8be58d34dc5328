"""Earlier versions' run folders and checkpoints are read as today's (seqclf.migrate): resumed exactly,
evaluated and predicted with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import run_seqclf
from omegaconf import OmegaConf

from seqclf import migrate

# A run folder written by seqclf before the encoder protocol (commit f9ce7d7: `seqclf-train debug=default
# callbacks.grad_flow=null logger=csv` on conftest's tiny IMDB data, one epoch): the model's shape and the
# optimizer's settings flat under model, the weights as net.embedding.* and net.encoder.*.
OLD_RUN = Path(__file__).parent / "data" / "run_before_encoders"


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_run_folder_from_before_the_encoder_protocol_resumes_evaluates_and_predicts(tmp_path, imdb_dir, cli_env):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    before = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert (
        "cell" in before["hyper_parameters"] and "net.encoder.weight_ih_l0" in before["state_dict"]
    )  # what makes it old
    data = [f"data.path={imdb_dir}", f"data.cache_dir={tmp_path / 'cache'}"]
    done = run_seqclf("train", f"resume={run}", "trainer.max_epochs=2", *data, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["seqclf_format"] == migrate.CHECKPOINT_FORMAT
    assert (
        after["hyper_parameters"]["encoder"]["cell"] == "lstm" and "net.encoder.rnn.weight_ih_l0" in after["state_dict"]
    )
    done = run_seqclf(
        "predict", f"ckpt_path={run}/checkpoints/epoch_001.ckpt", "text=great superb", env=cli_env, cwd=tmp_path
    )  # fmt: skip  (the first epoch's, still in the old format)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] in ("neg", "pos")
    done = run_seqclf("evaluate", f"ckpt_path={run}/checkpoints/epoch_001.ckpt", *data,
                      f"hydra.run.dir={tmp_path / 'eval'}", env=cli_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_checkpoint_is_migrated_once_and_todays_is_left_as_it_is():
    old = torch.load(OLD_RUN / "checkpoints" / "last.ckpt", weights_only=True)
    new = migrate.checkpoint(old)
    hp = new["hyper_parameters"]
    assert hp["encoder"] == {
        "_target_": "seqclf.models.encoders.RecurrentEncoder", "cell": "lstm", "embed_dim": 4, "hidden_size": 4,
        "num_layers": 1, "bidirectional": False, "dropout": 0.0,
    }  # fmt: skip
    assert hp["optimizer"]["lr"] == 1e-3 and "lr" not in hp and "cell" not in hp
    assert [k for k in new["state_dict"] if k.startswith("net.")][:2] == [
        "net.encoder.embedding.weight",
        "net.encoder.rnn.weight_ih_l0",
    ]
    assert migrate.checkpoint(new) == new  # today's format: nothing to do


def test_a_run_config_of_format_1_becomes_todays():
    cfg = migrate.run_config(OmegaConf.load(OLD_RUN / ".hydra" / "config.yaml"))
    model = OmegaConf.to_container(cfg.model, resolve=False)
    assert model["encoder"]["cell"] == "lstm" and model["encoder"]["dropout"] == "${..dropout}"
    assert model["optimizer"] == "${optimizer}" and model["_recursive_"] is False and "lr" not in model
    assert migrate.old_setting("model.hidden_size") == "model.encoder.hidden_size"
    assert migrate.old_setting("model.lr_schedule") == "optimizer.lr_schedule"
    assert migrate.old_setting("model.pooling") is None


@pytest.mark.parametrize("old", ["seqclf.threads.ThreadShare", "seqclf.callbacks.ThreadShare"])
def test_settings_a_renamed_class_no_longer_takes_are_dropped(old):
    cfg = OmegaConf.create({"callbacks": {"thread_share": {"_target_": old, "interval_s": 2.0, "warmup": 1}}})
    migrate.run_config(cfg)
    assert OmegaConf.to_container(cfg.callbacks.thread_share) == {"_target_": "seqclf.lightning.callbacks.ThreadShare"}
