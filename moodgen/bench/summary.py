"""The benchmark's summary.md: per method, each judge's share (the judge, the second judge, both as a panel)
beside its yardstick on real excerpts, the paired differences, the judges' agreement, whether each judge hears
the same mood a semitone down and up, the distribution confusion, musicality and copying."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..moods import MOODS

# what a paired table says when the run compared no two methods
NO_PAIRS = "One method, nothing to pair it with: name others in `compare` (e.g. `compare=[none]`)."


def interval(metrics: dict, prefix: str, judge: str = "accuracy") -> str:
    value, low, high = (metrics[f"{prefix}/{judge}{s}"] for s in ("", "_low", "_high"))
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def accuracy_table(
    metrics: dict, yardstick: dict, methods: list[str], seconds: float, judge: str = "accuracy"
) -> list[str]:
    """Per method and mood, the share judged in the requested mood by `judge` (accuracy | state_accuracy |
    panel_accuracy), the share both judges hear in one mood (judges_agree), or the share a judge hears in the
    same mood a semitone down and up (key_stable | state_key_stable)."""
    lines = [
        "| steering | " + " | ".join(MOODS) + " | all | silent |",
        "|---|" + "---|" * (len(MOODS) + 2),
    ]
    for method in methods:
        cells = [interval(metrics, f"bench/{method}/{m}", judge) for m in MOODS]
        overall = interval(metrics, f"bench/{method}", judge)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {overall} | {metrics[f'bench/{method}/silent']:.2f} |")
    real = " | ".join(f"{yardstick[judge][m]:.2f}" for m in MOODS)
    label = f"*real phrases, first {seconds:g} s (judged out of fold)*"
    lines.append(f"| {label} | {real} | {yardstick[judge]['all']:.2f} | |")
    return lines


def paired_table(paired: list[dict], judge: str = "accuracy", fits: int = 1) -> list[str]:
    """Each pair's mean difference with its interval over units; with several fits also over (fold, fit) clusters."""
    if not any(p["judge"] == judge for p in paired):  # one method: no header over an empty table, said once
        return [NO_PAIRS] if judge == "accuracy" else []
    by_fit = fits > 1
    header = "| method | vs | accuracy difference [95 % CI] | units |"
    header += " over fits [95 % CI] | clusters |" if by_fit else ""
    lines = [header, "|---|---|---|---|" + "---|---|" * by_fit]
    for p in (p for p in paired if p["judge"] == judge):
        line = f"| {p['method']} | {p['baseline']} | {p['diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] |"
        line += f" {p['units']} |"
        if by_fit:
            line += f" [{p['cluster_low']:+.3f}, {p['cluster_high']:+.3f}] | {p['clusters']} |"
        lines.append(line)
    return lines


def fit_table(metrics: dict, methods: list[str], fits: int, seed_of: dict[str, int], judge: str) -> list[str]:
    """Per method, each fit's share by `judge` per mood and overall (both folds), and the spread between fits."""
    lines = [
        "| steering | fit (steering.seed) | " + " | ".join(MOODS) + " | all |",
        "|---|---|" + "---|" * (len(MOODS) + 1),
    ]
    for method in methods:
        per_fit = [
            [metrics[f"bench/{method}/fit{fit}/{m}/{judge}"] for m in MOODS]
            + [metrics[f"bench/{method}/fit{fit}/{judge}"]]
            for fit in range(fits)
        ]
        for fit, shares in enumerate(per_fit):
            cells = " | ".join(f"{v:.2f}" for v in shares)
            lines.append(f"| {method} | {fit} ({seed_of[method] + fit}) | {cells} |")
        spread = np.ptp(np.array(per_fit), axis=0)
        lines.append(f"| {method} | *spread (max − min)* | " + " | ".join(f"{v:.2f}" for v in spread) + " |")
    return lines


def fits_section(cfg, metrics: dict, methods: list[str], seed_of: dict[str, int]) -> list[str]:
    """Each fit's levels, by each judge: what one fit's table would have said, fit by fit."""
    if cfg.fits == 1:
        return []
    lines = [
        "## Each fit's levels: the same settings fitted again with the next `steering.seed`",
        "",
        "A method's fold LMs (and GA genes) are fitted once per fit; a fit's pieces draw streams of their own.",
        "The spread is what one fit's table cannot show; the intervals above over units do not carry it, the",
        "intervals over fits do. A method that fits nothing (`none`, `rerank`) only draws new streams: its spread",
        "is the seeds' own, the yardstick for the others'.",
        "",
    ]
    judges = {"accuracy": "The judge", "state_accuracy": "The second judge", "panel_accuracy": "The panel"}
    for judge, title in judges.items():
        lines += [f"{title}:", "", *fit_table(metrics, methods, cfg.fits, seed_of, judge), ""]
    return lines


