"""Checks on the composed configuration, made before any data is loaded."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from seqclf.data.text import SIDES
from seqclf.errors import SeqclfError
from seqclf.models.rnn import CELLS

POSITIVE_INTS = (
    "model.embed_dim",
    "model.hidden_size",
    "model.num_layers",
    "data.max_len",
    "data.batch_size",
    "data.eval_batch_size",
    "trainer.max_epochs",
)


class ConfigError(SeqclfError):
    """A configuration value is out of range."""


def validate(cfg: DictConfig) -> None:
    """Raise a ConfigError naming the first bad value, its valid range and how to fix it."""
    cell = OmegaConf.select(cfg, "model.cell")
    if cell not in CELLS:
        raise ConfigError(
            f"model.cell={cell!r} is not a known cell type; choose one of {', '.join(CELLS)} (e.g. model=gru)."
        )
    for key in POSITIVE_INTS:
        value = OmegaConf.select(cfg, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key}={value!r} must be a positive integer.")
    vocab_size = OmegaConf.select(cfg, "data.vocab_size")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
        raise ConfigError(
            f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (2 special tokens + 1 word)."
        )
    fraction = OmegaConf.select(cfg, "data.val_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"data.val_fraction={fraction!r} must lie strictly between 0 and 1 (e.g. 0.1).")
    for key in ("data.padding", "data.truncation"):
        value = OmegaConf.select(cfg, key)
        if value not in SIDES:
            raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(SIDES)}.")
    dropout = OmegaConf.select(cfg, "model.dropout")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout={dropout!r} must lie in [0, 1).")
