"""Generated pieces on disk and the mood their JSON sidecar says they were made for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.midi import list_midi, read_piano
from ..errors import MoodgenError
from ..generation.sidecar import read_sidecar
from ..moods import mood_index


@dataclass(frozen=True)
class Piece:
    midi: Path
    mood: int

    @property
    def wav(self) -> Path | None:
        """The WAV rendered next to the MIDI at generation time, when fluidsynth was there."""
        wav = self.midi.with_suffix(".wav")
        return wav if wav.is_file() else None


def sidecar_mood(midi: Path) -> int:
    """The mood in `<piece>.json`; ValueError says why a piece has none."""
    sidecar = midi.with_suffix(".json")
    data = read_sidecar(midi)
    if data is None:
        raise ValueError(f"no sidecar {sidecar.name}")
    if "mood" not in data:
        raise ValueError(f'{sidecar.name} has no "mood"')
    try:
        return mood_index(data["mood"])
    except MoodgenError as exc:
        raise ValueError(f"{sidecar.name} names an unknown mood {data['mood']!r}") from exc


def find_pieces(folder: Path) -> tuple[list[Piece], list[tuple[Path, str]]]:
    """Every MIDI file under `folder` with its mood, and the skipped ones with the reason."""
    if not folder.is_dir():
        raise MoodgenError(f"pieces={folder} is not a folder: point it at the out_dir of python -m moodgen.generate")
    pieces, skipped = [], []
    for midi in list_midi(folder):  # sorted: the seeded choice must not depend on the file system
        try:
            mood = sidecar_mood(midi)
            read_piano(midi)  # listeners get only music moodgen can read: no hostile file reaches fluidsynth
            pieces.append(Piece(midi, mood))
        except ValueError as reason:
            skipped.append((midi, str(reason)))
    if not pieces and not skipped:
        raise MoodgenError(
            f"no MIDI pieces in {folder}: generate some with python -m moodgen.generate mood=calm out_dir={folder}"
        )
    return pieces, skipped
