"""What a data source hands to the tokenizer: the LM's train and validation pieces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LMFiles:
    root: Path
    train: list[Path]
    val: list[Path]  # whole pieces, never windows of training pieces
    summary: dict[str, Any] = field(default_factory=dict)  # scalars: logged as tags and into data/summary.json
    # pieces a source left out and why, one JSON-ready dict each (vgmidi: file, split, rule, test_phrase,
    # share); too long for a tag, it belongs in data/summary.json only
    excluded: list[dict[str, Any]] = field(default_factory=list)
