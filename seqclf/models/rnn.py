"""The network: a plain nn.Module that knows nothing about training."""

from __future__ import annotations

import torch
from torch import nn

from seqclf.errors import check_positive_int
from seqclf.hparams import CELL_NAMES, check_cutoffs, check_settings

CELLS: dict[str, type[nn.RNNBase]] = dict(zip(CELL_NAMES, (nn.RNN, nn.LSTM, nn.GRU), strict=True))


class RecurrentEncoder(nn.Module):
    """Embedding -> RNN/LSTM/GRU: the part every task's network shares (its ``embedding`` and
    ``encoder`` are what a task's head reads)."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 16,
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pad_idx: int = 0,
        pooling: str = "last",
    ):
        super().__init__()
        check_settings(cell, embed_dim, hidden_size, num_layers, dropout, pooling)
        self.hidden_size, self.bidirectional, self.pad_idx = hidden_size, bidirectional, pad_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.encoder = CELLS[cell](
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between layers only
        )
        self.dropout = nn.Dropout(dropout)

    @property
    def features(self) -> int:
        """The size of the encoder's output at each step."""
        return self.hidden_size * (2 if self.bidirectional else 1)


class RNNTagger(RecurrentEncoder):
    """Embedding -> RNN/LSTM/GRU -> dropout -> Linear(., num_tags) at every step: a tag per word
    (many-to-many). The loss and metrics skip the padding's steps."""

    def __init__(self, vocab_size: int, num_tags: int, **settings):
        super().__init__(vocab_size, **settings)
        check_positive_int("num_tags", num_tags)
        self.head = nn.Linear(self.features, num_tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch, time, num_tags) logits."""
        out, _ = self.encoder(self.embedding(tokens))
        return self.head(self.dropout(out))


class RNNLanguageModel(RecurrentEncoder):
    """Embedding -> RNN/LSTM/GRU -> dropout -> a softmax over the vocabulary at every step: the next
    word's distribution (one-to-many generation). ``cutoffs`` (ascending word ranks, e.g. [1000, 5000])
    make it an adaptive softmax (Grave et al. 2017, torch's AdaptiveLogSoftmaxWithLoss): the most
    frequent words and one entry per cluster in the head, rarer words in clusters behind smaller
    projections, so most steps never score the rare words. The vocabulary must be ranked by frequency
    (seqclf's is). Without cutoffs the head is one Linear layer over every word."""

    def __init__(self, vocab_size: int, cutoffs: list[int] | None = None, **settings):
        super().__init__(vocab_size, **settings)
        check_cutoffs(cutoffs, vocab_size)
        self.adaptive = bool(cutoffs)
        if self.adaptive:
            self.head = nn.AdaptiveLogSoftmaxWithLoss(self.features, vocab_size, list(cutoffs), div_value=4.0)
        else:
            self.head = nn.Linear(self.features, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch, time, features): what the head reads at each step."""
        out, _ = self.encoder(self.embedding(tokens))
        return self.dropout(out)

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


class RNNClassifier(RecurrentEncoder):
    """Embedding -> RNN/LSTM/GRU -> pooling -> dropout -> Linear(., num_outputs): one logit per
    sequence (``num_outputs=1``, binary: the lecture's model) or one per class or label.

    With ``pooling="last"`` the sequence is represented by the encoder's output at the last time
    step, which is the last real token when sequences are pre-padded (zeros in front); with
    ``bidirectional`` the backward direction's summary is its output at time 0, where it has read
    the whole sequence. ``"max"`` takes each unit's maximum over the real (non-padding) steps, and
    ``"last_max"`` both, side by side.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 16,
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pad_idx: int = 0,
        pooling: str = "last",
        num_outputs: int = 1,
    ):
        super().__init__(vocab_size, cell, embed_dim, hidden_size, num_layers, bidirectional, dropout, pad_idx, pooling)
        check_positive_int("num_outputs", num_outputs)
        self.pooling = pooling
        self.head = nn.Linear(self.features * (2 if pooling == "last_max" else 1), num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch,) logits, or (batch, num_outputs)."""
        return self.classify(self.embedding(tokens), tokens != self.pad_idx)

    def classify(self, embedded: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """``embedded``: (batch, time, embed_dim), the encoder's inputs x_t -> (batch,) logits (or
        (batch, num_outputs));
        ``real``: (batch, time), True at the review's own words (None: all). Split from ``forward``
        so that gradients with respect to each x_t can be measured."""
        out, _ = self.encoder(embedded)
        features = []
        if self.pooling in ("last", "last_max"):
            if self.bidirectional:
                h = self.hidden_size
                features.append(torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1))
            else:
                features.append(out[:, -1])
        if self.pooling in ("max", "last_max"):
            if real is not None:
                out = out.masked_fill(~real.unsqueeze(-1), float("-inf"))
            features.append(torch.nan_to_num(out.amax(dim=1), neginf=0.0))  # an empty review: zeros
        logits = self.head(self.dropout(torch.cat(features, dim=-1)))
        return logits.squeeze(-1) if logits.shape[-1] == 1 else logits

    def trace(self, tokens: torch.Tensor) -> torch.Tensor:
        """The classifier's opinion after every word: (batch, time, num_outputs) logits, the output
        layer applied to what the pooling has seen up to each step (``last``: that step's output;
        ``max``: the running maximum over the words so far), so the last real step's are
        ``forward``'s. The same network, no retraining; unidirectional models only (a backward
        direction has read the words to come)."""
        if self.bidirectional:
            raise ValueError("the reading trace needs a unidirectional model; this one reads in both directions")
        real = tokens != self.pad_idx
        out, _ = self.encoder(self.embedding(tokens))
        features = []
        if self.pooling in ("last", "last_max"):
            features.append(out)
        if self.pooling in ("max", "last_max"):
            masked = out.masked_fill(~real.unsqueeze(-1), float("-inf"))
            features.append(torch.nan_to_num(masked.cummax(dim=1).values, neginf=0.0))
        return self.head(self.dropout(torch.cat(features, dim=-1)))
