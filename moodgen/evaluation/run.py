"""An evaluation of generated pieces against a reference set: tables, figures, metrics, report."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..attributes import attribute_row
from ..classifier.report import write_rows
from ..moods import MOODS
from .describe import describe_piece
from .mood import mood_accuracy, mood_probabilities, ranked_by_judge
from .plots import distance_figure, piece_figure
from .repetition import repetition
from .report import image, table, write_report
from .sets import PieceSet
from .yang_lerch import compare_sets, piece_features

log = logging.getLogger("moodgen")
REPETITION = ("longest_repeated_bars", "unique_4bar_ratio", "silence_ratio")


@dataclass
class Evaluation:
    metrics: dict[str, float]
    report: Path
    folder: Path


def piece_rows(pieces: PieceSet, probabilities: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for i, piece in enumerate(pieces.pieces):
        row = {"piece": piece.name, **describe_piece(piece.score), **repetition(piece.score)}
        if piece.sidecar and piece.sidecar.get("mood"):
            row["requested_mood"] = piece.sidecar["mood"]
        for classifier, proba in probabilities.items():
            row[f"{classifier}_mood"] = MOODS[int(proba[i].argmax())]
            row.update({f"{classifier}_p_{m}": round(float(p), 4) for m, p in zip(MOODS, proba[i], strict=True)})
        rows.append(row)
    return rows


def attribute_summary(pieces: PieceSet) -> list[dict]:
    """Mean musical attributes of the set's pieces, per requested mood where the sidecars say one."""
    groups: dict[str, list[dict]] = {}
    for piece in pieces.pieces:
        mood = (piece.sidecar or {}).get("mood") or "all"
        groups.setdefault(f"{pieces.label}: {mood}", []).append(attribute_row(piece.score))
    return [
        {"set": label, "pieces": len(rows), **{k: round(float(np.nanmean([r[k] for r in rows])), 3) for k in rows[0]}}
        for label, rows in sorted(groups.items())
    ]


def repetition_summary(rows: list[dict], label: str) -> dict:
    return {"set": label, "pieces": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in REPETITION}}


def evaluate(
    generated: PieceSet,
    reference: PieceSet,
    folder: Path,
    judges=None,
    tokenizer=None,
    grid_points: int = 1000,
    title: str = "moodgen evaluation",
) -> Evaluation:
    start = time.perf_counter()
    for stale in ("figures", "mood"):  # a reused out_dir: the report shows this evaluation's files only
        shutil.rmtree(folder / stale, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    probabilities = mood_probabilities(judges, tokenizer, generated)
    rows = piece_rows(generated, probabilities)
    reference_rows = piece_rows(reference, {})
    write_rows(rows, folder / "pieces.csv")
    write_rows(reference_rows, folder / "reference_pieces.csv")
    comparisons = compare_sets(
        [piece_features(p.score) for p in generated.pieces],
        [piece_features(p.score) for p in reference.pieces],
        grid_points,
    )
    set_rows = [c.row() for c in comparisons]
    write_rows(set_rows, folder / "set_metrics.csv")
    repeats = [repetition_summary(rows, generated.label), repetition_summary(reference_rows, reference.label)]
    attributes = attribute_summary(generated) + attribute_summary(reference)
    write_rows(attributes, folder / "attributes.csv")
    write_rows(repeats, folder / "repetition.csv")
    skipped = [{"set": s.label, "file": n, "reason": r} for s in (generated, reference) for n, r in s.skipped]
    write_rows(skipped or [{"set": "", "file": "", "reason": ""}], folder / "skipped.csv")

    metrics: dict[str, float] = {}
    for c in comparisons:
        metrics.update({f"eval/{c.feature}/oa": c.oa, f"eval/{c.feature}/kl": c.kl})
    metrics["eval/mean_oa"] = float(np.mean([c.oa for c in comparisons]))
    metrics["eval/mean_kl"] = float(np.mean([c.kl for c in comparisons]))
    metrics.update({f"eval/generated/{k}": repeats[0][k] for k in REPETITION})
    for classifier, proba in probabilities.items():
        if classifier == "judge" and ranked_by_judge(generated):
            log.info("the pieces were ranked by the hand-crafted judge: its mood accuracy on them is left out")
            continue
        metrics.update(mood_accuracy(generated, proba, classifier, folder / "mood"))

    figures = folder / "figures"
    distances = distance_figure(comparisons, figures / "distances.png", reference.label)
    piece_plots = [
        piece_figure(p.score, figures / "pieces" / f"{i:03d}.png", p.name) for i, p in enumerate(generated.pieces)
    ]
    sections = [
        (
            "Sets",
            table(
                [
                    {"set": s.label, "pieces": len(s.pieces), "skipped": len(s.skipped), "run": s.run_id or ""}
                    for s in (generated, reference)
                ]
            ),
        ),
        ("Mood accuracy (requested vs predicted)", mood_section(metrics, folder / "mood")),
        (
            f"Set-level metrics vs {reference.label} (Yang & Lerch 2018)",
            '<p class="note">OA: overlap of the generated set\'s intra-set distance density with the inter-set '
            "density (1 = as close to the reference as to itself); KL: KL(intra generated ‖ inter). "
            "The _reference columns are the same for the reference set itself.</p>"
            + table(set_rows)
            + image(distances, "distance densities"),
        ),
        ("Repetition and degeneration (means)", table(repeats)),
        (
            "Musical attributes (means; moodgen.attributes)",
            '<p class="note">density in notes per beat, velocity, register (mean pitch), spread (pitch '
            "standard deviation), mode (major minus minor key correlation), tonic (pitch class), polyphony "
            "(notes per onset), articulation (note length over the gap to the next onset), tempo of the file.</p>"
            + table(attributes),
        ),
        ("Pieces", table(rows)),
        (
            "Each piece: piano roll, pitch and velocity histograms",
            "".join(f'<div class="piece">{image(p, p.stem)}</div>' for p in piece_plots),
        ),
        ("Skipped files", table(skipped)),
    ]
    report = write_report(folder / "report.html", title, sections)
    log.info(
        "evaluated %d vs %d pieces in %.1f s: mean OA %.3f, report %s",
        len(generated.pieces),
        len(reference.pieces),
        time.perf_counter() - start,
        metrics["eval/mean_oa"],
        report,
    )
    return Evaluation(metrics, report, folder)


def mood_section(metrics: dict[str, float], folder: Path) -> str:
    found = [(c, folder / c / "confusion.png") for c in ("judge", "probe") if (folder / c / "confusion.png").exists()]
    if not found:
        return '<p class="note">no requested moods (JSON sidecars) or no trained classifier</p>'
    rows = [
        {"classifier": c, **{k.split("/", 3)[-1]: v for k, v in metrics.items() if k.startswith(f"eval/mood/{c}/")}}
        for c, _ in found
    ]
    note = (
        '<p class="note">judge: the hand-crafted-feature classifier, independent of the LM; '
        "probe: the classifier on the LM's states (what rerank and neurons steer by).</p>"
    )
    return note + table(rows) + "".join(image(path, f"{c} confusion") for c, path in found)
