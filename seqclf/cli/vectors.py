"""`seqclf-vectors`: word vectors trained with gensim on a dataset's own texts (its training split and
any unlabelled split, never its test split), split into words as seqclf's tokenizer splits them, so
that every word a model's vocabulary can hold has its vector. Writes ``vectors.bin`` (word2vec's
binary format; with method=fasttext, a fastText model that also builds vectors for unseen words)
and ``vectors.json`` (what was trained, on what, in how long) into the run folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from seqclf import CONF_DIR, cli
from seqclf.cli import resolvers
from seqclf.errors import ConfigError, check_positive_int

log = logging.getLogger(__name__)
resolvers.register()  # before Hydra composes the run folder's name
METHODS = ("word2vec", "fasttext")


def check(cfg: DictConfig) -> None:
    """Every setting of the command, before any text is read."""
    if cfg.method not in METHODS:
        raise ConfigError(f"method={cfg.method!r} is not known; choose word2vec or fasttext.")
    for key in ("dim", "epochs", "window", "min_count", "workers", "buckets"):
        check_positive_int(key, cfg[key])
    if not isinstance(cfg.skipgram, bool):
        raise ConfigError(f"skipgram={cfg.skipgram!r} must be true (skip-gram) or false (CBOW).")
    try:
        import gensim  # noqa: F401
    except ImportError:
        raise ConfigError(
            "seqclf-vectors trains with gensim, an optional extra: pip install 'seqclf[vectors]'."
        ) from None


def texts(cfg: DictConfig) -> dict[str, list[list[str]]]:
    """Each split's texts as seqclf's words: the training split (its validation share too: no label is
    read) and ``unlabelled_split``."""
    from seqclf.cli.instantiate import instantiate
    from seqclf.data.text import tokenize

    datamodule = instantiate(cfg.data, splits=["train"])
    raw = datamodule.read_texts(extra=[cfg.unlabelled_split] if cfg.unlabelled_split else [])
    return {split: [tokenize(text) for text in rows] for split, rows in raw.items()}


def train_vectors(cfg: DictConfig) -> dict:
    from gensim.models import FastText, Word2Vec
    from gensim.models.fasttext import save_facebook_model

    check(cfg)
    logging.getLogger("gensim").setLevel(logging.WARNING)  # a line per epoch and per event otherwise
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    splits = texts(cfg)
    read = time.perf_counter() - began
    sentences = [words for rows in splits.values() for words in rows if words]
    if not sentences:
        raise ConfigError("the texts hold no words to learn vectors from; check data.text_column.")
    settings = dict(vector_size=cfg.dim, window=cfg.window, min_count=cfg.min_count, sg=int(cfg.skipgram),
                    epochs=cfg.epochs, workers=cfg.workers, seed=cfg.seed)  # fmt: skip
    if cfg.method == "fasttext":
        settings["bucket"] = cfg.buckets
    log.info("Training %s vectors (%d-d, %d epochs) on %d texts", cfg.method, cfg.dim, cfg.epochs, len(sentences))
    began = time.perf_counter()
    model = (Word2Vec if cfg.method == "word2vec" else FastText)(sentences, **settings)
    trained = time.perf_counter() - began
    if not len(model.wv):
        raise ConfigError(f"no word is seen min_count={cfg.min_count} times in these texts; give a smaller min_count.")
    target = out / "vectors.bin"
    if cfg.method == "word2vec":
        model.wv.save_word2vec_format(str(target), binary=True)
    else:
        save_facebook_model(model, str(target))
    record = {
        "vectors": str(target),
        "method": cfg.method,
        **{k: v for k, v in settings.items() if k != "vector_size"},
        "dim": cfg.dim,
        "texts": {split: len(rows) for split, rows in splits.items()},
        "words": len(model.wv),
        "read_seconds": round(read, 2),
        "train_seconds": round(trained, 2),
    }
    from seqclf.runs import files

    files.write_json(out / "vectors.json", record)
    log.info(
        "%d words' vectors written to %s (%.1f s to train); use them with: seqclf-train model.vectors=%s "
        "model.encoder.embed_dim=%d",
        len(model.wv), target, trained, target, cfg.dim,
    )  # fmt: skip
    return record


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="vectors")
def main(cfg: DictConfig) -> None:
    with cli.errors_as_messages("seqclf-vectors"):
        train_vectors(cfg)


def console() -> None:
    """The seqclf-vectors command: its settings are checked before Hydra creates a run folder."""
    cli.console("vectors", "seqclf-vectors", main, check=lambda cfg, overrides: check(cfg))


if __name__ == "__main__":
    console()
