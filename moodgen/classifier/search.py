"""Model selection on the training rows only: CV protocols and an Optuna search over C and penalty.

The test rows never enter this module: callers pass the training rows, get a refitted model
back, and evaluate it once on the test rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import MoodgenError

REPORT_SHUFFLE_SEED = 3359  # the report's StratifiedShuffleSplit random_state


def splitter(name: str):
    """The report's two protocols: StratifiedKFold(10) and StratifiedShuffleSplit(10, 0.2, 3359)."""
    if name == "kfold10":
        return StratifiedKFold(n_splits=10)
    if name == "shuffle10":
        return StratifiedShuffleSplit(n_splits=10, test_size=0.2, random_state=REPORT_SHUFFLE_SEED)
    raise MoodgenError(f"unknown classifier.cv={name!r}: use kfold10 or shuffle10")


def make_model(c: float, penalty: str, class_weight: str | None, max_iter: int) -> Pipeline:
    """Scaling + logistic regression: lbfgs for L2 (fast), saga for L1 (l1_ratio 1 = L1, 0 = L2)."""
    solver, ratio = {"l1": ("saga", 1.0), "l2": ("lbfgs", 0.0)}[penalty]
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=c, l1_ratio=ratio, solver=solver, max_iter=max_iter, class_weight=class_weight, tol=1e-3, random_state=0
        ),
    )


@dataclass
class SearchResult:
    model: Pipeline  # refitted on every training row
    c: float
    penalty: str
    cv_accuracy: float
    trials: list[dict]  # one row per Optuna trial, for the trials table


def search(x_train: np.ndarray, y_train: np.ndarray, cfg, seed: int) -> SearchResult:
    """Optuna (seeded TPE) over log2 C and penalty; objective = mean CV accuracy on the training rows."""
    cv = splitter(cfg.cv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.C is not None:  # fixed by the caller (an outer sweep): cross-validate that one setting
        penalty = cfg.penalty or "l2"
        model = make_model(cfg.C, penalty, cfg.class_weight, cfg.max_iter)
        cv_acc = float(cross_val_score(model, x_train, y_train, cv=cv, scoring="accuracy", n_jobs=cfg.n_jobs).mean())
        trial = {"number": 0, "log2_C": float(np.log2(cfg.C)), "penalty": penalty, "cv_accuracy": cv_acc}
        return SearchResult(clone(model).fit(x_train, y_train), cfg.C, penalty, cv_acc, [trial])

    def objective(trial: optuna.Trial) -> float:
        log2_c = trial.suggest_float("log2_C", cfg.log2_c_min, cfg.log2_c_max)
        penalty = trial.suggest_categorical("penalty", list(cfg.penalties))
        model = make_model(2.0**log2_c, penalty, cfg.class_weight, cfg.max_iter)
        scores = cross_val_score(model, x_train, y_train, cv=cv, scoring="accuracy", n_jobs=cfg.n_jobs)
        return float(scores.mean())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=cfg.n_trials)
    best = study.best_params
    c, penalty = 2.0 ** best["log2_C"], best["penalty"]
    model = clone(make_model(c, penalty, cfg.class_weight, cfg.max_iter)).fit(x_train, y_train)
    trials = [
        {"number": t.number, "log2_C": t.params["log2_C"], "penalty": t.params["penalty"], "cv_accuracy": t.value}
        for t in study.trials
    ]
    return SearchResult(model, c, penalty, float(study.best_value), trials)
