"""Several optimizer steps per training_step call (data.steps_per_execution): the same training as
a plain hand-written loop over the same batches, whatever the block size."""

import copy

import lightning as L
import pytest
import torch
from conftest import compose_train

from seqclf.data import TextDataModule
from seqclf.data.batches import BatchOrder
from seqclf.models import RecurrentEncoder, SequenceClassifier
from seqclf.tasks.classify.module import SeqClassifier


def hand_loop(net, dm, epochs, steps, fused, clip):
    """The textbook loop over the epochs' batches in seqclf's order: zero_grad, backward, (clip), step."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=fused)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    order = BatchOrder(len(dm.train_set), dm.batch_size, dm.seed)
    for epoch in range(epochs):
        for rows in order.batches(epoch)[:steps]:
            x, y = dm.train_set[rows]
            optimizer.zero_grad()
            loss_fn(net(x), y).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()


@pytest.mark.parametrize(
    "cell, steps_per_execution, fused, clip",
    [("lstm", 1, True, None), ("lstm", 16, True, None), ("gru", 5, False, None), ("rnn", 16, True, 0.05)],
)
def test_blocks_train_exactly_as_a_hand_written_loop(tmp_path, imdb_dir, cell, steps_per_execution, fused, clip):
    dm = TextDataModule(
        path=str(imdb_dir), cache_dir=str(tmp_path), vocab_size=40, max_len=12, batch_size=8, progress=False,
        steps_per_execution=steps_per_execution, limit_train_batches=20,
    )  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    torch.manual_seed(0)
    hp = dict(cell=cell, embed_dim=4, hidden_size=5)
    encoder = {"_target_": "seqclf.models.encoders.RecurrentEncoder", **hp}
    model = SeqClassifier(dm.tokenizer.vocab_size, encoder, optimizer={"fused": fused, "gradient_clip_val": clip})
    net = SequenceClassifier(RecurrentEncoder(dm.tokenizer.vocab_size, **hp))
    net.load_state_dict(copy.deepcopy(model.net.state_dict()))
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, deterministic=True, use_distributed_sampler=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 40  # optimizer steps, whatever the block size
    hand_loop(net, dm, epochs=2, steps=20, fused=fused, clip=clip)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(model.net.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_max_steps_stops_inside_a_block(tmp_path, imdb_dir):
    from seqclf.cli.train import train

    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "trainer.max_steps=3", "trainer.max_epochs=5"])
    assert train(cfg)["global_step"] == 3  # not the block's 4


def test_logged_curves_are_the_same_for_any_block_size(tmp_path, imdb_dir):
    """Metrics reach TensorBoard at the same optimizer steps with the same values, K=1 or K=3."""
    from pathlib import Path

    from seqclf.cli.train import train
    from seqclf.runs.files import scalars

    curves = []
    for k in (1, 3):
        overrides = [f"data.path={imdb_dir}", "trainer.max_epochs=2", "trainer.limit_train_batches=10"]
        cfg = compose_train(
            tmp_path / str(k), [*overrides, "trainer.log_every_n_steps=4", f"data.steps_per_execution={k}"]
        )
        train(cfg)
        run = Path(cfg.paths.output_dir)
        tags = ("train/loss_step", "train/loss", "train/acc", "val/acc", "val/loss", "grad/first_over_last")
        curves.append({tag: [(step, round(value, 6)) for step, value in scalars(run, tag)] for tag in tags})
    assert curves[0] == curves[1]
    assert [step for step, _ in curves[0]["train/loss_step"]] == [3, 7, 11, 15, 19]  # every 4 steps
    assert [step for step, _ in curves[0]["val/acc"]] == [9, 19]


class CountStepHooks(L.Callback):
    def __init__(self):
        self.calls = {"on_before_backward": 0, "on_after_backward": 0, "on_before_optimizer_step": 0}

    def on_before_backward(self, trainer, pl_module, loss):
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer, pl_module):
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.calls["on_before_optimizer_step"] += 1


def test_a_callback_that_listens_gets_every_steps_hooks_and_training_is_unchanged(tmp_path, imdb_dir):
    """With no listener the inner steps skip Lightning's hook dispatch; a listener turns it back on."""
    dm = TextDataModule(
        path=str(imdb_dir), cache_dir=str(tmp_path), vocab_size=40, max_len=12, batch_size=8, progress=False,
        steps_per_execution=16, limit_train_batches=20,
    )  # fmt: skip
    weights = []
    for listen in (False, True):
        torch.manual_seed(0)
        model = SeqClassifier(
            40, {"_target_": "seqclf.models.encoders.RecurrentEncoder", "embed_dim": 4, "hidden_size": 5}
        )
        counter = CountStepHooks()
        trainer = L.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, limit_val_batches=0, deterministic=True, use_distributed_sampler=False,
            callbacks=[counter] if listen else [],
        )  # fmt: skip
        trainer.fit(model, datamodule=dm)
        assert model._direct is not listen
        weights.append(model.net.state_dict())
        if listen:
            assert counter.calls == dict.fromkeys(counter.calls, 20)
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=0, msg=name)