def confusion_table(method: str, matrix: np.ndarray, metrics: dict) -> list[str]:
    lines = [
        f"**{method}** (own mood closest for {metrics[f'bench/{method}/own_mood_closest']:.2f} of the moods)",
        "",
        "| generated \\ real | " + " | ".join(MOODS) + " |",
        "|---|" + "---|" * len(MOODS),
    ]
    for m, row in enumerate(matrix):
        cells = [
            (f"**{v:.3f}**" if r == np.nanargmax(row) else f"{v:.3f}") if np.isfinite(v) else "–"
            for r, v in enumerate(row)
        ]
        lines.append(f"| {MOODS[m]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def musicality_table(metrics: dict, methods: list[str]) -> list[str]:
    lines = [
        "| steering | overlap | alive | longest repeated bars | unique 4-bar | "
        + " | ".join(f"diversity {m}" for m in MOODS)
        + " | duplicate pairs |",
        "|---|" + "---|" * (5 + len(MOODS)),
    ]
    for method in methods:
        p = f"bench/{method}"
        cells = [f"{metrics[f'{p}/{k}']:.2f}" for k in ("overlap", "alive", "repeated_bars", "unique_4bar")]
        cells += [f"{metrics[f'{p}/{m}/diversity']:.2f}" for m in MOODS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {metrics[f'{p}/duplicates']:.0f} |")
    real = [f"{metrics[f'bench/real/{k}']:.2f}" for k in ("alive", "repeated_bars", "unique_4bar")]
    lines.append("| *real phrases* | 1.00 | " + " | ".join(real) + " | " + " | ".join(["1.00"] * len(MOODS)) + " | |")
    return lines


def key_line(key_blind: bool) -> str:
    """What the judges read of pitch, for the semitone section."""
    if key_blind:
        return (
            "Here the judges count pitch classes from each piece's estimated tonic (`key_blind`), so the first"
            " judge hears the same descriptors but for the register; the second judge's LM states read absolute"
            " pitches and may still hear the key."
        )
    return (
        "Here the judges read absolute pitch-class shares (`key_blind=false`, as the run's own judge and"
        " probe): they hear the key."
    )


def write_summary(cfg, metrics, yardstick, paired, confusion, methods, seed_of, path: Path) -> Path:
    """summary.md; `seed_of`: each method's `steering.seed` (fit r is fitted with it + r)."""
    units = cfg.folds * cfg.fits * cfg.seeds * len(MOODS)
    fits = f"{cfg.fits} fits x " if cfg.fits > 1 else ""
    lines = [
        f"# Steering benchmark: {', '.join(methods)}",
        "",
        f"{cfg.folds} folds x {fits}{cfg.seeds} seeds x {len(MOODS)} moods x {cfg.n} pieces of {cfg.duration:g} s "
        f"per method ({units * cfg.n} pieces, {units} units); model run {cfg.model_run}.",
        "",
        "## Cross-fitted judge: share of pieces judged in the requested mood [Wilson 95 % CI]",
        "",
        *accuracy_table(metrics, yardstick, methods, cfg.duration),
        "",
        f"## Paired by unit (fold, {'fit, ' if cfg.fits > 1 else ''}seed, mood): difference in accuracy",
        "",
        *paired_table(paired, fits=cfg.fits),
        "",
        "## Second judge, of another family: the LM-state probe fitted on the judge's fold",
        "",
        "A steering that ranks by descriptors shares the first judge's family of features; what it gains by",
        "this judge too is not that family's habit. This judge reads the notes only, never the tempo.",
        "",
        *accuracy_table(metrics, yardstick, methods, cfg.duration, "state_accuracy"),
        "",
        *paired_table(paired, "state_accuracy", cfg.fits),
        "",
        "## Both judges as one panel: the mood of their mean probabilities",
        "",
        "The panel weighs both families on every piece (a confident judge can still outweigh the other); its",
        "yardstick row, beside the two judges', says whether averaging them judges real music better.",
        "",
        *accuracy_table(metrics, yardstick, methods, cfg.duration, "panel_accuracy"),
        "",
        *paired_table(paired, "panel_accuracy", cfg.fits),
        "",
        *fits_section(cfg, metrics, methods, seed_of),
        "## The two judges agree: share of pieces both hear in the same mood, right or wrong",
        "",
        "The last row is how often the two judges agree on real music. Where they often disagree, a share judged",
        "in the mood says about as much about the judge as about the music; a listening test (`moodgen.survey`)",
        "is what settles it.",
        "",
        *accuracy_table(metrics, yardstick, methods, cfg.duration, "judges_agree"),
        "",
        "## A semitone down and up: share of pieces each judge hears in the same mood, moved either way",
        "",
        "A listener hears a piece's mood in any key. A judge that reads the key can hear another mood a semitone",
        "away; where its share here is low, its shares above say in part which key a piece is in.",
        key_line(cfg.key_blind),
        "",
        "By the judge:",
        "",
        *accuracy_table(metrics, yardstick, methods, cfg.duration, "key_stable"),
        "",
        "By the second judge:",
        "",
        *accuracy_table(metrics, yardstick, methods, cfg.duration, "state_key_stable"),
        "",
        "## Distribution confusion: mean Yang & Lerch overlap with each mood's real phrases (judge folds)",
        "",
        *[line for method in methods for line in confusion_table(method, confusion[method], metrics)],
        "## Musicality: overlap with the real phrases, repetition, liveliness, diversity within a mood",
        "",
        *musicality_table(metrics, methods),
        "",
        "Overlap: Yang & Lerch area with all the judge folds' real phrases. Diversity: distances between a",
        "mood's pieces over those between its real phrases. The real phrases, here and in the distribution",
        f"confusion, are each labelled training phrase's first {cfg.duration:g} s, the pieces' own length (whole",
        "phrases run about 100 s: their note and pitch counts and repeated bars would differ by length alone).",
        "",
        "## Copying: share of 12-note pitch runs found in a labelled phrase or LM training piece",
        "",
        "| steering | copied |",
        "|---|---|",
        *[f"| {method} | {metrics[f'bench/{method}/copied']:.3f} |" for method in methods],
        "",
    ]
    path.write_text("\n".join(lines))
    return path
