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


def missing_audio_tool() -> str | None:
    """What render_wav lacks to make audio ('fluidsynth' or 'a General MIDI soundfont'); None when it can render."""
    if shutil.which("fluidsynth") is None:
        return "fluidsynth"
    return None if soundfont() else "a General MIDI soundfont"


def render_wav(midi: Path, wav: Path) -> bool:
    """MIDI -> WAV with fluidsynth; without fluidsynth or a soundfont: one warning, MIDI only."""
    global _warned_no_audio
    missing = missing_audio_tool()
    if missing:
        if not _warned_no_audio:
            logging.getLogger("moodgen").warning(
                "no audio: %s not found (apt-get install fluidsynth); writing MIDI only", missing
            )
            _warned_no_audio = True
        return False
    result = subprocess.run(
        [shutil.which("fluidsynth"), "-ni", "-q", "-F", str(wav), "-r", "44100", soundfont(), str(midi)],
        capture_output=True,
        timeout=300,
    )
    return result.returncode == 0 and wav.exists()


def note_count(score: symusic.Score) -> int:
    return sum(len(track.notes) for track in score.tracks)


def draw_piano_roll(ax, score: symusic.Score, title: str = "") -> None:
    """Notes as horizontal bars, pitch over time in seconds (the report's 'note distribution').

    One line collection for all notes: a patch per note makes long pieces take seconds to draw.
    """
    for track in score.to("second").tracks:
        notes = track.notes.numpy()  # dict of arrays: time, duration, pitch, velocity
        ax.hlines(
            notes["pitch"],
            notes["time"],
            notes["time"] + notes["duration"].clip(min=0.02),
            colors=plt.cm.viridis(notes["velocity"] / 127),
            linewidth=2.5,
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    ax.autoscale_view()


def piano_roll_png(score: symusic.Score, path: Path, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=100)
    draw_piano_roll(ax, score, title or Path(path).stem)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
