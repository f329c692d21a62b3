"""The stage sequence of one training run: data -> lm -> classifier -> samples.

A stage is ``stage(ctx) -> ctx`` over one Context; later stages (classifier, steering,
evaluation) append themselves to STAGES without reshaping the ones before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from . import data as data_sources
from .artifacts import read_checkpoint
from .classifier.stage import classify_stage
from .data.files import LMFiles
from .data.windows import LMDataModule
from .errors import MoodgenError
from .evaluation.stage import evaluate_stage
from .generation.bundle import from_context
from .generation.run import generate_pieces, steering_report
from .models.module import LanguageModelModule
from .moods import MOODS
from .tokenizers import Corpus, build_tokenizer, encode_corpus, save_tokenizer
from .tracking import CHECKPOINT_TAG, NullTracker, Tracker, init_checkpoint

log = logging.getLogger("moodgen")


@dataclass
class Context:
    cfg: DictConfig
    tracker: Tracker | NullTracker
    output_dir: Path
    files: LMFiles | None = None
    tokenizer: Any = None
    train_corpus: Corpus | None = None
    val_corpus: Corpus | None = None
    module: LanguageModelModule | None = None
    best_checkpoint: Path | None = None
    resume_from: str | None = None  # a checkpoint to continue training from
    is_main: bool = True  # False in DDP ranks > 0: they stop after training
    classifiers: dict[str, Any] = field(default_factory=dict)  # "<target>/<features>" -> fitted sklearn model
    neurons: dict | None = None  # the L1 steering probe's sentiment neurons
    metrics: dict[str, float] = field(default_factory=dict)
    samples_dir: Path | None = None  # the samples stage's pieces, printed at the end of the run
    report: Path | None = None  # the evaluation stage's HTML report

    def record(self, metrics: dict[str, float]) -> None:
        self.metrics.update(metrics)
        self.tracker.log_metrics(metrics)


def unigram_perplexity(train: Corpus, val: Corpus, vocab_size: int) -> float:
    """Perplexity on val of add-one-smoothed token frequencies from train: the floor to beat."""
    counts = np.bincount(train.ids, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(np.exp(-log_probs[val.ids[1:]].mean()))


def data_stage(ctx: Context) -> Context:
    cfg = ctx.cfg
    files = ctx.files = ctx.files or data_sources.lm_files(cfg.data)
    ctx.tokenizer = build_tokenizer(cfg.tokenizer)
    cache = Path(cfg.paths.cache_dir)
    log.info(
        "tokenizing %d train + %d validation pieces with %s (cached in %s)",
        len(files.train),
        len(files.val),
        cfg.tokenizer.name,
        cache,
    )
    ctx.train_corpus = encode_corpus(ctx.tokenizer, files.train, cache)
    ctx.val_corpus = encode_corpus(ctx.tokenizer, files.val, cache)
    skipped = ctx.train_corpus.skipped + ctx.val_corpus.skipped
    if skipped:
        log.warning(
            "skipped %d unusable MIDI file(s): %s",
            len(skipped),
            "; ".join(f"{name} ({reason})" for name, reason in skipped),
        )
    need = cfg.model.seq_len + 1
    for split, corpus in (("train", ctx.train_corpus), ("validation", ctx.val_corpus)):
        if corpus.n_tokens < need:
            raise MoodgenError(
                f"the {split} pieces hold {corpus.n_tokens} tokens, fewer than one window of "
                f"model.seq_len+1={need}; add MIDI files or lower model.seq_len"
            )
    summary = {
        **files.summary,
        "train_files": len(ctx.train_corpus.names),
        "val_files": len(ctx.val_corpus.names),
        "skipped_files": len(skipped),
        "train_tokens": ctx.train_corpus.n_tokens,
        "val_tokens": ctx.val_corpus.n_tokens,
        "vocab_size": len(ctx.tokenizer),
    }
    log.info("data: %s", ", ".join(f"{k}={v}" for k, v in summary.items()))
    ctx.tracker.set_tags({f"data.{k}": v for k, v in summary.items()})
    ctx.tracker.log_json(
        {
            **summary,
            "train": ctx.train_corpus.names,
            "val": ctx.val_corpus.names,
            "skipped": skipped,
            "excluded": files.excluded,  # test-derived pieces left out, with the rule and the share
        },
        "data/summary.json",
    )
    tokenizer_dir = ctx.output_dir / "tokenizer"
    save_tokenizer(ctx.tokenizer, tokenizer_dir)
    ctx.tracker.log_artifact(tokenizer_dir, "tokenizer")
    ctx.record({"lm/unigram_val_ppl": unigram_perplexity(ctx.train_corpus, ctx.val_corpus, len(ctx.tokenizer))})
    return ctx


class InterruptCheckpoint(pl.Callback):
    """Ctrl-C mid-training saves `interrupted.ckpt`, so stopping a run never loses its work."""

    def __init__(self, dirpath: Path):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(self.dirpath / "interrupted.ckpt")


def _periodic_checkpoint(cfg: DictConfig, checkpoint_dir: Path) -> ModelCheckpoint | None:
    """The newest training state every N steps or minutes, so a killed process loses little."""
    steps, minutes = cfg.callbacks.checkpoint_every_n_steps, cfg.callbacks.checkpoint_every_minutes
    if not steps and not minutes:
        return None
    timing = {"every_n_train_steps": steps} if steps else {"train_time_interval": timedelta(minutes=minutes)}
    # monitor=None with save_top_k=1: each save replaces the previous one
    return ModelCheckpoint(
        dirpath=checkpoint_dir, filename="step-{step}", auto_insert_metric_name=False, save_top_k=1, **timing
    )


def _callbacks(cfg: DictConfig, checkpoint_dir: Path) -> tuple[ModelCheckpoint, list]:
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-epoch{epoch:02d}",
        auto_insert_metric_name=False,
        monitor=cfg.callbacks.monitor,
        mode="min",
        save_top_k=1,
        save_last=cfg.callbacks.save_last,
    )
    callbacks: list = [checkpoint, InterruptCheckpoint(checkpoint_dir)]
    periodic = _periodic_checkpoint(cfg, checkpoint_dir)
    if periodic is not None:
        callbacks.append(periodic)
    if cfg.callbacks.early_stopping_patience:
        callbacks.append(
            EarlyStopping(monitor=cfg.callbacks.monitor, mode="min", patience=cfg.callbacks.early_stopping_patience)
        )
    return checkpoint, callbacks


def validate_at_end(trainer: pl.Trainer, module, datamodule, checkpoint_dir: Path) -> Path:
    """A run that stopped before its first validation (max_steps shorter than an epoch, or
    max_time) is validated once now, and its weights kept as its best checkpoint."""
    log.info("no validation ran during training (it ended mid-epoch): validating the final weights once")
    trainer.validate(module, datamodule=datamodule, verbose=False)
    path = checkpoint_dir / f"best-step{trainer.global_step}.ckpt"
    trainer.save_checkpoint(path)
    return path


def lm_stage(ctx: Context) -> Context:
    cfg = ctx.cfg
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    ctx.module = LanguageModelModule(len(ctx.tokenizer), model_cfg)
    if cfg.init_from and not ctx.resume_from:
        load_weights(ctx.module, init_checkpoint(cfg, cfg.init_from))
    datamodule = LMDataModule(
        ctx.train_corpus, ctx.val_corpus, cfg.model.seq_len, cfg.model.batch_size, cfg.data.num_workers
    )
    checkpoint, callbacks = _callbacks(cfg, ctx.output_dir / "checkpoints")
    trainer = pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        callbacks=callbacks,
        logger=ctx.tracker.lightning_logger,
        default_root_dir=ctx.output_dir,
    )
    params = sum(p.numel() for p in ctx.module.parameters())
    log.info(
        "training %s (%s parameters) on %d windows of %d tokens",
        cfg.model.name,
        f"{params:,}",
        len(datamodule.train_set),
        cfg.model.seq_len,
    )
    ctx.tracker.set_tags({"model.parameters": params})
    if ctx.resume_from:
        read_checkpoint(ctx.resume_from, fix="resume from another checkpoint, or retrain with python -m moodgen.train")
    trainer.fit(ctx.module, datamodule=datamodule, ckpt_path=ctx.resume_from, weights_only=True)
    best_path = checkpoint.best_model_path
    if not best_path and not cfg.trainer.fast_dev_run:
        best_path = str(validate_at_end(trainer, ctx.module, datamodule, Path(checkpoint.dirpath)))
    ctx.is_main = trainer.is_global_zero
    if not ctx.is_main:
        return ctx
    last_val = trainer.callback_metrics.get(cfg.callbacks.monitor)
    best = checkpoint.best_model_score if checkpoint.best_model_path else last_val
    if best is not None:
        ctx.record({"lm/best_val_loss": float(best), "lm/best_val_ppl": math.exp(float(best))})
        ctx.metrics["lm/val_loss"] = float(best)
    if best_path:
        ctx.best_checkpoint = Path(best_path)
        best_state = read_checkpoint(
            ctx.best_checkpoint, fix="retrain (a lower model.lr if the loss diverged), or resume from another one"
        )
        ctx.module.load_state_dict(best_state["state_dict"])
        if cfg.logger.log_checkpoints:
            ctx.tracker.log_artifact(ctx.best_checkpoint, "checkpoints")
            if checkpoint.last_model_path:
                ctx.tracker.log_artifact(checkpoint.last_model_path, "checkpoints")
            ctx.tracker.set_tags({CHECKPOINT_TAG: f"checkpoints/{ctx.best_checkpoint.name}"})
    return ctx


def ranker_missing(steering, judges) -> bool:
    """Whether the model run lacks what steering.rank_by ranks the candidates by."""
    return (judges.ranker if steering.rank_by == "descriptors" else judges.probe) is None


def runnable_steering(steering, bundle):
    """The configured steering, or the nearest one this model can run (said in one warning)."""
    change, why = {}, ""
    if steering.name == "attributes" and bundle.conditioning is None:
        change, why = {"name": "none"}, "no labelled phrases to learn the moods' attributes from (data is not VGMIDI)"
    elif steering.name == "attributes" and steering.candidates > 1 and ranker_missing(steering, bundle.judges):
        if steering.rank_by == "descriptors" and bundle.judges.probe is not None:
            change, why = {"rank_by": "probe"}, "no hand-crafted mood model (classifier.compare) to rank by"
        else:
            change, why = {"candidates": 1}, "no mood classifier to rerank the candidates by"
    elif steering.name not in ("none", "attributes") and bundle.judges.probe is None:
        change, why = {"name": "none"}, "no classifier stage (data=folder, classifier=none): nothing to steer by"
    elif steering.name == "neurons" and not (bundle.neurons and bundle.neurons.get("neurons")):
        change, why = {"name": "rerank"}, "no sentiment neurons (features != final_cell, or the L1 probe kept none)"
    elif steering.name == "conditioned" and bundle.conditioning is None:
        change, why = {"name": "rerank"}, "no labelled phrases to condition on (data is not VGMIDI)"
    if not change:
        return steering
    settings = ", ".join(f"steering.{k}={v}" for k, v in change.items())
    log.warning("steering=%s cannot run as set on this model (%s); the samples use %s", steering.name, why, settings)
    return OmegaConf.merge(steering, change)


def samples_stage(ctx: Context) -> Context:
    """Pieces for each mood with the configured steering, judged, and logged under samples/."""
    cfg = ctx.cfg
    bundle = from_context(ctx)
    steering = runnable_steering(cfg.steering, bundle)
    folder = ctx.output_dir / "samples"
    pieces = generate_pieces(bundle, steering, cfg.samples, list(range(len(MOODS))), cfg.samples.n, cfg.seed, folder)
    metrics = steering_report(pieces, steering.name, folder)
    metrics["samples/mean_notes"] = float(np.mean([p["notes"] for p in pieces]))
    if bundle.steering_dir.is_dir():
        ctx.tracker.log_artifact(bundle.steering_dir, "steering")
    ctx.tracker.log_artifact(folder, "samples")
    ctx.samples_dir = folder
    ctx.record(metrics)
    log.info("samples: %s", ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return ctx


STAGES: list[Callable[[Context], Context]] = [data_stage, lm_stage, classify_stage, samples_stage, evaluate_stage]


def load_weights(module: LanguageModelModule, checkpoint: str) -> None:
    """Start from another run's weights (not its optimizer or step): the report's chained experiments."""
    state = read_checkpoint(checkpoint, fix="point init_from at another run or checkpoint")["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise MoodgenError(
            f"init_from checkpoint {checkpoint} does not fit this model/tokenizer ({str(exc).splitlines()[0]})"
        ) from None
    log.info("initialised the LM from %s", checkpoint)


def run(
    cfg: DictConfig, tracker: Tracker | NullTracker, files: LMFiles | None = None, resume_from: str | None = None
) -> Context:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(cfg=cfg, tracker=tracker, output_dir=output_dir, files=files, resume_from=resume_from)
    for stage in STAGES:
        ctx = stage(ctx)
        if not ctx.is_main:
            break
    return ctx
