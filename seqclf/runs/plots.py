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


def tick_names(names: Sequence[str], width: int = 18) -> list[str]:
    """Names for an axis's ticks, each at most ``width`` characters and every one still told apart: a
    long name keeps its start and its end (``interfac…mmandline``), where names of one family differ;
    names still alike get their class's number (its row in the report)."""
    head = (width - 1) // 2
    short = [n if len(n) <= width else f"{n[:head]}…{n[len(n) - (width - 1 - head) :]}" for n in names]
    counts = {s: short.count(s) for s in short}
    return [f"{s} #{i + 1}" if counts[s] > 1 else s for i, s in enumerate(short)]


def _legend_below(ax, columns: int = 1) -> None:
    if ax.lines:  # below the axes: labels can be long
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns)
    else:
        ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)


def distinct_styles(keys: Sequence[Sequence[str]]) -> list[dict]:
    """A line style per run that tells runs apart however many there are: the colour follows the
    value of the first swept setting, the line style the second's, the marker the third's (and runs
    that share all three are told apart by the next colours). ``keys``: each run's swept values."""
    columns = [list(dict.fromkeys(k[i] if i < len(k) else "" for k in keys)) for i in range(3)]
    palette = [f"C{i}" for i in range(10)] if len(columns[0]) <= 10 else [f"tab20:{i}" for i in range(20)]
    lines, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v", "P", "X", "*"]
    styles, seen = [], {}
    for k in keys:
        value = [k[i] if i < len(k) else "" for i in range(3)]
        index = [columns[i].index(value[i]) for i in range(3)]
        repeat = seen.setdefault(tuple(index), 0)
        seen[tuple(index)] += 1
        n = index[0] + repeat * len(columns[0])
        colour, wrapped = palette[n % len(palette)], n // len(palette)  # past the palette: other markers
        if colour.startswith("tab20:"):
            colour = _pyplot().get_cmap("tab20")(int(colour[6:]))
        marker = markers[(index[2] + wrapped) % len(markers)]
        styles.append({"color": colour, "linestyle": lines[index[1] % len(lines)], "marker": marker})
    return styles


