"""Texts of different lengths at a sane cost: packed recurrent encoders (model.encoder.packed) read each
text's own words only, and data.bucket serves batches of similar lengths in a seeded, resumable order."""

import pytest
import torch
from conftest import compose_train

from seqclf.cli.train import train
from seqclf.data.batches import BUCKET_BATCHES, BatchOrder
from seqclf.models.encoders import RecurrentEncoder


def padded(rows: list[torch.Tensor], steps: int, side: str) -> torch.Tensor:
    x = torch.zeros(len(rows), steps, dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row):
            x[i, steps - len(row) :] = row if side == "pre" else 0
            if side == "post":
                x[i, : len(row)] = row
    return x


@pytest.mark.parametrize("side", ["pre", "post"])
@pytest.mark.parametrize("cell, bidirectional", [("lstm", False), ("gru", True), ("rnn", False)])
def test_a_packed_encoder_reads_each_text_as_if_it_were_alone(side, cell, bidirectional):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(50, cell, embed_dim=8, hidden_size=6, bidirectional=bidirectional, packed=True)
    rows = [torch.randint(2, 50, (n,)) for n in (12, 5, 1, 0)]
    x = padded(rows, 12, side)
    mask = x != 0
    features = encoder(x, mask)
    summary = encoder.last(features, mask)
    for i, row in enumerate(rows):
        if not len(row):  # an empty text: zeros
            assert torch.count_nonzero(summary[i]) == 0 and torch.count_nonzero(features[i]) == 0
            continue
        alone = encoder.rnn(encoder.embedding(row[None]))[0][0]
        h = encoder.hidden_size
        want = torch.cat([alone[-1, :h], alone[0, h:]]) if bidirectional else alone[-1]
        assert torch.allclose(summary[i], want, atol=1e-6)
        assert torch.allclose(features[i][mask[i]], alone, atol=1e-6)  # each word's output, at its own step
        assert torch.count_nonzero(features[i][~mask[i]]) == 0
    unpacked = RecurrentEncoder(50, cell, embed_dim=8, hidden_size=6, bidirectional=bidirectional)
    unpacked.load_state_dict(encoder.state_dict())  # the same weights: packing is a way of reading
    assert torch.allclose(unpacked(x[:1]), features[:1], atol=1e-6)  # a text without padding: the same


def test_buckets_hold_texts_of_similar_lengths_in_a_seeded_order():
    lengths = torch.randint(1, 400, (3000,), generator=torch.Generator().manual_seed(1))
    order = BatchOrder(3000, 16, seed=7, lengths=lengths)
    plain = BatchOrder(3000, 16, seed=7)
    batches = order.batches(epoch=2)
    assert sorted(torch.cat(batches).tolist()) == list(range(3000))  # every text once an epoch
    assert all(torch.equal(a, b) for a, b in zip(batches, order.batches(epoch=2), strict=True))  # seeded
    assert not torch.equal(batches[0], order.batches(epoch=3)[0])  # and a new order each epoch

    def spread(bs):
        return sum(float(lengths[b].max() - lengths[b].min()) for b in bs) / len(bs)

    assert spread(batches) < spread(plain.batches(epoch=2)) / 10  # pieces of BUCKET_BATCHES sorted batches
    assert BUCKET_BATCHES > 1
    evaluation = BatchOrder(3000, 512, lengths=lengths).batches()  # evaluation: longest first
    assert all(lengths[a].min() >= lengths[b].max() for a, b in zip(evaluation, evaluation[1:], strict=False))


def test_a_packed_bucketed_run_trains_and_tests(tmp_path, imdb_dir):
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "model.encoder.packed=true", "data.bucket=true"])
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1 and metrics["epochs"] == cfg.trainer.max_epochs
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["hyper_parameters"]["encoder"]["packed"] is True
    # the order's settings, checked when a run restarts in the middle of an epoch
    (order,) = state["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert order["bucket"] is True
