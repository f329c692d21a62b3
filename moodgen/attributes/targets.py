"""Mood -> attributes: what each mood asks of the music, learned from the labelled training phrases.

For every attribute the target bin of a mood is either the bin of the mood's median phrase
(`target=median`: the typical phrase of the mood) or the bin where the mood is most over-represented
relative to all phrases among bins holding at least `MIN_SHARE` of the mood's phrases
(`target=distinctive`: what sets the mood apart); or each piece asks for the bins of one of the
mood's phrases, drawn from its stream (`target=phrases`: the mood's spread of attributes, and their
correlations, rather than one point of it). The velocity and register ranges of the mood
are its phrases' central percentiles. What the data cannot say comes from the mood's file in
`conf/mood_profile/`: the tempo (VGMIDI writes every labelled phrase at 120 qpm), and any attribute
value or scale a user sets there, which wins over the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic
import torch

from ..errors import MoodgenError
from ..moods import MOODS
from . import ATTRIBUTES, measure, to_bins
from .notes import notes_of

TARGETS = ("median", "distinctive", "phrases")  # steering.target: what each piece of a mood asks for
WINDOWS = ("mood", "phrase")  # steering.register_window: the mood's central range | one phrase's register per piece
MIN_SHARE = 0.2  # a distinctive bin still holds a fifth of the mood's phrases: typical, not an outlier
RANGE_PERCENTILES = (10, 90)  # of the notes' velocities and pitches: the mood's central range
MIN_HALF_WINDOW = 6  # semitones either side of a phrase's register at least: a one-pitch phrase still leaves a scale
# minor is harmonic minor: the natural minor scale holds the pitch classes of its relative major, so
# music kept to it may still read as major; the raised seventh is what makes the key minor
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 11)}


@dataclass
class MoodTargets:
    names: list[str]
    bins: np.ndarray  # [moods, A] target bin of each attribute (-1: not asked for)
    velocity: np.ndarray  # [moods, 2] velocity range
    pitch: np.ndarray  # [moods, 2] pitch range
    scale: list[str]  # per mood: major | minor
    tempo: np.ndarray  # [moods] qpm
    keys: np.ndarray  # [moods, 12] the share of the mood's phrases in each tonic (add-one smoothed)
    # per mood [phrases, A] the bins of each of its phrases (-1: unmeasured), the mood file's values
    # over them; what target=phrases draws from (None: every piece asks for `bins`)
    examples: list[np.ndarray] | None = None
    # per mood [phrases, 2] the pitch window of each of its phrases (register_window=phrase; None: `pitch`)
    windows: list[np.ndarray] | None = None

    def describe(self, mood: int) -> dict:
        """The mood's targets in words, for the sidecars and the log."""
        return {
            **{n: int(b) for n, b in zip(self.names, self.bins[mood], strict=True)},
            "velocity_range": self.velocity[mood].tolist(),
            "pitch_range": self.pitch[mood].tolist() if self.windows is None else "per piece: a phrase's",
            "scale": self.scale[mood],
            "tempo": float(self.tempo[mood]),
        }

    def asked(self, mood: int, pieces: int, generator: torch.Generator) -> np.ndarray:
        """[pieces, A] the bins each piece asks for: the mood's target bins, or (target=phrases) those of
        a phrase of the mood per piece, drawn from `generator` (the piece's stream)."""
        if self.examples is None:
            return np.repeat(self.bins[mood][None], pieces, axis=0)
        own = self.examples[mood]
        drawn = own[torch.randint(len(own), (pieces,), generator=generator).numpy()]
        # what a phrase leaves unmeasured (a silent phrase: all of it) the mood's target fills in
        return np.where(drawn >= 0, drawn, self.bins[mood])

    def pitch_ranges(self, mood: int, pieces: int, generator: torch.Generator) -> np.ndarray:
        """[pieces, 2] the lowest and highest pitch each piece may use: the mood's central range, or
        (register_window=phrase) the window of one of the mood's phrases per piece, from `generator`."""
        if self.windows is None:
            return np.repeat(self.pitch[mood][None], pieces, axis=0)
        own = self.windows[mood]
        return own[torch.randint(len(own), (pieces,), generator=generator).numpy()]