class CountEvalCalls(L.Callback):
    calls: dict[str, int] = {}  # of the last run (seqclf-train builds the callback from its config)

    def on_fit_start(self, trainer, pl_module):
        CountEvalCalls.calls = {"validation": 0, "test": 0}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.calls["validation"] += not trainer.sanity_checking

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.calls["test"] += 1


def counted_run(tmp_path, overrides: list[str]) -> dict:
    from omegaconf import open_dict

    from seqclf.cli.train import train

    cfg = compose_train(tmp_path, overrides)
    with open_dict(cfg):
        cfg.callbacks.count = {"_target_": f"{__name__}.CountEvalCalls"}
    return train(cfg)


def test_evaluation_in_blocks_scores_as_one_batch_per_call(tmp_path, imdb_dir):
    """Validation and test hand several batches to each call (data.steps_per_execution of them):
    the same losses, scores and per-class report, bit for bit, as one batch per call, in fewer calls;
    under trainer.limit_val_batches a call is one batch again, so the limit counts batches."""
    from pathlib import Path

    from seqclf.runs.files import scalars

    results, calls = [], []
    for k in (1, 4):
        overrides = [f"data.path={imdb_dir}", "trainer.max_epochs=2", "trainer.limit_train_batches=6",
                     "trainer.limit_val_batches=null", "trainer.limit_test_batches=null", "data.eval_batch_size=8",
                     f"data.steps_per_execution={k}", "trainer.deterministic=true"]  # fmt: skip
        metrics = counted_run(tmp_path / str(k), overrides)
        run = next(Path(tmp_path / str(k)).rglob("metrics.json")).parent
        curves = {tag: scalars(run, tag) for tag in ("val/loss", "val/acc", "val/f1_macro", "val_per_class/f1/pos")}
        results.append({**curves, **{key: v for key, v in metrics.items() if key.startswith(("val/", "test/"))}})
        calls.append(dict(CountEvalCalls.calls))
    assert len(results[0]["val/loss"]) == 2 and {"test/loss", "test/acc", "test/f1_macro"} <= set(results[0])
    steps = [step for step, _ in results[0]["val/acc"]]  # each class's curve at the x of the other metrics
    assert [step for step, _ in results[0]["val_per_class/f1/pos"]] == steps and len(steps) == 2
    assert results[0] == results[1] and results[0]["test/acc"] > 0
    assert calls[0] == {"validation": 2 * 3, "test": 10} and calls[1] == {"validation": 2 * 1, "test": 3}  # 20/80 texts
    limited = [f"data.path={imdb_dir}", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
               "trainer.limit_val_batches=2", "data.eval_batch_size=8", "data.steps_per_execution=4"]  # fmt: skip
    counted_run(tmp_path / "limited", limited)
    assert CountEvalCalls.calls["validation"] == 2
