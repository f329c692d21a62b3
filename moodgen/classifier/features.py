"""Language-model features of labelled phrases: the states a sentiment probe reads.

Options (``classifier.features``):
- ``final_cell``: the top layer's cell state after the last token (Radford et al.; Ferreira & Whitehead)
- ``final_hidden``: the top layer's hidden state after the last token
- ``mean_hidden``: the top layer's hidden state averaged over the phrase
- ``all_layers``: every layer's final cell and hidden state, concatenated
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..tokenizers import Corpus

FEATURES = ("final_cell", "final_hidden", "mean_hidden", "all_layers")


@torch.no_grad()
def lm_features(net, corpus: Corpus, kind: str, batch_size: int = 32, max_tokens: int = 2048) -> np.ndarray:
    """One row per corpus piece: [n_pieces, dim]. Pieces run right-padded in length-sorted batches."""
    net.eval()
    lengths = np.diff(corpus.offsets).clip(max=max_tokens)
    order = np.argsort(lengths)  # similar lengths together: little padding
    rows: dict[int, np.ndarray] = {}
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch_lengths = torch.as_tensor(lengths[index])
        tokens = torch.zeros(len(index), int(batch_lengths.max()), dtype=torch.long)  # [B, T]
        for row, i in enumerate(index):
            tokens[row, : lengths[i]] = torch.as_tensor(corpus.piece(i)[: lengths[i]])
        _, state, hidden = net(tokens, return_hidden=True, lengths=batch_lengths)
        features = _select(kind, state, hidden, batch_lengths)  # [B, D]
        for row, i in enumerate(index):
            rows[int(i)] = features[row].numpy()
    return np.stack([rows[i] for i in range(len(order))]).astype(np.float32)


def _select(kind: str, state, hidden, lengths: torch.Tensor) -> torch.Tensor:
    if kind == "final_cell":
        return state[-1][1]
    if kind == "final_hidden":
        return state[-1][0]
    if kind == "mean_hidden":
        mask = (torch.arange(hidden[-1].shape[1]) < lengths[:, None]).unsqueeze(-1)  # [B, T, 1]
        return (hidden[-1] * mask).sum(1) / lengths[:, None]
    if kind == "all_layers":
        return torch.cat([part for h, c in state for part in (c, h)], dim=-1)
    raise ValueError(f"unknown feature kind {kind!r}: use one of {', '.join(FEATURES)}")


def cache_key(checkpoint_id: str, corpus: Corpus, kind: str) -> str:
    """Features depend on the weights, the token ids and the kind: hash all three."""
    digest = hashlib.sha256(f"{checkpoint_id}|{kind}".encode())
    digest.update(corpus.ids.tobytes())
    digest.update(corpus.offsets.tobytes())
    return digest.hexdigest()[:24]


def cached_lm_features(net, corpus: Corpus, kind: str, checkpoint_id: str, cache_dir: Path | None) -> np.ndarray:
    if cache_dir is None:
        return lm_features(net, corpus, kind)
    path = Path(cache_dir) / "features" / f"{cache_key(checkpoint_id, corpus, kind)}.npy"
    if path.exists():
        return np.load(path)
    features = lm_features(net, corpus, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), features)
    path.with_suffix(".tmp.npy").replace(path)
    return features
