"""Musical attributes of any stretch of music, labelled or not: measured, discretised, asked for.

`ATTRIBUTES` holds one instance per class in `measures`; a new attribute is one class there and
its name in `steering.attributes` (`conf/steering/attributes.yaml`: what the attribute LM is conditioned on).
"""

from __future__ import annotations

import numpy as np
import symusic

from ..errors import MoodgenError
from .measures import Articulation, Attribute, Density, Mode, Polyphony, Register, Spread, Tonic, Velocity
from .notes import notes_of

ATTRIBUTES: dict[str, Attribute] = {
    a.name: a for a in (Density(), Velocity(), Register(), Spread(), Mode(), Tonic(), Polyphony(), Articulation())
}


def check_names(names) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown or not names or len(set(names)) != len(names):
        raise MoodgenError(f"attributes {names}: name each of them once, from {', '.join(ATTRIBUTES)} (at least one)")
    return names


def measure(score: symusic.Score, names) -> np.ndarray:
    """[len(names)] values of the named attributes (NaN where the music has no notes)."""
    notes = notes_of(score)
    return np.array([ATTRIBUTES[n].value(notes) for n in names], dtype=float)


def to_bins(values: np.ndarray, names) -> np.ndarray:
    """Values [..., A] -> bins [..., A] (int; -1 where unmeasured)."""
    values = np.asarray(values, dtype=float)
    out = np.empty(values.shape, dtype=int)
    for a, name in enumerate(names):
        out[..., a] = np.vectorize(ATTRIBUTES[name].bin, otypes=[int])(values[..., a])
    return out


def attribute_row(score: symusic.Score) -> dict[str, float]:
    """{attribute: value} of every attribute, rounded for tables, with the tempo the file is written at."""
    values = measure(score, list(ATTRIBUTES))
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    return {**{n: round(float(v), 3) for n, v in zip(ATTRIBUTES, values, strict=True)}, "tempo_qpm": tempo}
