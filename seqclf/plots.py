"""The figures seqclf draws: curves against the epoch or against the position in the review."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files and arrays only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _legend_below(ax) -> None:
    if ax.lines:  # below the axes: labels can be long
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14))
    else:
        ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)


def epoch_curves(curves: Sequence[tuple[str, Sequence[float]]], path: Path, ylabel: str, title: str) -> None:
    """One line per (label, values) against the epoch (1, 2, ...; integer ticks), saved to ``path``."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, values in curves:
        if len(values):
            label = textwrap.shorten(label, width=90, placeholder=" ...")
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def position_curves(
    curves: Sequence[tuple[str, Sequence[float]]],
    ylabel: str,
    title: str,
    log_y: bool = False,
    path: Path | None = None,
    colormap: str | None = None,
) -> np.ndarray | None:
    """One line per (label, values) against the position in the review (1 = first word). Saved to
    ``path``, or returned as an RGB array (height, width, 3) for TensorBoard's image tab.
    ``colormap`` colours the lines in order (e.g. epochs from dark to light)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4) if path else (6, 3.5))
    colors = plt.get_cmap(colormap)(np.linspace(0.05, 0.9, max(len(curves), 1))) if colormap else [None] * len(curves)
    for (label, values), color in zip(curves, colors, strict=True):
        if len(values):
            label = textwrap.shorten(label, width=90, placeholder=" ...")
            ax.plot(range(1, len(values) + 1), values, label=label, color=color)
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel="position in the review (1 = first word)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both" if log_y else "major")
    if path is not None:
        _legend_below(ax)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return None
    if len(curves) > 1:
        ax.legend(fontsize="x-small", ncol=2 if len(curves) > 6 else 1)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
