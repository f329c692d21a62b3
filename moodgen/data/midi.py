"""Safe MIDI reading: a file that cannot be used comes back as a reason, never as a crash."""

from __future__ import annotations

from pathlib import Path

import symusic

MIDI_SUFFIXES = (".mid", ".midi")


def read_piano(path: Path) -> symusic.Score:
    """Read a MIDI file and merge every non-drum track into one piano track.

    VGMIDI pieces are piano arrangements split over one to three tracks (hands); the
    language model sees a single stream, so tracks are merged before tokenization.
    Raises ValueError with a short reason when the file is unreadable or holds no notes.
    """
    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on bad bytes
        raise ValueError(f"unreadable MIDI ({str(exc).splitlines()[0][:80]})") from None
    piano = symusic.Track(name="piano", program=0, is_drum=False)
    for track in score.tracks:
        if not track.is_drum:
            piano.notes.extend(track.notes)
            piano.pedals.extend(track.pedals)
    if len(piano.notes) == 0:
        raise ValueError("no notes")
    piano.notes.sort()
    piano.pedals.sort()
    merged = score.copy()
    merged.tracks = [piano]
    return merged


def list_midi(folder: Path) -> list[Path]:
    """Every .mid/.midi below folder, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
