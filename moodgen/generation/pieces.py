"""From token ids to finished pieces: duration control, scoring by mood, files on disk."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic
import torch

from ..classifier.features import HANDCRAFTED, phrase_features, score_descriptors
from ..moods import MOODS
from ..tokenizers import Corpus, encode_score
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


def to_score(tokenizer, ids: list[int], seconds: float | None, qpm: float | None = None) -> symusic.Score:
    """Decode, write at `qpm` (None: the decoded tempo), and cut at `seconds` (first_seconds)."""
    score = tokenizer.decode([ids])
    if qpm is not None:
        score.tempos = [symusic.Tempo(0, float(qpm))]
    return score if seconds is None else first_seconds(score, seconds)


def first_seconds(score: symusic.Score, seconds: float) -> symusic.Score:
    """The score's first `seconds` (at its one tempo): the notes that end by then (one that would sound on
    past the cut is dropped, not shortened)."""
    in_seconds = score.to("second")
    end_tick = score.tpq * 2 * seconds  # fallback at 120 qpm
    if in_seconds.end() > 0:
        end_tick = score.end() * seconds / in_seconds.end()
    # + 0.01: the seconds side is float32, so an exact tick can come out as 2879.9998
    return score.clip(0, int(end_tick + 0.01), clip_end=True)


def cut_ids(tokenizer, ids: list[int], seconds: float) -> list[int]:
    """The tokens of the music a piece's file holds: decoded, cut at `seconds`, encoded again ([] if silent)."""
    return score_ids(tokenizer, to_score(tokenizer, ids, seconds))


def score_ids(tokenizer, score: symusic.Score) -> list[int]:
    """A written piece's tokens, unframed, as a probe reads them ([] if silent)."""
    return encode_score(tokenizer, score)[1:-1] if note_count(score) else []


SILENT = "silent"  # the judged "mood" of a piece without notes
JUDGE, PROBE = "hand-crafted judge", "LM-state probe"  # who gave a piece its judged_mood (sidecar judged_by)


def predicted_moods(proba: np.ndarray) -> np.ndarray:
    """Argmax mood of each row, -1 (no mood) where the row is not a prediction (a silent piece's NaNs).

    A tie of flat probabilities would otherwise count as the first mood, 'depressed'.
    """
    proba = np.asarray(proba, dtype=float)
    moods = np.nan_to_num(proba, nan=-np.inf).argmax(1)
    moods[~np.isfinite(proba).all(1)] = -1
    return moods


def mood_name(index: int) -> str:
    """The mood's name, or 'silent' for a piece without notes (no mood, so never a hit)."""
    return MOODS[index] if index >= 0 else SILENT


@dataclass
class Judges:
    """Mood probabilities of pieces: the LM-state probe and the independent hand-crafted judge."""

    net: torch.nn.Module | None = None
    probe: object | None = None  # sklearn on LM features (`features` kind)
    features: str = "final_cell"
    judge: object | None = None  # sklearn on hand-crafted descriptors, independent of the LM
    # the descriptors the judge reads: the run's judge `handcrafted`; the benchmark's `relative` (blind to the key)
    judge_features: str = HANDCRAFTED
    # what steering may rank candidates by on descriptors (rank_by=descriptors): the run's judge when
    # generating; in the benchmark a model of the steering's own fold, never the judge that scores it
    ranker: object | None = None
    frame: tuple[int, int] = (1, 2)  # (BOS, EOS): the probe learned from phrases framed by them
    tokenizer: object | None = None  # decodes pieces for probes whose features include musical ones

    def probe_proba(self, sequences: list[list[int]]) -> np.ndarray | None:
        """[n, 4] from the LM's own states on the generated tokens (no steering clamp applied).

        An empty sequence (a silent piece) gets a row of NaN: no mood, never a hit, ranked last.
        """
        if self.probe is None or self.net is None:
            return None
        framed = [[self.frame[0], *s, self.frame[1]] for s in sequences]
        lengths = [len(s) for s in framed]
        ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in framed])
        corpus = Corpus(ids, np.cumsum([0, *lengths]), [str(i) for i in range(len(sequences))])
        features = phrase_features(self.features, self.net, self.tokenizer, corpus)
        proba = self.probe.predict_proba(features).astype(float)
        proba[[not s for s in sequences]] = np.nan
        return proba

    def judge_proba(self, scores: list[symusic.Score]) -> np.ndarray | None:
        """[n, 4] by the hand-crafted judge; a row of NaN for a piece without notes (no mood)."""
        return None if self.judge is None else descriptor_proba(self.judge, scores, self.judge_features)

    def ranker_proba(self, scores: list[symusic.Score]) -> np.ndarray | None:
        """[n, 4] by the descriptor model steering ranks with (as judge_proba), on `handcrafted` descriptors
        like the run's judge that generating ranks by."""
        return None if self.ranker is None else descriptor_proba(self.ranker, scores)


def descriptor_proba(model, scores: list[symusic.Score], block: str = HANDCRAFTED) -> np.ndarray:
    """[n, 4] of a model on a block of descriptors; a row of NaN for a piece without notes (no mood)."""
    rows = [score_descriptors(block, s) if note_count(s) else None for s in scores]
    proba = np.full((len(scores), len(MOODS)), np.nan)
    sounding = [i for i, r in enumerate(rows) if r is not None]
    if sounding:
        proba[sounding] = model.predict_proba(np.stack([rows[i] for i in sounding]))
    return proba


def claim_name(folder: Path, name: str) -> str:
    """The first of `name`, `name-2`, ... whose sidecar this call creates (O_EXCL: one winner per name)."""
    for k in itertools.count(1):
        candidate = name if k == 1 else f"{name}-{k}"
        try:
            os.close(os.open(folder / f"{candidate}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def write_piece(
    folder: Path, name: str, score: symusic.Score, sidecar: dict, wav: bool = True, png: bool = True
) -> dict:
    """`<name>.mid`, `.png` piano roll, `.wav` (when fluidsynth is there) and `.json` sidecar.

    A name another piece in `folder` already has becomes `<name>-2`, `<name>-3`, ...: two
    generations into one `out_dir`, even at the same moment, never overwrite each other's pieces.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = claim_name(folder, name)
    midi = folder / f"{name}.mid"
    score.dump_midi(str(midi))
    files = {"midi": str(midi)}
    if png:
        piano_roll_png(
            score, folder / f"{name}.png", title=f"{name} · {sidecar.get('mood', '')}", mood=sidecar.get("mood")
        )
        files["png"] = str(folder / f"{name}.png")
    if wav and render_wav(midi, folder / f"{name}.wav"):
        files["wav"] = str(folder / f"{name}.wav")
    sidecar = {
        **sidecar,
        "name": name,
        "notes": note_count(score),
        "seconds": round(float(score.to("second").end()), 2),
        "files": files,
    }
    (folder / f"{name}.json").write_text(json.dumps(sidecar, indent=2))
    return sidecar
