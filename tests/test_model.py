"""SequenceClassifier over the recurrent encoder, and SeqClassifier: shapes, padding, pooling, and
self-describing hyperparameters."""

import pytest
import torch

from seqclf.models import CELLS, RecurrentEncoder, SequenceClassifier
from seqclf.tasks.classify.module import SeqClassifier


def classifier(vocab_size, cell, pooling="last", **settings):
    return SequenceClassifier(RecurrentEncoder(vocab_size, cell, **settings), pooling=pooling)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("bidirectional, num_layers", [(False, 1), (True, 2)])
def test_each_cell_gives_one_logit_per_sequence(cell, bidirectional, num_layers):
    net = classifier(50, cell, embed_dim=4, hidden_size=6, num_layers=num_layers, bidirectional=bidirectional)
    assert isinstance(net.encoder.rnn, CELLS[cell])
    tokens = torch.randint(0, 50, (3, 7))
    logits = net(tokens)
    assert logits.shape == (3,) and logits.dtype == torch.float32
    logits.sum().backward()


def test_unknown_cell_lists_the_valid_ones():
    with pytest.raises(ValueError, match="model.encoder.cell='transformer'.*rnn, lstm, gru"):
        RecurrentEncoder(10, "transformer")


def test_padding_embedding_is_zero_and_uses_the_last_time_step():
    net = classifier(20, "gru", embed_dim=3, hidden_size=4)
    assert torch.count_nonzero(net.encoder.embedding.weight[0]) == 0
    tokens = torch.tensor([[0, 0, 5, 6], [0, 0, 5, 7]])
    out, _ = net.encoder.rnn(net.encoder.embedding(tokens))
    expected = net.head(out[:, -1]).squeeze(-1)
    torch.testing.assert_close(net.eval()(tokens), expected)


def test_lightning_module_keeps_primitive_hparams_only():
    encoder = {"_target_": "seqclf.models.encoders.RecurrentEncoder", "cell": "rnn", "hidden_size": 5}
    model = SeqClassifier(vocab_size=30, encoder=encoder)
    assert dict(model.hparams) == {
        "vocab_size": 30,
        "encoder": encoder,
        "pooling": "last",
        "dropout": 0.0,
        "optimizer": {
            "lr": 1e-3,
            "weight_decay": 0.0,
            "fused": True,
            "gradient_clip_val": None,
            "gradient_clip_algorithm": "norm",
            "lr_schedule": "none",
            "lower_lr_factor": 1.0,
        },
        "labels": ["neg", "pos"],  # a model built without data is IMDB's, as checkpoints from before classes
        "multi_label": False,
        "class_weights": None,
        "class_counts": None,
        "train_texts": None,
        "threshold": 0.5,
        "monitor": "val/acc",
        "init_from": None,
        "vectors": None,
        "freeze_vectors": 0,
    }

    def primitive(v):
        if isinstance(v, dict):
            return all(isinstance(k, str) and primitive(x) for k, x in v.items())
        return v is None or isinstance(v, (int, float, str, bool)) or (isinstance(v, list) and all(map(primitive, v)))

    assert all(primitive(v) for v in model.hparams.values())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_max_pooling_takes_each_units_maximum_over_the_reviews_own_words(bidirectional):
    torch.manual_seed(0)
    net = classifier(20, "gru", embed_dim=3, hidden_size=4, bidirectional=bidirectional, pooling="last_max").eval()
    tokens = torch.tensor([[0, 0, 5, 6], [0, 7, 5, 9], [0, 0, 0, 0]])  # pre-padded; the last one is empty
    out, _ = net.encoder.rnn(net.encoder.embedding(tokens))
    h = net.encoder.hidden_size
    last = torch.cat([out[:, -1, :h], out[:, 0, h:]], -1) if bidirectional else out[:, -1]
    pooled = torch.stack([out[0, 2:].amax(0), out[1, 1:].amax(0), torch.zeros(out.shape[-1])])
    expected = net.head(torch.cat([last, pooled], dim=-1)).squeeze(-1)
    torch.testing.assert_close(net(tokens), expected)
    with pytest.raises(ValueError, match="model.pooling='median' is not valid"):
        classifier(20, "gru", pooling="median")


def test_a_pretrained_vocabulary_that_reads_little_of_the_data_is_warned_about(caplog, tmp_path):
    import logging

    import torch

    from seqclf.tasks.classify.pretrained import Start, warn_unknown

    start = Start(tmp_path / "generator.ckpt", ["<pad>", "<unk>", "film"], {})
    tokens = torch.tensor([[0, 0, 2, 1, 1], [1, 1, 1, 2, 2]])  # 5 of 8 words unknown
    with caplog.at_level(logging.WARNING, logger="seqclf.tasks.classify.pretrained"):
        assert warn_unknown(tokens, start) == 5 / 8
    assert "62% of the training words are not in the vocabulary of model.init_from=" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqclf.tasks.classify.pretrained"):
        assert warn_unknown(torch.tensor([[0, 2, 2, 2, 2, 1]]), start) == 1 / 5  # at the threshold: no word
    assert caplog.text == ""
