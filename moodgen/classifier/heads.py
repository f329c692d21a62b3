"""Four moods from two binary heads: a valence model and an arousal model, combined.

The moods are the valence × arousal quadrants (mood = valence + 2·arousal, moodgen.moods), so a
4-class answer can come from two 2-class models, each trained on every phrase instead of on the
quarter that shares a mood. One sklearn estimator: `predict_proba` has the four moods as columns
0..3, and it is saved, loaded and called like any other probe.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..moods import MOODS


def valence_of(mood: np.ndarray) -> np.ndarray:
    return np.asarray(mood) % 2


def arousal_of(mood: np.ndarray) -> np.ndarray:
    return np.asarray(mood) // 2


class ValenceArousalClassifier(ClassifierMixin, BaseEstimator):
    """P(mood) = P(valence) · P(arousal) from two binary classifiers (each with predict_proba).

    `valence` and `arousal` are templates: `fit` trains clones of them on the moods' valence and
    arousal labels; the heads treat the two axes as independent given the features.
    """

    def __init__(self, valence=None, arousal=None):
        self.valence = valence
        self.arousal = arousal

    def fit(self, x: np.ndarray, y: np.ndarray):
        y = np.asarray(y)
        if not np.isin(y, np.arange(len(MOODS))).all():
            raise ValueError(f"moods must be 0..{len(MOODS) - 1}, got {sorted(set(y.tolist()))}")
        self.valence_ = self._fit_head(self.valence, x, valence_of(y))
        self.arousal_ = self._fit_head(self.arousal, x, arousal_of(y))
        self.classes_ = np.arange(len(MOODS))
        return self

    @staticmethod
    def _fit_head(template, x, labels):
        if len(np.unique(labels)) < 2:
            raise ValueError("a valence or arousal head needs both of its classes in the training rows")
        return clone(template).fit(x, labels)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """[n, 4]: column v + 2a holds P(valence = v) · P(arousal = a); rows sum to 1."""
        check_is_fitted(self, "classes_")
        valence = self.valence_.predict_proba(x)  # [n, 2], columns: classes 0, 1
        arousal = self.arousal_.predict_proba(x)
        return (arousal[:, :, None] * valence[:, None, :]).reshape(len(valence), len(MOODS))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(1)]
