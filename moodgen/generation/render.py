"""Token ids -> MIDI file, and MIDI -> piano-roll PNG."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only, never a window
import matplotlib.pyplot as plt
import symusic


def tokens_to_midi(tokenizer, ids: list[int], path: Path) -> symusic.Score:
    """Decode one token sequence and write it as a MIDI file (invalid token orders are dropped)."""
    score = tokenizer.decode([ids])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return score


SOUNDFONTS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
_warned_no_audio = False


def soundfont() -> str | None:
    """$MOODGEN_SOUNDFONT, else a General MIDI soundfont where Debian's packages put one."""
    candidates = [os.environ.get("MOODGEN_SOUNDFONT", ""), *SOUNDFONTS]
    return next((c for c in candidates if c and Path(c).exists()), None)


def render_wav(midi: Path, wav: Path) -> bool:
    """MIDI -> WAV with fluidsynth; without fluidsynth or a soundfont: one warning, MIDI only."""
    global _warned_no_audio
    binary, font = shutil.which("fluidsynth"), soundfont()
    if binary is None or font is None:
        if not _warned_no_audio:
            logging.getLogger("moodgen").warning(
                "no audio: %s not found (apt-get install fluidsynth); writing MIDI only",
                "fluidsynth" if binary is None else "a General MIDI soundfont",
            )
            _warned_no_audio = True
        return False
    result = subprocess.run(
        [binary, "-ni", "-q", "-F", str(wav), "-r", "44100", font, str(midi)], capture_output=True, timeout=300
    )
    return result.returncode == 0 and wav.exists()


def note_count(score: symusic.Score) -> int:
    return sum(len(track.notes) for track in score.tracks)


def piano_roll_png(score: symusic.Score, path: Path, title: str = "") -> Path:
    """Notes as horizontal bars, pitch over time in seconds (the report's 'note distribution')."""
    seconds = score.to("second")
    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=100)
    for track in seconds.tracks:
        notes = track.notes.numpy()  # dict of arrays: time, duration, pitch, velocity
        ax.barh(
            notes["pitch"],
            notes["duration"].clip(min=0.02),
            left=notes["time"],
            height=0.8,
            color=plt.cm.viridis(notes["velocity"] / 127),
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or Path(path).stem)
    ax.autoscale_view()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
