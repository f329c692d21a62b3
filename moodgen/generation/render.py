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
import numpy as np
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


SAMPLE_RATE = 44100


def render_wav(midi: Path, wav: Path) -> bool:
    """MIDI -> 16-bit stereo WAV with fluidsynth, loudness-normalised (moodgen.generation.loudness:
    -16 LUFS integrated, true peaks at or below -1 dBTP); without fluidsynth or a soundfont: one
    warning, MIDI only.

    fluidsynth renders 32-bit float (headroom for the gain), which is measured, normalised and
    written as 16-bit PCM; the float file is removed.
    """
    global _warned_no_audio
    from .loudness import normalise, write_wav

    missing = missing_audio_tool()
    if missing:
        if not _warned_no_audio:
            logging.getLogger("moodgen").warning(
                "no audio: %s not found (apt-get install fluidsynth); writing MIDI only", missing
            )
            _warned_no_audio = True
        return False
    wav = Path(wav)
    raw = wav.with_name(f".{wav.name}.f32")
    try:
        command = [shutil.which("fluidsynth"), "-ni", "-q", "-T", "raw", "-O", "float", "-E", "little"]
        command += ["-F", str(raw), "-r", str(SAMPLE_RATE), soundfont(), str(midi)]
        result = subprocess.run(command, capture_output=True, timeout=300)
        if result.returncode != 0 or not raw.exists():
            return False
        audio = np.fromfile(raw, dtype="<f4").astype(np.float64)
        audio = audio[: len(audio) // 2 * 2].reshape(-1, 2)  # fluidsynth writes interleaved stereo
        write_wav(wav, normalise(audio, SAMPLE_RATE), SAMPLE_RATE)
    finally:
        raw.unlink(missing_ok=True)
    return wav.exists()


def note_count(score: symusic.Score) -> int:
    return sum(len(track.notes) for track in score.tracks)


# one colour per mood, the web page's (moodgen/web/static/style.css), each dark enough to read on white
# (contrast >= 3:1): happy is the page's gold darkened to amber; velocity sets the opacity
MOOD_COLOURS = {
    "depressed": "#4a5a8c",  # blue
    "calm": "#3f8f7a",  # green
    "angry": "#b8432f",  # red
    "happy": "#a86f00",  # amber
}
NO_MOOD_COLOUR = "#333333"


def mood_colour(mood: str | None) -> str:
    return MOOD_COLOURS.get(str(mood or "").lower(), NO_MOOD_COLOUR)


def draw_piano_roll(ax, score: symusic.Score, title: str = "", mood: str | None = None) -> None:
    """Notes as horizontal bars, pitch over time in seconds (the report's 'note distribution'), in
    the mood's colour, louder notes more opaque, with a legend naming the mood.

    One line collection for all notes: a patch per note makes long pieces take seconds to draw.
    """
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D

    colour = mood_colour(mood)
    for track in score.to("second").tracks:
        notes = track.notes.numpy()  # dict of arrays: time, duration, pitch, velocity
        colours = np.tile(to_rgba(colour), (len(notes["pitch"]), 1))
        colours[:, 3] = 0.35 + 0.65 * np.clip(notes["velocity"] / 127, 0, 1)
        ax.hlines(
            notes["pitch"],
            notes["time"],
            notes["time"] + notes["duration"].clip(min=0.02),
            colors=colours,
            linewidth=2.5,
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    label = f"{mood} (darker = louder)" if mood else "notes (darker = louder)"
    handle = Line2D([], [], color=colour, linewidth=4, label=label)
    # above the plot's top right corner: never over a note
    ax.legend(handles=[handle], loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.autoscale_view()


def piano_roll_png(score: symusic.Score, path: Path, title: str = "", mood: str | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=100)
    draw_piano_roll(ax, score, title or Path(path).stem, mood=mood)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
