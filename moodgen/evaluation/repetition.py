"""Repetition and degeneration of one piece: the numbers that make a looping or dying piece show.

- longest repeated bar sequence: the most consecutive bars whose exact content (onsets within
  the bar, pitches, durations) occurs again later in the piece (occurrences may overlap, so one
  bar played 16 times scores 15); runs of empty bars do not count;
- unique 4-bar ratio: distinct 4-bar windows / all 4-bar windows (1.0: nothing repeats);
- silence ratio: the share of the piece's length during which no note sounds.
"""

from __future__ import annotations

import numpy as np
import symusic

Bar = tuple[tuple[int, int, int], ...]  # (onset within the bar, pitch, duration) in ticks, sorted


def bar_ticks(score: symusic.Score) -> int:
    """Ticks per bar from the first time signature (4/4 when the file has none, or one with a zero in it),
    at least one beat: a hostile signature (1/64, 0/4) must not cut a piece into millions of bars."""
    if len(score.time_signatures):
        ts = score.time_signatures[0]
        if ts.numerator > 0 and ts.denominator > 0:
            return max(score.tpq, int(score.tpq * 4 * ts.numerator / ts.denominator))
    return score.tpq * 4


def bars(score: symusic.Score) -> list[Bar]:
    """Each bar's notes, as comparable content."""
    length = bar_ticks(score)
    notes = [(n.time, n.pitch, n.duration) for t in score.tracks for n in t.notes]
    last_onset_bar = max((t // length for t, _, _ in notes), default=0)  # a zero-length note may start a bar
    count = max(1, last_onset_bar + 1, -(-max((t + d for t, _, d in notes), default=0) // length))
    content: list[list[tuple[int, int, int]]] = [[] for _ in range(count)]
    for time, pitch, duration in notes:
        content[time // length].append((time % length, pitch, duration))
    return [tuple(sorted(c)) for c in content]


def longest_repeated_bars(sequence: list[Bar]) -> int:
    """The longest run of consecutive non-empty bars found again at a later start.

    The O(n^2) dynamic programme, one numpy row per bar: run[j] is the common run ending at bars i-1
    and j-1. A bar that occurs once (or is empty) ends every run, so distinct music costs O(n).
    """
    ids: dict[Bar, int] = {}
    codes = np.array([ids.setdefault(bar, len(ids)) if bar else -1 for bar in sequence], dtype=np.int64)
    repeated = np.bincount(codes[codes >= 0], minlength=len(ids) + 1)[np.maximum(codes, 0)] > 1
    repeated &= codes >= 0
    n, best, live = len(codes), 0, False
    run = np.zeros(n + 1, dtype=np.int64)  # zero at and below index i before step i
    for i in range(1, n + 1):
        if not repeated[i - 1]:
            if live:
                run[:], live = 0, False
            continue
        extended = np.where(codes[i:] == codes[i - 1], run[i:n] + 1, 0)  # j in i+1..n: bar j-1 equals bar i-1
        run[i], run[i + 1 :], live = 0, extended, True
        best = max(best, int(extended.max(initial=0)))
    return best


def unique_ngram_ratio(sequence: list[Bar], n: int = 4) -> float:
    windows = [tuple(sequence[i : i + n]) for i in range(len(sequence) - n + 1)]
    return len(set(windows)) / len(windows) if windows else 1.0


def silence_ratio(score: symusic.Score) -> float:
    """Share of [0, end] in which no note sounds (seconds)."""
    seconds = score.to("second")
    end = float(seconds.end())
    intervals = sorted((n.time, n.time + n.duration) for t in seconds.tracks for n in t.notes)
    if end <= 0 or not intervals:
        return 1.0
    sounding, reach = 0.0, 0.0
    for start, stop in intervals:
        start = max(start, reach)
        if stop > start:
            sounding += stop - start
            reach = stop
    return max(0.0, 1.0 - sounding / end)


def repetition(score: symusic.Score) -> dict[str, float]:
    sequence = bars(score)
    return {
        "bars": float(len(sequence)),
        "longest_repeated_bars": float(longest_repeated_bars(sequence)),
        "unique_4bar_ratio": unique_ngram_ratio(sequence),
        "silence_ratio": silence_ratio(score),
    }
