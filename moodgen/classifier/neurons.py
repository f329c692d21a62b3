"""Sentiment neurons: the LM units an L1-penalised probe keeps, with their weights per class."""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline


def sentiment_neurons(model: Pipeline, classes: list[str], tol: float = 0.0) -> dict:
    """Non-zero weights of the logistic regression, per class (binary: one row for class 1).

    Weights act on standardised features, so the scaler's mean and scale per neuron come along:
    a steering method writes value = mean + z * scale into the LM state.
    """
    scaler, probe = model[0], model[-1]
    coef = np.atleast_2d(probe.coef_)  # [n_classes or 1, D]
    row_classes = classes if coef.shape[0] == len(classes) else classes[1:]
    entries = []
    for row, name in zip(coef, row_classes, strict=True):
        for neuron in np.flatnonzero(np.abs(row) > tol):
            entries.append(
                {
                    "class": name,
                    "neuron": int(neuron),
                    "weight": float(row[neuron]),
                    "mean": float(scaler.mean_[neuron]),
                    "scale": float(scaler.scale_[neuron]),
                }
            )
    return {"count": len({e["neuron"] for e in entries}), "classes": classes, "neurons": entries}
