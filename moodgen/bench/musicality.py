"""What mood must not be paid with: overlap with real music, repetition, liveliness, diversity.

- overlap: mean Yang & Lerch overlapping area of all of a method's pieces with all the judge
  fold's real phrases (1: as close to them as they are among themselves), and each feature's own;
- repetition: the longest repeated bar run and the unique 4-bar share of each piece, next to the
  real phrases' own;
- alive: notes start in every 5 s of the piece;
- diversity: per mood, the mean distance between the method's pieces over the Yang & Lerch
  features, each feature's distances divided by those between the real phrases of that mood
  (1: as varied as real music of the mood; near 0: the pieces collapse onto one). The two counts
  (notes, distinct pitches) are left out: they grow with length, and the pieces all have the
  length asked for while the phrases' lengths vary, which is not variety in the music;
- duplicates: pairs of a method's pieces with the very same notes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import symusic

from ..evaluation.repetition import repetition
from ..evaluation.yang_lerch import FEATURES, intra_set_distances, piece_features
from ..generation.run import alive
from .views import feature_oa, mean_area

LENGTH_COUNTS = ("note_count", "pitch_count")  # grow with a piece's length, not its variety

PIECE_COLUMNS = ("alive", "repeated_bars", "unique_4bar")


def piece_row(score: symusic.Score) -> dict[str, float]:
    """The per-piece musicality columns of the benchmark's units.csv."""
    rep = repetition(score)
    return {
        "alive": float(alive(score)),
        "repeated_bars": rep["longest_repeated_bars"],
        "unique_4bar": rep["unique_4bar_ratio"],
    }


def diversity(generated: list[symusic.Score], real: list[symusic.Score]) -> float:
    """Mean over features of (mean intra-set distance of generated) / (that of real); NaN under 2 pieces."""
    if len(generated) < 2 or len(real) < 2:
        return float("nan")
    gen, ref = [piece_features(s) for s in generated], [piece_features(s) for s in real]
    ratios = []
    for feature in (f for f in FEATURES if f not in LENGTH_COUNTS):
        spread_real = intra_set_distances(np.stack([f[feature] for f in ref])).mean()
        spread_gen = intra_set_distances(np.stack([f[feature] for f in gen])).mean()
        if spread_real > 0:
            ratios.append(spread_gen / spread_real)
    return float(np.mean(ratios)) if ratios else float("nan")


def fingerprint(score: symusic.Score) -> str:
    notes = sorted((n.time, n.pitch, n.duration) for t in score.tracks for n in t.notes)
    return hashlib.sha256(repr(notes).encode()).hexdigest()


def duplicate_pairs(scores: list[symusic.Score]) -> int:
    counts: dict[str, int] = {}
    for score in scores:
        key = fingerprint(score)
        counts[key] = counts.get(key, 0) + 1
    return sum(c * (c - 1) // 2 for c in counts.values())


def fold_musicality(
    generated: dict[int, list[symusic.Score]], real: dict[int, list[symusic.Score]], points: int
) -> dict[str, float]:
    """One method on one fold: overlap with all real phrases, diversity per mood, duplicate pairs."""
    every_generated = [s for scores in generated.values() for s in scores]
    every_real = [s for scores in real.values() for s in scores]
    real_features = [piece_features(s) for s in every_real]
    areas = feature_oa([piece_features(s) for s in every_generated], real_features, points)
    out = {
        "overlap": mean_area(areas),
        "duplicates": float(duplicate_pairs(every_generated)),
        **{f"overlap/{feature}": area for feature, area in areas.items()},  # where the overlap is lost
    }
    for mood, scores in generated.items():
        out[f"diversity/{mood}"] = diversity(scores, real.get(mood, []))
    return out
