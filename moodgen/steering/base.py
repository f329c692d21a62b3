"""What every steering method gets: the model, its judges, and one batched sampling call."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..generation.pieces import DurationStop, Judges
from ..generation.sampler import StateHook, sample
from ..tokenizers import bos_id, eos_id


def settings_key(cfg, names: tuple[str, ...], **extra) -> str:
    """A short hash of the settings a cached steering result was made with: other settings, new result."""
    settings = {name: cfg[name] for name in names} | extra
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class GenerationJob:
    net: torch.nn.Module
    tokenizer: object
    judges: Judges
    duration: float  # seconds per piece
    temperature: float
    top_p: float
    max_tokens: int  # safety cap per piece
    generator: torch.Generator
    neurons: dict | None = None  # the L1 steering probe's sentiment neurons
    cache_dir: Path | None = None  # where evolved genes are kept (the model run's steering/ folder)
    conditioning: Callable[[], object] | None = None  # training data of steering=conditioned, loaded on demand

    def sample(
        self,
        n: int,
        state_hook: StateHook | None = None,
        seconds: float | None = None,
        max_tokens: int | None = None,
        prefix: list[int] | None = None,
        net: torch.nn.Module | None = None,
    ) -> list[list[int]]:
        """n pieces in one batch, each sampled until its decoded music lasts `seconds`.

        `prefix` (default [BOS]) primes every row; `net` replaces the job's LM (a fine-tuned copy).
        """
        special = {bos_id(self.tokenizer), eos_id(self.tokenizer)}
        stop = DurationStop(self.tokenizer, seconds or self.duration, special)
        return sample(
            net or self.net,
            n,
            max_tokens or self.max_tokens,
            bos_id(self.tokenizer),
            eos_id(self.tokenizer),
            self.temperature,
            self.top_p,
            self.generator,
            state_hook=state_hook,
            prefix=prefix,
            stop=stop,
        )
