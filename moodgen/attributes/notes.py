"""The notes of a stretch of music as arrays in beats: what every attribute is measured on.

Beats, not seconds: the attributes describe what the LM writes, and tempo is a control of its own
(written into the MIDI file afterwards), so a piece's attributes do not change with its tempo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import symusic


@dataclass
class Notes:
    """Every note of every track, ordered by onset then pitch."""

    pitch: np.ndarray  # [n] MIDI pitch
    onset: np.ndarray  # [n] beats from the start
    duration: np.ndarray  # [n] beats
    velocity: np.ndarray  # [n] 1-127
    beats: float  # length of the stretch: the last note's end (at least one beat)

    def __len__(self) -> int:
        return len(self.pitch)


def notes_of(score: symusic.Score) -> Notes:
    columns = [t.notes.numpy() for t in score.tracks if len(t.notes)]

    def column(name: str) -> np.ndarray:
        return np.concatenate([c[name] for c in columns]).astype(float) if columns else np.zeros(0)

    tpq = float(score.tpq)
    pitch, onset = column("pitch"), column("time") / tpq
    duration, velocity = column("duration") / tpq, column("velocity")
    order = np.lexsort((pitch, onset))
    end = float((onset + duration).max()) if len(onset) else 0.0
    return Notes(pitch[order], onset[order], duration[order], velocity[order], max(end, 1.0))
