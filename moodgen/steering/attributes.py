"""`steering=attributes`: the LM fine-tuned to follow musical attributes, asked for a mood's attributes.

Self-supervised: every bar-aligned chunk of every LM training piece (and every labelled training
phrase) is measured (`moodgen.attributes`) and the LM learns to continue it given its own
attribute bins, each added to every input step as a learned vector (as `steering=conditioned`'s
mood vector). No mood label or probe is involved, so all the unlabelled music teaches it. During
fine-tuning each attribute is dropped (its vector left out) with `attribute_dropout` and all of
them with `condition_dropout`, so the same LM also models music with no condition: sampling mixes
the two by classifier-free guidance, logits_uncond + guidance * (logits_cond - logits_uncond).

At sampling, a mood asks for its targets (`moodgen.attributes.targets`, learned from the labelled
training phrases and `conf/mood_profile/<mood>.yaml`), each piece gets a tonic of its own from the piece's
sampling stream, the constraints in `constraints.py` lean on the key's tonic triad (or its third and fifth:
`lean_on`) and keep the tokens in the mood's velocity range and a register (each a switch; `scale=mask` also
keeps them in the key), and the piece is written at the mood's tempo. The fine-tuned weights are this method's
checkpoint, `steering/attributes.pt`, kept with the model run.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import time

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from ..attributes import ATTRIBUTES, check_names, measure, to_bins
from ..attributes.targets import TARGETS, WINDOWS, MoodTargets, PhraseSummary, mood_targets, phrase_summary
from ..config import check_ranges
from ..data.cache import write_atomic
from ..errors import MoodgenError
from ..models.module import quiet_trainer, seeded_fit
from ..moods import MOODS
from ..tokenizers import bos_id
from .base import GenerationJob, Steering, cached_finetune, plain_settings, sequences_fingerprint, settings_key
from .conditioned import IGNORE, chunks
from .constraints import LEAN_ON, Constraints
from .rerank import keep_best, ranking_problems

log = logging.getLogger("moodgen")
CHECKPOINT = "attributes.pt"
PHRASES = "attributes_phrases.json"  # what the mood targets are learned from: generation without the data
SETTINGS = (
    "attributes",
    "chunk_tokens",
    "max_chunks",
    "steps",
    "batch_size",
    "lr",
    "mood_lr",
    "attribute_dropout",
    "condition_dropout",
    "seed",
)
# in the cache key: a new design (how the LM learns; which sequences it learns from is fingerprinted) refits
DESIGN = "attribute vectors at every step; bar-aligned chunks; edges v1"
UNMEASURED_OFF = 10  # steering.hold: bins off for an attribute a silent piece cannot be measured in (beyond any bin)
BASE_QPM = 120.0  # the tempo every decoded piece has (the tokenizer writes no tempo)


class AttributeLM(nn.Module):
    """The LM with the sum of one learned vector per attribute added to every input step.

    `condition` [B, A] holds bin + 1 per attribute; 0 is "not given" (a fixed zero vector), so a
    row of zeros is the unconditioned LM.
    """

    def __init__(self, net: nn.Module, sizes: list[int]):
        super().__init__()
        self.net = copy.deepcopy(net)
        dim = net.embedding.embedding_dim
        self.attributes = nn.ModuleList(nn.Embedding(size + 1, dim, padding_idx=0) for size in sizes)
        for table in self.attributes:
            nn.init.zeros_(table.weight)  # starts as the unconditioned LM

    def forward(self, tokens: torch.Tensor, state, condition: torch.Tensor):
        vector = sum(table(condition[:, a]) for a, table in enumerate(self.attributes))  # [B, E]
        return self.net(tokens, state, condition=vector)  # logits [B, T, V], state


class Guided(nn.Module):
    """What the sampler calls: the AttributeLM with fixed conditions per row, guidance and constraints.

    guidance 1 is the conditioned LM, 0 the unconditioned one, > 1 pushes further from it; the
    two are run as one batch of 2n rows only when both are needed.
    """

    def __init__(self, model: AttributeLM, condition: torch.Tensor, guidance: float, constraints=None):
        super().__init__()
        self.model, self.guidance, self.constraints = model, guidance, constraints
        self.register_buffer("condition", condition)  # [n, A]
        self.eval()  # a sampling wrapper: never dropout

    def forward(self, tokens: torch.Tensor, state=None):
        n = tokens.shape[0]
        if self.guidance == 1.0:
            logits, state = self.model(tokens, state, self.condition)
        elif self.guidance == 0.0:
            logits, state = self.model(tokens, state, torch.zeros_like(self.condition))
        else:
            both = torch.cat([self.condition, torch.zeros_like(self.condition)])  # [2n, A]
            logits, state = self.model(torch.cat([tokens, tokens]), state, both)
            cond, uncond = logits[:n], logits[n:]
            logits = uncond + self.guidance * (cond - uncond)
        if self.constraints is not None:
            logits = logits.clone()
            logits[:, -1] = self.constraints(tokens[:, -1], logits[:, -1])
        return logits, state


class AttributeBatches:
    """(ids, condition) pairs -> right-padded inputs [B, T], targets [B, T], conditions [B, A],
    with attributes dropped at random (condition dropout) so guidance has an unconditioned LM."""

    def __init__(self, bos: int, attribute_dropout: float, condition_dropout: float, generator: torch.Generator):
        self.bos, self.generator = bos, generator
        self.attribute_dropout, self.condition_dropout = attribute_dropout, condition_dropout

    def __call__(self, batch):
        sequences = [torch.as_tensor([self.bos, *ids.tolist()], dtype=torch.long) for ids, _ in batch]
        inputs = nn.utils.rnn.pad_sequence([s[:-1] for s in sequences], batch_first=True)
        targets = nn.utils.rnn.pad_sequence([s[1:] for s in sequences], batch_first=True, padding_value=IGNORE)
        condition = torch.as_tensor(np.stack([c for _, c in batch]), dtype=torch.long)  # [B, A]
        keep = torch.rand(condition.shape, generator=self.generator) >= self.attribute_dropout
        keep &= torch.rand(condition.shape[0], 1, generator=self.generator) >= self.condition_dropout
        return inputs, targets, condition * keep


class AttributeFinetune(pl.LightningModule):
    def __init__(self, net: AttributeLM, lr: float, attribute_lr: float):
        super().__init__()
        self.net, self.lr, self.attribute_lr = net, lr, attribute_lr

    def training_step(self, batch, batch_idx):
        inputs, targets, condition = batch  # [B, T], [B, T], [B, A]
        logits, _ = self.net(inputs, None, condition)  # [B, T, V]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)
        self.log("steer/attributes_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        # the attribute vectors start at zero and must grow within a short fine-tune: their own rate
        return torch.optim.AdamW(
            [
                {"params": self.net.net.parameters(), "lr": self.lr},
                {"params": self.net.attributes.parameters(), "lr": self.attribute_lr, "weight_decay": 0.0},
            ]
        )


def conditions(tokenizer, sequences: list[np.ndarray], names: list[str]) -> np.ndarray:
    """[n, A] bin + 1 of each sequence's own attributes (0 where unmeasurable)."""
    values = np.stack([measure(tokenizer.decode([s.tolist()]), names) for s in sequences])
    return to_bins(values, names) + 1


