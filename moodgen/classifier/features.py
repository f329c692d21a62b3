"""Features of phrases and generated pieces: the LM states a sentiment probe reads, musical descriptors, both.

Options (``classifier.features``, ``classifier.compare``):
- ``final_cell``: the top layer's cell state after the last token (Radford et al.; Ferreira & Whitehead)
- ``final_hidden``: the top layer's hidden state after the last token
- ``mean_hidden``: the top layer's hidden state averaged over the phrase
- ``all_layers``: every layer's final cell and hidden state, concatenated
- ``handcrafted``: musical descriptors of the decoded tokens, no LM (``handcrafted.describe``: the run's judge's)
- ``relative``: ``handcrafted`` with its pitch-class shares counted from the estimated tonic
  (``handcrafted.describe_relative``: the benchmark's judge's, blind to which key the music is in)
- ``musical``: ``handcrafted`` plus tonal descriptors (``handcrafted.describe_tonal``: scale degrees,
  major-minor contrast, intervals sounding together, steps), no LM
- ``musical_relative``: ``musical`` without the absolute pitch-class shares (its tonal block has the
  degrees)
- ``fused``: ``final_cell`` and ``musical`` side by side; ``fused_<LM kind>`` (e.g. ``fused_mean_hidden``)
  pairs another LM part with them. The probe's scaler standardises every column, so each block
  arrives standardised. ``fused_relative`` and ``fused_relative_<LM kind>`` pair ``musical_relative``.

`key_blind(kind)` is the kind with every absolute pitch-class share replaced so (the benchmark's judges;
LM states stay as they are, and may still hear the key).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import symusic
import torch

from ..data.cache import cached
from ..errors import MoodgenError
from ..tokenizers import Corpus
from .handcrafted import (
    KEYLESS_NAMES,
    NAMES,
    RELATIVE_NAMES,
    TONAL_NAMES,
    describe,
    describe_keyless,
    describe_relative,
    describe_tonal,
)

FEATURES = ("final_cell", "final_hidden", "mean_hidden", "all_layers")  # LM state kinds
HANDCRAFTED = "handcrafted"  # the run's hand-crafted judge's descriptors (and the benchmark's ranker's)
RELATIVE = "relative"  # HANDCRAFTED in scale degrees: the same row in every key
MUSICAL = "musical"  # HANDCRAFTED + tonal descriptors
MUSICAL_RELATIVE = "musical_relative"  # MUSICAL without absolute pitch classes
DESCRIPTORS = {
    HANDCRAFTED: (NAMES, (describe,)),
    RELATIVE: (RELATIVE_NAMES, (describe_relative,)),
    MUSICAL: ((*NAMES, *TONAL_NAMES), (describe, describe_tonal)),
    MUSICAL_RELATIVE: ((*KEYLESS_NAMES, *TONAL_NAMES), (describe_keyless, describe_tonal)),
}
FUSED_LM = "final_cell"  # the LM part of `fused` alone; fused_<kind> pairs <kind>
FUSED = {"fused": MUSICAL, "fused_relative": MUSICAL_RELATIVE}  # prefix -> the descriptor block it pairs
KINDS = (*FEATURES, *DESCRIPTORS, *(kind for fused in FUSED for kind in (fused, *(f"{fused}_{k}" for k in FEATURES))))
KEY_BLIND = {HANDCRAFTED: RELATIVE, MUSICAL: MUSICAL_RELATIVE}  # descriptor blocks' key-blind twins


def feature_blocks(kind: str) -> tuple[str, ...]:
    """The blocks a feature kind concatenates, in order: ('final_cell', 'musical') for 'fused'."""
    if kind in (*FEATURES, *DESCRIPTORS):
        return (kind,)
    for prefix, block in FUSED.items():
        if kind == prefix:
            return (FUSED_LM, block)
        if kind.startswith(f"{prefix}_") and kind.removeprefix(f"{prefix}_") in FEATURES:
            return (kind.removeprefix(f"{prefix}_"), block)
    raise MoodgenError(f"unknown classifier feature {kind!r}: use {', '.join(KINDS)}")


def key_blind(kind: str) -> str:
    """`kind` with its absolute pitch-class shares counted from the estimated tonic instead: 'relative' for
    'handcrafted', 'fused_relative_mean_hidden' for 'fused_mean_hidden'; LM states alone stay as they are."""
    blocks = feature_blocks(kind)
    if kind in KEY_BLIND:
        return KEY_BLIND[kind]
    if blocks[-1] == MUSICAL:  # fused or fused_<LM kind>
        return f"fused_relative_{blocks[0]}"
    return kind


def uses_lm(kind: str) -> bool:
    return any(block in FEATURES for block in feature_blocks(kind))


def phrase_features(
    kind: str, net: torch.nn.Module | None, tokenizer, corpus: Corpus, cache_dir: Path | None = None
) -> np.ndarray:
    """[n_pieces, dim] features of every piece of a corpus of framed token ids ([BOS, ..., EOS]).

    One function for the labelled phrases and for generated pieces, so a probe sees both the same
    way. `net` may be None for `handcrafted`; `cache_dir` caches LM states per weights and tokens.
    """
    blocks = feature_blocks(kind)
    if net is None and uses_lm(kind):
        raise MoodgenError(f"classifier feature {kind!r} reads LM states: it needs the language model")
    checkpoint = weights_id(net) if cache_dir is not None and uses_lm(kind) else ""
    parts = [
        descriptor_features(block, tokenizer, corpus)
        if block in DESCRIPTORS
        else cached_lm_features(net, corpus, block, checkpoint, cache_dir)
        for block in blocks
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


def descriptor_features(block: str, tokenizer, corpus: Corpus) -> np.ndarray:
    """A descriptor block's rows (one of DESCRIPTORS) for each piece as the tokenizer decodes it (the view
    a generated piece gets).

    A piece without notes (a silent generated piece) gets a row of zeros: its callers treat silence
    as no mood, and a row of numbers keeps the batch's other rows scorable.
    """
    names, _ = DESCRIPTORS[block]
    rows = []
    for i in range(len(corpus.offsets) - 1):
        score = tokenizer.decode([corpus.piece(i)[1:-1].tolist()])
        if not any(len(track.notes) for track in score.tracks):
            rows.append(np.zeros(len(names), dtype=np.float32))
        else:
            rows.append(score_descriptors(block, score))
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, len(names)), dtype=np.float32)


def score_descriptors(block: str, score: symusic.Score) -> np.ndarray:
    """One score's row of a descriptor block (it must have notes)."""
    return np.concatenate([describe_part(score) for describe_part in DESCRIPTORS[block][1]])


