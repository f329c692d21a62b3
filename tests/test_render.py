"""What a listener gets: WAVs at one loudness without clipping, measured on real fluidsynth renders,
and piano rolls drawn in a readable colour per mood with a legend."""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import symusic

from moodgen.generation import loudness
from moodgen.generation.render import MOOD_COLOURS, draw_piano_roll, missing_audio_tool, piano_roll_png, render_wav
from moodgen.moods import MOODS

from .conftest import require_tool

RATE = 44100


def sine(amplitude: float, seconds: float = 3.0, channels: int = 2, hz: float = 997.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.repeat((amplitude * np.sin(2 * np.pi * hz * t))[:, None], channels, axis=1)


def test_the_meter_reads_bs1770_reference_levels():
    # BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS; in two channels 3 dB more
    assert loudness.integrated_loudness(sine(1.0, channels=1), RATE) == pytest.approx(-3.01, abs=0.05)
    assert loudness.integrated_loudness(sine(0.1), RATE) == pytest.approx(-20.0, abs=0.05)
    assert loudness.integrated_loudness(np.zeros((RATE, 2)), RATE) == -math.inf
    assert loudness.true_peak_db(sine(0.5)) == pytest.approx(20 * math.log10(0.5), abs=0.05)


def test_normalising_reaches_the_target_and_keeps_peaks_under_the_ceiling():
    quiet = sine(0.001)
    spiky = sine(0.01)
    spiky[::4410] = 0.9  # sparse clicks: the gain alone would put them far over the ceiling
    for audio in (quiet, spiky, sine(0.9)):
        out = loudness.normalise(audio, RATE)
        assert loudness.integrated_loudness(out, RATE) == pytest.approx(loudness.TARGET_LUFS, abs=0.5)
        assert loudness.true_peak_db(out) <= loudness.CEILING_DBTP + 0.01
    silence = np.zeros((RATE, 2))
    assert not loudness.normalise(silence, RATE).any()


def piece(path: Path, velocity: int, chord: list[int], notes: int = 16) -> Path:
    """Half-second piano notes (or chords) at one velocity: quiet single notes, loud full chords."""
    score = symusic.Score(480)
    track = symusic.Track(name="piano", program=0, is_drum=False)
    for i in range(notes):
        for offset in chord:
            pitch = 48 + (i * 5) % 24 + offset
            track.notes.append(symusic.Note(time=i * 480, duration=480, pitch=pitch, velocity=velocity))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


def test_rendered_pieces_play_at_one_loudness_without_clipping(tmp_path):
    missing = missing_audio_tool()
    require_tool(missing is None, f"no audio rendering: {missing} not found (apt-get install fluidsynth)")
    levels = {}
    for name, velocity, chord in (("quiet", 25, [0]), ("loud", 127, [0, 4, 7, 12, 16, 19, 24])):
        wav = tmp_path / f"{name}.wav"
        assert render_wav(piece(tmp_path / f"{name}.mid", velocity, chord), wav)
        audio, rate = loudness.read_wav(wav)
        assert rate == 44100 and audio.shape[1] == 2 and len(audio) > 5 * rate
        levels[name] = loudness.integrated_loudness(audio, rate)
        assert levels[name] == pytest.approx(loudness.TARGET_LUFS, abs=1.0), name
        assert loudness.true_peak_db(audio) <= loudness.CEILING_DBTP + 0.1, name
        assert np.abs(audio).max() < 32767 / 32768, f"{name} clips"
        assert not list(tmp_path.glob(".*.f32")), "fluidsynth's float render is left behind"
    assert abs(levels["quiet"] - levels["loud"]) < 1.0  # fluidsynth alone renders them ~35 dB apart


def relative_luminance(rgb) -> float:
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_each_mood_has_a_readable_colour_and_a_legend():
    from matplotlib.colors import to_rgb

    assert set(MOOD_COLOURS) == set(MOODS)
    for mood, colour in MOOD_COLOURS.items():
        rgb = to_rgb(colour)
        contrast = 1.05 / (relative_luminance(rgb) + 0.05)  # against white
        assert contrast >= 3.0, f"{mood} ({colour}) is hard to read on white: contrast {contrast:.1f}"
        hue = colorsys.rgb_to_hsv(*rgb)[0] * 360
        assert not 45 <= hue <= 70, f"{mood} ({colour}) is yellow"
    assert len({MOOD_COLOURS[m] for m in MOODS}) == len(MOODS)


def test_the_piano_roll_png_shows_the_moods_colour_and_names_the_mood(tmp_path):
    from matplotlib.colors import to_rgb

    score = symusic.Score(str(piece(tmp_path / "angry.mid", 127, [0, 7])))
    fig, ax = plt.subplots()
    draw_piano_roll(ax, score, "angry_0", mood="angry")
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    plt.close(fig)
    assert legend and legend[0].startswith("angry")
    png = piano_roll_png(score, tmp_path / "angry_0.png", mood="angry")
    pixels = mpimg.imread(png)[..., :3]
    target = np.array(to_rgb(MOOD_COLOURS["angry"]))
    assert (np.abs(pixels - target).max(axis=-1) < 0.05).sum() > 500  # loud notes drawn in the mood's red
    yellow = (pixels[..., 0] > 0.8) & (pixels[..., 1] > 0.8) & (pixels[..., 2] < 0.4)
    assert yellow.sum() == 0
