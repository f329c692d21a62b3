"""`steering=rerank`: sample `candidates` x n pieces in one batch, keep the n the probe likes best.

The probe reads the LM's states on the generated tokens (Bardo Composer-style classifier-guided
selection); the hand-crafted judge that scores the result is independent of it.
"""

from __future__ import annotations

import numpy as np

from ..errors import MoodgenError
from ..generation.pieces import to_score
from .base import GenerationJob, Steering

RANK_BY = ("probe", "descriptors")  # what ranks candidates: the LM-state probe, the hand-crafted model
# which candidates compete: all of them for the n places ("pool"), or each piece's own, one winner
# each ("each": the pool in n consecutive groups, so the pieces stay as varied as their groups)
KEEP = ("pool", "each")
RANKING = ("rerank", "conditioned", "attributes")  # the steerings that keep the best candidates by rank_by and keep


class Rerank(Steering):
    def generate(self, job: GenerationJob, mood: int, n: int) -> list[list[int]]:
        pool = job.sample(n * self.cfg.candidates)
        return keep_best(job, pool, mood, n, self.cfg.rank_by, keep=self.cfg.keep)


def ranks_by_descriptors(steering) -> bool:
    """Whether the steering keeps the candidates a hand-crafted mood model rates highest (when
    generating, that model is the run's judge, whose verdict on them is then the ranking's own)."""
    ranks = steering.get("name") in RANKING and (steering.get("candidates", 1) or 1) > 1
    return ranks and steering.get("rank_by") == "descriptors"


def ranking_problems(by: str, keep: str) -> list[str]:
    """What is wrong with steering.rank_by and steering.keep, one phrase each naming the choices."""
    bad = [f"steering.rank_by={by} (use {' or '.join(RANK_BY)})"] if by not in RANK_BY else []
    return bad + ([f"steering.keep={keep} (use {' or '.join(KEEP)})"] if keep not in KEEP else [])


def keep_best(
    job: GenerationJob,
    pool: list[list[int]],
    mood: int,
    n: int,
    by: str = "probe",
    qpm: float | None = None,
    keep: str = "pool",
    bins_off: np.ndarray | None = None,
) -> list[list[int]]:
    """The n pieces of the pool with the highest probability of the mood: by the LM-state probe, or
    (by="descriptors") by the hand-crafted descriptor model on each piece as written at `qpm`; the
    best n of all (keep="pool") or the best of each of n consecutive groups (keep="each"). Given
    `bins_off` [pool] (how far each candidate is from the attribute bins it asked for), the nearest
    come first and the mood's probability ranks among equals."""
    if bad := ranking_problems(by, keep):
        raise MoodgenError("; ".join(bad))
    if len(pool) == n:
        return pool
    if by == "descriptors":
        if job.judges.ranker is None:
            raise MoodgenError(
                "steering.rank_by=descriptors needs the model run's hand-crafted mood model: "
                "use steering.rank_by=probe or steering.candidates=1"
            )
        proba = job.judges.ranker_proba([to_score(job.tokenizer, ids, job.duration, qpm) for ids in pool])
    elif job.judges.probe is None:
        raise MoodgenError(
            "ranking candidates needs the model run's mood classifier: use steering.candidates=1 or steering=none"
        )
    else:
        proba = job.judges.probe_proba(pool)
    score = np.nan_to_num(proba[:, mood], nan=-1.0)  # a silent piece ranks last
    if bins_off is not None:  # one score from the order: fewest bins off first, the mood's probability among equals
        order = np.lexsort((-score, bins_off))  # the last key sorts first
        score = np.empty(len(pool))
        score[order] = -np.arange(len(pool), dtype=float)
    if keep == "each":
        groups = score.reshape(n, -1)  # [n, candidates]: piece j's candidates are rows j*c .. j*c + c - 1
        best = groups.argmax(1) + np.arange(n) * groups.shape[1]
    else:
        best = np.argsort(-score, kind="stable")[:n]
    return [pool[i] for i in best]
