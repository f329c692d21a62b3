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
    """Ticks per bar from the first time signature (4/4 when the file has none)."""
    if len(score.time_signatures):
        ts = score.time_signatures[0]
        return max(1, int(score.tpq * 4 * ts.numerator / ts.denominator))
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
    """The longest run of consecutive non-empty bars found again at a later start (O(n^2) DP)."""
    n, best = len(sequence), 0
    run = np.zeros(n + 1, dtype=int)  # run[j]: common run ending at bars i-1 and j-1
    for i in range(1, n + 1):
        previous = run.copy()
        run[:] = 0
        for j in range(i + 1, n + 1):
            if sequence[i - 1] and sequence[i - 1] == sequence[j - 1]:
                run[j] = previous[j - 1] + 1
        best = max(best, int(run.max()))
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
