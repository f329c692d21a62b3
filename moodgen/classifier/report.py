"""One evaluation on the test rows: metrics beside the majority baseline, confusion matrix files."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def evaluate(predicted: np.ndarray, y_test: np.ndarray, y_train: np.ndarray, classes: list[str]) -> dict:
    """Test metrics of predictions, per-class precision/recall, and two constant-answer baselines."""
    labels = list(range(len(classes)))
    precision, recall, _, _ = precision_recall_fscore_support(y_test, predicted, labels=labels, zero_division=0)
    majority = np.bincount(y_train, minlength=len(classes)).argmax()
    metrics = {
        "test_acc": accuracy_score(y_test, predicted),
        "test_balanced_acc": balanced_accuracy_score(y_test, predicted),
        "test_macro_f1": f1_score(y_test, predicted, labels=labels, average="macro", zero_division=0),
        # two constant-answer lines: train's majority class (an honest baseline), and the best
        # constant answer on test (the report's "always calm = 45 %", chosen with test labels)
        "majority_acc": float(np.mean(y_test == majority)),
        "best_constant_acc": float(np.bincount(y_test, minlength=len(classes)).max() / len(y_test)),
    }
    for i, name in enumerate(classes):
        metrics[f"precision_{name}"] = float(precision[i])
        metrics[f"recall_{name}"] = float(recall[i])
    return {
        "metrics": {k: float(v) for k, v in metrics.items()},
        "confusion": confusion_matrix(y_test, predicted, labels=labels),
    }


def write_confusion(
    confusion: np.ndarray, classes: list[str], folder: Path, title: str, rows: list[str] | None = None
) -> None:
    """confusion.csv and .png; `rows` names the true classes when they differ from the predicted ones."""
    rows = rows or classes
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "confusion.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *classes])
        for name, row in zip(rows, confusion, strict=True):
            writer.writerow([name, *row.tolist()])
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.1 * len(rows) + 1.5), dpi=100)
    ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center")
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(folder / "confusion.png")
    plt.close(fig)


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        fields = list(dict.fromkeys(key for row in rows for key in row))  # union, first-seen order
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
