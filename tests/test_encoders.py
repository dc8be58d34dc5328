"""The encoder protocol: an encoder written in a user's own module (here, this file) trains, resumes,
evaluates, predicts and sweeps through seqclf's commands with no change to seqclf; seqclf's own
recurrent encoder is one implementation of the protocol, and bad encoder settings are one paragraph."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import TINY, run_seqclf
from torch import nn

from seqclf.errors import ConfigError
from seqclf.models import LanguageModel, RecurrentEncoder, SequenceClassifier, SequenceTagger, encoders


class ConvEncoder(encoders.Encoder):
    """A user's encoder: a causal 1-D convolution over the embedded words (each step reads the
    ``kernel_size`` words up to it), then ReLU."""

    def __init__(
        self, vocab_size: int, embed_dim: int = 8, hidden_size: int = 8, kernel_size: int = 3, pad_idx: int = 0
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.conv = nn.Conv1d(embed_dim, hidden_size, kernel_size, padding=kernel_size - 1)
        self.features, self.causal, self.pad_idx = hidden_size, True, pad_idx

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.embedding(tokens).transpose(1, 2))[..., : tokens.shape[1]]  # left padding only: causal
        return torch.relu(out).transpose(1, 2)


# The user's config folder: a model option of their own (a file in their conf/model/, found through
# hydra.searchpath) that builds on what every model option shares.
MODEL_OPTION = """\
defaults:
  - /model_base@_here_

encoder:
  _target_: test_encoders.ConvEncoder
  embed_dim: 8
  hidden_size: 8
  kernel_size: 3
"""


@pytest.fixture
def user_conf(tmp_path) -> Path:
    conf = tmp_path / "myconf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "conv.yaml").write_text(MODEL_OPTION)
    return conf


@pytest.fixture
def user_env(cli_env) -> dict:
    """The user's module is importable (on PYTHONPATH), as an installed package of theirs would be."""
    here = str(Path(__file__).parent)
    return {**cli_env, "PYTHONPATH": os.pathsep.join(p for p in (here, cli_env.get("PYTHONPATH")) if p)}


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_users_own_encoder_trains_resumes_evaluates_and_predicts(tmp_path, imdb_dir, user_conf, user_env):
    run = tmp_path / "run"
    args = [f"hydra.searchpath=[file://{user_conf}]", "model=conv", f"data.path={imdb_dir}", *TINY]
    done = run_seqclf("train", *args, "callbacks.grad_flow=null", f"hydra.run.dir={run}", env=user_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["encoder"] == {
        "_target_": "test_encoders.ConvEncoder",
        "embed_dim": 4,
        "hidden_size": 4,
        "kernel_size": 3,
    }  # fmt: skip  (debug=tiny's sizes)
    assert any(k.startswith("net.encoder.conv.") for k in ckpt["state_dict"])
    # resumed in its own folder, for a second epoch, with nothing named but the run
    done = run_seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=user_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    done = run_seqclf("evaluate", f"ckpt_path={run}/checkpoints/last.ckpt", f"data.path={imdb_dir}",
                      f"hydra.run.dir={tmp_path / 'eval'}", env=user_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 0 <= json.loads((run / "checkpoints" / "last.test.json").read_text())["test/acc"] <= 1
    done = run_seqclf("predict", f"ckpt_path={run}/checkpoints/last.ckpt", "text=great superb film", "trace=true",
                      env=user_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["label"] in ("neg", "pos") and len(row["trace"]) == len(row["words"])


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_sweep_over_seqclfs_and_a_users_encoder(tmp_path, imdb_dir, user_conf, user_env):
    sweep = tmp_path / "sweep"
    args = ["-m", f"hydra.searchpath=[file://{user_conf}]", "model=gru,conv", f"data.path={imdb_dir}", *TINY,
            "callbacks.grad_flow=null", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    done = run_seqclf("train", *args, env=user_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.rglob("status.json"))
    assert statuses == ["completed", "completed"]


def test_every_task_network_reads_the_protocol_only():
    encoder = ConvEncoder(20, embed_dim=3, hidden_size=5)
    tokens = torch.tensor([[0, 0, 4, 5, 6], [0, 7, 8, 9, 1]])
    for pooling in ("last", "max", "last_max"):
        net = SequenceClassifier(encoder, 3, pooling).eval()
        assert net(tokens).shape == (2, 3)
        torch.testing.assert_close(net.trace(tokens)[:, -1], net(tokens))  # causal: the trace ends on the output
    assert SequenceTagger(encoder, 4)(tokens).shape == (2, 5, 4)
    assert LanguageModel(encoder, 20)(tokens).shape == (2, 5, 5)


def test_the_recurrent_encoder_is_one_implementation_of_the_protocol():
    encoder = encoders.build({"_target_": "seqclf.models.encoders.RecurrentEncoder", "cell": "gru", "embed_dim": 3,
                              "hidden_size": 4, "bidirectional": True}, vocab_size=10)  # fmt: skip
    assert isinstance(encoder, RecurrentEncoder) and encoder.features == 8 and not encoder.causal
    tokens = torch.tensor([[0, 3, 4]])
    out = encoder(tokens, tokens != 0)
    assert out.shape == (1, 3, 8)
    step, state = encoder.step(tokens[:, :1])
    assert step.shape == (1, 1, 8) and state is not None
    with pytest.raises(ConfigError, match="reads the words to come"):
        LanguageModel(encoder, 10)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"_target_": "torch.nn.Linear"}, "is not a seqclf encoder"),
        ({"_target_": "no_such_module.Encoder"}, "cannot be imported"),
        ({"_target_": "seqclf.models.encoders.RecurrentEncoder", "width": 3}, "model.encoder.width is not a setting"),
        ({"cell": "gru"}, "must be a mapping with a _target_"),
    ],
)
def test_a_bad_encoder_spec_is_one_paragraph(spec, message):
    with pytest.raises(ConfigError, match=message):
        encoders.build(spec, vocab_size=10)


@pytest.mark.parametrize(
    "old, new", [("model.hidden_size=64", "model.encoder.hidden_size"), ("model.lr=0.01", "optimizer.lr")]
)
def test_a_setting_in_its_earlier_place_is_refused_naming_the_new_one(tmp_path, cli_env, old, new):
    done = run_seqclf("train", old, env=cli_env, cwd=tmp_path)
    assert done.returncode == 2
    assert f"{old.split('=')[0]} is now {new}" in done.stderr and "Traceback" not in done.stderr


def test_each_task_names_the_commands_its_checkpoints_serve():
    from seqclf import tasks
    from seqclf.errors import SeqclfError

    tasks.TASKS["classify"].require("seqclf-predict", "c.ckpt")
    with pytest.raises(SeqclfError, match="c.ckpt is a generator's checkpoint .* use seqclf-generate"):
        tasks.TASKS["generate"].require("seqclf-predict", "c.ckpt")
    for task in tasks.TASKS.values():  # every entry's parts can be found
        assert task.module_class() and task.inference_class().task == task.name
        assert callable(task.check_model) and callable(task.check_data)
