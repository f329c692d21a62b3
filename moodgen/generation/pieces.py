"""From token ids to finished pieces: duration control, scoring by mood, files on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic
import torch

from ..classifier.features import lm_features
from ..classifier.handcrafted import describe
from ..moods import MOODS
from ..tokenizers import Corpus
from .render import note_count, piano_roll_png, render_wav


def decoded_seconds(tokenizer, ids: list[int]) -> float:
    """Length in seconds of the music the tokens decode to (0 for none)."""
    try:
        return float(tokenizer.decode([ids]).to("second").end())
    except Exception:  # an unfinished token group at the cut: not music yet
        return 0.0


class DurationStop:
    """The sampler's stop check: a row is done once its decoded music lasts `seconds`."""

    def __init__(self, tokenizer, seconds: float, special: set[int]):
        self.tokenizer, self.seconds, self.special = tokenizer, seconds, special

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:  # [n, t] -> [n]
        return torch.tensor(
            [
                decoded_seconds(self.tokenizer, [t for t in row if t not in self.special]) >= self.seconds
                for row in tokens.tolist()
            ]
        )


def to_score(tokenizer, ids: list[int], seconds: float | None) -> symusic.Score:
    """Decode, and cut at `seconds`: notes starting later are dropped, the rest end by then."""
    score = tokenizer.decode([ids])
    if seconds is None:
        return score
    in_seconds = score.to("second")
    end_tick = score.tpq * 2 * seconds  # fallback at 120 qpm
    if in_seconds.end() > 0:
        end_tick = score.end() * seconds / in_seconds.end()
    return score.clip(0, int(end_tick), clip_end=True)


@dataclass
class Judges:
    """Mood probabilities of pieces: the LM-state probe and the independent hand-crafted judge."""

    net: torch.nn.Module | None = None
    probe: object | None = None  # sklearn on LM features (`features` kind)
    features: str = "final_cell"
    judge: object | None = None  # sklearn on hand-crafted descriptors, independent of the LM
    frame: tuple[int, int] = (1, 2)  # (BOS, EOS): the probe learned from phrases framed by them

    def probe_proba(self, sequences: list[list[int]]) -> np.ndarray | None:
        """[n, 4] from the LM's own states on the generated tokens (no steering clamp applied)."""
        if self.probe is None or self.net is None:
            return None
        framed = [[self.frame[0], *s, self.frame[1]] for s in sequences]
        lengths = [len(s) for s in framed]
        ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in framed])
        corpus = Corpus(ids, np.cumsum([0, *lengths]), [str(i) for i in range(len(sequences))])
        return self.probe.predict_proba(lm_features(self.net, corpus, self.features))

    def judge_proba(self, scores: list[symusic.Score]) -> np.ndarray | None:
        if self.judge is None:
            return None
        rows = [describe(s) if note_count(s) else None for s in scores]
        dim = next((len(r) for r in rows if r is not None), 0)
        if not dim:
            return np.full((len(scores), len(MOODS)), 1.0 / len(MOODS))
        proba = self.judge.predict_proba(np.stack([r if r is not None else np.zeros(dim) for r in rows]))
        proba[[r is None for r in rows]] = 1.0 / len(MOODS)  # a silent piece is no mood
        return proba


def write_piece(folder: Path, name: str, score: symusic.Score, sidecar: dict, wav: bool = True) -> dict:
    """`<name>.mid`, `.png` piano roll, `.wav` (when fluidsynth is there) and `.json` sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    midi = folder / f"{name}.mid"
    score.dump_midi(str(midi))
    piano_roll_png(score, folder / f"{name}.png", title=f"{name} · {sidecar.get('mood', '')}")
    files = {"midi": str(midi), "png": str(folder / f"{name}.png")}
    if wav and render_wav(midi, folder / f"{name}.wav"):
        files["wav"] = str(folder / f"{name}.wav")
    sidecar = {
        **sidecar,
        "notes": note_count(score),
        "seconds": round(float(score.to("second").end()), 2),
        "files": files,
    }
    (folder / f"{name}.json").write_text(json.dumps(sidecar, indent=2))
    return sidecar
