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


def confusion_matrix(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    title: str,
    support: Sequence[int] | None = None,
    path: Path | None = None,
) -> np.ndarray | None:
    """A confusion matrix, each row divided by its true class's texts (the diagonal is each class's
    recall), class names on both axes. Multi-label (``support``: the texts carrying each label): how
    often texts carrying the row's label were given the column's. Saved to ``path``, or returned as
    an RGB array for TensorBoard."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    multi_label = support is not None
    totals = np.asarray(support, dtype=float)[:, None] if multi_label else counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(labels)
    side = min(16.0, max(4.5, 0.45 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the row's texts")
    names = [textwrap.shorten(str(name), width=18, placeholder="…") for name in labels]
    ax.set_xticks(range(n), names, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), names)
    kind = "label" if multi_label else "class"
    ax.set(xlabel=f"predicted {kind}", ylabel=f"true {kind}", title=title)
    if n <= 12:  # the numbers stay legible
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{share[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center", fontsize=9,
                        color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return None
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
