"""Longer end-to-end checks (``pytest -m slow``)."""

import pytest
from conftest import compose_train, make_imdb

from seqclf.cli.train import train


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_learns_the_sentiment_cue_words(tmp_path, cell):
    """Full epochs on 2,000 label-sorted reviews whose label shows only in a few cue words."""
    data = make_imdb(tmp_path / "imdb", n_train=2000, n_test=400)
    cfg = compose_train(
        tmp_path,
        [
            f"model={cell}",
            f"data.path={data}",
            "trainer=cpu",
            "trainer.max_epochs=4",
            "data.batch_size=32",
            "data.max_len=40",
            "data.progress=false",
            "callbacks.progress_bar.refresh_rate=0",
        ],
        tiny=False,
    )
    metrics = train(cfg)
    assert metrics["epochs"] == 4 and metrics["global_step"] == 4 * 57
    assert metrics["val/acc_best"] > 0.9 and metrics["test/acc"] > 0.9, metrics
