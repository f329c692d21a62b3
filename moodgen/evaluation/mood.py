"""The project's classifiers on evaluated pieces: predicted mood, and accuracy where one was requested."""

from __future__ import annotations

import logging

import numpy as np

from ..artifacts import ArtifactError
from ..classifier.report import write_confusion
from ..errors import MoodgenError
from ..generation.pieces import PROBE, SILENT, predicted_moods
from ..moods import MOODS
from ..tokenizers import encode_score
from .sets import PieceSet

log = logging.getLogger("moodgen")


def model_run_of(cfg, generated: PieceSet) -> str:
    """The classifiers' run: as configured, else the pieces' own model run, else the newest."""
    if cfg.model_run:
        return cfg.model_run
    named = [p.sidecar.get("model_run") for p in generated.pieces if p.sidecar and p.sidecar.get("model_run")]
    return named[0] if named else "latest"


def load_judges(cfg, generated: PieceSet):
    """The model run's judges, or None (with one warning) when there is no trained model; a refused or
    damaged one is an error."""
    from ..generation.bundle import from_run

    try:
        bundle = from_run(cfg, model_run_of(cfg, generated))
    except ArtifactError:  # an untrusted or damaged classifier is the user's to know, not a missing column
        raise
    except MoodgenError as exc:
        log.warning("no mood classifier, mood columns left out: %s", exc)
        return None, None
    return bundle.judges, bundle.tokenizer


def mood_probabilities(judges, tokenizer, pieces: PieceSet) -> dict[str, np.ndarray]:
    """'judge' (hand-crafted, independent of the LM) and 'probe' (LM states): [n, 4] each, when available."""
    if judges is None:
        return {}
    found = {"judge": judges.judge_proba([p.score for p in pieces.pieces])}
    if judges.probe is not None:
        found["probe"] = judges.probe_proba([probe_tokens(tokenizer, p) for p in pieces.pieces])
    return {name: proba for name, proba in found.items() if proba is not None}


def probe_tokens(tokenizer, piece) -> list[int]:
    """The piece's tokens for the probe; [] (no mood, like a silent piece) when the tokenizer yields none."""
    try:
        return encode_score(tokenizer, piece.score)[1:-1]
    except ValueError as exc:
        log.warning("%s: no probe mood (%s)", piece.name, exc)
        return []


def ranked_by_judge(pieces: PieceSet) -> bool:
    """Whether the pieces' steering kept the candidates the hand-crafted judge rated highest: their
    sidecars were then judged by the probe (`judged_by`), and the judge's accuracy is the ranking's own."""
    sidecars = [p.sidecar for p in pieces.pieces if p.sidecar]
    return bool(sidecars) and all(s.get("judged_by") == PROBE for s in sidecars)


def mood_accuracy(pieces: PieceSet, predicted: np.ndarray, classifier: str, folder) -> dict[str, float]:
    """Accuracy and 4x4 confusion (requested x predicted) over pieces whose sidecar names a mood."""
    rows = [i for i, p in enumerate(pieces.pieces) if p.sidecar and p.sidecar.get("mood") in MOODS]
    if not rows:
        return {}
    wanted = np.array([MOODS.index(pieces.pieces[i].sidecar["mood"]) for i in rows])
    got = predicted_moods(predicted[rows])  # -1: a silent piece, a miss
    confusion = np.zeros((len(MOODS), len(MOODS) + 1), dtype=int)
    np.add.at(confusion, (wanted, got), 1)  # -1 lands in the last column, "silent"
    columns = [*MOODS, SILENT]
    write_confusion(confusion, columns, folder / classifier, f"requested vs {classifier}", rows=list(MOODS))
    metrics = {f"eval/mood/{classifier}/accuracy": float((wanted == got).mean())}
    for mood in sorted(set(wanted.tolist())):
        metrics[f"eval/mood/{classifier}/{MOODS[mood]}/accuracy"] = float((got[wanted == mood] == mood).mean())
    return metrics
