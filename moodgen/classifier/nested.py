"""Repeated nested cross-validation grouped by piece: how well the whole selection procedure does.

Outer folds (StratifiedGroupKFold, reshuffled per repeat) hold out whole pieces; on each outer
training part the same search as the shipped model (search.search, fewer trials) chooses C and
penalty by inner CV, and the chosen model is scored once on the outer held-out part. Copies of
phrases (augmentation) join only the outer training part, so no score ever reads a copy.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .augment import ExtraRows
from .search import search, with_options


def outer_folds(y: np.ndarray, groups: np.ndarray, folds: int, repeats: int, seed: int) -> list:
    """`repeats` × `folds` (train, held-out) splits; a piece is never on both sides of one split."""
    return [
        split
        for repeat in range(repeats)
        for split in StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat).split(
            np.zeros((len(y), 1)), y, groups
        )
    ]


def nested_accuracies(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    cfg,
    seed: int,
    extra: ExtraRows | None = None,
    heads: str = "joint",
) -> np.ndarray:
    """Accuracy on each outer held-out part, [repeats × folds]."""
    inner_cfg = with_options(cfg, n_trials=cfg.nested_trials)
    scores = []
    for train, held_out in outer_folds(y, groups, cfg.nested_folds, cfg.nested_repeats, seed):
        copies = extra.of(train) if extra is not None else None
        result = search(x[train], y[train], inner_cfg, seed, groups[train], copies, heads)
        scores.append(float(np.mean(result.model.predict(x[held_out]) == y[held_out])))
    return np.array(scores)
