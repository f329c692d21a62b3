"""Fixed-length next-token windows over a tokenized corpus, and the LM's LightningDataModule."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..tokenizers import Corpus


class TokenWindows(Dataset):
    """Consecutive windows of seq_len + 1 tokens over the concatenated pieces.

    Pieces are joined BOS ... EOS BOS ... EOS, as GPT-style LMs do, so no token is padding;
    validation windows come from validation pieces only (the split is by piece upstream).
    """

    def __init__(self, corpus: Corpus, seq_len: int):
        self.ids = torch.from_numpy(corpus.ids.astype(np.int64))
        self.seq_len = seq_len
        self.count = max(0, (len(self.ids) - 1) // seq_len)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int):
        chunk = self.ids[i * self.seq_len : (i + 1) * self.seq_len + 1]
        return chunk[:-1], chunk[1:]  # inputs [T], targets [T]


class LMDataModule(pl.LightningDataModule):
    def __init__(self, train: Corpus, val: Corpus, seq_len: int, batch_size: int, num_workers: int = 0):
        super().__init__()
        self.train_set = TokenWindows(train, seq_len)
        self.val_set = TokenWindows(val, seq_len)
        self.batch_size = batch_size
        self.num_workers = num_workers

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle and len(dataset) > self.batch_size,
        )

    def train_dataloader(self):
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, shuffle=False)
