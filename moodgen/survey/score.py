"""The figures of a listening test, as exact fractions: scores, accuracy, confusion, Fleiss' kappa."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..moods import MOODS


@dataclass(frozen=True)
class SurveyScores:
    key: list[int]  # intended mood per question
    scores: list[int]  # correct answers per respondent
    confusion: list[list[int]]  # [intended][answered]
    kappa: Fraction | None  # None where undefined: one respondent, or every answer the same mood
    agreement: Fraction | None  # Fleiss' P-bar: observed agreement between two respondents on a question
    chance_agreement: Fraction | None  # Fleiss' P_e: expected from how often each mood was answered
    stated: list[int | None] | None = None  # the scores respondents were told, where the responses had them

    @property
    def answers(self) -> int:
        return len(self.scores) * len(self.key)

    @property
    def accuracy(self) -> Fraction:
        return Fraction(sum(self.scores), self.answers)

    @property
    def disagreeing(self) -> list[int]:
        """Respondents (0-based) whose stated score is not the number of their correct answers."""
        stated = self.stated or [None] * len(self.scores)
        return [
            i
            for i, (told, score) in enumerate(zip(stated, self.scores, strict=True))
            if told is not None and told != score
        ]

    @property
    def stated_counts(self) -> tuple[int, int] | None:
        """(correct answers by the stated scores, answers of the respondents that have one)."""
        told = [score for score in self.stated or [] if score is not None]
        return (sum(told), len(told) * len(self.key)) if told else None

    @property
    def stated_accuracy(self) -> Fraction | None:
        return Fraction(*self.stated_counts) if self.stated_counts else None

    def mood_accuracy(self, mood: int) -> Fraction | None:
        """Share of answers naming `mood` for the pieces meant to be `mood` (None: no such piece)."""
        row = self.confusion[mood]
        return Fraction(row[mood], sum(row)) if sum(row) else None


def respondent_scores(answers: list[list[int]], key: list[int]) -> list[int]:
    return [sum(answer == intended for answer, intended in zip(row, key, strict=True)) for row in answers]


def confusion_matrix(answers: list[list[int]], key: list[int]) -> list[list[int]]:
    confusion = [[0] * len(MOODS) for _ in MOODS]
    for row in answers:
        for answer, intended in zip(row, key, strict=True):
            confusion[intended][answer] += 1
    return confusion


def fleiss_kappa(answers: list[list[int]]) -> tuple[Fraction, Fraction, Fraction] | None:
    """(kappa, P-bar, P_e) with questions as subjects, respondents as raters, the moods as categories."""
    raters, subjects = len(answers), len(answers[0])
    # counts[q][m]: how many respondents heard mood m in question q
    counts = [[sum(row[q] == mood for row in answers) for mood in range(len(MOODS))] for q in range(subjects)]
    chance = sum(Fraction(sum(c[mood] for c in counts), subjects * raters) ** 2 for mood in range(len(MOODS)))
    if raters < 2 or chance == 1:
        return None
    agreement = sum(Fraction(sum(n * n for n in c) - raters, raters * (raters - 1)) for c in counts) / subjects
    return (agreement - chance) / (1 - chance), agreement, chance


def score_answers(answers: list[list[int]], key: list[int], stated: list[int | None] | None = None) -> SurveyScores:
    kappa, agreement, chance = fleiss_kappa(answers) or (None, None, None)
    scores = respondent_scores(answers, key)
    return SurveyScores(key, scores, confusion_matrix(answers, key), kappa, agreement, chance, stated)
