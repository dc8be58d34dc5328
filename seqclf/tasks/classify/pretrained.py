"""A classifier that starts from a generator's checkpoint (``model.init_from``): the generator's
vocabulary encodes the classifier's data (so each word keeps its id) and its embedding and recurrent
layers are the classifier's first weights; the output layer starts afresh. A bidirectional classifier
of one layer takes the generator's (left-to-right) cells as its forward direction; its backward
direction starts afresh. Checked before any data is read: the checkpoint must be a generator's, with
the classifier's cell and sizes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from seqclf import tasks
from seqclf.data.settings import AUTO_LENGTH
from seqclf.data.text import WordTokenizer
from seqclf.errors import ConfigError
from seqclf.runs import checkpoints

log = logging.getLogger(__name__)


@dataclass
class Start:
    path: Path
    vocab: list[str]
    weights: dict[str, torch.Tensor]  # the generator network's encoder.* tensors (its embedding and cells)


def load(path: str, model_cfg) -> Start:
    """The generator checkpoint at ``path`` if its layers fit the classifier ``model_cfg`` describes."""
    try:
        ckpt = checkpoints.load(path, setting="model.init_from")
    except checkpoints.CheckpointError as e:
        raise ConfigError(str(e) if str(e).startswith("model.init_from=") else f"model.init_from: {e}") from None
    task = tasks.of_checkpoint(ckpt).name
    if task != "generate":
        raise ConfigError(
            f"model.init_from={path} is a {task} checkpoint; a classifier starts from a generator's "
            "(seqclf-train task=generate), whose language model it takes over."
        )
    saved, encoder = ckpt["hyper_parameters"]["encoder"], model_cfg.encoder
    # the encoder's class and every setting that makes its layers' shapes must be the generator's
    diffs = [
        f"model.encoder.{k}={encoder.get(k)!r} (generator: {saved.get(k)!r})"
        for k in [*saved, *(k for k in encoder if k not in saved)]
        if k not in ("dropout", "bidirectional") and encoder.get(k) != saved.get(k)
    ]
    if encoder.get("bidirectional") and int(saved.get("num_layers", 1)) > 1:
        raise ConfigError(
            f"model.init_from={path} with model.encoder.bidirectional=true: the generator has "
            f"{saved.get('num_layers')} layers, and above the first a bidirectional classifier's layer reads both "
            "directions (twice the inputs of the generator's); start a bidirectional classifier from a one-layer "
            "generator, or set model.encoder.bidirectional=false."
        )
    if diffs:
        raise ConfigError(
            f"model.init_from={path}: the classifier's layers must have the generator's shapes, and these differ: "
            f"{', '.join(diffs)}. Use the generator's settings (its run's .hydra/config.yaml)."
        )
    weights = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.encoder.")}
    return Start(Path(path), checkpoints.tokenizer(ckpt, path).vocab, weights)


def tokenizer(start: Start, max_len: int | str, padding: str, truncation: str) -> WordTokenizer:
    """The generator's vocabulary with the classifier's length and sides."""
    if max_len == AUTO_LENGTH:  # the data is encoded with this tokenizer, so its length comes first
        raise ConfigError(
            f"data.max_len=auto with model.init_from={start.path}: a model started from a generator reads the data "
            "with the generator's vocabulary, made before the data is read; give a number of words (e.g. "
            "data.max_len=64)."
        )
    return WordTokenizer(start.vocab, max_len, padding, truncation)


def apply(start: Start, net: torch.nn.Module) -> None:
    """Copy the generator's encoder (its embedding and recurrent weights) into ``net`` (a SequenceClassifier);
    a bidirectional encoder's backward direction (torch's ``*_reverse`` weights) keeps its fresh start."""
    missing, _ = net.load_state_dict(start.weights, strict=False)
    left = [k for k in missing if not k.startswith("head.") and not k.endswith("_reverse")]
    if left:
        raise ConfigError(f"model.init_from={start.path} lacks the weights {left}; is it a seqclf generator?")


# A share of unknown words above which a pretrained vocabulary is said to fit the data badly.
UNKNOWN_WARN = 0.2


def warn_unknown(tokens: torch.Tensor, start: Start) -> float:
    """The share of the training words that the generator's vocabulary does not have (read as <unk>),
    warned about above UNKNOWN_WARN: a generator trained on other data reads little of this data."""
    from seqclf.data.text import PAD_ID, UNK_ID

    words = int((tokens != PAD_ID).sum())
    share = int((tokens == UNK_ID).sum()) / max(words, 1)
    if share > UNKNOWN_WARN:
        log.warning(
            "%.0f%% of the training words are not in the vocabulary of model.init_from=%s and are read as <unk>: the "
            "generator was trained on other data. Train the generator on these texts (task=generate with this "
            "data.path), or start without model.init_from.",
            100 * share, start.path,
        )  # fmt: skip
    return share
