"""Set-level objective metrics after Yang & Lerch, "On the evaluation of generative models in music" (2018).

Each piece gets nine features (pitch count, pitch-class histogram and transition matrix, pitch
range, average pitch interval, note count, average inter-onset interval, note-length histogram
and transition matrix). For each feature, the Euclidean distances between pieces give an
intra-set distribution per set and an inter-set distribution between them; each is smoothed by
a Gaussian kernel density estimate, and the generated set's intra-set density is compared with
the inter-set density on one common grid by KL divergence and overlapping area (OA). OA near 1
and KL near 0: the generated pieces differ from the reference as much as they differ among
themselves, i.e. they resemble it. A clean reimplementation of the authors' Python 2 `mgeval`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic

# note-length classes in beats: whole, half, quarter, 8th, 16th, dotted half/quarter/8th/16th,
# half/quarter/8th triplet (mgeval's 12 classes)
NOTE_LENGTH_BEATS = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])
FEATURES = (
    "pitch_count",
    "pitch_class_histogram",
    "pitch_class_transition_matrix",
    "pitch_range",
    "avg_pitch_interval",
    "note_count",
    "avg_ioi",
    "note_length_histogram",
    "note_length_transition_matrix",
)


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(float)


def _transitions(states: np.ndarray, n: int) -> np.ndarray:
    """[n, n] share of consecutive (a -> b) pairs in a state sequence."""
    matrix = np.zeros((n, n))
    np.add.at(matrix, (states[:-1], states[1:]), 1)
    return _normalised(matrix)


def note_length_class(duration_beats: np.ndarray) -> np.ndarray:
    """The nearest of the 12 note-length classes, for each duration in beats."""
    return np.abs(duration_beats[:, None] - NOTE_LENGTH_BEATS[None]).argmin(1)


def note_arrays(score: symusic.Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch, onset in seconds, duration in beats) of every note, ordered by onset then pitch."""

    def column(tracks, name: str) -> np.ndarray:
        return np.concatenate([t.notes.numpy()[name] for t in tracks]) if len(tracks) else np.zeros(0)

    pitch = column(score.tracks, "pitch").astype(int)
    beats = column(score.tracks, "duration") / score.tpq
    onset = column(score.to("second").tracks, "time")  # the same notes in the same order, in seconds
    order = np.lexsort((pitch, onset))
    return pitch[order], onset[order], beats[order]


def piece_features(score: symusic.Score) -> dict[str, np.ndarray]:
    """The nine features of one piece (every track's notes together)."""
    pitch, onset, beats = note_arrays(score)
    lengths = note_length_class(beats)
    onsets = np.unique(onset)
    return {
        "pitch_count": np.array([len(np.unique(pitch))], float),
        "pitch_class_histogram": _normalised(np.bincount(pitch % 12, minlength=12).astype(float)),
        "pitch_class_transition_matrix": _transitions(pitch % 12, 12).ravel(),
        "pitch_range": np.array([np.ptp(pitch) if len(pitch) else 0.0], float),
        "avg_pitch_interval": np.array([np.abs(np.diff(pitch)).mean() if len(pitch) > 1 else 0.0]),
        "note_count": np.array([len(pitch)], float),
        "avg_ioi": np.array([np.diff(onsets).mean() if len(onsets) > 1 else 0.0]),  # seconds, distinct onsets
        "note_length_histogram": _normalised(np.bincount(lengths, minlength=12).astype(float)),
        "note_length_transition_matrix": _transitions(lengths, 12).ravel(),
    }


def intra_set_distances(values: np.ndarray) -> np.ndarray:
    """Distances between every pair of pieces of one set: values [n, d] -> [n (n - 1) / 2]."""
    i, j = np.triu_indices(len(values), k=1)
    return np.linalg.norm(values[i] - values[j], axis=1)


def inter_set_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between every piece of a [n, d] and every piece of b [m, d] -> [n m]."""
    return np.linalg.norm(a[:, None] - b[None], axis=-1).ravel()


def density(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE (Scott's bandwidth, floored so equal samples still make a density), integrating to 1."""
    span = max(float(grid[-1] - grid[0]), 1e-12)
    bandwidth = max(float(samples.std()) * len(samples) ** (-1 / 5), span / 200)
    z = (grid[:, None] - samples[None]) / bandwidth
    values = np.exp(-0.5 * z**2).sum(1)
    area = np.trapezoid(values, grid)
    return values / area if area > 0 else values


def common_grid(*samples: np.ndarray, points: int = 1000) -> np.ndarray:
    every = np.concatenate(samples)
    low, high = float(every.min()), float(every.max())
    margin = max(high - low, 1e-6) * 0.25  # room for the kernels' tails
    return np.linspace(low - margin, high + margin, points)


def kl_divergence(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """KL(p || q) of two densities on one grid; q is floored where it vanishes."""
    eps = 1e-10
    return float(np.trapezoid(p * np.log((p + eps) / (q + eps)), grid))


def overlap_area(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    return float(np.trapezoid(np.minimum(p, q), grid))


@dataclass
class FeatureComparison:
    """One feature's distance distributions and how the generated set compares with the reference."""

    feature: str
    intra_generated: np.ndarray
    intra_reference: np.ndarray
    inter: np.ndarray
    grid: np.ndarray
    kl: float  # KL(intra generated || inter)
    oa: float  # overlapping area of intra generated and inter
    kl_reference: float  # the same for the reference set: what a real set scores
    oa_reference: float

    def row(self) -> dict:
        return {
            "feature": self.feature,
            "intra_generated_mean": float(self.intra_generated.mean()),
            "intra_generated_std": float(self.intra_generated.std()),
            "intra_reference_mean": float(self.intra_reference.mean()),
            "intra_reference_std": float(self.intra_reference.std()),
            "inter_mean": float(self.inter.mean()),
            "inter_std": float(self.inter.std()),
            "kl": self.kl,
            "oa": self.oa,
            "kl_reference": self.kl_reference,
            "oa_reference": self.oa_reference,
        }


def compare_sets(
    generated: list[dict[str, np.ndarray]], reference: list[dict[str, np.ndarray]], points: int = 1000
) -> list[FeatureComparison]:
    """Every feature's intra/inter distance densities, KL and OA; each set needs >= 2 pieces."""
    results = []
    for feature in FEATURES:
        a = np.stack([f[feature] for f in generated])  # [n, d]
        b = np.stack([f[feature] for f in reference])  # [m, d]
        intra_a, intra_b, inter = intra_set_distances(a), intra_set_distances(b), inter_set_distances(a, b)
        grid = common_grid(intra_a, intra_b, inter, points=points)
        pa, pb, pi = density(intra_a, grid), density(intra_b, grid), density(inter, grid)
        results.append(
            FeatureComparison(
                feature,
                intra_a,
                intra_b,
                inter,
                grid,
                kl_divergence(pa, pi, grid),
                overlap_area(pa, pi, grid),
                kl_divergence(pb, pi, grid),
                overlap_area(pb, pi, grid),
            )
        )
    return results
