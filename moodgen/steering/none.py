"""`steering=none`: plain sampling, the baseline every method is compared against."""

from __future__ import annotations

from .base import GenerationJob, Steering


class NoSteering(Steering):
    def generate(self, job: GenerationJob, mood: int, n: int) -> list[list[int]]:
        return job.sample(n)