def weights_id(net: torch.nn.Module) -> str:
    """A hash of the weights: features are cached per checkpoint."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


@contextmanager
def one_thread():
    """torch on one intra-op thread for a while: batch inference of a small LSTM gains little from more,
    and on cores shared with another busy process it slows down many times over (measured: 40 phrases
    in 3 s on one thread, 110 s on two, beside a training run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def lm_features(
    net, corpus: Corpus, kinds: tuple[str, ...] = FEATURES, batch_size: int = 32, max_tokens: int = 2048
) -> dict[str, np.ndarray]:
    """{kind: [n_pieces, dim]} for each of `kinds` (one name alone is one kind), all from one LM pass over
    the corpus.

    Pieces run right-padded in length-sorted batches.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    with one_thread():
        return _lm_features(net, corpus, kinds, batch_size, max_tokens)


def _lm_features(net, corpus: Corpus, kinds: tuple, batch_size: int, max_tokens: int) -> dict[str, np.ndarray]:
    net.eval()
    lengths = np.diff(corpus.offsets).clip(max=max_tokens)
    order = np.argsort(lengths)  # similar lengths together: little padding
    rows: dict[str, dict[int, np.ndarray]] = {kind: {} for kind in kinds}
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch_lengths = torch.as_tensor(lengths[index])
        tokens = torch.zeros(len(index), int(batch_lengths.max()), dtype=torch.long)  # [B, T]
        for row, i in enumerate(index):
            tokens[row, : lengths[i]] = torch.as_tensor(corpus.piece(i)[: lengths[i]])
        _, state, hidden = net(tokens, return_hidden=True, lengths=batch_lengths)
        for kind in kinds:
            features = _select(kind, state, hidden, batch_lengths)  # [B, D]
            for row, i in enumerate(index):
                rows[kind][int(i)] = features[row].numpy()
    return {kind: np.stack([got[i] for i in range(len(order))]).astype(np.float32) for kind, got in rows.items()}


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


def cache_key(checkpoint_id: str, corpus: Corpus) -> str:
    """LM states depend on the weights and the token ids: hash both, and the kinds one entry holds (a kind
    added later makes new entries, not entries that look damaged)."""
    digest = hashlib.sha256(f"{checkpoint_id}|{','.join(FEATURES)}".encode())
    digest.update(corpus.ids.tobytes())
    digest.update(corpus.offsets.tobytes())
    return digest.hexdigest()[:24]


def cached_lm_features(net, corpus: Corpus, kind: str, checkpoint_id: str, cache_dir: Path | None) -> np.ndarray:
    """LM features, cached per weights and tokens in one .npz holding every kind (one LM pass fills it,
    so a probe on another kind of the same phrases costs no second pass; its CRC-32 catches flipped
    bytes); a damaged cache file is named in a warning, deleted and rebuilt."""
    if cache_dir is None:
        return lm_features(net, corpus, (kind,))[kind]
    path = Path(cache_dir) / "features" / f"{cache_key(checkpoint_id, corpus)}.npz"
    rows = len(corpus.offsets) - 1

    def load(entry: Path) -> dict[str, np.ndarray]:
        with np.load(entry, allow_pickle=False) as data:
            states = {name: data[name] for name in FEATURES}
        for name, features in states.items():
            if features.ndim != 2 or features.shape[0] != rows:
                raise ValueError(f"holds a {list(features.shape)} {name} array, not {rows} rows")
        return states

    def save(states: dict[str, np.ndarray], handle) -> None:
        np.savez(handle, **states)

    return cached(path, load, lambda: lm_features(net, corpus), save)[kind]
