"""Pooling: what represents a whole text, from an encoder's features at every step (seqclf.models.encoders)."""

from __future__ import annotations

import torch

from seqclf.models.checks import POOLINGS
from seqclf.models.encoders import Encoder

__all__ = ["POOLINGS", "pool", "running", "width"]


# The parts of each pooling, in the order they are concatenated.
PARTS = {"last": ("last",), "max": ("max",), "mean": ("mean",), "last_max": ("last", "max"),
         "concat": ("last", "max", "mean")}  # fmt: skip


def width(pooling: str, features: int) -> int:
    """The width of a pooled text: the encoder's features, once per part."""
    return features * len(PARTS[pooling])


def pool(encoder: Encoder, features: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """(batch, time, features) -> (batch, width): the text's representation; ``mask`` (batch, time)
    is True at the text's own steps (None: all)."""
    parts = []
    for part in PARTS[pooling]:
        if part == "last":
            parts.append(encoder.last(features, mask))
        elif part == "max":
            masked = features if mask is None else features.masked_fill(~mask.unsqueeze(-1), float("-inf"))
            parts.append(torch.nan_to_num(masked.amax(dim=1), neginf=0.0))  # an empty text: zeros
        else:
            parts.append(_mean(features, mask))
    return torch.cat(parts, dim=-1)


def _mean(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return features.mean(dim=1)
    real = mask.unsqueeze(-1).to(features.dtype)
    return (features * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)  # an empty text: zeros


def running(encoder: Encoder, features: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, time, width): what the pooling has seen up to each step, for a causal encoder
    (``last``: the encoder's summary so far, its ``summaries``;
    ``max``: the running maximum over the words so far; ``mean``: the running mean)."""
    parts, real = [], mask.unsqueeze(-1).to(features.dtype)
    seen = real.cumsum(dim=1).clamp(min=1)
    for part in PARTS[pooling]:
        if part == "last":  # the encoder's summary so far: the cells' step output, a bag's mean
            parts.append(encoder.summaries(features, mask))
        elif part == "max":
            masked = features.masked_fill(~mask.unsqueeze(-1), float("-inf"))
            parts.append(torch.nan_to_num(masked.cummax(dim=1).values, neginf=0.0))
        else:
            parts.append((features * real).cumsum(dim=1) / seen)
    return torch.cat(parts, dim=-1)
