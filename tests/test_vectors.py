"""Pretrained word vectors (model.vectors): every file format gensim reads for seqclf, what they give
the vocabulary, the one-paragraph refusals, freezing, and the vectors command trained on a dataset's
own texts, used by a run that then resumes and predicts without the file."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from conftest import TINY, compose_train, run_seqclf

from seqclf.cli.config import validate
from seqclf.errors import ConfigError
from seqclf.models import RecurrentEncoder
from seqclf.models import vectors as word_vectors
from seqclf.models.bag import BagEncoder, HybridEncoder
from seqclf.models.encoders import Encoder

VOCAB = ["<pad>", "<unk>", "great", "film", "dull", "zebra"]
GIVEN = {"great": [1.0, 2.0, 3.0], "film": [0.5, -0.5, 0.25], "dull": [-1.0, -2.0, -3.0], "plot": [9.0, 9.0, 9.0]}


def _keyed(given=GIVEN):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(list(given), np.array(list(given.values()), dtype=np.float32))
    return kv


def _write(tmp_path, kind: str):
    """GIVEN in one of the formats model.vectors reads."""
    if kind == "word2vec text":
        path = tmp_path / "vectors.txt"
        _keyed().save_word2vec_format(str(path), binary=False)
    elif kind == "word2vec binary":
        path = tmp_path / "vectors.bin"
        _keyed().save_word2vec_format(str(path), binary=True)
    elif kind == "glove":  # GloVe's text files have no "count dim" header
        path = tmp_path / "glove.3d.txt"
        path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in GIVEN.items()), encoding="utf-8")
    elif kind == "gzipped":
        path = tmp_path / "vectors.vec.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(f"{len(GIVEN)} 3\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in GIVEN.items()))
    return path


@pytest.mark.parametrize("kind", ["word2vec text", "word2vec binary", "glove", "gzipped"])
def test_each_format_fills_the_words_it_has_and_reports_the_coverage(tmp_path, kind):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(len(VOCAB), "gru", embed_dim=3, hidden_size=2)
    loaded = word_vectors.read(_write(tmp_path, kind))
    coverage = word_vectors.apply(encoder, VOCAB, loaded)
    table = encoder.embedding.weight
    for word in ("great", "film", "dull"):
        torch.testing.assert_close(table[VOCAB.index(word)], torch.tensor(GIVEN[word]))
    assert torch.equal(table[0], torch.zeros(3))  # the padding row
    assert not torch.equal(table[VOCAB.index("zebra")], torch.zeros(3))  # a word the file lacks starts at random
    assert (coverage.words, coverage.found, coverage.subwords) == (4, 3, 0)  # the specials are not words
    assert coverage.to_dict()["coverage"] == 0.75
    assert coverage.format == ("word2vec text" if kind == "gzipped" else kind)


def test_a_cased_file_gives_the_lowercased_words_its_most_frequent_spelling(tmp_path):
    cased = {"Great": [1.0, 1.0, 1.0], "GREAT": [5.0, 5.0, 5.0], "Film": [2.0, 2.0, 2.0]}
    path = tmp_path / "cased.bin"
    _keyed(cased).save_word2vec_format(str(path), binary=True)
    encoder = RecurrentEncoder(len(VOCAB), "gru", embed_dim=3, hidden_size=2)
    coverage = word_vectors.apply(encoder, VOCAB, word_vectors.read(path))
    torch.testing.assert_close(encoder.embedding.weight[2], torch.ones(3))  # "Great" comes first in the file
    assert coverage.found == 2


def test_a_fasttext_model_builds_vectors_for_words_it_never_saw(tmp_path):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    texts = [["great", "film", "dull", "plot"]] * 20
    model = FastText(texts, vector_size=3, min_count=1, epochs=2, bucket=1000, workers=1, seed=1)
    path = tmp_path / "model.bin"
    save_facebook_model(model, str(path))
    assert word_vectors.sniff(path) == "fasttext"
    encoder = BagEncoder(len(VOCAB), embed_dim=3, buckets=7)
    coverage = word_vectors.apply(encoder, VOCAB, word_vectors.read(path))
    assert (coverage.found, coverage.subwords) == (3, 1)  # zebra, from its character n-grams
    torch.testing.assert_close(encoder.embedding.weight[VOCAB.index("zebra")], torch.from_numpy(model.wv["zebra"]))


def test_the_hybrid_fills_both_of_its_embeddings():
    encoder = HybridEncoder(len(VOCAB), {"cell": "lstm", "embed_dim": 3, "hidden_size": 2}, {"embed_dim": 3})
    word_vectors.apply(encoder, VOCAB, word_vectors.Loaded("x", "glove", _keyed()))
    for table in (encoder.recurrent.embedding, encoder.bag.embedding):
        torch.testing.assert_close(table.weight[2], torch.tensor(GIVEN["great"]))


class Embeddingless(Encoder):
    """An encoder of the user's that reads ids some other way (no ``embedding``)."""

    features = 3

    def forward(self, tokens, mask):
        return tokens[..., None].float().expand(-1, -1, 3)


