"""LightningModule around the language model: next-token loss, perplexity, token accuracy."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from .lstm import LanguageModel

ARCHITECTURE_KEYS = (
    "cell",
    "embedding_dim",
    "hidden_size",
    "num_layers",
    "dropout",
    "noise_std",
    "output_dropout",
)


class LanguageModelModule(pl.LightningModule):
    def __init__(self, vocab_size: int, model: dict):
        super().__init__()
        self.save_hyperparameters()  # a checkpoint rebuilds the net from vocab_size + model
        self.net = LanguageModel(vocab_size, **{k: model[k] for k in ARCHITECTURE_KEYS})
        self.lr = model["lr"]
        self.weight_decay = model["weight_decay"]
        # token-weighted epoch means, synced across DDP ranks when computed
        self.train_loss, self.train_acc = MeanMetric(), MeanMetric()
        self.val_loss, self.val_acc = MeanMetric(), MeanMetric()

    def forward(self, tokens, state=None):
        return self.net(tokens, state)

    def _step(self, batch):
        inputs, targets = batch  # [B, T], [B, T]
        logits, _ = self.net(inputs)  # [B, T, V]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        accuracy = (logits.argmax(-1) == targets).float().mean()
        return loss, accuracy

    def training_step(self, batch, batch_idx):
        loss, accuracy = self._step(batch)
        self.log("lm/train_loss_step", loss, prog_bar=True)  # this rank's batch: no sync per step
        self.train_loss.update(loss.detach(), weight=batch[1].numel())
        self.train_acc.update(accuracy, weight=batch[1].numel())
        return loss

    def on_train_epoch_end(self):
        self._log_epoch("train", self.train_loss, self.train_acc)

    def validation_step(self, batch, batch_idx):
        loss, accuracy = self._step(batch)
        self.val_loss.update(loss, weight=batch[1].numel())
        self.val_acc.update(accuracy, weight=batch[1].numel())

    def on_validation_epoch_end(self):
        loss = self._log_epoch("val", self.val_loss, self.val_acc)
        self.log("lm/val_ppl", math.exp(min(loss, 50.0)), prog_bar=True, sync_dist=True)

    def _log_epoch(self, split: str, loss_metric: MeanMetric, acc_metric: MeanMetric) -> float:
        # compute() has already reduced over ranks: sync_dist only averages identical values
        loss = loss_metric.compute()
        name = "lm/train_loss_epoch" if split == "train" else "lm/val_loss"
        self.log(name, loss, prog_bar=True, sync_dist=True)
        self.log(f"lm/{split}_acc", acc_metric.compute(), sync_dist=True)
        loss_metric.reset()
        acc_metric.reset()
        return float(loss)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def quiet_trainer(**options) -> pl.Trainer:
    """A Trainer for a fit inside a stage (fine-tuning, benchmarks): CPU, clipped, and silent —
    no logger, checkpoints, progress bar or summary of its own."""
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
    )
    return pl.Trainer(**(defaults | options))


def seeded_fit(trainer: pl.Trainer, module: pl.LightningModule, loader, seed: int) -> None:
    """`trainer.fit` with torch's global generator (dropout draws from it) seeded with `seed` and given
    back as it was afterwards: a fine-tune cached under its settings is the same whatever ran before it
    in the process, and the caller's own stream goes on untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # the CPU one only: fork_rng gives back only it
        trainer.fit(module, train_dataloaders=loader)
