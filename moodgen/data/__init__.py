"""Data sources: each turns a DataConfig into the LM's train / validation MIDI files."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import MoodgenError
from . import folder, vgmidi
from .files import LMFiles

SOURCES: dict[str, Callable[..., LMFiles]] = {"vgmidi": vgmidi.lm_files, "folder": folder.lm_files}


def lm_files(cfg) -> LMFiles:
    if cfg.name not in SOURCES:
        raise MoodgenError(f"unknown data source {cfg.name!r}: use one of {', '.join(SOURCES)}")
    return SOURCES[cfg.name](cfg)
