"""What every steering method gets: the model, its judges, and one batched sampling call."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..artifacts import read_checkpoint
from ..data.cache import write_atomic
from ..errors import MoodgenError
from ..generation.pieces import DurationStop, Judges, cut_ids
from ..generation.sampler import StateHook, sample
from ..tokenizers import bos_id, eos_id

log = logging.getLogger("moodgen")


def sampling_stream(seed: int, *keys: int) -> torch.Generator:
    """A generator of its own for (seed, mood, ...): no two moods or seeds share their random draws.

    SeedSequence mixes the numbers, so neighbouring (seed, mood) pairs give unrelated streams.
    """
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def plain_settings(cfg, names: tuple[str, ...]) -> dict:
    """The named settings as plain Python (lists, not ListConfig): JSON for cache keys and summaries."""
    from omegaconf import OmegaConf

    return {name: OmegaConf.to_object(cfg[name]) if OmegaConf.is_config(cfg[name]) else cfg[name] for name in names}


def settings_key(cfg, names: tuple[str, ...], **extra) -> str:
    """A short hash of the settings a cached steering result was made with: other settings, new result."""
    settings = plain_settings(cfg, names) | extra
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def sequences_fingerprint(sequences, labels=None) -> str:
    """A short hash of the token sequences a fine-tune learns from, in their order (and their labels)."""
    digest = hashlib.sha256()
    for ids in sequences:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        digest.update(ids.size.to_bytes(8, "little") + ids.tobytes())  # the length: no two cuts of one stream alike
    if labels is not None:
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        digest.update(b"labels" + labels.size.to_bytes(8, "little") + labels.tobytes())
    return digest.hexdigest()[:16]


def settings_file(path: Path, key: str) -> Path:
    """Where a fine-tune of other settings than those in `path` is kept: beside it, named by its settings key."""
    return path.with_name(f"{path.stem}-{key}{path.suffix}")


def settings_home(path: Path, key: str, first: dict | None) -> Path:
    """Where a cached result of settings `key` lives: `path` where nothing is saved there (`first` None) or what is
    saved there has those settings; else beside it (`settings_file`). The first result made at `path` stays."""
    return path if first is None or first.get("key") == key else settings_file(path, key)


def cached_finetune(
    net: torch.nn.Module,
    path: Path | None,
    key: str,
    finetune: Callable[[], dict],
    made_from: Callable[[], str],
    refit_stale: bool = False,
):
    """`net` with the weights saved at `path` (or beside it) under `key`, else fine-tuned now by `finetune()` (which
    returns a summary) and saved with the summary beside it (<name>.json); in eval mode.

    `key` names the settings; `made_from()` fingerprints the sequences the data gives now
    (`sequences_fingerprint`), saved with the weights. Where `refit_stale` (a derived cache, the benchmark's
    fold folder) weights fine-tuned on other sequences are fine-tuned anew: a change to how the data is cut or
    chosen, which no setting names, refits. A model run's own steering (refit_stale false) is used as
    trained, its data not needed.

    `path` keeps the first fine-tune made there (the model run's, by the train stage); one of other settings goes
    to `settings_file(path, key)`, so trying a setting never replaces a run's steering, and runs of other settings
    sharing a folder (the benchmark's folds) each keep their own instead of fine-tuning over one another.
    """
    if path is None:
        finetune()
        return net.eval()
    canonical = _saved(path)
    where = settings_home(path, key, canonical)
    saved = canonical if where == path else _saved(where)
    if saved is not None and saved.get("key") == key:
        if not refit_stale or saved.get("made_from") == made_from():
            net.load_state_dict(saved["state_dict"])
            return net.eval()
        why = "other sequences than the data gives now" if "made_from" in saved else "sequences it did not record"
        log.warning("%s was fine-tuned on %s: fine-tuning anew", where, why)
    summary = finetune()
    state = {"key": key, "made_from": made_from(), "state_dict": net.state_dict()}
    write_atomic(where, lambda handle: torch.save(state, handle))  # a parallel run never reads half a file
    write_atomic(where.with_suffix(".json"), lambda handle: handle.write(json.dumps(summary, indent=2).encode()))
    return net.eval()


def _saved(path: Path) -> dict | None:
    """The checkpoint at `path`, checked; None where there is none, or it is damaged or refused (a cache miss)."""
    if not path.exists():
        return None
    try:  # weights only, checked
        return read_checkpoint(path, fix="fine-tuning anew", zero_matrices=True)
    except MoodgenError as exc:
        log.warning("%s", exc)
        return None


class Steering:
    """A steering method: `generate(job, mood, n)` -> n token sequences, written at `qpm(mood, job)`."""

    def __init__(self, cfg):
        self.cfg = cfg

    def qpm(self, mood: int, job: GenerationJob) -> float | None:
        """The tempo the mood's pieces are written at; None keeps the decoded music's own."""
        return None


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
    # a derived cache (the benchmark's fold folder): fine-tuned LMs made from other sequences than the data gives
    # now are fine-tuned anew (cached_finetune); a model run's own steering is used as trained
    refit_stale: bool = False

    def sample(
        self,
        n: int,
        state_hook: StateHook | None = None,
        seconds: float | None = None,
        max_tokens: int | None = None,
        prefix: list[int] | None = None,
        net: torch.nn.Module | None = None,
    ) -> list[list[int]]:
        """n pieces in one batch, each sampled until its decoded music lasts `seconds`, then cut there.

        The cut ids are what every scorer sees (rerank, GA fitness, the sidecars): the music the
        files will hold, not the tokens sampled past the cut. `prefix` (default [BOS]) primes every
        row; `net` replaces the job's LM (a fine-tuned copy).
        """
        seconds = seconds or self.duration
        special = {bos_id(self.tokenizer), eos_id(self.tokenizer)}
        stop = DurationStop(self.tokenizer, seconds, special)
        sampled = sample(
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
        return [cut_ids(self.tokenizer, ids, seconds) for ids in sampled]
