"""The checks of the network's settings: the recurrent encoder's (cell, sizes, dropout), the pooling
and a generator's softmax. Torch-free, so that seqclf-train refuses a bad value before torch loads
(seqclf.tasks.check_model); seqclf.models.encoders calls the encoder's check when it builds one."""

from __future__ import annotations

from collections.abc import Sequence

from seqclf.errors import ConfigError, check_positive_int

# seqclf's own encoder class (seqclf.models.encoders.RecurrentEncoder), named without importing torch.
RECURRENT = "seqclf.models.encoders.RecurrentEncoder"
# The recurrent cells (seqclf.models.encoders.CELLS maps each to its torch module): nn.RNN (tanh), nn.LSTM, nn.GRU.
CELL_NAMES = ("rnn", "lstm", "gru")
# What represents a text (seqclf.models.pooling): the encoder's summary at the last step, each
# unit's maximum over the text's own steps (padding left out), or both side by side.
POOLINGS = ("last", "max", "last_max")


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
