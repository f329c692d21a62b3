"""The bounds on a MIDI file moodgen reads, in one place: what keeps a hostile file from crashing a run,
stalling it, or feeding NaN or infinity to a model or a scaler.

The defaults sit far above real music: on the 1,024 VGMIDI pieces and phrases the largest file is
57 KB, the most notes 7,107, the longest piece 864 s and 1,728 beats, the most REMI tokens 25,937,
tempos 7-400 qpm. Training reads its values from the data config (``data.max_file_mb``,
``data.max_notes``, ``data.max_seconds``, ``data.max_tokens``); every other reader (evaluate, survey,
classifier phrases, conditioning, serve) uses DEFAULT_LIMITS.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from ..errors import MoodgenError

# bump when the reader starts rejecting or changing files it used to accept: cached corpora re-tokenize
READER_VERSION = 2


@dataclass(frozen=True)
class MidiLimits:
    max_file_mb: float = 16.0  # checked before parsing: bounds the memory a file can take
    max_notes: int = 50_000  # checked before merging tracks and tokenizing
    max_seconds: float = 3600.0  # the last note's end, at the file's tempo (clipped below)
    max_tokens: int = 100_000  # per piece, after tokenization
    min_qpm: float = 3.0  # tempos outside [min_qpm, max_qpm] are clipped to it (MIDI's slowest is 3.58)
    max_qpm: float = 1000.0  # a tempo of 0 microseconds per quarter (infinitely fast) becomes this

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise MoodgenError(f"data.{f.name}={value!r}: use a positive finite number (default {f.default})")
        if self.min_qpm >= self.max_qpm:
            raise MoodgenError(f"min_qpm={self.min_qpm} must be below max_qpm={self.max_qpm}")

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)

    @classmethod
    def from_config(cls, cfg) -> MidiLimits:
        """From any config holding some of these fields (the data config); the others keep their defaults."""
        given = {f.name: cfg.get(f.name) if hasattr(cfg, "get") else getattr(cfg, f.name, None) for f in fields(cls)}
        return cls(**{name: value for name, value in given.items() if value is not None})

    def key(self) -> str:
        """A short hash of the limits and the reader version: part of every tokenized-corpus cache key."""
        state = json.dumps({"reader": READER_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(state.encode()).hexdigest()[:16]


DEFAULT_LIMITS = MidiLimits()
