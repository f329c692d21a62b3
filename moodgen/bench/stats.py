"""Intervals for the benchmark: a share of hits, and the paired difference of two methods."""

from __future__ import annotations

import numpy as np
from scipy import stats

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval


def wilson(hits: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion: sane at 0 and 1 hits and for small totals."""
    if total == 0:
        return float("nan"), float("nan")
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(centre - half), float(centre + half)


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of a - b over paired units (the same seed, fold and mood), with a 95 % t interval.

    Units share their sampling streams across methods, so the pairing removes the noise of the
    draw itself; with one unit the interval is undefined (NaN).
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    mean = float(d.mean()) if len(d) else float("nan")
    if len(d) < 2:
        return {"diff": mean, "low": float("nan"), "high": float("nan"), "units": len(d)}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"diff": mean, "low": mean - half, "high": mean + half, "units": len(d)}


def cluster_difference(d: np.ndarray, clusters: list) -> dict[str, float]:
    """A 95 % t interval of the mean of per-unit differences `d` over clusters, each cluster's mean one value.

    Units of one cluster (a fold's fit: one fine-tuned LM) share that fit's luck, so they are not independent;
    the interval over the clusters carries what another fit would change. NaN with fewer than two clusters.
    """
    keys = sorted(set(clusters))
    d = np.asarray(d, float)
    means = np.array([d[[c == k for c in clusters]].mean() for k in keys])
    interval = paired_difference(means, np.zeros_like(means))
    return {"cluster_low": interval["low"], "cluster_high": interval["high"], "clusters": len(keys)}
