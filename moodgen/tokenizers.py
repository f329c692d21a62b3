"""miditok tokenizers by name, and a tokenized-corpus cache keyed by tokenizer + file hashes."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import miditok
import numpy as np
from tqdm.auto import tqdm

from .data.download import sha256_file
from .data.midi import read_piano
from .errors import MoodgenError

log = logging.getLogger(__name__)

TOKENIZERS: dict[str, type[miditok.MusicTokenizer]] = {
    "remi": miditok.REMI,
    "tsd": miditok.TSD,
    "midilike": miditok.MIDILike,
    "structured": miditok.Structured,
}
SPECIAL_TOKENS = ["PAD_None", "BOS_None", "EOS_None"]
TOKENIZER_FILE = "tokenizer.json"


def build_tokenizer(cfg) -> miditok.MusicTokenizer:
    if cfg.name not in TOKENIZERS:
        raise MoodgenError(f"unknown tokenizer {cfg.name!r}: use one of {', '.join(TOKENIZERS)}")
    params = dict(
        pitch_range=tuple(cfg.pitch_range),
        beat_res={tuple(int(x) for x in k.split("_")): v for k, v in cfg.beat_res.items()},
        num_velocities=cfg.num_velocities,
        use_tempos=cfg.use_tempos,
        use_time_signatures=cfg.use_time_signatures,
        use_rests=cfg.use_rests,
        use_sustain_pedals=cfg.use_sustain_pedals,
        use_chords=cfg.use_chords,
        special_tokens=SPECIAL_TOKENS,
        **dict(cfg.extra),
    )
    try:
        config = miditok.TokenizerConfig(**params)
    except TypeError as exc:
        raise MoodgenError(f"bad tokenizer option: {exc}") from None
    return TOKENIZERS[cfg.name](config)


def tokenizer_key(tokenizer: miditok.MusicTokenizer) -> str:
    """A hash of everything that changes the token ids: class, config and vocabulary."""
    state = {"class": type(tokenizer).__name__, "vocab": tokenizer.vocab}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_tokenizer(tokenizer: miditok.MusicTokenizer, folder: Path) -> Path:
    path = Path(folder) / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)
    return path


def load_tokenizer(path: Path) -> miditok.MusicTokenizer:
    """Load a tokenizer saved with a run; miditok records the class name in the file."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    name = json.loads(path.read_text())["tokenization"]
    return getattr(miditok, name)(params=path)


def bos_id(tokenizer) -> int:
    return tokenizer["BOS_None"]


def eos_id(tokenizer) -> int:
    return tokenizer["EOS_None"]


@dataclass
class Corpus:
    """Token ids of several pieces, concatenated: piece i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # int32 [total_tokens]
    offsets: np.ndarray  # int64 [n_pieces + 1]
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    @property
    def n_tokens(self) -> int:
        return int(self.ids.shape[0])

    def piece(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def encode_file(tokenizer, path: Path) -> list[int]:
    """One piece -> [BOS, ...tokens, EOS]; raises ValueError with a reason for unusable files."""
    return encode_score(tokenizer, read_piano(path))


def encode_score(tokenizer, score) -> list[int]:
    """A piano-merged score -> [BOS, ...tokens, EOS]; ValueError when it yields no tokens."""
    sequences = tokenizer.encode(score)
    sequence = sequences[0] if isinstance(sequences, list) else sequences
    if not sequence.ids:
        raise ValueError("no tokens")
    return [bos_id(tokenizer), *sequence.ids, eos_id(tokenizer)]


def _corpus_key(tokenizer, files: list[Path]) -> str:
    digest = hashlib.sha256(tokenizer_key(tokenizer).encode())
    for path in files:
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:24]


def encode_corpus(tokenizer, files: list[Path], cache_dir: Path | None = None) -> Corpus:
    """Tokenize files (skipping bad ones file by file), or load the cached result.

    The cache key covers the tokenizer (class + vocabulary) and every file's content hash, so
    any change to either re-tokenizes; an unchanged corpus loads from one .npz file.
    """
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / "tokens" / f"{_corpus_key(tokenizer, files)}.npz"
        if cache_path.exists():
            return _load(cache_path)
    chunks, names, skipped = [], [], []
    for path in tqdm(files, desc="tokenizing", unit="file", disable=len(files) < 50, leave=False):
        try:
            chunks.append(np.asarray(encode_file(tokenizer, path), dtype=np.int32))
            names.append(path.name)
        except ValueError as exc:
            skipped.append((path.name, str(exc)))
    lengths = np.array([0] + [len(c) for c in chunks], dtype=np.int64)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    corpus = Corpus(ids=ids, offsets=np.cumsum(lengths), names=names, skipped=skipped)
    if cache_path is not None:
        _save(corpus, cache_path)
    return corpus


def _save(corpus: Corpus, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    meta = json.dumps({"names": corpus.names, "skipped": corpus.skipped})
    np.savez(tmp, ids=corpus.ids, offsets=corpus.offsets, meta=np.array(meta))
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cache entry


def _load(path: Path) -> Corpus:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        return Corpus(
            ids=data["ids"],
            offsets=data["offsets"],
            names=meta["names"],
            skipped=[tuple(s) for s in meta["skipped"]],
        )