def test_vectors_that_cannot_serve_are_one_paragraph(tmp_path):
    loaded = word_vectors.Loaded("v.txt", "glove", _keyed())
    wide = RecurrentEncoder(len(VOCAB), "gru", embed_dim=8, hidden_size=2)
    with pytest.raises(
        ConfigError, match=r"3-dimensional vectors, but the model's word embedding is 8 wide.*embed_dim=3"
    ):
        word_vectors.apply(wide, VOCAB, loaded)
    other_words = ["<pad>", "<unk>", "xx", "yy"]
    with pytest.raises(ConfigError, match="none of the vocabulary's 2 words is in model.vectors=v.txt"):
        word_vectors.apply(RecurrentEncoder(4, "gru", embed_dim=3, hidden_size=2), other_words, loaded)
    with pytest.raises(ConfigError, match="Embeddingless has no word embedding to fill"):
        word_vectors.apply(Embeddingless(), VOCAB, loaded)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="could not be read as word vectors"):
        word_vectors.read(garbage)
    with pytest.raises(ConfigError, match="model.vectors=/no/such.vec is not a file"):
        word_vectors.read("/no/such.vec")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.freeze_vectors=2"], "model.freeze_vectors=2 keeps pretrained word vectors fixed, but no model"),
        (["model.vectors=VEC", "model.freeze_vectors=-1"], "model.freeze_vectors=-1 must be 0"),
        (["model.vectors=VEC", "model.init_from=VEC"], "both give the embedding its first weights"),
    ],
)
def test_vector_settings_are_checked_before_any_data_is_read(tmp_path, overrides, message):
    path = _write(tmp_path, "glove")
    overrides = [o.replace("VEC", str(path)) for o in overrides]
    with pytest.raises(ConfigError, match=message):
        validate(compose_train(tmp_path, overrides))


def _embedding(ckpt_path) -> torch.Tensor:
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)["state_dict"]
    return state["net.encoder.embedding.weight"]


@pytest.mark.slow  # five commands: pytest -m slow (CI runs both)
def test_vectors_trained_on_the_data_start_a_run_that_resumes_and_predicts_without_them(tmp_path, imdb_dir, cli_env):
    missing = run_seqclf("train", *TINY, f"data.path={imdb_dir}", "model.vectors=gone.vec", env=cli_env, cwd=tmp_path)
    assert missing.returncode == 2 and "model.vectors=gone.vec is not a file" in missing.stderr
    assert not (tmp_path / "outputs").exists()  # refused before any run folder
    done = run_seqclf("vectors", f"data.path={imdb_dir}", "dim=4", "epochs=2", "workers=1", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (made,) = (tmp_path / "outputs" / "vectors" / "runs").iterdir()
    record = json.loads((made / "vectors.json").read_text())
    assert record["texts"] == {"train": 200} and record["words"] > 10  # the test split is never read
    kept = tmp_path / "kept.bin"
    (made / "vectors.bin").rename(kept)

    common = [*TINY, f"data.path={imdb_dir}", f"model.vectors={kept}", "trainer.max_epochs=2"]
    done = run_seqclf("train", *common, "model.freeze_vectors=all", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["vectors"]["coverage"] == 1.0 and metrics["vectors"]["format"] == "word2vec binary"
    vocab = json.loads((run / "tokenizer.json").read_text())["vocab"]
    loaded = word_vectors.read(kept).vectors
    rows = torch.tensor(np.stack([loaded[w] for w in vocab[2:]]))
    torch.testing.assert_close(_embedding(run / "checkpoints" / "last.ckpt")[2:], rows)  # never trained

    (tmp_path / "thawed").mkdir()
    done = run_seqclf("train", *common, "model.freeze_vectors=1", env=cli_env, cwd=tmp_path / "thawed")
    assert done.returncode == 0, done.stderr[-3000:]
    (thawed,) = (tmp_path / "thawed" / "outputs" / "train" / "runs").iterdir()
    assert not torch.allclose(_embedding(thawed / "checkpoints" / "last.ckpt")[2:], rows)  # trained from epoch 2

    kept.unlink()  # the checkpoint holds the weights: neither resuming nor predicting reads the file
    done = run_seqclf("train", f"resume={run}", "trainer.max_epochs=3", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["vectors"] == metrics["vectors"]
    done = run_seqclf("predict", f"ckpt_path={run}/checkpoints/last.ckpt", "text=great film", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1])["label"] in ("neg", "pos")
