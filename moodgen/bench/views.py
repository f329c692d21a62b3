"""The benchmark's two classifier-free views: distribution confusion and copying.

- Distribution confusion: the Yang & Lerch overlapping area (mean over the nine features) of the
  pieces generated for mood m with the real phrases of each mood r, a 4 x 4 matrix; a mood's
  pieces should sit closest to its own mood's phrases.
- Copying: the share of a generated piece's 12-note pitch runs found in any labelled phrase or LM
  training piece; a method that reaches its mood by replaying training music shows here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import symusic

from ..data.overlap import fingerprint, ngram_fingerprint, score_pitches
from ..evaluation.yang_lerch import compare_sets, piece_features
from ..moods import MOODS


def feature_oa(generated: list[dict], reference: list[dict], points: int) -> dict[str, float]:
    """Each feature's overlapping area ({} when a set has fewer than two pieces)."""
    if len(generated) < 2 or len(reference) < 2:
        return {}
    return {c.feature: c.oa for c in compare_sets(generated, reference, points)}


def mean_oa(generated: list[dict], reference: list[dict], points: int) -> float:
    """Mean overlapping area over the nine features (NaN when a set has fewer than two pieces)."""
    return mean_area(feature_oa(generated, reference, points))


def mean_area(areas: dict[str, float]) -> float:
    """The mean of feature_oa's areas (NaN when there are none)."""
    return float(np.mean(list(areas.values()))) if areas else float("nan")


def distribution_confusion(
    generated: dict[int, list[symusic.Score]], reference: dict[int, list[symusic.Score]], points: int = 200
) -> np.ndarray:
    """[generated mood, real mood] -> mean OA; rows are the requested moods, columns the real ones."""
    gen = {m: [piece_features(s) for s in scores] for m, scores in generated.items()}
    ref = {m: [piece_features(s) for s in scores] for m, scores in reference.items()}
    matrix = np.full((len(MOODS), len(MOODS)), np.nan)
    for m in gen:
        for r in ref:
            matrix[m, r] = mean_oa(gen[m], ref[r], points)
    return matrix


def own_mood_closest(matrix: np.ndarray) -> float:
    """Share of generated moods whose pieces overlap most with their own mood's real phrases."""
    rows = [m for m in range(len(matrix)) if np.isfinite(matrix[m]).any()]
    return float(np.mean([np.nanargmax(matrix[m]) == m for m in rows])) if rows else float("nan")


class CopyIndex:
    """Every 12-note pitch run of the music a model could copy: labelled phrases and LM training pieces."""

    def __init__(self, files: list[Path]):
        runs = [fingerprint(path) for path in files]
        self.runs = np.unique(np.concatenate(runs)) if runs else np.zeros(0, np.uint64)
        self.files = len(files)

    def copied_share(self, score: symusic.Score) -> float:
        """Share of the piece's distinct runs found in the index (NaN for a piece too short to have one)."""
        piece = ngram_fingerprint(score_pitches(score))
        if not len(piece):
            return float("nan")
        return float(np.isin(piece, self.runs, assume_unique=True).mean())
