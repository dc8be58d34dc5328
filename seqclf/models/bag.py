"""The bag of n-grams, fastText's model (Joulin et al. 2016), as an encoder: each word's embedding and
the hashed embeddings of the word n-grams that end at it, summed at that step; a text's summary
(what ``pooling=last`` reads) is their mean over its words. And the hybrid: the recurrent encoder's
features beside the bag's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from seqclf.models.checks import check_bag
from seqclf.models.encoders import Encoder, RecurrentEncoder

# Multipliers of the n-gram hash (fastText's is 116049371 on words' hashes): distinct odd numbers,
# so that the n-grams (a, b) and (b, a) fall into different buckets; one per n from 2 to
# seqclf.models.checks.MAX_NGRAMS.
_PRIMES = (116049371, 2654435761, 40503)


class BagEncoder(Encoder):
    """``embed_dim``-wide embeddings of the words (the vocabulary's ids) and of their n-grams for n
    from 2 to ``ngrams``, each hashed into one of ``buckets`` rows (fastText's ``-wordNgrams`` and
    ``-bucket``); the features at step t are the word's embedding plus those of the n-grams ending
    at it (an n-gram that reaches into the padding is left out), so the encoder is causal. Its
    summary is the mean of the text's steps: with a linear head, fastText's classifier. ``sparse``:
    the table's gradients hold the rows a batch read, and the engine updates those rows alone
    (seqclf.tasks.engine, SparseAdam), as fastText's training does."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        ngrams: int = 2,
        buckets: int = 262_144,
        sparse: bool = True,
        pad_idx: int = 0,
    ):
        super().__init__()
        check_bag(embed_dim, ngrams, buckets)
        self.vocab_size, self.ngrams, self.buckets, self.pad_idx = vocab_size, ngrams, buckets, pad_idx
        self.features, self.causal = embed_dim, True
        rows = vocab_size + (buckets if ngrams > 1 else 0)
        self.embedding = nn.Embedding(rows, embed_dim, padding_idx=pad_idx, sparse=sparse)
        with torch.no_grad():  # fastText's start: uniform in +-1/dim, so a text's mean starts small
            self.embedding.weight.uniform_(-1.0 / embed_dim, 1.0 / embed_dim)
            self.embedding.weight[pad_idx].zero_()

    def ids(self, tokens: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The rows each step reads, (ids, real) per n from 1 to ``ngrams``: ``real`` is False where the
        n-gram ending at that step reaches a padding step (or the start of the text)."""
        out = [(tokens, mask)]
        hashed, real = tokens.long(), mask
        for n in range(2, self.ngrams + 1):
            prev, prev_real = tokens.roll(n - 1, dims=1).long(), mask.roll(n - 1, dims=1)
            prev_real[:, : n - 1] = False
            hashed = hashed * _PRIMES[n - 2] + prev
            real = real & prev_real
            out.append((self.vocab_size + hashed.remainder(self.buckets), real))
        return out

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = tokens != self.pad_idx if mask is None else mask
        features = None
        for ids, real in self.ids(tokens, mask):
            rows = self.embedding(ids.masked_fill(~real, self.pad_idx))  # the padding row is zeros
            features = rows if features is None else features + rows
        return features

    def last(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The mean over the text's own steps (zeros for an empty text)."""
        if mask is None:
            return features.mean(dim=1)
        real = mask.unsqueeze(-1).to(features.dtype)
        return (features * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)

    def summaries(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean of the text's steps so far, at each step."""
        real = mask.unsqueeze(-1).to(features.dtype)
        return (features * real).cumsum(dim=1) / real.cumsum(dim=1).clamp(min=1)

    def word_embeddings(self) -> list[nn.Embedding]:
        """The table's first ``vocab_size`` rows are the words' (the n-grams' buckets follow)."""
        return [self.embedding]

    def step(self, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """The features of ``tokens`` following the words in ``state`` (the last ``ngrams - 1`` ids)."""
        before = state if state is not None else tokens.new_zeros(len(tokens), 0)
        seen = torch.cat([before, tokens], dim=1)
        features = self(seen, seen != self.pad_idx)[:, before.shape[1] :]
        return features, seen[:, -(self.ngrams - 1) :] if self.ngrams > 1 else before

    @classmethod
    def work(cls, settings: Mapping[str, Any], batch: int, length: int) -> float:
        """Gathers and sums, a few per word: far below what more threads pay for."""
        return float(batch * length * settings.get("embed_dim", 64) * settings.get("ngrams", 2))


class HybridEncoder(Encoder):
    """A recurrent encoder (``recurrent``: its settings) and a bag of n-grams (``bag``: its settings),
    reading the same words, their features side by side at every step; the summary is the recurrent
    one's (its last step) beside the bag's (its mean), so the head weighs the order-free evidence
    and the read-in-order one together (the combination Mesnil et al. 2014 found past both on IMDB)."""

    def __init__(self, vocab_size: int, recurrent: Mapping | None = None, bag: Mapping | None = None, pad_idx: int = 0):
        super().__init__()
        self.recurrent = RecurrentEncoder(vocab_size, pad_idx=pad_idx, **dict(recurrent or {}))
        self.bag = BagEncoder(vocab_size, pad_idx=pad_idx, **dict(bag or {}))
        self.pad_idx, self.split = pad_idx, self.recurrent.features
        self.features = self.recurrent.features + self.bag.features
        self.causal = self.recurrent.causal

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = tokens != self.pad_idx if mask is None else mask
        return torch.cat([self.recurrent(tokens, mask), self.bag(tokens, mask)], dim=-1)

    def last(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        own, bag = features[..., : self.split], features[..., self.split :]
        return torch.cat([self.recurrent.last(own, mask), self.bag.last(bag, mask)], dim=-1)

    def summaries(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        own, bag = features[..., : self.split], features[..., self.split :]
        return torch.cat([self.recurrent.summaries(own, mask), self.bag.summaries(bag, mask)], dim=-1)

    def word_embeddings(self) -> list[nn.Embedding]:
        return [*self.recurrent.word_embeddings(), *self.bag.word_embeddings()]

    @classmethod
    def work(cls, settings: Mapping[str, Any], batch: int, length: int) -> float:
        return RecurrentEncoder.work(dict(settings.get("recurrent") or {}), batch, length) + BagEncoder.work(
            dict(settings.get("bag") or {}), batch, length
        )
