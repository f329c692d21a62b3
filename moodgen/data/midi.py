"""Safe MIDI reading: a file that cannot be used comes back as a reason, never as a crash.

Every reader of MIDI files (training, classifier phrases, conditioning, evaluate, survey) goes
through `read_piano`, which checks the file against MidiLimits (moodgen.data.limits) cheapest first:
size and header before parsing, note count before merging, negative ticks and the length in seconds
(one pass over the notes) before any tokenizing, so a hostile file costs bounded time and memory. A
bad file raises ValueError with a short reason (the callers skip it and list it); tempos out of range
are clipped, with one warning naming the file.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import symusic

from .limits import DEFAULT_LIMITS, MidiLimits

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
HEADER = b"MThd"
HEADER_BYTES = 14  # "MThd", length (4), format (2), tracks (2), time division (2)
_warned_tempo: set[str] = set()  # files whose clipped tempos were reported: once per process, not per read


def check_file(path: Path, limits: MidiLimits = DEFAULT_LIMITS) -> None:
    """Size and header, before any parsing; ValueError with the reason."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise ValueError(f"unreadable file ({exc.strerror or exc})") from None
    if size == 0:
        raise ValueError("empty file")
    if size > limits.max_bytes:
        raise ValueError(f"{size / 2**20:.1f} MB file, over max_file_mb={limits.max_file_mb:g}")
    if len(head) < HEADER_BYTES or not head.startswith(HEADER):
        raise ValueError("not a MIDI file (no MThd header)")
    division = int.from_bytes(head[12:14], "big")
    if division & 0x8000:
        raise ValueError("SMPTE time division: only ticks per quarter note is supported")
    if division == 0:
        raise ValueError("time division of 0 ticks per quarter note")


def read_piano(path: Path, limits: MidiLimits = DEFAULT_LIMITS) -> symusic.Score:
    """Read a MIDI file and merge every non-drum track into one piano track.

    VGMIDI pieces are piano arrangements split over one to three tracks (hands); the
    language model sees a single stream, so tracks are merged before tokenization.
    Raises ValueError with a short reason when the file is unreadable, holds no notes or breaks a limit.
    """
    path = Path(path)
    check_file(path, limits)
    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on bad bytes
        raise ValueError(f"unreadable MIDI ({str(exc).splitlines()[0][:80]})") from None
    return piano_score(score, limits, str(path))


def piano_score(score: symusic.Score, limits: MidiLimits = DEFAULT_LIMITS, name: str = "score") -> symusic.Score:
    """A parsed score checked against the limits, its non-drum tracks merged, its tempos clipped."""
    if score.tpq <= 0:
        raise ValueError("ticks per quarter note is 0")
    tracks = [track for track in score.tracks if not track.is_drum]
    count = sum(track.note_num() for track in tracks)
    if count == 0:
        raise ValueError("no notes")
    if count > limits.max_notes:
        raise ValueError(f"{count} notes, over max_notes={limits.max_notes}")
    piano = symusic.Track(name="piano", program=0, is_drum=False)
    for track in tracks:
        piano.notes.extend(track.notes)
        piano.pedals.extend(track.pedals)
    check_ticks(piano)
    piano.notes.sort()
    piano.pedals.sort()
    merged = score.copy()
    merged.tracks = [piano]
    merged.tempos = clipped_tempos(score, limits, name)
    seconds = float(merged.to("second").end())  # computed in floats: an int32 tick overflow shows here too
    if not math.isfinite(seconds) or seconds > limits.max_seconds:
        raise ValueError(f"lasts {seconds:.0f} s, over max_seconds={limits.max_seconds:g}")
    return merged


def check_ticks(track: symusic.Track) -> None:
    """No event at a negative tick: delta times that overflowed 32 bits (miditok fails on them)."""
    events = [part.numpy() for part in (track.notes, track.pedals) if len(part)]
    time = np.concatenate([e["time"] for e in events])
    duration = np.concatenate([e["duration"] for e in events])
    if time.min() < 0 or duration.min() < 0:
        raise ValueError(f"an event at a negative tick or of negative length (tick {min(time.min(), duration.min())})")


def clipped_tempos(score: symusic.Score, limits: MidiLimits, name: str) -> list[symusic.Tempo]:
    """The score's tempos within [min_qpm, max_qpm]; one warning names the file when any was clipped."""
    tempos, clipped = [], []
    for tempo in score.tempos:
        qpm = float(tempo.qpm)
        sane = limits.max_qpm if math.isnan(qpm) else min(max(qpm, limits.min_qpm), limits.max_qpm)  # inf too
        if sane != qpm:
            clipped.append(qpm)
        tempos.append(symusic.Tempo(tempo.time, sane))
    if clipped and name not in _warned_tempo:
        _warned_tempo.add(name)
        log.warning(
            "%s: %d tempo(s) outside %g-%g qpm (e.g. %.4g) clipped into that range",
            name,
            len(clipped),
            limits.min_qpm,
            limits.max_qpm,
            clipped[0],
        )
    return tempos


def list_midi(folder: Path) -> list[Path]:
    """Every .mid/.midi below folder, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
