"""`steering=rerank`: sample `candidates` x n pieces in one batch, keep the n the probe likes best.

The probe reads the LM's states on the generated tokens (Bardo Composer-style classifier-guided
selection); the hand-crafted judge that scores the result is independent of it.
"""

from __future__ import annotations

import numpy as np

from ..errors import MoodgenError
from .base import GenerationJob, Steering


class Rerank(Steering):
    def generate(self, job: GenerationJob, mood: int, n: int) -> list[list[int]]:
        return keep_best(job, job.sample(n * self.cfg.candidates), mood, n)


def keep_best(job: GenerationJob, pool: list[list[int]], mood: int, n: int) -> list[list[int]]:
    """The n pieces of the pool with the highest probe probability of the mood."""
    if len(pool) == n:
        return pool
    if job.judges.probe is None:
        raise MoodgenError(
            "ranking candidates needs the model run's mood classifier: use steering.candidates=1 or steering=none"
        )
    proba = np.nan_to_num(job.judges.probe_proba(pool)[:, mood], nan=-1.0)  # a silent piece ranks last
    best = np.argsort(-proba, kind="stable")[:n]
    return [pool[i] for i in best]
