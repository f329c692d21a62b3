"""What the report looked at by hand, per piece: notes, range, tempo, velocity, length, texture."""

from __future__ import annotations

import numpy as np
import symusic

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """Scientific pitch notation, C4 = MIDI 60 (middle C)."""
    return f"{PITCH_CLASS_NAMES[pitch % 12]}{pitch // 12 - 1}"


def mean_polyphony(score: symusic.Score) -> float:
    """Notes sounding at once, averaged over the time at least one note sounds."""
    seconds = score.to("second")
    edges = sorted(
        (when, step) for t in seconds.tracks for n in t.notes for when, step in ((n.time, 1), (n.time + n.duration, -1))
    )
    weighted, sounding_time, active, last = 0.0, 0.0, 0, 0.0
    for when, step in edges:
        if active > 0:
            weighted += active * (when - last)
            sounding_time += when - last
        active, last = active + step, when
    return weighted / sounding_time if sounding_time > 0 else 0.0


def pitch_class_entropy(pitch: np.ndarray) -> float:
    """Shannon entropy (bits) of the pitch-class histogram: 0 for one pitch class, log2(12) at most."""
    counts = np.bincount(pitch % 12, minlength=12)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def describe_piece(score: symusic.Score) -> dict:
    notes = [n for t in score.tracks for n in t.notes]
    pitch = np.array([n.pitch for n in notes], dtype=int)
    velocity = np.array([n.velocity for n in notes], dtype=float)
    return {
        "notes": len(notes),
        "range": f"{pitch_name(int(pitch.min()))}–{pitch_name(int(pitch.max()))}",
        "tempo_qpm": round(float(score.tempos[0].qpm), 1) if len(score.tempos) else "none",
        "velocity_mean": round(float(velocity.mean()), 2),
        "velocity_std": round(float(velocity.std()), 2),
        "seconds": round(float(score.to("second").end()), 2),
        "mean_polyphony": round(mean_polyphony(score), 3),
        "pitch_class_entropy": round(pitch_class_entropy(pitch), 3),
    }
