"""Generate, judge and write pieces for some moods: shared by `moodgen.generate` and the pipeline."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..classifier.report import write_confusion
from ..moods import MOODS
from ..steering import make_steering
from ..steering.base import GenerationJob, sampling_stream
from ..steering.rerank import ranks_by_descriptors
from .bundle import ModelBundle
from .pieces import JUDGE, PROBE, SILENT, mood_name, predicted_moods, to_score, write_piece
from .render import note_count

log = logging.getLogger("moodgen")


def alive(score, window: float = 5.0) -> bool:
    """Notes start in every `window` seconds of the piece: no long silences, no dead ending."""
    seconds = score.to("second")
    onsets = np.array([n.time for t in seconds.tracks for n in t.notes])
    end = float(seconds.end())
    if len(onsets) == 0 or end <= 0:
        return False
    bins = np.histogram(onsets, bins=max(1, int(np.ceil(end / window))), range=(0, end))[0]
    return bool((bins > 0).all())


def report_shortfall(name: str, ids: list[int], score, settings) -> None:
    """A piece without notes, or shorter than asked because sampling reached max_tokens, is said in a
    warning rather than written silently."""
    seconds, duration = float(score.to("second").end()), float(settings.duration)
    if not note_count(score) or seconds <= 0:
        log.warning("%s has no notes: the model sampled none (a model trained longer, or temperature 1, helps)", name)
    elif seconds < 0.9 * duration and len(ids) / seconds * duration > settings.max_tokens:
        needed = math.ceil(len(ids) / seconds * duration * 1.1)
        log.warning(
            "%s lasts %.1f s, not the %g s asked: sampling stops at max_tokens=%d; max_tokens=%d would reach it",
            name,
            seconds,
            duration,
            settings.max_tokens,
            needed,
        )


def generate_pieces(
    bundle: ModelBundle, steering_cfg, settings, moods: list[int], n: int, seed: int, folder: Path, wav: bool = True
) -> list[dict]:
    """n pieces per mood with the configured steering; each written as MIDI/PNG/WAV/JSON.

    Each mood samples from its own stream of (seed, mood): the moods never share a piece, and a
    method compared with another on the same seed draws from the same streams.
    """
    steering = make_steering(steering_cfg)
    job = GenerationJob(
        bundle.net,
        bundle.tokenizer,
        bundle.judges,
        settings.duration,
        settings.temperature,
        settings.top_p,
        settings.max_tokens,
        torch.Generator(),  # replaced per mood below
        bundle.neurons,
        bundle.steering_dir,
        bundle.conditioning,
    )
    pieces = []
    for mood in moods:
        start = time.perf_counter()
        sequences = steering.generate(dataclasses.replace(job, generator=sampling_stream(seed, mood)), mood, n)
        qpm = steering.qpm(mood, job)
        scores = [to_score(bundle.tokenizer, ids, settings.duration, qpm) for ids in sequences]
        probe = bundle.judges.probe_proba(sequences)
        judge = bundle.judges.judge_proba(scores)
        # each piece's verdict comes from the judge the steering did not rank by (none, without a probe):
        # the ranking maximised the other's
        judged_by, verdict = (PROBE, probe) if ranks_by_descriptors(steering_cfg) else (JUDGE, judge)
        judged = None if verdict is None else predicted_moods(verdict)
        seconds = time.perf_counter() - start
        for i, (ids, score) in enumerate(zip(sequences, scores, strict=True)):
            report_shortfall(f"{MOODS[mood]}_{i}", ids, score, settings)
            sidecar = {
                "mood": MOODS[mood],
                "method": steering_cfg.name,
                "model_run": bundle.run_id,
                "seed": seed,
                "index": i,
                "tokens": len(ids),
                "tempo_qpm": round(float(score.tempos[0].qpm), 2) if len(score.tempos) else None,
                "alive": alive(score),
                "probe_proba": None if probe is None else proba_by_mood(probe[i]),
                "judge_proba": None if judge is None else proba_by_mood(judge[i]),
                "judged_mood": None if judged is None else mood_name(int(judged[i])),
                "judged_by": None if judged is None else judged_by,
                "generation_seconds": round(seconds / len(sequences), 3),
            }
            pieces.append(write_piece(folder / MOODS[mood], f"{MOODS[mood]}_{i}", score, sidecar, wav))
        log.info("%s: %d piece(s) with steering=%s in %.1f s", MOODS[mood], n, steering_cfg.name, seconds)
    return pieces


def proba_by_mood(row: np.ndarray) -> dict[str, float] | None:
    """A sidecar's {mood: probability}; None for a piece without notes (no prediction)."""
    if not np.isfinite(row).all():
        return None
    return dict(zip(MOODS, np.round(row, 4).tolist(), strict=True))


def steering_report(pieces: list[dict], method: str, folder: Path) -> dict[str, float]:
    """Accuracy of requested vs judged mood, per mood, by each piece's `judged_by`: the hand-crafted
    judge (independent of the LM), or the LM-state probe where the steering ranked by that judge.

    A silent piece is judged 'silent': a miss for its requested mood, and a column of the confusion.
    `probe_accuracy` is the probe's always. Neither judge is independent of the labelled phrases the
    steering learned from: the steering benchmark's cross-fitted judges are the honest measure.
    """
    metrics: dict[str, float] = {f"steer/{method}/alive": float(np.mean([p["alive"] for p in pieces]))}
    judged = [p for p in pieces if p["judged_mood"] is not None]
    if not judged:
        return metrics
    columns = [*MOODS, SILENT]
    wanted = np.array([MOODS.index(p["mood"]) for p in judged])
    got = np.array([columns.index(p["judged_mood"]) for p in judged])
    metrics[f"steer/{method}/accuracy"] = float(np.mean(wanted == got))
    metrics[f"steer/{method}/silent"] = float(np.mean(got == len(MOODS)))
    if any(p["probe_proba"] for p in judged):  # a probe ran; a silent piece has none and is a miss
        hits = [bool(p["probe_proba"]) and max(p["probe_proba"], key=p["probe_proba"].get) == p["mood"] for p in judged]
        metrics[f"steer/{method}/probe_accuracy"] = float(np.mean(hits))
    for mood in sorted(set(wanted)):
        metrics[f"steer/{method}/{MOODS[mood]}/accuracy"] = float(np.mean(got[wanted == mood] == mood))
    confusion = np.zeros((len(MOODS), len(columns)), dtype=int)
    np.add.at(confusion, (wanted, got), 1)
    by = " / ".join(sorted({p.get("judged_by", JUDGE) for p in judged}))
    write_confusion(confusion, columns, folder, f"steering={method}: requested vs judged ({by})", rows=list(MOODS))
    return metrics
