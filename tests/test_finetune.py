"""Fine-tuning settings for a pretrained start, on any run: discriminative learning rates (the head,
the encoder, its word embedding) and the one-cycle (slanted triangular) schedule, stepped per
optimizer step, kept across a resume."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, compose_train, run_seqclf

from seqclf.cli.config import validate
from seqclf.errors import ConfigError


def _optimizer_state(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return ckpt["optimizer_states"][0]["param_groups"], ckpt["lr_schedulers"][0], ckpt["global_step"]


@pytest.mark.slow  # two runs and a resume: pytest -m slow (CI runs both)
def test_each_layer_group_gets_its_rate_and_the_cycle_ends_at_a_32nd(tmp_path, imdb_dir, cli_env):
    common = [*TINY, f"data.path={imdb_dir}", "optimizer.lr_schedule=one_cycle", "optimizer.lower_lr_factor=2.5"]
    done = run_seqclf("train", *common, "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    groups, schedule, steps = _optimizer_state(run)
    # the head (weight, bias), the LSTM's four tensors, the embedding: lr, lr/2.5, lr/2.5**2
    assert [len(g["params"]) for g in groups] == [2, 4, 1]
    assert [g["max_lr"] for g in groups] == pytest.approx([1e-3, 4e-4, 1.6e-4])
    assert schedule["total_steps"] == steps  # one step of the schedule per optimizer step
    assert [g["lr"] for g in groups] == pytest.approx([g["max_lr"] / 32 for g in groups])  # the cycle's end

    done = run_seqclf("train", f"resume={run}", "trainer.max_epochs=3", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]  # the added epoch keeps the last rate
    groups, _, more = _optimizer_state(run)
    assert more > steps and [g["lr"] for g in groups] == pytest.approx([g["max_lr"] / 32 for g in groups])


def test_one_rate_is_one_group_and_a_factor_below_one_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"optimizer.lower_lr_factor=0.5 must be a number >= 1"):
        validate(compose_train(tmp_path, ["optimizer.lower_lr_factor=0.5"]))
    from seqclf.tasks.classify.module import SeqClassifier

    model = SeqClassifier(vocab_size=20, encoder={"_target_": "seqclf.models.encoders.RecurrentEncoder"})
    assert len(model.configure_optimizers().param_groups) == 1  # today's runs: unchanged


def test_the_head_the_encoder_and_its_word_embedding_learn_at_falling_rates():
    from seqclf.tasks.classify.module import SeqClassifier

    model = SeqClassifier(
        vocab_size=20,
        encoder={"_target_": "seqclf.models.encoders.RecurrentEncoder", "cell": "gru"},
        optimizer={"lr": 0.01, "lower_lr_factor": 2.0},
    )
    groups = model.configure_optimizers().param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.005, 0.0025])
    net = model.net
    assert [p for p in groups[0]["params"]] == list(net.head.parameters())
    assert groups[2]["params"] == [net.encoder.embedding.weight]
    assert len(groups[1]["params"]) == len(list(net.encoder.rnn.parameters()))


def test_gradual_unfreezing_opens_one_layer_group_each_epoch_from_the_top():
    from types import SimpleNamespace

    from seqclf.lightning.callbacks import FreezePretrained
    from seqclf.models import encoders
    from seqclf.models.networks import SequenceClassifier

    spec = {"_target_": "seqclf.models.encoders.RecurrentEncoder", "cell": "lstm", "embed_dim": 4, "hidden_size": 3,
            "num_layers": 2, "bidirectional": True}  # fmt: skip
    net = SequenceClassifier(encoders.build(spec, 20), 2)
    top, bottom, words = FreezePretrained.groups(net.encoder)
    names = {id(p): n for n, p in net.encoder.named_parameters()}
    assert sorted(names[id(p)] for p in top) == sorted(n for n in names.values() if "_l1" in n)  # both directions
    assert sorted(names[id(p)] for p in bottom) == sorted(n for n in names.values() if "_l0" in n)
    assert [names[id(p)] for p in words] == ["embedding.weight"]
    module = SimpleNamespace(hparams={"init_from": "generator.ckpt"}, net=net)
    callback = FreezePretrained(epochs=1, gradual=True)
    callback.freeze_before_training(module)
    training = []
    for epoch in range(5):  # what trains at each epoch's start (the head is never frozen)
        callback.finetune_function(module, epoch, None)
        training.append([all(p.requires_grad for p in g) for g in (top, bottom, words)])
    assert training == [[False, False, False], [True, False, False], [True, True, False], [True, True, True],
                        [True, True, True]]  # fmt: skip
    assert all(p.requires_grad for p in net.head.parameters())
    # a hybrid's bag sits on top, with the recurrent layer; its table and the cells' embedding come last
    hybrid = encoders.build({"_target_": "seqclf.models.bag.HybridEncoder", "recurrent": {"embed_dim": 4},
                             "bag": {"embed_dim": 4, "buckets": 10}}, 20)  # fmt: skip
    cells, tables = FreezePretrained.groups(hybrid)
    assert len(cells) + len(tables) == len(list(hybrid.parameters())) and len(tables) == 2
    with pytest.raises(ConfigError, match="callbacks.freeze_pretrained.gradual='yes' must be true or false"):
        FreezePretrained(gradual="yes")
