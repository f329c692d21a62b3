"""A user's own folder of MIDI files: `data=folder data.root=/path`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import MoodgenError
from .files import LMFiles
from .midi import list_midi


def _stable_key(path: Path) -> str:
    # order by a hash of the relative name: a split that does not depend on directory order
    return hashlib.sha256(path.name.encode()).hexdigest()


def lm_files(cfg) -> LMFiles:
    if not cfg.root:
        raise MoodgenError("data=folder needs a folder: add data.root=/path/to/midi")
    root = Path(cfg.root).expanduser().resolve()
    if not root.is_dir():
        raise MoodgenError(f"data.root={cfg.root} is not a folder; point it at a folder of .mid files")
    files = list_midi(root)
    if len(files) < 2:
        raise MoodgenError(
            f"data.root={cfg.root} holds {len(files)} MIDI file(s); the LM needs at least 2 "
            "(one for training, one for validation)"
        )
    shuffled = sorted(files, key=_stable_key)
    n_val = min(len(files) - 1, max(1, round(len(files) * cfg.val_fraction)))
    val, train = sorted(shuffled[:n_val]), sorted(shuffled[n_val:])
    if cfg.max_files:
        train, val = train[: cfg.max_files], val[: cfg.max_files]
    return LMFiles(root=root, train=train, val=val, summary={"source": "folder", "root": str(root)})
