"""Cross-fitting: the labelled training phrases in two folds by piece, steering built on one, judged by the other.

For fold f, everything a steering method learns from labelled music (the LM-state probe that
rerank and the GA follow, the descriptor model that rank_by=descriptors follows, the L1 probe's
sentiment neurons, the phrases the conditioned LM is fine-tuned on) comes from fold f, the probe and
the descriptor model learning from the fold's `classifier.augment` copies too, as the classifier stage
trains the run's probe and judge (the models generation steers by; with the benchmark's `classifier.*`); the
hand-crafted judge that scores its pieces is fitted on the other fold only. The judge's accuracy on
fold f's real phrases, cut to the pieces' length, is the yardstick (`moodgen.bench.run.judge_real`):
what the judge makes of real music of each mood that it never saw.

With `benchmark.key_blind` (the default) both judges count pitch classes from the estimated tonic
(`relative` descriptors; the probe's kind with its descriptors so), so the first judge keeps its
verdict for music moved to another key (the second's LM states may still hear the key); the ranker
reads `handcrafted`, as the run's judge that generating ranks by.

A second judge of another family, the LM-state probe fitted on the other fold (`state_judge`),
scores the same pieces: a steering that ranks by descriptors shares the first judge's family of features,
so a gain that the second judge does not see is the descriptor family's habit, not the mood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..classifier.augment import ExtraRows
from ..classifier.neurons import sentiment_neurons
from ..classifier.search import search, with_options
from ..data.vgmidi import Phrase
from ..moods import MOODS


def piece_folds(phrases: list[Phrase], n_folds: int, seed: int) -> np.ndarray:
    """Fold index of each phrase: stratified by mood, and no piece in two folds."""
    moods = np.array([p.mood for p in phrases])
    groups = np.array([p.piece for p in phrases])
    folds = np.empty(len(phrases), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(moods)), moods, groups)):
        folds[held] = fold
    return folds


@dataclass
class FoldFeatures:
    """Features of the labelled phrases, a row each, for the models of `FoldModels`."""

    probe: np.ndarray  # the shipped probe's kind: the fold probe's
    ranker: np.ndarray  # `handcrafted`, the run's judge's kind: the ranker's
    judge: np.ndarray  # the judge's (`relative` where benchmark.key_blind)
    state_judge: np.ndarray  # the second judge's: the probe's kind (key-blind where benchmark.key_blind)
    cells: np.ndarray | None = None  # final cell states, for the L1 probe's sentiment neurons
    # the phrases' classifier.augment copies in the probe's and the ranker's kinds (None: no augment)
    probe_copies: ExtraRows | None = None
    ranker_copies: ExtraRows | None = None


@dataclass
class FoldModels:
    """What one fold's steering is built with, and the judge fitted on the other fold."""

    fold: int
    steer_rows: np.ndarray  # phrases the steering may learn from
    judge_rows: np.ndarray  # phrases the judge learned from
    probe: object  # LM-state mood probe on steer_rows (and their copies)
    neurons: dict | None  # the L1 probe's sentiment neurons on steer_rows (final_cell features only)
    judge: object  # hand-crafted judge on judge_rows
    ranker: object  # a hand-crafted model like the run's judge, on steer_rows and their copies: rank_by=descriptors'
    state_judge: object  # LM-state probe on judge_rows: the second judge, of the probe's family


def fit_fold(
    fold: int, folds: np.ndarray, x: FoldFeatures, y: np.ndarray, cfg, seed: int, pieces: np.ndarray | None = None
) -> FoldModels:
    """The fold's probe and ranker on its phrases and their copies (the L1 neurons, given final cell states, on
    its phrases, as the stage's); the judges on the other fold's phrases alone. `pieces` (each phrase's piece)
    lets `classifier.cv=group10` keep a piece's phrases on one side of each split."""
    steer, judge_rows = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)

    def fit(features: np.ndarray, rows: np.ndarray, copies: ExtraRows | None = None, options=cfg):
        groups = None if pieces is None else pieces[rows]
        heads = options.heads
        return search(features[rows], y[rows], options, seed, groups, fold_copies(copies, rows), heads).model

    probe = fit(x.probe, steer, x.probe_copies)
    neurons = None
    if x.cells is not None:  # sentiment neurons are units of the top layer's cell state
        l1_cfg = with_options(cfg, penalties=["l1"], C=None, heads="joint", class_weight=None)  # as the stage's
        l1 = fit(x.cells, steer, options=l1_cfg)
        neurons = sentiment_neurons(l1, list(MOODS))
    judge = fit(x.judge, judge_rows)
    ranker = fit(x.ranker, steer, x.ranker_copies)
    state_judge = fit(x.state_judge, judge_rows)
    return FoldModels(fold, steer, judge_rows, probe, neurons, judge, ranker, state_judge)


def fold_copies(copies: ExtraRows | None, rows: np.ndarray) -> ExtraRows | None:
    """The copies of these rows only (none of another fold's phrases), or None."""
    return None if copies is None else copies.of(rows)
