"""The bag of n-grams (fastText's model) and the hybrid encoder: the features they compute, the
poolings that carry more of a text, and both trained, resumed and predicted with through the commands."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_seqclf, single_and_ddp

from seqclf.cli.config import load_config, validate
from seqclf.errors import ConfigError
from seqclf.models import RecurrentEncoder, SequenceClassifier
from seqclf.models.bag import BagEncoder, HybridEncoder

QUICK = ["debug=default"]  # tiny data and steps, the shipped model sizes


def test_each_step_holds_its_word_and_the_bigram_ending_there():
    bag = BagEncoder(10, embed_dim=3, ngrams=2, buckets=7)
    tokens = torch.tensor([[0, 0, 4, 5, 6]])  # pre-padded
    mask = tokens != 0
    out = bag(tokens, mask)
    table = bag.embedding.weight
    (words, _), (bigrams, real) = bag.ids(tokens, mask)
    assert real.tolist() == [[False, False, False, True, True]]  # the first word's bigram reaches the padding
    assert torch.equal(out[0, :2], torch.zeros(2, 3))
    torch.testing.assert_close(out[0, 2], table[4])
    torch.testing.assert_close(out[0, 3], table[5] + table[bigrams[0, 3]])
    assert 10 <= int(bigrams[0, 3]) < 17  # a bucket row, after the words'
    # the order of a bigram's words matters, and a text's summary is the mean of its own steps
    assert bag.ids(torch.tensor([[5, 4]]), torch.ones(1, 2, dtype=torch.bool))[1][0][0, 1] != bigrams[0, 3]
    torch.testing.assert_close(bag.last(out, mask), out[0, 2:].mean(dim=0, keepdim=True))


def test_words_alone_need_no_buckets_and_the_settings_are_checked():
    assert BagEncoder(10, embed_dim=3, ngrams=1).embedding.num_embeddings == 10
    with pytest.raises(ConfigError, match="model.encoder.ngrams=9 must be at most 4"):
        BagEncoder(10, ngrams=9)
    with pytest.raises(ConfigError, match="model.encoder.buckets=0 must be a positive integer"):
        validate(load_config(["model=bag", "model.encoder.buckets=0"]))  # before torch loads
    with pytest.raises(ConfigError, match="model.encoder.bag.ngrams=7 must be at most 4"):
        validate(load_config(["model=hybrid", "model.encoder.bag.ngrams=7"]))


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "last_max", "concat"])
@pytest.mark.parametrize("kind", ["recurrent", "bag", "hybrid"])
def test_every_pooling_and_encoder_gives_the_trace_of_its_own_output(kind, pooling):
    torch.manual_seed(0)
    encoder = {
        "recurrent": lambda: RecurrentEncoder(30, "gru", embed_dim=3, hidden_size=4),
        "bag": lambda: BagEncoder(30, embed_dim=3, buckets=11),
        "hybrid": lambda: HybridEncoder(30, {"cell": "gru", "embed_dim": 3, "hidden_size": 4}, {"embed_dim": 2}),
    }[kind]()
    net = SequenceClassifier(encoder, 3, pooling).eval()
    tokens = torch.tensor([[0, 0, 5, 6, 7], [0, 2, 9, 9, 4]])  # pre-padded
    steps = net.trace(tokens)
    assert steps.shape == (2, 5, 3)
    torch.testing.assert_close(steps[:, -1], net(tokens))
    later = tokens.clone()
    later[:, -1] = 11  # the words after a step do not change what it has read
    torch.testing.assert_close(net.trace(later)[:, :-1], steps[:, :-1])


def test_the_mean_and_concat_poolings_read_the_texts_own_words():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(20, "gru", embed_dim=3, hidden_size=4)
    tokens = torch.tensor([[0, 0, 5, 6], [0, 7, 5, 9]])
    out = encoder(tokens, tokens != 0)
    for pooling, width in (("mean", 4), ("concat", 12)):
        net = SequenceClassifier(encoder, 1, pooling).eval()
        assert net.head.in_features == width
    net = SequenceClassifier(encoder, 1, "concat").eval()
    pooled = torch.cat([out[:, -1], torch.stack([out[0, 2:].amax(0), out[1, 1:].amax(0)]),
                        torch.stack([out[0, 2:].mean(0), out[1, 1:].mean(0)])], dim=-1)  # fmt: skip
    torch.testing.assert_close(net(tokens), net.head(pooled).squeeze(-1))


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_bag_classifier_trains_resumes_and_predicts(tmp_path, imdb_dir, cli_env):
    run = tmp_path / "run"
    done = run_seqclf("train", "model=bag", f"data.path={imdb_dir}", *QUICK, f"hydra.run.dir={run}",
                      env=cli_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "callbacks.grad_flow measures the gradient" in done.stderr + done.stdout  # said once, nothing measured
    hp = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hp["encoder"]["_target_"] == "seqclf.models.bag.BagEncoder" and hp["pooling"] == "last"
    done = run_seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    done = run_seqclf("predict", f"ckpt_path={run}/checkpoints/last.ckpt", "text=great superb", "trace=true",
                      env=cli_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["label"] in ("neg", "pos") and len(row["trace"]) == len(row["words"]) == 2


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_hybrid_classifier_trains_with_concat_pooling(tmp_path, imdb_dir, cli_env):
    args = ["model=hybrid", "model.pooling=concat", "model.encoder.recurrent.hidden_size=4", f"data.path={imdb_dir}"]
    done = run_seqclf("train", *args, *QUICK, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert 0 <= json.loads((run / "metrics.json").read_text())["test/acc"] <= 1


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_bag_classifier_under_ddp_trains_as_one_process(tmp_path, imdb_dir, cli_env):
    """Two DDP processes at half the batch take the steps one process takes (tests/test_scale.py's
    case for the cells): the same weights, and the whole test split scored the same."""
    evaluate_all = ["data.eval_batch_size=1024", "trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0"]
    common = ["model=bag", "model.encoder.buckets=1024", f"data.path={imdb_dir}", *QUICK, *evaluate_all]
    one, two = single_and_ddp(tmp_path, common, cli_env)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["global_step"] == m2["global_step"] == 4
    assert m2["test/acc"] == pytest.approx(m1["test/acc"], abs=1e-6)
    a = torch.load(one / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(two / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_bag_run_resumed_equals_one_never_stopped(tmp_path, imdb_dir, cli_env):
    """Two optimizers (Adam for the head, SparseAdam for the table) and their plateau schedules, resumed exactly."""
    common = [
        "model=bag",
        "model.encoder.buckets=1024",
        "optimizer.lr_schedule=plateau",
        f"data.path={imdb_dir}",
        *QUICK,
    ]
    whole, part = tmp_path / "whole", tmp_path / "part"
    for run, epochs in ((whole, 2), (part, 1)):
        done = run_seqclf("train", *common, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run}", env=cli_env,
                          cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    done = run_seqclf("train", f"resume={part}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=True) for run in (whole, part))
    assert len(a["optimizer_states"]) == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(b["state_dict"][key], value), key
