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
        # token-weighted means over the whole validation set, synced across DDP ranks
        self.val_loss = MeanMetric()
        self.val_acc = MeanMetric()

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
        self.log("lm/train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("lm/train_acc", accuracy, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, accuracy = self._step(batch)
        tokens = batch[1].numel()
        self.val_loss.update(loss, weight=tokens)
        self.val_acc.update(accuracy, weight=tokens)

    def on_validation_epoch_end(self):
        loss = self.val_loss.compute()
        self.log("lm/val_loss", loss, prog_bar=True)
        self.log("lm/val_ppl", math.exp(min(float(loss), 50.0)), prog_bar=True)
        self.log("lm/val_acc", self.val_acc.compute())
        self.val_loss.reset()
        self.val_acc.reset()

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