def check_options(cfg) -> None:
    """Every option of steering=attributes, checked before any work: one line naming the fix."""
    check_ranges(cfg, "steering.")  # the numeric ranges SteeringConfig and MoodConfig declare
    bad = []
    if cfg.scale not in ("mask", "bias", "off"):
        bad.append(f"steering.scale={cfg.scale} (use mask, bias or off)")
    bad += ranking_problems(cfg.rank_by, cfg.keep)
    if cfg.tonics not in ("uniform", "data"):
        bad.append(f"steering.tonics={cfg.tonics} (use uniform or data)")
    if cfg.register_window not in WINDOWS:
        bad.append(f"steering.register_window={cfg.register_window} (use {' or '.join(WINDOWS)})")
    if cfg.target not in TARGETS:
        bad.append(f"steering.target={cfg.target} (use {', '.join(TARGETS[:-1])} or {TARGETS[-1]})")
    missing = [m for m in MOODS if m not in cfg.moods]
    if missing:
        bad.append(f"steering.moods lacks {', '.join(missing)} (conf/mood_profile/<mood>.yaml)")
    if cfg.lean_on not in LEAN_ON:
        bad.append(f"steering.lean_on={cfg.lean_on} (use {' or '.join(LEAN_ON)})")
    for mood, own in cfg.moods.items():
        if own.scale not in (None, "major", "minor"):
            bad.append(f"conf/mood_profile/{mood}.yaml: scale={own.scale} (major, minor or null)")
        if own.lean_on not in (None, *LEAN_ON):
            bad.append(f"steering.moods.{mood}.lean_on={own.lean_on} (use {', '.join(LEAN_ON)} or null)")
    asked = [n for n in check_names(cfg.attributes) if not ATTRIBUTES[n].per_piece]
    holds = {"steering.hold": cfg.hold, **{f"steering.moods.{m}.hold": own.hold for m, own in cfg.moods.items()}}
    for option, names in holds.items():
        hold = list(names or [])  # a mood's null: none of its own
        setting = f"{option}=[{','.join(hold)}]"
        if any(n not in asked for n in hold) or len(set(hold)) != len(hold):
            bad.append(
                f"{setting} (name each at most once, from the attributes the pieces ask for: {', '.join(asked)})"
            )
        elif hold and cfg.candidates == 1:
            bad.append(f"{setting} keeps the nearest of several candidates (set steering.candidates > 1)")
    if bad:
        raise MoodgenError("steering=attributes: " + "; ".join(bad))


