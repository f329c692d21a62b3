"""Reading the listeners' answers and the answer key: every mistake is one error line naming the place."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MoodgenError
from ..moods import mood_index

QUESTION = re.compile(r"q(\d+)")
NAME_COLUMN, STATED_COLUMN = "respondent", "stated_score"


@dataclass(frozen=True)
class Responses:
    answers: list[list[int]]  # [respondent][question]: mood index
    names: list[str]  # the optional respondent column, '' where absent
    stated: list[int | None] | None  # the optional stated_score column: the score a respondent was told


def answer_mood(text: str, where: str) -> int:
    if not text.strip():
        raise MoodgenError(f"{where}: no answer; every question needs a mood (0-3 or its name)")
    try:
        return mood_index(text)
    except MoodgenError as exc:
        raise MoodgenError(f"{where}: {exc}") from None


def question_numbers(columns: list[str], source: str) -> list[int]:
    """The questions' numbers in `columns` (q1, q2, ...), which must run 1..n."""
    numbers = [int(match[1]) for column in columns if (match := QUESTION.fullmatch(column))]
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise MoodgenError(f"{source}: question columns must be q1, q2, ... q<n> without gaps, found {columns}")
    return numbers


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (lower case) and (line number, cells) rows; blank rows and repeated headers are dropped."""
    if not path.is_file():
        raise MoodgenError(f"{path} not found")
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheet exports start with a BOM
        reader = csv.reader(handle)
        rows = [(reader.line_num, [cell.strip() for cell in row]) for row in reader]
    rows = [(line, cells) for line, cells in rows if any(cells)]
    if not rows:
        raise MoodgenError(f"{path} is empty")
    header = [cell.lower() for cell in rows[0][1]]
    # downloads from the questionnaire each start with the header: concatenated files repeat it
    body = [(line, cells) for line, cells in rows[1:] if [cell.lower() for cell in cells] != header]
    for line, cells in body:
        if len(cells) != len(header):
            raise MoodgenError(f"{path} line {line}: {len(cells)} values, but the header has {len(header)} columns")
    return header, body


def read_key_file(path: Path) -> list[int]:
    header, body = read_csv(path)
    if "question" not in header or "mood_index" not in header:
        raise MoodgenError(f"{path} is not an answer key: it needs the columns question and mood_index")
    questions = [cells[header.index("question")] for _, cells in body]
    order = question_numbers(questions, str(path))
    moods = [answer_mood(cells[header.index("mood_index")], f"{path} line {line}") for line, cells in body]
    return [mood for _, mood in sorted(zip(order, moods, strict=True))]


def read_key(text: str) -> list[int]:
    """key=answer_key.csv (from make) or key=0,3,2,... (moods by number or name, in question order)."""
    if text.lower().endswith(".csv") or Path(text).is_file():
        return read_key_file(Path(text).expanduser())
    return [answer_mood(item, f"key item {i}") for i, item in enumerate(text.split(","), start=1)]


def read_responses(path: Path, questions: int) -> Responses:
    """One row per respondent: q1..q<questions> (0-3 or mood names), optional respondent and stated_score."""
    header, body = read_csv(path)
    unknown = [c for c in header if c not in (NAME_COLUMN, STATED_COLUMN) and not QUESTION.fullmatch(c)]
    if unknown:
        raise MoodgenError(
            f"{path}: unknown column {unknown[0]!r}; expected q1..q{questions}, "
            f"optionally {NAME_COLUMN} and {STATED_COLUMN}"
        )
    numbers = question_numbers(header, str(path))
    if len(numbers) != questions:
        raise MoodgenError(f"{path} has {len(numbers)} question columns, but the key has {questions} answers")
    if not body:
        raise MoodgenError(f"{path} has a header but no responses")
    columns = [header.index(f"q{number}") for number in range(1, questions + 1)]
    answers = [[answer_mood(cells[c], f"{path} line {line}, {header[c]}") for c in columns] for line, cells in body]
    names = [cells[header.index(NAME_COLUMN)] if NAME_COLUMN in header else "" for _, cells in body]
    stated = None
    if STATED_COLUMN in header:
        stated = [stated_score(cells[header.index(STATED_COLUMN)], f"{path} line {line}") for line, cells in body]
    return Responses(answers, names, stated)


def stated_score(text: str, where: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise MoodgenError(f"{where}: {STATED_COLUMN} {text!r} is not a whole number")
    return int(text)