def target_bins(bins: np.ndarray, moods: np.ndarray, names: list[str], how: str) -> np.ndarray:
    """[moods, A] from the phrases' bins [n, A] and moods [n]."""
    out = np.full((len(MOODS), len(names)), -1, dtype=int)
    for a, name in enumerate(names):
        if ATTRIBUTES[name].per_piece:
            continue
        size = ATTRIBUTES[name].bins
        overall = np.bincount(bins[bins[:, a] >= 0, a], minlength=size) / max((bins[:, a] >= 0).sum(), 1)
        for m in range(len(MOODS)):
            mine = bins[(moods == m) & (bins[:, a] >= 0), a]
            if not len(mine):
                continue
            share = np.bincount(mine, minlength=size) / len(mine)
            if how == "median":
                out[m, a] = int(np.sort(mine)[(len(mine) - 1) // 2])
            else:
                lift = np.where(share >= MIN_SHARE, share / np.maximum(overall, 1e-9), -np.inf)
                out[m, a] = int(lift.argmax())
    return out


def central_range(values: list[np.ndarray]) -> np.ndarray:
    every = np.concatenate(values) if values else np.zeros(0)
    if not len(every):
        return np.array([0, 127])
    return np.percentile(every, RANGE_PERCENTILES).round().astype(int)


@dataclass
class PhraseSummary:
    """What the targets are learned from, small enough to keep with the attribute LM: every
    labelled phrase's attribute values and mood, and each mood's central velocity and pitch range."""

    values: np.ndarray  # [n, len(ATTRIBUTES)] every attribute of every phrase
    moods: np.ndarray  # [n]
    velocity: np.ndarray  # [moods, 2]
    pitch: np.ndarray  # [moods, 2]

    def to_json(self) -> dict:
        return {
            "attributes": list(ATTRIBUTES),
            "values": np.where(np.isfinite(self.values), self.values, None).tolist(),
            "moods": self.moods.tolist(),
            "velocity": self.velocity.tolist(),
            "pitch": self.pitch.tolist(),
        }

    @classmethod
    def from_json(cls, saved: dict) -> PhraseSummary:
        if saved.get("attributes") != list(ATTRIBUTES):
            raise MoodgenError("the saved phrase summary measured other attributes: give the labelled phrases again")
        values = np.array(saved["values"], dtype=float)  # None -> NaN
        return cls(values, np.array(saved["moods"], dtype=int), np.array(saved["velocity"]), np.array(saved["pitch"]))


def phrase_summary(scores: list[symusic.Score], moods: np.ndarray) -> PhraseSummary:
    moods = np.asarray(moods, dtype=int)
    values = np.stack([measure(s, list(ATTRIBUTES)) for s in scores])  # [n, all attributes]
    notes = [notes_of(s) for s in scores]
    velocity, pitch = [], []
    for m, mood in enumerate(MOODS):
        mine = [notes[i] for i in np.flatnonzero(moods == m)]
        if not mine:
            raise MoodgenError(f"no labelled training phrase of {mood}: its attribute targets cannot be learned")
        velocity.append(central_range([x.velocity for x in mine]))
        pitch.append(central_range([x.pitch for x in mine]))
    return PhraseSummary(values, moods, np.stack(velocity), np.stack(pitch))


def mood_targets(summary: PhraseSummary, cfg) -> MoodTargets:
    """Targets of the four moods from the labelled phrases' summary and the steering config's moods/names."""
    names = list(cfg.attributes)
    columns = [list(ATTRIBUTES).index(n) for n in names]
    every = to_bins(summary.values[:, columns], names)  # [phrases, A]
    bins = target_bins(every, summary.moods, names, "median" if cfg.target == "phrases" else cfg.target)
    contrast = summary.values[:, list(ATTRIBUTES).index("mode")]
    tonics = summary.values[:, list(ATTRIBUTES).index("tonic")]
    scale, tempo = [], []
    for m, mood in enumerate(MOODS):
        own = cfg.moods[mood]
        scale.append(own.scale or ("major" if float(np.nanmedian(contrast[summary.moods == m])) >= 0 else "minor"))
        tempo.append(float(own.tempo))
        for name, value in (own.attributes or {}).items():
            if name not in names:
                raise MoodgenError(f"conf/mood_profile/{mood}.yaml sets {name!r}: use one of {', '.join(names)}")
            column, value = names.index(name), ATTRIBUTES[name].bin(float(value))
            bins[m, column] = value
            every[summary.moods == m, column] = value  # what target=phrases draws: the file wins there too
    keys = np.stack([key_shares(tonics[summary.moods == m]) for m in range(len(MOODS))])
    examples = [every[summary.moods == m] for m in range(len(MOODS))] if cfg.target == "phrases" else None
    windows = phrase_windows(summary, cfg) if cfg.register_window == "phrase" and cfg.register_range else None
    return MoodTargets(names, bins, summary.velocity, summary.pitch, scale, np.array(tempo), keys, examples, windows)


def phrase_windows(summary: PhraseSummary, cfg) -> list[np.ndarray]:
    """Per mood [phrases, 2]: each of its phrases' mean pitch -+ `window_width` pitch standard deviations
    (its register and spread attributes; a value the mood's file sets wins, as for the targets), at least
    MIN_HALF_WINDOW either side, rounded outwards; a phrase without notes has none."""
    register, spread = (summary.values[:, list(ATTRIBUTES).index(n)].copy() for n in ("register", "spread"))
    measured = np.isfinite(register) & np.isfinite(spread)
    for m, mood in enumerate(MOODS):
        fixed = cfg.moods[mood].attributes or {}
        for name, values in (("register", register), ("spread", spread)):
            if name in fixed:
                values[summary.moods == m] = float(fixed[name])
    half = np.maximum(cfg.window_width * spread, MIN_HALF_WINDOW)
    window = np.stack([np.floor(register - half), np.ceil(register + half)], axis=1)
    out = []
    for m, mood in enumerate(MOODS):
        own = window[(summary.moods == m) & measured]
        if not len(own):
            raise MoodgenError(f"no labelled training phrase of {mood} has notes: use steering.register_window=mood")
        out.append(own.astype(int))
    return out


def key_shares(tonics: np.ndarray) -> np.ndarray:
    """[12] how often each tonic is a phrase's key, add-one smoothed: every key stays possible."""
    counts = np.bincount(tonics[np.isfinite(tonics)].astype(int), minlength=12) + 1.0
    return counts / counts.sum()
