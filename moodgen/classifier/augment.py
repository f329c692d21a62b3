"""Training-only copies of labelled phrases: transposed by a few semitones, and cut into parts.

A copy keeps its phrase's labels and its piece, and is used only where the phrase itself is a
training row: `ExtraRows.extend` adds a fold's copies to that fold's training rows and never to
its validation rows, and the test rows' copies never reach a fit on the report's split.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import symusic

from ..data.midi import read_piano
from ..tokenizers import Corpus, encode_score

AUGMENTATIONS = ("transpose", "cut")


def transposed(score: symusic.Score, semitones: list[int]) -> list[symusic.Score]:
    return [transpose_by(score, int(k)) for k in semitones]


def transpose_by(score: symusic.Score, semitones: int) -> symusic.Score:
    """A copy with every pitch moved; a note the move would take outside MIDI's 0-127 is left out (symusic
    would raise). A tokenizer with a narrower pitch range drops what falls outside it when encoding."""
    inside = score.copy()
    for track in inside.tracks:
        track.notes.filter(lambda note: 0 <= note.pitch + semitones <= 127, inplace=True)
    return inside.shift_pitch(semitones)


def cut_parts(score: symusic.Score, parts: int) -> list[symusic.Score]:
    """The phrase cut into `parts` equal spans of time, each starting at 0; empty spans are left out."""
    end = score.end() + 1
    bounds = [round(end * i / parts) for i in range(parts + 1)]
    pieces = [score.clip(a, b, clip_end=True).shift_time(-a) for a, b in pairwise(bounds)]
    return [p for p in pieces if any(len(t.notes) for t in p.tracks)]


def augmented_scores(score: symusic.Score, augment: list[str], semitones: list[int], parts: int) -> list[symusic.Score]:
    copies = []
    if "transpose" in augment:
        copies += transposed(score, semitones)
    if "cut" in augment:
        copies += cut_parts(score, parts)
    return copies


def configured_copies(tokenizer, paths: list, cfg):
    """The copies `classifier.augment` asks for of the phrases at `paths` (`augmented_corpus`); None if it asks none."""
    if not cfg.augment:
        return None
    return augmented_corpus(tokenizer, paths, list(cfg.augment), list(cfg.transpose), cfg.cut_parts)


def augmented_corpus(tokenizer, paths: list, augment: list[str], semitones: list[int], parts: int):
    """(Corpus of the copies' framed token ids, index into `paths` of the phrase each copies).

    Copies the tokenizer cannot encode (no notes left in its pitch range) are left out.
    """
    chunks, source = [], []
    for i, path in enumerate(paths):
        for copy in augmented_scores(read_piano(path), augment, semitones, parts):
            try:
                chunks.append(np.asarray(encode_score(tokenizer, copy), dtype=np.int32))
            except ValueError:
                continue
            source.append(i)
    offsets = np.cumsum([0, *(len(c) for c in chunks)]).astype(np.int64)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    corpus = Corpus(ids=ids, offsets=offsets, names=[f"copy_{k}" for k in range(len(chunks))])
    return corpus, np.asarray(source, dtype=np.int64)


@dataclass
class ExtraRows:
    """Feature rows that copy training rows: `source[k]` is the row that row k of `x` copies."""

    x: np.ndarray  # [m, dim]
    source: np.ndarray  # [m] int, indices into the rows they extend

    def of(self, rows: np.ndarray) -> ExtraRows:
        """The copies of `rows` only, renumbered to positions within `rows`."""
        rows = np.asarray(rows)
        position = {int(r): p for p, r in enumerate(rows)}
        keep = self.copies_of(rows)
        return ExtraRows(self.x[keep], np.array([position[int(s)] for s in self.source[keep]], dtype=np.int64))

    def extend(self, x: np.ndarray, y: np.ndarray, folds: list) -> tuple[np.ndarray, np.ndarray, list]:
        """Rows [x; copies] with labels, and folds whose training part gains its rows' copies.

        Validation parts stay as they were: original rows only.
        """
        n = len(x)
        x_all = np.concatenate([x, self.x]) if len(self.x) else x
        y_all = np.concatenate([y, np.asarray(y)[self.source]])
        extended = [(np.concatenate([train, n + self.copies_of(train)]), val) for train, val in folds]
        return x_all, y_all, extended

    def copies_of(self, rows: np.ndarray) -> np.ndarray:
        """Positions in `x` of the copies of `rows`."""
        return np.flatnonzero(np.isin(self.source, rows))
