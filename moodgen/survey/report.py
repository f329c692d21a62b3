"""`score`: the listeners' answers against the key, printed as a summary and written as CSV and JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..moods import MOODS
from .answers import read_key, read_responses
from .score import SurveyScores, score_answers


def share(correct: int, total: int) -> str:
    """'22/46 = 47.83 %': the counts, which a reduced fraction would hide."""
    return f"{correct}/{total} = {100 * correct / total:.2f} %"


def row_label(row: int, names: list[str]) -> str:
    return f"row {row + 1}" + (f" ({names[row]})" if names[row] else "")


def stated_lines(scores: SurveyScores, names: list[str]) -> list[str]:
    if scores.stated_counts is None:
        return []
    wrong = scores.disagreeing
    lines = [f"stated scores   {share(*scores.stated_counts)}; {len(wrong)} row(s) disagree with their answers"]
    lines += [f"  {row_label(i, names)}: stated {scores.stated[i]}, answers give {scores.scores[i]}" for i in wrong]
    return lines


def mood_lines(scores: SurveyScores) -> list[str]:
    width = max(map(len, MOODS))
    lines = ["accuracy per intended mood"]
    for mood, row in enumerate(scores.confusion):
        if sum(row):
            lines.append(f"  {MOODS[mood]:<{width}}  {share(row[mood], sum(row))}")
    return lines


def confusion_lines(scores: SurveyScores) -> list[str]:
    width = max(map(len, MOODS))
    lines = [
        "confusion (rows: intended mood, columns: answered mood)",
        " " * (width + 2) + "".join(f"{m:>11}" for m in MOODS),
    ]
    lines += [
        f"  {MOODS[mood]:<{width}}" + "".join(f"{n:>11}" for n in row) for mood, row in enumerate(scores.confusion)
    ]
    return lines


def kappa_line(scores: SurveyScores) -> str:
    if scores.kappa is None:
        return "Fleiss' kappa   undefined (needs 2 or more respondents and more than one mood among the answers)"
    return (
        f"Fleiss' kappa   {float(scores.kappa):.4f}  (agreement {float(scores.agreement):.4f} observed "
        f"vs {float(scores.chance_agreement):.4f} by chance; {len(scores.key)} questions, "
        f"{len(scores.scores)} respondents)"
    )


def respondent_lines(scores: SurveyScores, per_line: int = 20) -> list[str]:
    """Rows, scores and stated scores as aligned columns, `per_line` respondents at a time."""
    lines = [f"per respondent (correct of {len(scores.key)})"]
    for start in range(0, len(scores.scores), per_line):
        rows = range(start, min(start + per_line, len(scores.scores)))
        lines.append("  row    " + "".join(f"{i + 1:>4}" for i in rows))
        lines.append("  score  " + "".join(f"{scores.scores[i]:>4}" for i in rows))
        if scores.stated:
            lines.append(
                "  stated " + "".join(f"{'' if scores.stated[i] is None else scores.stated[i]:>4}" for i in rows)
            )
    return lines


def summary(scores: SurveyScores, names: list[str]) -> str:
    key = ",".join(map(str, scores.key))
    lines = [
        f"moodgen: {len(scores.scores)} respondents × {len(scores.key)} questions, key {key}",
        f"mean accuracy   {share(sum(scores.scores), scores.answers)}  (chance {100 / len(MOODS):.0f} %)",
        *stated_lines(scores, names),
        "",
        *mood_lines(scores),
        "",
        *confusion_lines(scores),
        "",
        kappa_line(scores),
        "",
        *respondent_lines(scores),
    ]
    return "\n".join(lines)


def score_rows(scores: SurveyScores, names: list[str]) -> list[dict]:
    stated = scores.stated or [None] * len(scores.scores)
    return [
        {
            "row": i + 1,
            "respondent": names[i],
            "score": score,
            "questions": len(scores.key),
            "accuracy": round(score / len(scores.key), 4),
            "stated_score": "" if stated[i] is None else stated[i],
            "stated_matches": "" if stated[i] is None else stated[i] == score,
        }
        for i, score in enumerate(scores.scores)
    ]


def summary_json(scores: SurveyScores) -> dict:
    def exact_and_float(value):
        return None if value is None else {"value": round(float(value), 6), "exact": str(value)}

    per_mood = {
        MOODS[mood]: {
            "correct": row[mood],
            "answers": sum(row),
            "accuracy": exact_and_float(scores.mood_accuracy(mood)),
        }
        for mood, row in enumerate(scores.confusion)
        if sum(row)
    }
    return {
        "respondents": len(scores.scores),
        "questions": len(scores.key),
        "key": scores.key,
        "correct": sum(scores.scores),
        "answers": scores.answers,
        "mean_accuracy": exact_and_float(scores.accuracy),
        "stated_accuracy": exact_and_float(scores.stated_accuracy),
        "stated_disagreements": [
            {"row": i + 1, "stated": scores.stated[i], "computed": scores.scores[i]} for i in scores.disagreeing
        ],
        "accuracy_per_intended_mood": per_mood,
        "confusion": {"rows": "intended", "columns": "answered", "moods": list(MOODS), "counts": scores.confusion},
        "fleiss_kappa": exact_and_float(scores.kappa),
        "fleiss_observed_agreement": exact_and_float(scores.agreement),
        "fleiss_chance_agreement": exact_and_float(scores.chance_agreement),
        "scores": scores.scores,
    }


def write_scores(scores: SurveyScores, names: list[str], out: Path) -> list[Path]:
    """scores.csv (one row per respondent), confusion.csv and summary.json in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rows = score_rows(scores, names)
    with (out / "scores.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (out / "confusion.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["intended / answered", *MOODS])
        writer.writerows([MOODS[mood], *row] for mood, row in enumerate(scores.confusion))
    (out / "summary.json").write_text(json.dumps(summary_json(scores), indent=2))
    return [out / "scores.csv", out / "confusion.csv", out / "summary.json"]


def score_survey(responses: Path, key: str, out: Path | None = None) -> SurveyScores:
    answer_key = read_key(key)
    read = read_responses(responses, len(answer_key))
    scores = score_answers(read.answers, answer_key, read.stated)
    print(summary(scores, read.names))
    if out is not None:
        written = write_scores(scores, read.names, out)
        print(f"\nwritten: {', '.join(map(str, written))}")
    return scores
