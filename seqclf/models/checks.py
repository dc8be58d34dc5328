"""The checks of the network's settings: the recurrent encoder's (cell, sizes, dropout), the pooling
and a generator's softmax. Torch-free, so that seqclf-train refuses a bad value before torch loads
(seqclf.tasks.check_model); seqclf.models.encoders calls the encoder's check when it builds one."""

from __future__ import annotations

from collections.abc import Sequence

from seqclf.errors import ConfigError, check_positive_int

# seqclf's own encoder classes (seqclf.models.encoders, seqclf.models.bag), named without importing torch.
RECURRENT = "seqclf.models.encoders.RecurrentEncoder"
BAG = "seqclf.models.bag.BagEncoder"
HYBRID = "seqclf.models.bag.HybridEncoder"
MAX_NGRAMS = 4
# The recurrent cells (seqclf.models.encoders.CELLS maps each to its torch module): nn.RNN (tanh), nn.LSTM, nn.GRU.
CELL_NAMES = ("rnn", "lstm", "gru")
# What represents a text (seqclf.models.pooling): the encoder's summary (its ``last``: the cells' last
# step, a bag's mean), each unit's maximum or its mean over the text's own steps (padding left
# out), last and max side by side, or all three (ULMFiT's concat pooling).
POOLINGS = ("last", "max", "last_max", "mean", "concat")
# The files of word vectors model.vectors reads (seqclf.models.vectors).
VECTOR_FORMATS = "word2vec text or binary, GloVe text, fastText .vec or .bin"


def check_recurrent(cell, embed_dim, hidden_size, num_layers, dropout) -> None:
    """Raise a ConfigError naming the first setting of the recurrent encoder that cannot work, and the fix."""
    if cell not in CELL_NAMES:
        raise ConfigError(
            f"model.encoder.cell={cell!r} is not a known cell type; choose one of {', '.join(CELL_NAMES)} "
            "(e.g. model=gru)."
        )
    for key, value in (("embed_dim", embed_dim), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        check_positive_int(f"model.encoder.{key}", value)
    check_dropout("model.encoder.dropout", dropout)


def check_dropout(key: str, dropout) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"{key}={dropout!r} must lie in [0, 1).")


def check_pooling(pooling) -> None:
    if pooling not in POOLINGS:
        raise ConfigError(f"model.pooling={pooling!r} is not valid; choose one of {', '.join(POOLINGS)}.")


def check_cutoffs(cutoffs, vocab_size) -> None:
    """Raise a ConfigError unless ``cutoffs`` is null or ascending word ranks inside a vocabulary of
    ``vocab_size`` entries (``data.vocab_size`` before the data is read, the fitted one after)."""
    if cutoffs is None:
        return
    ranks = list(cutoffs) if isinstance(cutoffs, Sequence) and not isinstance(cutoffs, str) else None
    if (
        not ranks
        or any(isinstance(c, bool) or not isinstance(c, int) for c in ranks)
        or ranks != sorted(set(ranks))
        or ranks[0] < 1
        or (isinstance(vocab_size, int) and ranks[-1] >= vocab_size)
    ):
        raise ConfigError(
            f"model.softmax_cutoffs={cutoffs!r} must be null (a full softmax) or ascending word ranks from 1 to "
            f"below the vocabulary's size ({vocab_size}), e.g. model.softmax_cutoffs=[1000,5000]."
        )


def check_bag(embed_dim, ngrams, buckets, key: str = "model.encoder") -> None:
    """Raise a ConfigError naming the first setting of a bag of n-grams that cannot work."""
    for name, value in (("embed_dim", embed_dim), ("ngrams", ngrams), ("buckets", buckets)):
        check_positive_int(f"{key}.{name}", value)
    if ngrams > MAX_NGRAMS:
        raise ConfigError(f"{key}.ngrams={ngrams} must be at most {MAX_NGRAMS} (words, then their n-grams up to it).")


def check_encoder(spec) -> None:
    """The settings of one of seqclf's own encoders (``model.encoder``), checked without torch, with
    the encoder's defaults for those it leaves out; another class checks its own when it is built."""
    target = spec.get("_target_")
    if target == RECURRENT:
        defaults = {"cell": None, "embed_dim": 16, "hidden_size": 32, "num_layers": 1, "dropout": 0.0}
        check_recurrent(**{k: spec.get(k, v) for k, v in defaults.items()})
    elif target == BAG:
        check_bag(spec.get("embed_dim", 64), spec.get("ngrams", 2), spec.get("buckets", 262_144))
    elif target == HYBRID:
        recurrent, bag = spec.get("recurrent") or {}, spec.get("bag") or {}
        check_encoder({"_target_": RECURRENT, "cell": "lstm", **recurrent})
        check_bag(bag.get("embed_dim", 64), bag.get("ngrams", 2), bag.get("buckets", 262_144), "model.encoder.bag")


def check_vectors(vectors, freeze_vectors, init_from=None) -> None:
    """``model.vectors`` (a file of word vectors, or null) and ``model.freeze_vectors`` (the epochs the
    filled embedding is kept as the vectors give it: 0, a positive count, or ``all``), before any data
    is read; the file itself when a run starts (check_vectors_file, seqclf.models.vectors)."""
    frozen_ok = freeze_vectors == "all" or (
        isinstance(freeze_vectors, int) and not isinstance(freeze_vectors, bool) and freeze_vectors >= 0
    )
    if not frozen_ok:
        raise ConfigError(
            f"model.freeze_vectors={freeze_vectors!r} must be 0 (the embedding trains from the start), a number of "
            "epochs to keep it as the vectors give it, or all (never trained)."
        )
    if vectors in (None, ""):
        if freeze_vectors not in (0, None):
            raise ConfigError(
                f"model.freeze_vectors={freeze_vectors} keeps pretrained word vectors fixed, but no model.vectors is "
                "given; add model.vectors=FILE or leave model.freeze_vectors at 0."
            )
        return
    if init_from:
        raise ConfigError(
            f"model.vectors={vectors} and model.init_from={init_from} both give the embedding its first weights; "
            "choose one (a generator started from vectors passes them on: train it with model.vectors)."
        )


def check_vectors_file(vectors) -> None:
    """``model.vectors`` names a file: checked when a run starts (a resumed run's checkpoint holds the
    weights, and the file may be gone)."""
    from pathlib import Path

    if not Path(str(vectors)).expanduser().is_file():
        raise ConfigError(
            f"model.vectors={vectors} is not a file; give a file of word vectors ({VECTOR_FORMATS}), e.g. one "
            "written by seqclf-vectors."
        )
