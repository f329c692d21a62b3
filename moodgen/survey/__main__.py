"""`python -m moodgen.survey make|score key=value ...`: a small parser, one error line for any mistake."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cli import fail
from ..errors import MoodgenError
from ..moods import mood_index
from .make import make_survey
from .report import score_survey

USAGE = """usage:
  python -m moodgen.survey make pieces=<folder> [per_mood=2] [moods=depressed,calm,angry,happy] [out=survey] [seed=0]
      anonymised, shuffled audio files q01.wav ... and index.html in <out>/questionnaire/ (send that folder),
      and <out>/answer_key.csv (keep it)
  python -m moodgen.survey score responses=<answers.csv> key=<answer_key.csv or 0,3,2,...> [out=<folder>]
      per-respondent scores, mean accuracy, accuracy per intended mood, confusion matrix, Fleiss' kappa;
      with out=: scores.csv, confusion.csv, summary.json"""


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected a whole number") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise ValueError("expected 1 or more")
    return value


def mood_list(text: str) -> list[int]:
    moods = [mood_index(item) for item in text.split(",")]
    return list(dict.fromkeys(moods))  # a mood named twice (calm,1) is asked once


def path(text: str) -> Path:
    if not text:
        raise ValueError("expected a path")  # Path("") would quietly mean the current folder
    return Path(text).expanduser()


@dataclass(frozen=True)
class Command:
    run: Callable[..., Any]
    options: dict[str, Callable[[str], Any]]  # option -> converter of its text; ValueError = bad value
    required: tuple[str, ...]


COMMANDS = {
    "make": Command(
        make_survey,
        {"pieces": path, "per_mood": positive_int, "moods": mood_list, "out": path, "seed": whole_number},
        ("pieces",),
    ),
    "score": Command(score_survey, {"responses": path, "key": str, "out": path}, ("responses", "key")),
}


def parse_options(name: str, command: Command, args: list[str]) -> dict[str, Any]:
    options = {}
    for arg in args:
        key, sep, text = arg.partition("=")
        if not sep:
            raise MoodgenError(f"expected key=value, got {arg!r} (python -m moodgen.survey --help)")
        if key not in command.options:
            raise MoodgenError(f"unknown option {key!r} for {name}: use {', '.join(command.options)}")
        try:
            options[key] = command.options[key](text)
        except (ValueError, MoodgenError) as exc:
            raise MoodgenError(f"{arg}: {exc}") from None
    missing = [key for key in command.required if key not in options]
    if missing:
        raise MoodgenError(
            f"{name} needs {' and '.join(f'{key}=...' for key in missing)} (python -m moodgen.survey --help)"
        )
    return options


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    name, *args = argv
    if name not in COMMANDS:
        fail(f"unknown command {name!r}: use make or score (python -m moodgen.survey --help)")
    try:
        COMMANDS[name].run(**parse_options(name, COMMANDS[name], args))
    except MoodgenError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
