"""`steering=conditioned`: the LM fine-tuned with a mood token in front of every sequence.

Training sequences are the labelled training phrases (their annotated mood) plus chunks of the
unlabelled training pieces that the mood probe assigns to one mood with probability >= threshold
(pseudo-labels). Each becomes [MOOD_m, BOS, tokens..., EOS], mood m being token id V + m, and
sampling primes with [MOOD_m, BOS]. The model takes the mood from that first token and adds a
learned mood vector to every later input step: a token seen only at the start fades from an
LSTM's state within a few hundred steps (measured: with a start token alone the four moods'
pieces were nearly the same). Moods are drawn equally often in training whatever their counts. The
fine-tuned weights are this method's own checkpoint, `steering/conditioned.pt`, kept with the
model run, so they are paid for once.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from ..errors import MoodgenError
from ..models.module import quiet_trainer, seeded_fit
from ..moods import MOODS
from ..tokenizers import bos_id, eos_id
from .base import GenerationJob, Steering, cached_finetune, sequences_fingerprint, settings_key
from .rerank import keep_best

log = logging.getLogger("moodgen")
CHECKPOINT = "conditioned.pt"
SETTINGS = ("threshold", "chunk_tokens", "max_chunks", "steps", "batch_size", "lr", "mood_lr", "seed")
# in the cache key: a new design (how the LM learns; which sequences it learns from is fingerprinted) refits
DESIGN = "mood vector at every step; chunks from bar lines"
IGNORE = -100  # cross_entropy's ignore_index: padding after a sequence's end


@dataclass
class ConditioningData:
    """Token ids (no BOS/EOS) of the labelled training phrases and of the unlabelled training pieces."""

    phrases: list[np.ndarray]
    moods: np.ndarray  # [n_phrases] annotated mood of each phrase
    pieces: list[np.ndarray]
    names: list[str] = field(default_factory=list)  # the phrases' file names

    def only(self, names: set[str]) -> ConditioningData:
        """The same data with only the named phrases (the benchmark's fold); the pieces stay."""
        keep = [i for i, name in enumerate(self.names) if name in names]
        return ConditioningData(
            [self.phrases[i] for i in keep], self.moods[keep], self.pieces, [self.names[i] for i in keep]
        )


DataSource = Callable[[], ConditioningData]  # loaded only when the fine-tuning has to run


class MoodConditionedLM(nn.Module):
    """The LM with a mood vector added to every input step; the mood is read from the first token.

    State: (the LM's per-layer state or None, mood [B]). A call without state takes tokens
    [B, T] whose first column is mood tokens V + m; it returns logits for the other T - 1.
    """

    def __init__(self, net: nn.Module, n_moods: int):
        super().__init__()
        self.net = copy.deepcopy(net)
        self.vocab_size = net.head.out_features
        self.moods = nn.Embedding(n_moods, net.embedding.embedding_dim)
        nn.init.zeros_(self.moods.weight)  # starts as the unconditioned LM

    def forward(self, tokens: torch.Tensor, state=None):
        if state is None:
            lm_state, mood = None, tokens[:, 0] - self.vocab_size  # [B]
            tokens = tokens[:, 1:]
        else:
            lm_state, mood = state
        if tokens.shape[1] == 0:  # the mood token alone: nothing to predict yet
            return tokens.new_zeros(tokens.shape[0], 0, self.vocab_size, dtype=torch.float), (None, mood)
        logits, lm_state = self.net(tokens, lm_state, condition=self.moods(mood))  # [B, T, V]
        return logits, (lm_state, mood)


def chunk_starts(piece: np.ndarray, length: int, bar: int | None) -> list[int]:
    """Starts of consecutive chunks of about `length` tokens, each at a bar line when the tokenizer has one
    (a chunk that starts mid-note would teach the LM that music may begin with half a note)."""
    if bar is None:
        return list(range(0, len(piece), length))
    bars = np.flatnonzero(piece == bar)
    starts, position = [], 0
    while (index := np.searchsorted(bars, position)) < len(bars):
        starts.append(int(bars[index]))
        position = starts[-1] + length
    return starts


def chunks(
    pieces: list[np.ndarray], length: int, limit: int, rng: np.random.Generator, bar: int | None = None
) -> list[np.ndarray]:
    """Up to `limit` non-overlapping chunks of at most `length` tokens, drawn at random from all pieces."""
    every = [p[s : s + length] for p in pieces for s in chunk_starts(p, length, bar)]
    every = [c for c in every if len(c) >= length // 2]
    picks = rng.permutation(len(every))[:limit]
    return [every[i] for i in sorted(picks)]


def pseudo_label(job: GenerationJob, candidates: list[np.ndarray], threshold: float) -> tuple[list, np.ndarray]:
    """The candidates the probe puts in one mood with probability >= threshold, and those moods."""
    proba = job.judges.probe_proba([c.tolist() for c in candidates])  # [n, 4]
    keep = proba.max(1) >= threshold
    return [c for c, k in zip(candidates, keep, strict=True) if k], proba.argmax(1)[keep]


class SequenceBatches:
    """[MOOD, BOS, ids..., EOS] sequences -> right-padded (inputs [B, T], targets [B, T])."""

    def __init__(self, vocab_size: int, bos: int, eos: int):
        self.vocab_size, self.bos, self.eos = vocab_size, bos, eos

    def sequence(self, ids: np.ndarray, mood: int) -> torch.Tensor:
        return torch.as_tensor([self.vocab_size + int(mood), self.bos, *ids.tolist(), self.eos], dtype=torch.long)

    def __call__(self, batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        # inputs [MOOD, BOS, ..., last]; the model consumes MOOD, so targets start after BOS
        inputs = nn.utils.rnn.pad_sequence([s[:-1] for s in batch], batch_first=True)  # [B, T]
        targets = nn.utils.rnn.pad_sequence([s[2:] for s in batch], batch_first=True, padding_value=IGNORE)
        return inputs, targets  # targets [B, T - 1]


class ConditionedFinetune(pl.LightningModule):
    def __init__(self, net: MoodConditionedLM, lr: float, mood_lr: float):
        super().__init__()
        self.net, self.lr, self.mood_lr = net, lr, mood_lr

    def training_step(self, batch, batch_idx):
        inputs, targets = batch  # [B, T], [B, T - 1]
        logits, _ = self.net(inputs)  # [B, T - 1, V]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)
        self.log("steer/conditioned_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        # the mood vectors start at zero and must grow within a short fine-tune: their own, higher rate
        return torch.optim.AdamW(
            [
                {"params": self.net.net.parameters(), "lr": self.lr},
                {"params": self.net.moods.parameters(), "lr": self.mood_lr, "weight_decay": 0.0},
            ]
        )


class MoodConditioned(Steering):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.net: nn.Module | None = None

    def settings_key(self) -> str:
        return settings_key(self.cfg, SETTINGS, design=DESIGN)

    def conditioned_net(self, job: GenerationJob) -> nn.Module:
        """The mood-token LM: from the model run's checkpoint, else fine-tuned now (and cached); once per steering."""
        if self.net is None:
            self.net = self.load_or_finetune(job)
        return self.net

    def load_or_finetune(self, job: GenerationJob) -> nn.Module:
        net = MoodConditionedLM(job.net, len(MOODS))
        path = job.cache_dir / CHECKPOINT if job.cache_dir else None
        cut = functools.cache(lambda: self.sources(job))  # once, if at all

        def made_from() -> str:
            """The sequences it learns from or pseudo-labels, and the probe that labels them."""
            phrases, moods, candidates = cut()
            return f"{sequences_fingerprint(phrases + candidates, moods)}-{joblib.hash(job.judges.probe)[:8]}"

        def finetune() -> dict:
            return self.finetune(job, net, *cut())

        return cached_finetune(net, path, self.settings_key(), finetune, made_from, job.refit_stale)

    def sources(self, job: GenerationJob) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
        """(the labelled training phrases cut to a chunk, their moods, the chunks the probe may pseudo-label)."""
        cfg = self.cfg
        if job.judges.probe is None or job.conditioning is None:
            raise MoodgenError(
                "steering=conditioned needs the model run's mood classifier and VGMIDI's labelled phrases "
                "(a run with data=vgmidi and a classifier); use steering=none"
            )
        data = job.conditioning()
        rng = np.random.default_rng(cfg.seed)  # fixed, not the pieces' seed: one cached model per setting
        bar = job.tokenizer.vocab.get("Bar_None")  # REMI and Structured-like tokenizers mark bar lines
        candidates = chunks(data.pieces, cfg.chunk_tokens, cfg.max_chunks, rng, bar)
        return [p[: cfg.chunk_tokens] for p in data.phrases], data.moods, candidates

    def training_set(
        self, job: GenerationJob, phrases: list[np.ndarray], moods: np.ndarray, candidates: list[np.ndarray]
    ) -> tuple[list[np.ndarray], np.ndarray, dict]:
        cfg = self.cfg
        pseudo, pseudo_moods = pseudo_label(job, candidates, cfg.threshold)
        counts = {
            MOODS[m]: {"labelled": int((moods == m).sum()), "pseudo": int((pseudo_moods == m).sum())}
            for m in range(len(MOODS))
        }
        missing = [m for m, c in counts.items() if c["labelled"] + c["pseudo"] == 0]
        if missing:
            raise MoodgenError(f"steering=conditioned has no training sequence for {', '.join(missing)}")
        log.info(
            "conditioned LM: %d labelled phrases + %d of %d chunks pseudo-labelled at p >= %.2f (%s)",
            len(phrases),
            len(pseudo),
            len(candidates),
            cfg.threshold,
            ", ".join(f"{m} {c['labelled']}+{c['pseudo']}" for m, c in counts.items()),
        )
        return phrases + pseudo, np.concatenate([moods, pseudo_moods]).astype(int), counts

    def finetune(
        self, job: GenerationJob, net: nn.Module, phrases: list[np.ndarray], moods: np.ndarray, candidates: list
    ) -> dict:
        cfg = self.cfg
        start = time.perf_counter()
        sequences, moods, counts = self.training_set(job, phrases, moods, candidates)
        batches = SequenceBatches(job.net.head.out_features, bos_id(job.tokenizer), eos_id(job.tokenizer))
        items = [batches.sequence(ids, m) for ids, m in zip(sequences, moods, strict=True)]
        per_mood = np.bincount(moods, minlength=len(MOODS))
        generator = torch.Generator().manual_seed(cfg.seed)
        sampler = WeightedRandomSampler(  # every mood equally often, whatever its count
            torch.as_tensor(1.0 / per_mood[moods], dtype=torch.double),
            cfg.steps * cfg.batch_size,
            replacement=True,
            generator=generator,
        )
        loader = DataLoader(items, batch_size=cfg.batch_size, sampler=sampler, collate_fn=batches)
        module = ConditionedFinetune(net.train(), cfg.lr, cfg.mood_lr)
        trainer = quiet_trainer(max_epochs=1)
        seeded_fit(trainer, module, loader, cfg.seed)
        seconds = time.perf_counter() - start
        loss = float(trainer.callback_metrics.get("steer/conditioned_loss", float("nan")))
        log.info("conditioned LM fine-tuned: %d steps in %.1f s, last loss %.3f", cfg.steps, seconds, loss)
        return {
            "settings": {k: self.cfg[k] for k in SETTINGS},
            "sequences": counts,
            "seconds": round(seconds, 1),
            "last_loss": loss,
        }

    def generate(self, job: GenerationJob, mood: int, n: int) -> list[list[int]]:
        net = self.conditioned_net(job)
        prefix = [job.net.head.out_features + mood, bos_id(job.tokenizer)]
        pool = job.sample(n * self.cfg.candidates, prefix=prefix, net=net)
        return keep_best(job, pool, mood, n, self.cfg.rank_by, keep=self.cfg.keep)  # candidates > 1: ranked as rerank


def conditioning_source(data_cfg, root: Path, tokenizer, cache_dir: Path) -> DataSource:
    """Labelled training phrases + unlabelled training pieces of a VGMIDI root, tokenized on demand."""

    def load() -> ConditioningData:
        from omegaconf import OmegaConf

        from ..data import vgmidi
        from ..data.limits import MidiLimits
        from ..tokenizers import encode_corpus

        limits = MidiLimits.from_config(data_cfg)  # the model run's data limits: the pieces it trained on
        phrases = vgmidi.load_phrases(root, "train")  # never the test split
        labelled = encode_corpus(tokenizer, [p.path for p in phrases], cache_dir, limits)
        mood_of = {p.path.name: p.mood for p in phrases}
        files = vgmidi.lm_files(OmegaConf.merge(data_cfg, {"root": str(root)}))
        pieces = encode_corpus(tokenizer, files.train, cache_dir, limits)
        skipped = labelled.skipped + pieces.skipped
        if skipped:
            log.warning(
                "conditioning data: skipped %d MIDI file(s): %s",
                len(skipped),
                "; ".join(f"{name} ({reason})" for name, reason in skipped[:20]),
            )
        return ConditioningData(
            phrases=[labelled.piece(i)[1:-1] for i in range(len(labelled.names))],
            moods=np.array([mood_of[name] for name in labelled.names], dtype=int),
            pieces=[pieces.piece(i)[1:-1] for i in range(len(pieces.names))],
            names=list(labelled.names),
        )

    return load
