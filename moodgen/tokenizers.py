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

from .data.cache import cached
from .data.download import sha256_file
from .data.limits import DEFAULT_LIMITS, MidiLimits
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

    def too_short(self, split: str, need: int) -> str:
        """The one-line error when these pieces hold fewer than `need` tokens: the skipped files first."""
        message = f"the {split} pieces hold {self.n_tokens} tokens, fewer than one window of model.seq_len+1={need}"
        if not self.skipped:
            return f"{message}; add MIDI files or lower model.seq_len"
        listed = len(self.names) + len(self.skipped)
        examples = "; ".join(f"{name}: {reason}" for name, reason in self.skipped[:3])
        more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
        return (
            f"{message}: {len(self.skipped)} of {listed} {split} MIDI file(s) were skipped ({examples}{more}); "
            "replace or remove them, or add MIDI files"
        )


def encode_file(tokenizer, path: Path, limits: MidiLimits = DEFAULT_LIMITS) -> list[int]:
    """One piece -> [BOS, ...tokens, EOS]; raises ValueError with a reason for unusable files."""
    ids = encode_score(tokenizer, read_piano(path, limits))
    if len(ids) > limits.max_tokens:
        raise ValueError(f"{len(ids)} tokens, over max_tokens={limits.max_tokens}")
    return ids


def encode_score(tokenizer, score) -> list[int]:
    """A piano-merged score -> [BOS, ...tokens, EOS]; ValueError when it yields no tokens."""
    try:
        sequences = tokenizer.encode(score)
    except Exception as exc:  # miditok on a score it cannot handle: a reason for this piece, not a crash
        raise ValueError(f"tokenizer failed ({type(exc).__name__}: {str(exc)[:80]})") from None
    sequence = sequences[0] if isinstance(sequences, list) else sequences
    if not sequence.ids:
        raise ValueError("no tokens")
    return [bos_id(tokenizer), *sequence.ids, eos_id(tokenizer)]


def _corpus_key(tokenizer, files: list[Path], limits: MidiLimits) -> str:
    digest = hashlib.sha256(f"{tokenizer_key(tokenizer)}|{limits.key()}".encode())
    for path in files:
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:24]


def encode_corpus(
    tokenizer, files: list[Path], cache_dir: Path | None = None, limits: MidiLimits = DEFAULT_LIMITS
) -> Corpus:
    """Tokenize files (skipping bad ones file by file, each with its reason), or load the cached result.

    The cache key covers the tokenizer (class + vocabulary), the reading limits and every file's
    content hash, so any change to one re-tokenizes; an unchanged corpus loads from one .npz file. A
    damaged cache file is named in a warning, deleted and rebuilt.
    """

    def build() -> Corpus:
        return _encode(tokenizer, files, limits)

    if cache_dir is None:
        return build()
    path = Path(cache_dir) / "tokens" / f"{_corpus_key(tokenizer, files, limits)}.npz"
    return cached(path, lambda p: _load(p, len(tokenizer)), build, _save)


def _encode(tokenizer, files: list[Path], limits: MidiLimits) -> Corpus:
    chunks, names, skipped = [], [], []
    for path in tqdm(files, desc="tokenizing", unit="file", disable=len(files) < 50, leave=False):
        try:
            chunks.append(np.asarray(encode_file(tokenizer, path, limits), dtype=np.int32))
            names.append(path.name)
        except ValueError as exc:
            skipped.append((path.name, str(exc)))
    lengths = np.array([0] + [len(c) for c in chunks], dtype=np.int64)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return Corpus(ids=ids, offsets=np.cumsum(lengths), names=names, skipped=skipped)


def _save(corpus: Corpus, handle) -> None:
    meta = json.dumps({"names": corpus.names, "skipped": corpus.skipped})
    np.savez(handle, ids=corpus.ids, offsets=corpus.offsets, meta=np.array(meta))


def _load(path: Path, vocab_size: int) -> Corpus:
    """A cached corpus, read in full and checked: ValueError (or the reader's own error) when damaged."""
    with np.load(path) as data:
        ids, offsets, meta = data["ids"], data["offsets"], json.loads(str(data["meta"]))
    names, skipped = list(meta["names"]), [tuple(s) for s in meta["skipped"]]
    if (
        ids.ndim != 1
        or offsets.shape != (len(names) + 1,)
        or offsets[0] != 0
        or offsets[-1] != len(ids)
        or (np.diff(offsets) < 0).any()
        or (len(ids) and not 0 <= ids.min() <= ids.max() < vocab_size)
    ):
        raise ValueError("its token ids and offsets do not fit together")
    return Corpus(ids=ids, offsets=offsets, names=names, skipped=skipped)
