"""Figures of an evaluation: per piece (as in the report) and the distance densities per feature."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import symusic

from ..generation.render import draw_piano_roll
from .yang_lerch import FeatureComparison, density


def _save(fig, path: Path, tight: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:  # measuring the layout costs as much as drawing: fixed margins for the many piece figures
        fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def histogram(ax, values: list[int], edges: np.ndarray, label: str, color: str) -> None:
    """One filled outline: a bar patch per bin costs more than all the rest of a figure."""
    ax.stairs(np.histogram(values, edges)[0], edges, fill=True, color=color)
    ax.set_xlabel(label)
    ax.set_ylabel("notes")


def piece_figure(score: symusic.Score, path: Path, title: str) -> Path:
    """Piano roll (note distribution over time), pitch-frequency and velocity histograms."""
    notes = [n for t in score.tracks for n in t.notes]
    fig = plt.figure(figsize=(10, 5), dpi=70)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.3, 1], left=0.07, right=0.98, top=0.93, bottom=0.1, hspace=0.35)
    draw_piano_roll(fig.add_subplot(grid[0, :]), score, title)
    histogram(fig.add_subplot(grid[1, 0]), [n.pitch for n in notes], np.arange(21, 110) - 0.5, "MIDI pitch", "tab:blue")
    histogram(fig.add_subplot(grid[1, 1]), [n.velocity for n in notes], np.arange(0, 129, 4), "velocity", "tab:orange")
    return _save(fig, path, tight=False)


def distance_figure(comparisons: list[FeatureComparison], path: Path, reference: str) -> Path:
    """Per feature: densities of intra-set distances (generated, reference) and inter-set distances."""
    columns = 3
    rows = -(-len(comparisons) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 3 * rows), dpi=70)
    for ax, c in zip(axes.ravel(), comparisons, strict=False):
        for samples, label in ((c.intra_generated, "intra generated"), (c.intra_reference, f"intra {reference}")):
            ax.plot(c.grid, density(samples, c.grid), label=label)
        ax.plot(c.grid, density(c.inter, c.grid), label="inter", linestyle="--")
        ax.set_title(f"{c.feature}\nOA {c.oa:.2f} · KL {c.kl:.2f}", fontsize=9)
    for ax in axes.ravel()[len(comparisons) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    return _save(fig, path)