def _epoch_axis(ax, longest: int) -> None:
    from matplotlib.ticker import MaxNLocator

    if 0 < longest <= 20:
        ax.set_xticks(range(1, longest + 1))  # a one-epoch run's single tick is 1, not 0.96 ... 1.04
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def epoch_curves(
    curves: Sequence[tuple[str, Sequence[float]]],
    path: Path,
    ylabel: str,
    title: str,
    styles: list[dict] | None = None,
    losses: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
) -> None:
    """One line per (label, values) against the epoch (1, 2, ...; whole-number ticks), saved to
    ``path``; ``styles`` (seqclf.runs.plots.distinct_styles) tell many runs apart. ``losses``: each
    run's (training, validation) loss per epoch, drawn in a second panel in the run's colour
    (validation in its style, training dotted): where one falls while the other rises, the run
    overfits."""
    plt = _pyplot()
    styles = styles or [{"marker": "o"}] * len(curves)
    panels = 2 if losses is not None and any(len(t) or len(v) for t, v in losses) else 1
    fig, axes = plt.subplots(1, panels, figsize=(8 * panels, 5), squeeze=False)
    ax = axes[0][0]
    longest = max((len(values) for _, values in curves), default=0)
    for (label, values), style in zip(curves, styles, strict=True):
        if len(values):
            label = textwrap.shorten(label, width=90, placeholder=" ...")
            ax.plot(range(1, len(values) + 1), values, label=label, **style)
    _epoch_axis(ax, longest)
    ax.set(ylabel=ylabel, title=title)
    if panels == 2:
        right = axes[0][1]
        for (train, val), style in zip(losses, styles, strict=True):
            right.plot(range(1, len(val) + 1), val, **style)
            right.plot(range(1, len(train) + 1), train, color=style.get("color"), linestyle=":", alpha=0.8)
        _epoch_axis(right, max(max(len(t), len(v)) for t, v in losses))
        right.set(ylabel="loss", title="loss per epoch: validation (as on the left), training (dotted)")
    _legend_below(ax, columns=2 if len(curves) > 8 else 1)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def position_curves(
    curves: Sequence[tuple[str, Sequence[float]]],
    ylabel: str,
    title: str,
    log_y: bool = False,
    path: Path | None = None,
    colormap: str | None = None,
    styles: list[dict] | None = None,
) -> np.ndarray | None:
    """One line per (label, values) against the position in the review (1 = first word). Saved to
    ``path``, or returned as an RGB array (height, width, 3) for TensorBoard's image tab, drawn small
    with large text so that it stays readable at TensorBoard's card size (with many lines, only the
    first and last are named). ``colormap`` colours the lines in order (e.g. epochs from dark to
    light). On a log axis, exact zeros (a gradient that underflowed) are drawn on a line of their own
    marked "0 (underflow)" instead of dropping off the axis."""
    plt = _pyplot()
    board = path is None
    fig, ax = plt.subplots(figsize=(7, 4) if not board else (5, 3.4))
    colors = plt.get_cmap(colormap)(np.linspace(0.05, 0.9, max(len(curves), 1))) if colormap else [None] * len(curves)
    positive = [v for _, values in curves for v in values if v > 0]
    floor = min(positive) / 10 if log_y and positive else None
    underflow = False
    for i, ((label, values), color) in enumerate(zip(curves, colors, strict=True)):
        if not len(values):
            continue
        style = dict(styles[i]) if styles else {"color": color}
        if "marker" in style:  # a few markers per line, enough to tell runs of one colour and style apart
            style.update(markevery=max(1, len(values) // 6), markersize=4)
        values = np.asarray(values, dtype=float)
        if floor is not None and (values <= 0).any():
            underflow = True
            zero = values <= 0
            ax.plot(np.flatnonzero(zero) + 1, np.full(zero.sum(), floor), "v", color=style.get("color"), ms=4)
            values = np.where(zero, np.nan, values)
        named = not board or len(curves) <= 4 or i in (0, len(curves) - 1)
        label = textwrap.shorten(label, width=90, placeholder=" ...") if named else None
        ax.plot(range(1, len(values) + 1), values, label=label, **style)
    if log_y:
        ax.set_yscale("log")
    if underflow:
        ax.axhline(floor, color="grey", lw=0.8, ls=":")
        right = max(len(values) for _, values in curves)
        ax.annotate("0 (underflow)", (right, floor), xytext=(0, 3), textcoords="offset points", fontsize=9,
                    color="grey", ha="right")  # fmt: skip
    text = {"fontsize": 11} if board else {}
    ax.set_xlabel("position in the review (1 = first word)", **text)
    ax.set_ylabel(ylabel, **text)
    ax.set_title(title, **({"fontsize": 12} if board else {}))
    ax.grid(alpha=0.3, which="both" if log_y else "major")
    if not board:
        _legend_below(ax, columns=2 if len(curves) > 8 else 1)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return None
    ax.tick_params(labelsize=10)
    if len(curves) > 1:
        ax.legend(fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


# Classes a confusion matrix shows at most: past this, neither the names nor the cells can be read,
# and drawing thousands of ticks cost minutes a run.
MATRIX_CLASSES = 40


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
    labels = list(labels)
    if len(labels) > MATRIX_CLASSES:  # what can be read: the classes with the most texts, said in the title
        kept = np.sort(np.argsort(-totals[:, 0], kind="stable")[:MATRIX_CLASSES])
        share, counts = share[np.ix_(kept, kept)], counts[np.ix_(kept, kept)]
        kind = "labels" if multi_label else "classes"
        title = f"{title} (the {MATRIX_CLASSES} {kind} with the most texts of {len(labels)})"
        labels = [labels[k] for k in kept]
    n = len(labels)
    side = min(16.0, max(4.5, 0.45 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the row's texts")
    names = tick_names([str(name) for name in labels])
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


def reading_trace(traces: Sequence[dict], label: str, path: str | Path, width: int = 96) -> Path:
    """Texts word by word, each word's background the probability of ``label`` after reading it
    (red 0, yellow 0.5, green 1): how a many-to-one classifier's opinion moves through a text.
    ``traces``: records with ``words`` and ``trace`` (class -> probability, one per word)."""
    plt = _pyplot()
    cmap = plt.get_cmap("RdYlGn")
    layouts = []
    for record in traces:  # lines of (column, word, probability), monospace columns
        lines, column = [[]], 0
        for word, probs in zip(record["words"], record["trace"], strict=True):
            if column and column + len(word) > width:
                lines.append([])
                column = 0
            lines[-1].append((column, word, probs[label]))
            column += len(word) + 1
        layouts.append(lines)
    rows = sum(len(lines) + 2 for lines in layouts)
    fig = plt.figure(figsize=(width * 0.085 + 0.4, 0.24 * rows + 0.9))
    ax = fig.add_axes((0.01, 0.9 / (0.24 * rows + 0.9), 0.98, 1 - 0.9 / (0.24 * rows + 0.9)))
    ax.set_xlim(0, width)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    y = 0
    for n, (record, lines) in enumerate(zip(traces, layouts, strict=True), start=1):
        final = record["trace"][-1][label] if record["trace"] else float("nan")
        ax.text(0, y + 0.5, f"text {n}: P({label}) after the last word {final:.2f}", fontsize=9, weight="bold",
                va="center")  # fmt: skip
        y += 1
        for line in lines:
            for column, word, p in line:
                ax.text(column, y + 0.5, word, family="monospace", fontsize=9, va="center",
                        bbox={"facecolor": cmap(p), "edgecolor": "none", "pad": 1.5})  # fmt: skip
            y += 1
        y += 1
    bar = fig.add_axes((0.3, 0.25 / (0.24 * rows + 0.9), 0.4, 0.12 / (0.24 * rows + 0.9)))
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap), cax=bar, orientation="horizontal", label=f"P({label}) so far")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
