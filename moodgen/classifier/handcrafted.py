"""Hand-crafted musical descriptors of a phrase: the no-LM baseline the LM features must beat.

The classifier stage computes them on the phrase as the tokenizer decodes it (the view a
generated piece gets), so this classifier can judge generated music without a domain shift;
the absolute length is left out because generated pieces are cut to a requested length.

`describe` is the run's hand-crafted judge's vector (NAMES; the benchmark's ranker reads it too) and
stays as it is: judges stored with earlier runs read it. `describe_relative` is the same vector with
its 12 pitch-class shares counted from the estimated tonic (RELATIVE_NAMES): what the benchmark's
judge reads, so music moved to another key keeps its verdict (experiments/attributes.md, "hears the
key"). `describe_keyless` leaves those shares out, for beside `describe_tonal`, which has the
degrees. `describe_tonal` adds what it lacks for valence (TONAL_NAMES): how clearly major rather
than minor, the pitch-class histogram relative to the estimated tonic (scale degrees, so the same
melody in another key looks the same), the intervals sounding together, and the size and direction
of the steps between successive notes.
"""

from __future__ import annotations

import logging

import numpy as np
import symusic

log = logging.getLogger("moodgen")

# Krumhansl-Kessler key profiles (C major / C minor), rotated for the other 11 tonics
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

NAMES = (
    [f"pitch_{s}" for s in ("mean", "std", "min", "max", "range")]
    + [f"pc_{i}" for i in range(12)]
    + ["key_major", "key_strength", "tempo_qpm", "velocity_mean", "velocity_std", "notes_per_second"]
    + ["duration_mean", "duration_std", "ioi_mean", "polyphony_mean"]
)

PITCH_CLASSES = slice(NAMES.index("pc_0"), NAMES.index("pc_11") + 1)
RELATIVE_NAMES = [name.replace("pc_", "degree_") for name in NAMES]
KEYLESS_NAMES = [name for name in NAMES if not name.startswith("pc_")]

TONAL_NAMES = (
    ["mode_contrast"]
    + [f"degree_{i}" for i in range(12)]
    + [f"chord_interval_{i}" for i in range(7)]
    + ["step_mean", "step_up_share"]
)


def finite(row: np.ndarray, names: list[str]) -> np.ndarray:
    """The row with any NaN or infinity set to 0 (one warning naming the features): a scaler or a model
    must never see one, and a score read past moodgen.data.midi (odd tempo, ticks) could make one."""
    bad = ~np.isfinite(row)
    if bad.any():
        log.warning("non-finite musical descriptor(s) %s set to 0", ", ".join(np.asarray(names)[bad][:5]))
        row = np.where(bad, 0.0, row).astype(row.dtype)
    return row


def rolled_profiles(profile: np.ndarray) -> np.ndarray:
    """[12 tonics, 12] the profile rotated to each tonic, centred and scaled to unit length."""
    rolled = np.stack([np.roll(profile, tonic) for tonic in range(12)])
    rolled = rolled - rolled.mean(axis=1, keepdims=True)
    return rolled / np.linalg.norm(rolled, axis=1, keepdims=True)


KEY_PROFILES = {"major": MAJOR, "minor": MINOR}
ROTATIONS = {name: rolled_profiles(profile) for name, profile in KEY_PROFILES.items()}  # name -> [12, 12]
TIE = 1e-12  # correlations this close are one value computed two ways


def key_correlations(pitch_class_hist: np.ndarray) -> dict[str, tuple[float, int]]:
    """Krumhansl-Schmuckler per mode: {'major'|'minor': (best correlation, its tonic)}; -2 when undefined.

    Pearson's r against all 12 rotations at once (one product with ROTATIONS: the judges compute this for
    every piece and every phrase, np.corrcoef per tonic was a third of the benchmark's descriptor time).
    Where two tonics tie (a histogram symmetric under a rotation, e.g. two notes a tritone apart), the one
    np.corrcoef's rounding picks wins, as it did before: judges stored with earlier runs, the attribute
    LMs' tonic tokens and their caches' fingerprints stay what they were."""
    centred = np.asarray(pitch_class_hist, dtype=float) - np.mean(pitch_class_hist)
    norm = np.linalg.norm(centred)
    if not norm > TIE:  # a flat (or undefined) histogram correlates with nothing
        return {name: (-2.0, 0) for name in ROTATIONS}
    best = {}
    for name, rotations in ROTATIONS.items():
        r = np.clip(rotations @ centred / norm, -1.0, 1.0)  # [12]
        tonic = int(r.argmax())
        tied = np.flatnonzero(r >= r[tonic] - TIE)
        if len(tied) > 1:  # tonics that tie differ by rounding alone: settle it as np.corrcoef always has
            exact = [np.corrcoef(pitch_class_hist, np.roll(KEY_PROFILES[name], t))[0, 1] for t in tied]
            tonic = int(tied[int(np.argmax(exact))])
        best[name] = (float(r[tonic]), tonic)
    return best


