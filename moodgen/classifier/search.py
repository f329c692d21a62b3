"""Model selection on the training rows only: CV protocols and an Optuna search over C and penalty.

The test rows never enter this module: callers pass the training rows (and, with augmentation,
the copies of those rows), get a refitted model back, and evaluate it once on the test rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
from omegaconf import OmegaConf
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import MoodgenError
from .augment import ExtraRows
from .heads import ValenceArousalClassifier, arousal_of, valence_of

REPORT_SHUFFLE_SEED = 3359  # the report's StratifiedShuffleSplit random_state
CV_PROTOCOLS = ("kfold10", "shuffle10", "group10")
HEADS = ("joint", "va")  # one 4-class model | valence × arousal heads (mood4 only)


def splitter(name: str):
    """The report's two protocols, StratifiedKFold(10) and StratifiedShuffleSplit(10, 0.2, 3359), and
    StratifiedGroupKFold(10): no piece in both a fold's training and validation rows."""
    if name == "kfold10":
        return StratifiedKFold(n_splits=10)
    if name == "shuffle10":
        return StratifiedShuffleSplit(n_splits=10, test_size=0.2, random_state=REPORT_SHUFFLE_SEED)
    if name == "group10":
        return StratifiedGroupKFold(n_splits=10)
    raise MoodgenError(f"unknown classifier.cv={name!r}: use {', '.join(CV_PROTOCOLS)}")


def cv_folds(name: str, y: np.ndarray, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    if name == "group10" and groups is None:
        raise MoodgenError("classifier.cv=group10 needs the pieces the phrases come from")
    grouped = groups if name == "group10" else None  # the other protocols ignore pieces (and warn if given them)
    return list(splitter(name).split(np.zeros((len(y), 1)), y, grouped))


def make_model(c: float, penalty: str, class_weight: str | None, max_iter: int) -> Pipeline:
    """Scaling + logistic regression: lbfgs for L2 (fast), saga for L1 (l1_ratio 1 = L1, 0 = L2)."""
    solver, ratio = {"l1": ("saga", 1.0), "l2": ("lbfgs", 0.0)}[penalty]
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=c, l1_ratio=ratio, solver=solver, max_iter=max_iter, class_weight=class_weight, tol=1e-3, random_state=0
        ),
    )


def with_options(cfg, **changes):
    """A copy of a classifier config with some fields replaced."""
    copy = OmegaConf.to_container(cfg)
    copy.update(changes)
    return OmegaConf.create(copy)


@dataclass
class SearchResult:
    model: BaseEstimator  # refitted on every training row (and the copies of them)
    penalty: str
    cv_accuracy: float
    trials: list[dict]  # one row per Optuna trial, for the trials table
    chosen: dict[str, float]  # the selected hyperparameters as metrics: log2_C, or one per head


@dataclass
class TrainingRows:
    """What a search fits on: rows, labels, CV folds; copies (augmentation) only in training parts."""

    x: np.ndarray
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, x, y, cv: str, groups=None, extra: ExtraRows | None = None) -> TrainingRows:
        folds = cv_folds(cv, y, groups)
        return cls(*extra.extend(x, y, folds)) if extra is not None else cls(x, y, folds)

    def cv_accuracy(self, model, n_jobs: int) -> float:
        return float(cross_val_score(model, self.x, self.y, cv=self.folds, scoring="accuracy", n_jobs=n_jobs).mean())


def search(
    x_train: np.ndarray,
    y_train: np.ndarray,
    cfg,
    seed: int,
    groups: np.ndarray | None = None,
    extra: ExtraRows | None = None,
    heads: str = "joint",
) -> SearchResult:
    """Select and refit on the training rows: one model, or (heads='va') a valence and an arousal head."""
    if heads == "va":
        return search_valence_arousal(x_train, y_train, cfg, seed, groups, extra)
    return search_logreg(TrainingRows.build(x_train, y_train, cfg.cv, groups, extra), cfg, seed)


def search_logreg(rows: TrainingRows, cfg, seed: int) -> SearchResult:
    """Optuna (seeded TPE) over log2 C and penalty; objective = mean CV accuracy on the training rows."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.C is not None:  # fixed by the caller (an outer sweep): cross-validate that one setting
        penalty = cfg.penalty or "l2"
        model = make_model(cfg.C, penalty, cfg.class_weight, cfg.max_iter)
        cv_acc = rows.cv_accuracy(model, cfg.n_jobs)
        trial = {"number": 0, "log2_C": float(np.log2(cfg.C)), "penalty": penalty, "cv_accuracy": cv_acc}
        return SearchResult(model.fit(rows.x, rows.y), penalty, cv_acc, [trial], {"log2_C": trial["log2_C"]})

    def objective(trial: optuna.Trial) -> float:
        log2_c = trial.suggest_float("log2_C", cfg.log2_c_min, cfg.log2_c_max)
        penalty = trial.suggest_categorical("penalty", list(cfg.penalties))
        return rows.cv_accuracy(make_model(2.0**log2_c, penalty, cfg.class_weight, cfg.max_iter), cfg.n_jobs)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=cfg.n_trials)
    best = study.best_params
    model = make_model(2.0 ** best["log2_C"], best["penalty"], cfg.class_weight, cfg.max_iter).fit(rows.x, rows.y)
    trials = [
        {"number": t.number, "log2_C": t.params["log2_C"], "penalty": t.params["penalty"], "cv_accuracy": t.value}
        for t in study.trials
    ]
    return SearchResult(model, best["penalty"], float(study.best_value), trials, {"log2_C": best["log2_C"]})


def search_valence_arousal(x_train, y_train, cfg, seed: int, groups=None, extra=None) -> SearchResult:
    """Each head selected by CV on its own axis, then the 4-mood product cross-validated once, refitted."""
    heads = {
        name: search_logreg(TrainingRows.build(x_train, axis(y_train), cfg.cv, groups, extra), cfg, seed)
        for name, axis in (("valence", valence_of), ("arousal", arousal_of))
    }
    model = ValenceArousalClassifier(heads["valence"].model, heads["arousal"].model)
    rows = TrainingRows.build(x_train, y_train, cfg.cv, groups, extra)
    cv_acc = rows.cv_accuracy(model, cfg.n_jobs)
    return SearchResult(
        model.fit(rows.x, rows.y),
        ", ".join(f"{name} {result.penalty}" for name, result in heads.items()),
        cv_acc,
        [{"head": name, **trial} for name, result in heads.items() for trial in result.trials],
        {f"log2_C_{name}": result.chosen["log2_C"] for name, result in heads.items()},
    )
