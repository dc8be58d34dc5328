"""The networks, plain nn.Modules that know nothing about training: an encoder (any
seqclf.models.encoders.Encoder) and each task's head."""

from __future__ import annotations

import torch
from torch import nn

from seqclf.errors import ConfigError, check_positive_int
from seqclf.models import encoders
from seqclf.models import pooling as pooling_
from seqclf.models.checks import check_cutoffs, check_pooling
from seqclf.models.encoders import Encoder


class SequenceClassifier(nn.Module):
    """encoder -> pooling -> dropout -> Linear(., num_outputs): one logit per sequence
    (``num_outputs=1``, binary: the lecture's model) or one per class or label. ``pooling``: see
    seqclf.models.pooling (``last`` is the last real token's output when texts are pre-padded)."""

    def __init__(self, encoder: Encoder, num_outputs: int = 1, pooling: str = "last", dropout: float = 0.0):
        super().__init__()
        check_pooling(pooling)
        check_positive_int("num_outputs", num_outputs)
        self.encoder, self.pooling, self.pad_idx = encoder, pooling, _pad_idx(encoder)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(pooling_.width(pooling, encoder.features), num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch,) logits, or (batch, num_outputs)."""
        mask = tokens != self.pad_idx
        return self.readout(self.encoder(tokens, mask), mask)

    def readout(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder's features -> the logits (pooling, dropout, the head)."""
        logits = self.head(self.dropout(pooling_.pool(self.encoder, features, mask, self.pooling)))
        return logits.squeeze(-1) if logits.shape[-1] == 1 else logits

    def trace(self, tokens: torch.Tensor) -> torch.Tensor:
        """The classifier's opinion after every word: (batch, time, num_outputs) logits, the output
        layer applied to what the pooling has seen up to each step, so the last real step's are
        ``forward``'s. The same network, no retraining; causal encoders only (a backward direction
        has read the words to come)."""
        if not self.encoder.causal:
            raise ValueError("the reading trace needs a model that reads in order; this one reads the words to come")
        mask = tokens != self.pad_idx
        seen = pooling_.running(self.encoder, self.encoder(tokens, mask), mask, self.pooling)
        return self.head(self.dropout(seen))


class SequenceTagger(nn.Module):
    """encoder -> dropout -> Linear(., num_tags) at every step: a tag per word (many-to-many). The
    loss and metrics skip the padding's steps."""

    def __init__(self, encoder: Encoder, num_tags: int, dropout: float = 0.0):
        super().__init__()
        check_positive_int("num_tags", num_tags)
        self.encoder, self.pad_idx = encoder, _pad_idx(encoder)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.features, num_tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch, time, num_tags) logits."""
        return self.head(self.dropout(self.encoder(tokens, tokens != self.pad_idx)))


class LanguageModel(nn.Module):
    """encoder -> dropout -> a softmax over the vocabulary at every step: the next word's
    distribution (one-to-many generation); the encoder must be causal. ``cutoffs`` (ascending word
    ranks, e.g. [1000, 5000]) make it an adaptive softmax (Grave et al. 2017, torch's
    AdaptiveLogSoftmaxWithLoss): the most frequent words and one entry per cluster in the head,
    rarer words in clusters behind smaller projections, so most steps never score the rare words.
    The vocabulary must be ranked by frequency (seqclf's is). Without cutoffs the head is one
    Linear layer over every word."""

    def __init__(self, encoder: Encoder, vocab_size: int, cutoffs: list[int] | None = None, dropout: float = 0.0):
        super().__init__()
        check_cutoffs(cutoffs, vocab_size)
        if not encoder.causal:
            raise ConfigError(
                f"{type(encoder).__name__} reads the words to come (it is not causal), and a generator writes left to "
                "right; choose an encoder that reads in order (model.encoder.bidirectional=false for the cells)."
            )
        self.encoder, self.pad_idx = encoder, _pad_idx(encoder)
        self.dropout = nn.Dropout(dropout)
        self.adaptive = bool(cutoffs)
        if self.adaptive:
            self.head = nn.AdaptiveLogSoftmaxWithLoss(encoder.features, vocab_size, list(cutoffs), div_value=4.0)
        else:
            self.head = nn.Linear(encoder.features, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch, time, features): what the head reads at each step."""
        return self.dropout(self.encoder(tokens, tokens != self.pad_idx))

    def nll(self, features: torch.Tensor, target: torch.Tensor, ignore: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed negative log-likelihood of ``target``'s real steps (not ``ignore``) and their count."""
        real = target != ignore
        if self.adaptive:
            total = -self.head(features[real], target[real]).output.sum()
        else:
            total = nn.functional.cross_entropy(
                self.head(features).flatten(0, 1), target.flatten(), ignore_index=ignore, reduction="sum"
            )
        return total, real.sum()

    def next_word_scores(self, features: torch.Tensor) -> torch.Tensor:
        """(…, vocab_size) scores whose softmax is the next word's distribution: the full head's
        logits, the adaptive head's log-probabilities."""
        if not self.adaptive:
            return self.head(features)
        return self.head.log_prob(features.flatten(0, -2)).unflatten(0, features.shape[:-1])  # it takes rows only


def _pad_idx(encoder: Encoder) -> int:
    """The padding id the encoder was built for (seqclf's tokenizers pad with 0)."""
    return getattr(encoder, "pad_idx", 0)


# Each task's network from a checkpoint's (or a task module's) hyperparameters: the registry's
# builders (seqclf.tasks), so that a checkpoint builds its network without Lightning.


def classifier_of(hp) -> SequenceClassifier:
    from seqclf.data.labels import IMDB_NAMES, Labels

    labels = Labels(tuple(str(name) for name in hp.get("labels") or IMDB_NAMES), bool(hp.get("multi_label", False)))
    encoder = encoders.build(hp["encoder"], hp["vocab_size"])
    return SequenceClassifier(encoder, labels.num_outputs, hp.get("pooling", "last"), hp.get("dropout", 0.0))


def tagger_of(hp) -> SequenceTagger:
    return SequenceTagger(encoders.build(hp["encoder"], hp["vocab_size"]), len(hp["labels"]), hp.get("dropout", 0.0))


def language_model_of(hp) -> LanguageModel:
    encoder = encoders.build(hp["encoder"], hp["vocab_size"])
    return LanguageModel(encoder, hp["vocab_size"], hp.get("softmax_cutoffs"), hp.get("dropout", 0.0))