class AttributeSteering(Steering):
    def __init__(self, cfg):
        super().__init__(cfg)
        check_options(cfg)
        self.names = list(cfg.attributes)
        self.targets: MoodTargets | None = None
        self.net: AttributeLM | None = None

    def settings_key(self) -> str:
        return settings_key(self.cfg, SETTINGS, design=DESIGN)

    def attribute_net(self, job: GenerationJob) -> AttributeLM:
        """From the model run's checkpoint, else fine-tuned now (and cached there); once per steering."""
        if self.net is not None:
            return self.net
        self.net = self.load_or_finetune(job)
        return self.net

    def load_or_finetune(self, job: GenerationJob) -> AttributeLM:
        net = AttributeLM(job.net, [ATTRIBUTES[n].bins for n in self.names])
        path = job.cache_dir / CHECKPOINT if job.cache_dir else None
        sequences = functools.cache(lambda: self.training_sequences(job))  # cut once, if at all
        return cached_finetune(
            net,
            path,
            self.settings_key(),
            lambda: self.finetune(job, net, sequences()),
            lambda: sequences_fingerprint(sequences()),
            job.refit_stale,
        )

    def data(self, job: GenerationJob):
        if job.conditioning is None:
            raise MoodgenError(
                "steering=attributes needs VGMIDI's labelled training phrases (a model run with data=vgmidi); "
                "use steering=none"
            )
        return job.conditioning()

    def training_sequences(self, job: GenerationJob) -> list[np.ndarray]:
        """Bar-aligned chunks of the LM training pieces, then the labelled training phrases (each cut to a chunk)."""
        cfg, data = self.cfg, self.data(job)
        rng = np.random.default_rng(cfg.seed)  # fixed, not the pieces' seed: one cached model per setting
        bar = job.tokenizer.vocab.get("Bar_None")
        sequences = chunks(data.pieces, cfg.chunk_tokens, cfg.max_chunks, rng, bar)
        return sequences + [p[: cfg.chunk_tokens] for p in data.phrases]

    def finetune(self, job: GenerationJob, net: AttributeLM, sequences: list[np.ndarray]) -> dict:
        cfg, start = self.cfg, time.perf_counter()
        items = list(zip(sequences, conditions(job.tokenizer, sequences, self.names), strict=True))
        generator = torch.Generator().manual_seed(cfg.seed)
        batches = AttributeBatches(bos_id(job.tokenizer), cfg.attribute_dropout, cfg.condition_dropout, generator)
        sampler = RandomSampler(items, replacement=True, num_samples=cfg.steps * cfg.batch_size, generator=generator)
        loader = DataLoader(items, batch_size=cfg.batch_size, sampler=sampler, collate_fn=batches)
        trainer = quiet_trainer(max_epochs=1)
        seeded_fit(trainer, AttributeFinetune(net.train(), cfg.lr, cfg.mood_lr), loader, cfg.seed)
        seconds = time.perf_counter() - start
        loss = float(trainer.callback_metrics.get("steer/attributes_loss", float("nan")))
        log.info(
            "attribute LM fine-tuned on %d sequences: %d steps in %.1f s, last loss %.3f",
            len(items),
            cfg.steps,
            seconds,
            loss,
        )
        return {"settings": plain_settings(self.cfg, SETTINGS), "sequences": len(items), "seconds": round(seconds, 1)}

    def phrase_summary(self, job: GenerationJob) -> PhraseSummary:
        """From the labelled phrases when given (and kept beside the attribute LM), else the kept one."""
        path = job.cache_dir / PHRASES if job.cache_dir else None
        if job.conditioning is None and path is not None and path.exists():
            return kept_summary(path)
        data = self.data(job)
        summary = phrase_summary([job.tokenizer.decode([p.tolist()]) for p in data.phrases], data.moods)
        if path is not None:
            text = json.dumps(summary.to_json())
            if not path.exists() or path.read_text() != text:  # unchanged: not logged to the run again
                write_atomic(path, lambda handle: handle.write(text.encode()))  # never half a file
        return summary

    def mood_targets(self, job: GenerationJob) -> MoodTargets:
        if self.targets is None:
            self.targets = mood_targets(self.phrase_summary(job), self.cfg)
            for m, mood in enumerate(MOODS):
                log.debug("attributes asked of %s: %s", mood, self.targets.describe(m))  # shown with verbose=true
            if self.cfg.target == "phrases":
                log.debug("target=phrases: each piece asks for the bins of one of its mood's phrases instead")
            if self.cfg.register_window == "phrase":
                log.debug("register_window=phrase: each piece keeps to the register of one of its mood's phrases")
        return self.targets

    def qpm(self, mood: int, job: GenerationJob) -> float:
        """The tempo the mood's pieces are written at (120, the data's, with tempo=false)."""
        return float(self.mood_targets(job).tempo[mood]) if self.cfg.tempo else BASE_QPM

    def tonics(self, mood: int, rows: int, job: GenerationJob) -> np.ndarray:
        """[rows] a tonic per piece from the piece's stream: any of 12 alike, or as the mood's phrases' keys."""
        if self.cfg.tonics == "uniform":
            return torch.randint(12, (rows,), generator=job.generator).numpy()
        shares = torch.as_tensor(self.mood_targets(job).keys[mood])
        return torch.multinomial(shares, rows, replacement=True, generator=job.generator).numpy()

    def per_candidate(self, draw, n: int) -> np.ndarray:
        """[n * candidates, ...] of `draw(count)`: each candidate its own draw, or with keep=each one per
        piece, shared by its candidates: ranking then picks within the piece's key and attributes and
        cannot narrow the mood's mix of them."""
        if self.cfg.keep == "each":
            return draw(n).repeat(self.cfg.candidates, axis=0)
        return draw(n * self.cfg.candidates)

    def candidate_tonics(self, mood: int, n: int, job: GenerationJob) -> np.ndarray:
        """[n * candidates] the key of each candidate (per_candidate)."""
        return self.per_candidate(lambda count: self.tonics(mood, count, job), n)

    def candidate_registers(self, mood: int, n: int, job: GenerationJob) -> np.ndarray:
        """[n * candidates, 2] the lowest and highest pitch of each row (per_candidate); drawn only when a
        register range is kept, so register_range=false leaves the pieces' streams as they were."""
        targets = self.mood_targets(job)
        if not self.cfg.register_range:
            return np.repeat(targets.pitch[mood][None], n * self.cfg.candidates, axis=0)  # unused by the mask
        return self.per_candidate(lambda count: targets.pitch_ranges(mood, count, job.generator), n)

    def candidate_conditions(self, mood: int, n: int, job: GenerationJob) -> tuple[np.ndarray, np.ndarray]:
        """(tonic [rows], condition [rows, A]) of the n * candidates rows: each row's key, and the bins + 1
        it asks for (0: not asked), the tonic's column holding the row's key."""
        targets = self.mood_targets(job)
        tonic = self.candidate_tonics(mood, n, job)
        condition = self.per_candidate(lambda count: targets.asked(mood, count, job.generator), n) + 1
        for a, name in enumerate(self.names):
            if ATTRIBUTES[name].per_piece:  # the tonic: the key each piece was given
                condition[:, a] = ATTRIBUTES[name].bin(0.0) + tonic + 1
        return tonic, condition

    def mood_option(self, mood: int, name: str):
        """The mood's own value of an option its file may set (guidance, tonic_bias, lean_on, hold), else steering's."""
        own = getattr(self.cfg.moods[MOODS[mood]], name)
        return getattr(self.cfg, name) if own is None else own

    def generate(self, job: GenerationJob, mood: int, n: int) -> list[list[int]]:
        cfg, targets = self.cfg, self.mood_targets(job)
        tonic, condition = self.candidate_conditions(mood, n, job)
        constraints = Constraints(job.tokenizer.vocab, job.net.head.out_features, cfg, job.temperature)
        pitch = self.candidate_registers(mood, n, job)
        leaning = self.mood_option(mood, "tonic_bias"), self.mood_option(mood, "lean_on")
        constraints.start(tonic, targets.scale[mood], targets.velocity[mood], pitch, *leaning)
        guided = Guided(
            self.attribute_net(job), torch.as_tensor(condition), self.mood_option(mood, "guidance"), constraints
        )
        # sampled at the data's 120 qpm for as many beats as the piece needs at the mood's tempo
        seconds = job.duration * self.qpm(mood, job) / BASE_QPM
        pool = job.sample(len(condition), seconds=seconds, net=guided)
        # candidates > 1: the descriptor model (on the piece at its tempo) or the probe keeps the best, as `keep` says
        # steering.hold: the candidates nearest the bins they asked for first (the LM overshoots some of them)
        hold = list(self.mood_option(mood, "hold"))
        off = self.bins_off(job, pool, condition, hold) if hold and len(pool) > n else None
        return keep_best(job, pool, mood, n, cfg.rank_by, self.qpm(mood, job), cfg.keep, off)

    def bins_off(self, job: GenerationJob, pool: list[list[int]], condition: np.ndarray, hold: list[str]) -> np.ndarray:
        """[rows] how many bins each row's piece is from the bins it asked for (condition [rows, A]),
        summed over the attributes in `hold`: one not asked for counts 0, one that cannot be measured
        (a silent piece) counts UNMEASURED_OFF."""
        asked = condition[:, [self.names.index(name) for name in hold]] - 1  # [rows, H]; -1: not asked
        got = conditions(job.tokenizer, [np.asarray(ids) for ids in pool], hold) - 1  # [rows, H]; -1: no notes
        off = np.where(got < 0, UNMEASURED_OFF, np.abs(got - asked))
        return np.where(asked < 0, 0, off).sum(1)


def kept_summary(path) -> PhraseSummary:
    """The phrase summary kept beside the attribute LM; a damaged one is one line naming the fix, not a traceback."""
    try:
        return PhraseSummary.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MoodgenError(
            f"{path} is damaged ({type(exc).__name__}): generate with the model run's VGMIDI data "
            "(data_root=<folder>) to learn the mood targets again, or use steering=none"
        ) from None
