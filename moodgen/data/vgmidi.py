"""VGMIDI: where the data is, the report's labelled split, and the LM's unlabelled pieces."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from ..errors import MoodgenError
from ..moods import mood_from_valence_arousal
from .download import download_vgmidi, sha256_file
from .files import LMFiles
from .midi import list_midi

ENV_VAR = "MOODGEN_DATA_DIR"
REQUIRED = ("v1/vgmidi_train.csv", "v1/vgmidi_test.csv", "unlabelled/train", "unlabelled/test")
LABEL_COLUMNS = {"valence", "arousal", "filepath"}
LABELLED_SPLITS = {"train": "v1/vgmidi_train.csv", "test": "v1/vgmidi_test.csv"}


@dataclass(frozen=True)
class Phrase:
    """One labelled phrase of the v1 split."""

    path: Path
    piece: str  # title of the full piece it was cut from (file stem without "_<n>")
    valence: int
    arousal: int

    @property
    def mood(self) -> int:
        return mood_from_valence_arousal(self.valence, self.arousal)


def default_cache_root() -> Path:
    return Path(user_cache_dir("moodgen")) / "vgmidi"


def _missing(root: Path) -> list[str]:
    return [rel for rel in REQUIRED if not (root / rel).exists()]


def resolve_root(root: str | None, download: bool = True) -> Path:
    """data.root, else $MOODGEN_DATA_DIR, else the user cache (downloading it when allowed)."""
    for candidate, origin in ((root, "data.root"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if candidate:
            path = Path(candidate).expanduser().resolve()
            missing = _missing(path)
            if missing:
                raise MoodgenError(
                    f"{origin}={candidate} is not a VGMIDI copy (missing {missing[0]}); "
                    "point it at the folder holding v1/ and unlabelled/, e.g. ../shared/data/vgmidi"
                )
            return path
    cache = default_cache_root()
    if not _missing(cache):
        return cache
    if not download:
        raise MoodgenError(
            f"no VGMIDI data: set data.root=/path/to/vgmidi (or {ENV_VAR}), "
            "or allow the download with data.download=true"
        )
    return download_vgmidi(cache)


def piece_title(path: Path) -> str:
    """'Final_Fantasy_7_Continue_0.mid' -> 'Final_Fantasy_7_Continue'."""
    return re.sub(r"_\d+$", "", path.stem)


def normalise_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.lower())


def load_phrases(root: Path, split: str) -> list[Phrase]:
    """The report's labelled split: 161 train / 40 test phrases (paths relative to v1/)."""
    csv_path = root / LABELLED_SPLITS[split]
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = LABEL_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise MoodgenError(
                f"label file {csv_path} lacks column(s) {', '.join(sorted(missing))}; "
                f"expected {','.join(sorted(LABEL_COLUMNS))} (VGMIDI v1 layout)"
            )
        rows = list(reader)
    return [
        Phrase(
            path=root / "v1" / row["filepath"],
            piece=piece_title(Path(row["filepath"])),
            valence=int(row["valence"]),
            arousal=int(row["arousal"]),
        )
        for row in rows
    ]


def labelled_test_pieces(root: Path, unlabelled: list[Path]) -> list[Path]:
    """Unlabelled pieces that the labelled test phrases were cut from.

    Matched two ways: byte-identical to the full piece in v1/midi, or the same normalised title.
    """
    titles = {phrase.piece for phrase in load_phrases(root, "test")}
    names = {normalise_title(t) for t in titles}
    hashes = {sha256_file(p) for t in titles if (p := root / "v1" / "midi" / f"{t}.mid").exists()}
    return [p for p in unlabelled if normalise_title(p.stem) in names or sha256_file(p) in hashes]


def lm_files(cfg) -> LMFiles:
    """Unlabelled train pieces for the LM, the unlabelled test pieces as its validation set."""
    root = resolve_root(cfg.root, cfg.download)
    train = list_midi(root / "unlabelled" / "train")
    val = list_midi(root / "unlabelled" / "test")
    excluded: list[Path] = []
    if cfg.exclude_labelled_test:
        excluded = labelled_test_pieces(root, train)
        dropped = set(excluded)
        train = [p for p in train if p not in dropped]
    if cfg.max_files:
        train, val = train[: cfg.max_files], val[: cfg.max_files]
    return LMFiles(
        root=root,
        train=train,
        val=val,
        summary={"source": "vgmidi", "root": str(root), "excluded_labelled_test": len(excluded)},
    )
