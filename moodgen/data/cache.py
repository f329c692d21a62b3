"""Self-healing cache files: an entry that cannot be read back is named in one warning, deleted and rebuilt.

A cache entry is only ever a copy of work that can be redone (tokenized corpora, LM features), so a
damaged one (a truncated write from another tool, a flipped byte, a disk error: BadZipFile, "Bad
CRC-32", a short .npy) must never fail a run, nor every later run until someone deletes it by hand.
Entries are written to a temporary file beside them and renamed, so a killed run leaves none half-written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

log = logging.getLogger("moodgen")
T = TypeVar("T")


def cached(path: Path, load: Callable[[Path], T], build: Callable[[], T], save: Callable[[T, BinaryIO], None]) -> T:
    """`load(path)` when the entry exists and reads back; else `build()`, written with `save(value, handle)`.

    `load` raises any exception (or ValueError from its own checks) for an entry it cannot trust.
    """
    path = Path(path)
    if path.exists():
        try:
            return load(path)
        except Exception as exc:  # whatever the damage, the entry can be rebuilt
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}" if str(exc) else type(exc).__name__
            log.warning("damaged cache file %s (%s): deleted, rebuilding it", path, reason)
            path.unlink(missing_ok=True)
    value = build()
    write_atomic(path, lambda handle: save(value, handle))
    return value


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: parallel runs never share one
    try:
        with tmp.open("wb") as handle:
            write(handle)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