def better_mode(keys: dict[str, tuple[float, int]]) -> str:
    """The mode whose key profile correlates better (`key_correlations`' keys); a tie counts as major."""
    return "major" if keys["major"][0] >= keys["minor"][0] else "minor"


def best_key(pitch_class_hist: np.ndarray) -> tuple[str, float, int]:
    """(mode, correlation, tonic 0 (C) .. 11) of the better-correlated mode."""
    keys = key_correlations(pitch_class_hist)
    mode = better_mode(keys)
    return mode, *keys[mode]


def key_estimate(pitch_class_hist: np.ndarray) -> tuple[float, float]:
    """(1 if major else 0, correlation of the best key profile): Krumhansl-Schmuckler."""
    mode, correlation, _ = best_key(pitch_class_hist)
    return float(mode == "major"), correlation


def _notes(score: symusic.Score) -> tuple[np.ndarray, np.ndarray]:
    """(pitch, onset) of every note, ordered by onset then pitch."""
    notes = sorted((n.time, n.pitch) for t in score.tracks for n in t.notes)
    onset, pitch = (np.array(column, dtype=float) for column in zip(*notes, strict=True))
    return pitch, onset


def chord_intervals(pitch: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Share of each interval class 0..6 among note pairs that start together (0 where none do).

    `pitch` and `onset` ordered by onset (`_notes`), so the notes of one onset are contiguous: a pair
    (i, i + gap) starts together exactly when the onsets at both ends are equal."""
    pitch = pitch.astype(int)
    counts = np.zeros(7)
    for gap in range(1, len(pitch)):
        together = onset[gap:] == onset[:-gap]
        if not together.any():  # chords are contiguous: no pair this far apart means none further
            break
        steps = np.abs(pitch[gap:] - pitch[:-gap])[together] % 12
        counts += np.bincount(np.minimum(steps, 12 - steps), minlength=7)
    return counts / max(counts.sum(), 1.0)


def describe_tonal(score: symusic.Score) -> np.ndarray:
    """One vector of len(TONAL_NAMES) for a score with notes."""
    pitch, onset = _notes(score)
    pc_hist = np.bincount(pitch.astype(int) % 12, minlength=12) / len(pitch)
    keys = key_correlations(pc_hist)
    steps = np.diff(pitch)  # successive notes in onset order, across voices
    row = np.array(
        [
            keys["major"][0] - keys["minor"][0],
            *np.roll(pc_hist, -keys[better_mode(keys)][1]),
            *chord_intervals(pitch, onset),
            np.abs(steps).mean() if len(steps) else 0.0,
            (steps > 0).mean() if len(steps) else 0.0,
        ],
        dtype=np.float32,
    )
    return finite(row, TONAL_NAMES)


def describe(score: symusic.Score) -> np.ndarray:
    """One vector of len(NAMES) for a (piano-merged) score."""
    seconds = score.to("second")
    notes = [n for t in seconds.tracks for n in t.notes]
    pitch = np.array([n.pitch for n in notes], dtype=float)
    start = np.array([n.time for n in notes], dtype=float)
    duration = np.array([n.duration for n in notes], dtype=float)
    velocity = np.array([n.velocity for n in notes], dtype=float)
    length = max(float(seconds.end()), 1e-3)
    pc_hist = np.bincount(pitch.astype(int) % 12, minlength=12) / len(pitch)
    major, strength = key_estimate(pc_hist)
    onsets = np.unique(start)
    ioi = np.diff(onsets).mean() if len(onsets) > 1 else 0.0
    tempo = score.tempos[0].qpm if len(score.tempos) else 120.0
    row = np.array(
        [
            pitch.mean(),
            pitch.std(),
            pitch.min(),
            pitch.max(),
            np.ptp(pitch),
            *pc_hist,
            major,
            strength,
            tempo,
            velocity.mean(),
            velocity.std(),
            len(notes) / length,
            duration.mean(),
            duration.std(),
            ioi,
            duration.sum() / length,
        ],
        dtype=np.float32,
    )
    return finite(row, NAMES)


def describe_relative(score: symusic.Score) -> np.ndarray:
    """`describe`'s vector with its pitch-class shares as scale degrees (len(RELATIVE_NAMES)): share of the
    tonic, of a semitone above it, ... A piece moved by k semitones (none leaving MIDI's range) gets the same
    row but for its pitch mean, minimum and maximum, each moved by k."""
    row = describe(score)
    row[PITCH_CLASSES] = np.roll(row[PITCH_CLASSES], -best_key(row[PITCH_CLASSES])[2])
    return row


def describe_keyless(score: symusic.Score) -> np.ndarray:
    """`describe`'s vector without its pitch-class shares (len(KEYLESS_NAMES)), for beside `describe_tonal`."""
    return np.delete(describe(score), PITCH_CLASSES)
