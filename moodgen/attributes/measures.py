"""The musical attributes, one class each: a value measured on a stretch of notes, and its bins.

Bin edges are the one place the attributes are discretised. They were set near the quintiles of
the attribute over bar-aligned 256-token chunks of the LM's training pieces (REMI, default
tokenizer), so every bin is taught by plenty of music; `experiments/attributes.md` has the
distributions. A value on an edge goes to the upper bin.
"""

from __future__ import annotations

import numpy as np

from ..classifier.handcrafted import best_key, key_correlations
from .notes import Notes


class Attribute:
    name: str
    edges: tuple[float, ...]  # len(edges) + 1 bins
    unit: str = ""
    per_piece: bool = False  # not a mood's target: each generated piece draws its own (the key's tonic)

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def value(self, notes: Notes) -> float:
        raise NotImplementedError

    def bin(self, value: float) -> int:
        """The bin of a value; -1 for a value that could not be measured (no notes)."""
        if not np.isfinite(value):
            return -1
        return int(np.searchsorted(self.edges, value, side="right"))


class Density(Attribute):
    """Notes per beat (every note of a chord counts: onsets per beat times polyphony)."""

    name, unit = "density", "notes/beat"
    edges = (2.8, 3.6, 4.6, 6.1)

    def value(self, notes: Notes) -> float:
        return len(notes) / notes.beats if len(notes) else float("nan")


class Velocity(Attribute):
    """Mean velocity (loudness)."""

    name, unit = "velocity", "MIDI velocity"
    edges = (65.0, 85.0, 103.0, 111.0)

    def value(self, notes: Notes) -> float:
        return float(notes.velocity.mean()) if len(notes) else float("nan")


class Register(Attribute):
    """Mean pitch (how high the music sits)."""

    name, unit = "register", "MIDI pitch"
    edges = (54.5, 58.0, 61.5, 65.5)

    def value(self, notes: Notes) -> float:
        return float(notes.pitch.mean()) if len(notes) else float("nan")


class Spread(Attribute):
    """Standard deviation of pitch (how wide the hands are apart)."""

    name, unit = "spread", "semitones"
    edges = (8.8, 11.0, 13.0, 15.2)

    def value(self, notes: Notes) -> float:
        return float(notes.pitch.std()) if len(notes) else float("nan")


def pitch_class_histogram(notes: Notes) -> np.ndarray:
    return np.bincount(notes.pitch.astype(int) % 12, minlength=12) / max(len(notes), 1)


class Mode(Attribute):
    """Major minus minor Krumhansl-Schmuckler key correlation: below 0 minor, above 0 major."""

    name, unit = "mode", "correlation difference"
    edges = (-0.14, -0.04, 0.07, 0.18)  # clearly minor ... clearly major

    def value(self, notes: Notes) -> float:
        if not len(notes):
            return float("nan")
        keys = key_correlations(pitch_class_histogram(notes))
        return keys["major"][0] - keys["minor"][0]


class Tonic(Attribute):
    """The pitch class of the best-fitting key's tonic (0 = C), of the mode that fits better."""

    name, unit, per_piece = "tonic", "pitch class", True
    edges = tuple(i + 0.5 for i in range(11))  # twelve categories

    def value(self, notes: Notes) -> float:
        if not len(notes):
            return float("nan")
        return float(best_key(pitch_class_histogram(notes))[2])


class Polyphony(Attribute):
    """Mean number of notes starting together (1: a single line; 3-4: chords)."""

    name, unit = "polyphony", "notes/onset"
    edges = (1.5, 1.8, 2.15, 2.7)

    def value(self, notes: Notes) -> float:
        if not len(notes):
            return float("nan")
        return len(notes) / len(np.unique(notes.onset))


class Articulation(Attribute):
    """Median of each note's length over the time to the next onset after it, capped at 2
    (below 1: detached, staccato; about 1: legato; above 1: notes held over the next ones)."""

    name, unit = "articulation", "duration / gap"
    edges = (0.9, 1.05, 1.4)  # most music sits at 1 (held to the next onset)

    def value(self, notes: Notes) -> float:
        if not len(notes):
            return float("nan")
        onsets = np.unique(notes.onset)
        following = np.searchsorted(onsets, notes.onset, side="right")
        gap = np.where(following < len(onsets), onsets[np.minimum(following, len(onsets) - 1)] - notes.onset, np.nan)
        ratio = notes.duration / gap
        ratio = ratio[np.isfinite(ratio)]
        return float(np.clip(np.median(ratio), 0.0, 2.0)) if len(ratio) else 1.0
