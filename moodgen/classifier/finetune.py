"""`classifier=finetune`: the LM plus a linear head, fine-tuned end to end with a small learning rate.

Model selection uses the same CV protocol as the probes, on the training phrases only: each
fold fine-tunes a fresh copy of the LM and records the fold's accuracy after every epoch; the
epoch count with the best mean CV accuracy is then refitted on all training phrases and
evaluated once on the test phrases.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..models.module import quiet_trainer
from ..tokenizers import Corpus
from .search import splitter

log = logging.getLogger("moodgen")


class PhraseClassifier(pl.LightningModule):
    """LM states averaged over the phrase -> linear head -> class logits."""

    def __init__(self, net: nn.Module, n_classes: int, lr: float, head_lr: float):
        super().__init__()
        self.net = copy.deepcopy(net)  # every fold starts from the same pretrained weights
        hidden = self.net.head.in_features
        self.head = nn.Linear(hidden, n_classes)
        self.lr, self.head_lr = lr, head_lr

    def forward(self, tokens, lengths):
        _, _, hidden = self.net(tokens, return_hidden=True, lengths=lengths)  # hidden[-1]: [B, T, H]
        mask = (torch.arange(tokens.shape[1], device=tokens.device) < lengths[:, None]).unsqueeze(-1)
        pooled = (hidden[-1] * mask).sum(1) / lengths[:, None].to(hidden[-1].dtype)  # [B, H]
        return self.head(pooled)  # [B, C]

    def training_step(self, batch, batch_idx):
        tokens, lengths, labels = batch
        loss = F.cross_entropy(self(tokens, lengths), labels)
        self.log("clf/finetune_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(
            [{"params": self.net.parameters(), "lr": self.lr}, {"params": self.head.parameters(), "lr": self.head_lr}]
        )


def phrase_batches(
    corpus: Corpus, rows: np.ndarray, labels: np.ndarray, max_tokens: int, batch_size: int, shuffle: bool, seed: int
) -> DataLoader:
    """Right-padded batches of (tokens [B, T], lengths [B], labels [B]); phrases cut to max_tokens."""
    items = [
        (torch.as_tensor(corpus.piece(i)[:max_tokens], dtype=torch.long), int(labels[k])) for k, i in enumerate(rows)
    ]

    def collate(batch):
        lengths = torch.tensor([len(t) for t, _ in batch])
        tokens = nn.utils.rnn.pad_sequence([t for t, _ in batch], batch_first=True)
        return tokens, lengths, torch.tensor([y for _, y in batch])

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(items, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)


@torch.no_grad()
def predict(model: PhraseClassifier, loader: DataLoader) -> np.ndarray:
    model.eval()
    return torch.cat([model(tokens, lengths).argmax(-1) for tokens, lengths, _ in loader]).numpy()


class _EpochAccuracy(pl.Callback):
    """Accuracy on held-out rows after every epoch: one CV curve per fold."""

    def __init__(self, loader: DataLoader, labels: np.ndarray):
        self.loader, self.labels, self.curve = loader, labels, []

    def on_train_epoch_end(self, trainer, module):
        self.curve.append(float(np.mean(predict(module, self.loader) == self.labels)))
        module.train()


def _fit(net, n_classes: int, loader: DataLoader, epochs: int, cfg, callbacks=()) -> PhraseClassifier:
    model = PhraseClassifier(net, n_classes, cfg.finetune_lr, cfg.finetune_head_lr)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=list(callbacks))
    trainer.fit(model, train_dataloaders=loader)
    return model


def finetune_and_select(net, corpus: dict[str, Corpus], y: dict[str, np.ndarray], n_classes: int, cfg, seed: int):
    """CV over epoch counts on train, refit, and the test-set predictions (computed once)."""
    n_train = len(y["train"])
    curves, cv = [], splitter(cfg.cv)

    def batches(rows: np.ndarray, shuffle: bool, split: str = "train") -> DataLoader:
        return phrase_batches(
            corpus[split], rows, y[split][rows], cfg.finetune_max_tokens, cfg.finetune_batch_size, shuffle, seed
        )

    for fold, (fit_rows, val_rows) in enumerate(cv.split(np.zeros(n_train), y["train"])):
        pl.seed_everything(seed + fold, verbose=False)
        val_loader = batches(val_rows, shuffle=False)
        tracker = _EpochAccuracy(val_loader, y["train"][val_rows])
        fit_loader = batches(fit_rows, shuffle=True)
        _fit(net, n_classes, fit_loader, cfg.finetune_epochs, cfg, [tracker])
        curves.append(tracker.curve)
        log.info(
            "finetune fold %d/%d: accuracy by epoch %s",
            fold + 1,
            cv.get_n_splits(),
            [round(a, 3) for a in tracker.curve],
        )
    mean_curve = np.mean(curves, axis=0)  # [epochs]
    epochs = int(np.argmax(mean_curve)) + 1
    pl.seed_everything(seed, verbose=False)
    model = _fit(net, n_classes, batches(np.arange(n_train), shuffle=True), epochs, cfg)
    test_loader = batches(np.arange(len(y["test"])), shuffle=False, split="test")
    return model, predict(model, test_loader), epochs, float(mean_curve[epochs - 1]), mean_curve.tolist()
