"""A profiler for when nothing is profiled, cheaper than Lightning's default."""

from __future__ import annotations

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler

_NOTHING = contextlib.nullcontext()


class NoProfiler(PassThroughProfiler):
    """Lightning's default ``PassThroughProfiler`` records nothing, yet the Trainer enters its
    generator-based ``profile()`` context around every hook call, about 140 times per training step
    with seqclf's callbacks, at ~1 us each; on a CPU the lecture's whole step takes ~2 ms. This one
    hands back one shared no-op context instead (~0.2 us)."""

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return _NOTHING
