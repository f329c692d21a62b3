"""Loudness of rendered audio: ITU-R BS.1770-4 integrated loudness (LUFS), a true-peak estimate,
and normalisation to one target with a peak ceiling, so every WAV plays at the same level.

Target: -16 LUFS integrated (the level of spoken-word and streaming players), ceiling -1 dBTP.
Quiet and sparse pieces are raised and loud ones lowered by one gain; where the gain would push
a piano attack over the ceiling, a look-ahead limiter lowers just those attacks (no clipping), and
the gain is re-measured so the piece still lands on the target.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

TARGET_LUFS = -16.0
CEILING_DBTP = -1.0
SILENCE_LUFS = -70.0  # BS.1770's absolute gate: quieter than this counts as silence


def _biquad(kind: str, fs: float, fc: float, q: float, gain_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook biquads; BS.1770's two K-weighting stages at any sample rate."""
    w0 = 2 * math.pi * fc / fs
    alpha = math.sin(w0) / (2 * q)
    cos = math.cos(w0)
    if kind == "high_shelf":
        a = 10 ** (gain_db / 40)
        root = 2 * math.sqrt(a) * alpha
        b = [a * ((a + 1) + (a - 1) * cos + root), -2 * a * ((a - 1) + (a + 1) * cos)]
        b.append(a * ((a + 1) + (a - 1) * cos - root))
        den = [(a + 1) - (a - 1) * cos + root, 2 * ((a - 1) - (a + 1) * cos), (a + 1) - (a - 1) * cos - root]
    else:  # high pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        den = [1 + alpha, -2 * cos, 1 - alpha]
    return np.array(b) / den[0], np.array(den) / den[0]


def k_weighted(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import lfilter

    shelf = _biquad("high_shelf", rate, 1500.0, 1 / math.sqrt(2), 4.0)
    high_pass = _biquad("high_pass", rate, 38.0, 0.5)
    return lfilter(*high_pass, lfilter(*shelf, audio, axis=0), axis=0)


def integrated_loudness(audio: np.ndarray, rate: int) -> float:
    """LUFS of (samples, channels) audio in [-1, 1]: 400 ms blocks, 75 % overlap, absolute and
    relative gates (BS.1770-4); -inf for silence or audio shorter than one block."""
    audio = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1)
    block, step = int(0.4 * rate), int(0.1 * rate)
    if len(audio) < block:
        return -math.inf
    weighted = k_weighted(audio, rate) ** 2
    cumulative = np.concatenate([np.zeros((1, audio.shape[1])), np.cumsum(weighted, axis=0)])
    starts = np.arange(0, len(audio) - block + 1, step)
    power = ((cumulative[starts + block] - cumulative[starts]) / block).sum(axis=1)  # channel weights 1 (L, R)
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(power)
    kept = power[loudness > SILENCE_LUFS]
    if not len(kept):
        return -math.inf
    relative = -0.691 + 10 * np.log10(kept.mean()) - 10
    kept = power[(loudness > SILENCE_LUFS) & (loudness > relative)]
    return float(-0.691 + 10 * np.log10(kept.mean()))


def _peak_envelope(audio: np.ndarray) -> np.ndarray:
    """Per sample: the largest absolute value of any channel, 4x oversampled (true peak, BS.1770 annex 2)."""
    from scipy.signal import resample_poly

    over = np.abs(resample_poly(audio, 4, 1, axis=0)).max(axis=1)
    over = over[: 4 * len(audio)].reshape(len(audio), 4).max(axis=1)
    return np.maximum(over, np.abs(audio).max(axis=1))


def true_peak_db(audio: np.ndarray) -> float:
    audio = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1)
    peak = float(_peak_envelope(audio).max()) if len(audio) else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def _limit(audio: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """Gain below 1 only around samples over the ceiling: a minimum over +-5 ms, then a 5 ms moving
    average, so each attack is lowered smoothly and no sample ends over the ceiling."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    envelope = _peak_envelope(audio)
    if envelope.max() <= ceiling:
        return audio
    width = max(1, int(0.005 * rate))
    needed = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))
    gain = uniform_filter1d(minimum_filter1d(needed, 2 * width + 1), width | 1)
    return audio * np.minimum(gain, needed)[:, None]


def normalise(
    audio: np.ndarray, rate: int, target_lufs: float = TARGET_LUFS, ceiling_dbtp: float = CEILING_DBTP
) -> np.ndarray:
    """The audio at `target_lufs` integrated loudness with true peaks at or below `ceiling_dbtp`.
    Silence stays silent."""
    audio = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1)
    ceiling = 10 ** (ceiling_dbtp / 20) * 0.999  # a hair under: 16-bit rounding stays below it
    out = audio
    for _ in range(4):  # gain, limit, measure again: the limiter takes a little loudness off the loudest
        loudness = integrated_loudness(out, rate)
        if not math.isfinite(loudness):
            return audio
        if abs(loudness - target_lufs) < 0.05 and _peak_envelope(out).max() <= ceiling:
            break
        out = _limit(out * 10 ** ((target_lufs - loudness) / 20), ceiling, rate)
    return out


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> ((samples, channels) float array in [-1, 1], sample rate)."""
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * handle.getsampwidth()}-bit samples; only 16-bit PCM is read")
        rate, channels = handle.getframerate(), handle.getnchannels()
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return frames.reshape(-1, channels).astype(np.float64) / 32768.0, rate


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    audio = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1)
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(audio.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
