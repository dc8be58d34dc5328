"""Pooling: what represents a whole text, from an encoder's features at every step (seqclf.models.encoders)."""

from __future__ import annotations

import torch

from seqclf.models.checks import POOLINGS
from seqclf.models.encoders import Encoder

__all__ = ["POOLINGS", "pool", "running", "width"]


def width(pooling: str, features: int) -> int:
    """The width of a pooled text: the encoder's features, once per part."""
    return features * (2 if pooling == "last_max" else 1)


def pool(encoder: Encoder, features: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """(batch, time, features) -> (batch, width): the text's representation; ``mask`` (batch, time)
    is True at the text's own steps (None: all)."""
    parts = []
    if pooling in ("last", "last_max"):
        parts.append(encoder.last(features, mask))
    if pooling in ("max", "last_max"):
        if mask is not None:
            features = features.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        parts.append(torch.nan_to_num(features.amax(dim=1), neginf=0.0))  # an empty text: zeros
    return torch.cat(parts, dim=-1)


def running(features: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, time, width): what the pooling has seen up to each step, for a causal encoder
    (``last``: that step's output; ``max``: the running maximum over the words so far)."""
    parts = []
    if pooling in ("last", "last_max"):
        parts.append(features)
    if pooling in ("max", "last_max"):
        masked = features.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        parts.append(torch.nan_to_num(masked.cummax(dim=1).values, neginf=0.0))
    return torch.cat(parts, dim=-1)
