"""VGMIDI: where the data is, the report's labelled split, and the LM's unlabelled pieces."""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from ..errors import MoodgenError
from ..moods import MOODS, mood_from_valence_arousal
from .download import download_vgmidi, sha256_file
from .files import LMFiles
from .midi import list_midi
from .overlap import NGRAM_NOTES, PhraseIndex, fingerprint

log = logging.getLogger(__name__)

ENV_VAR = "MOODGEN_DATA_DIR"
REQUIRED = ("v1/vgmidi_train.csv", "v1/vgmidi_test.csv", "unlabelled/train", "unlabelled/test")
LABEL_COLUMNS = {"valence", "arousal", "filepath"}
LABELLED_SPLITS = {"train": "v1/vgmidi_train.csv", "test": "v1/vgmidi_test.csv"}
LM_SPLITS = {"train": "unlabelled/train", "val": "unlabelled/test"}  # the LM's split -> its folder
TITLE_OR_HASH, CONTENT = "title_or_hash", "content"  # the two leak rules, applied in this order


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
                    "point it at your VGMIDI folder (the one holding v1/ and unlabelled/), "
                    f"or unset it to use (or download) the copy in {default_cache_root()}"
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


def _labels(row: dict, csv_path: Path) -> tuple[int, int]:
    """(valence, arousal) of one CSV row; anything but 0/1 is one clear error."""
    try:
        valence, arousal = int(row["valence"]), int(row["arousal"])
    except (TypeError, ValueError):
        valence = arousal = -1
    if valence not in (0, 1) or arousal not in (0, 1):
        raise MoodgenError(
            f"label file {csv_path}: {row['filepath']} has valence={row['valence']!r} arousal={row['arousal']!r}; "
            "VGMIDI v1 labels are 0 or 1"
        )
    return valence, arousal


def _describe(labels: tuple[int, int]) -> str:
    valence, arousal = labels
    return f"{MOODS[mood_from_valence_arousal(valence, arousal)]} (valence {valence}, arousal {arousal})"


def _one_label_per_file(rows: list[dict], csv_path: Path) -> list[tuple[str, tuple[int, int]]]:
    """(filepath, labels) per phrase file, in CSV order: a file listed twice with the same labels counts
    once, and a file listed with contradictory labels is dropped (v1 train lists Goldeneye_Statue_0 as
    both depressed and happy: there is no right answer to learn or to score)."""
    labels_by_file: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        found = labels_by_file.setdefault(row["filepath"], [])
        if (labels := _labels(row, csv_path)) not in found:
            found.append(labels)
    kept = []
    for filepath, distinct in labels_by_file.items():
        if len(distinct) > 1:
            log.warning(
                "%s lists %s with contradictory labels %s: dropping the phrase",
                csv_path.name,
                filepath,
                " and ".join(map(_describe, distinct)),
            )
        else:
            kept.append((filepath, distinct[0]))
    return kept


def load_phrases(root: Path, split: str) -> list[Phrase]:
    """The report's labelled split, one row per phrase file (paths relative to v1/).

    159 train phrases (161 rows: Goldeneye_Statue_0 is listed twice with contradictory labels and is
    dropped) and 40 test phrases.
    """
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
        Phrase(path=root / "v1" / filepath, piece=piece_title(Path(filepath)), valence=valence, arousal=arousal)
        for filepath, (valence, arousal) in _one_label_per_file(rows, csv_path)
    ]


@dataclass(frozen=True)
class Exclusion:
    """An unlabelled piece kept out of the LM because a labelled test phrase comes from it."""

    file: str  # relative to the data root, e.g. unlabelled/train/<name>.mid
    split: str  # the LM's split it was dropped from: train | val
    rule: str  # title_or_hash | content
    test_phrase: str  # file stem of the test phrase it holds
    share: float  # fraction of that phrase's NGRAM_NOTES-note runs found in the piece


def _title_or_hash_matcher(root: Path, test: list[Phrase]) -> Callable[[Path], str | None]:
    """The existing rule: a piece byte-identical to a test phrase's full piece in v1/midi, or of the
    same normalised title, gives that phrase's name."""
    by_title = {normalise_title(p.piece): p.path.stem for p in test}
    full_pieces = {p.path.stem: root / "v1" / "midi" / f"{p.piece}.mid" for p in test}
    by_hash = {sha256_file(full): phrase for phrase, full in full_pieces.items() if full.exists()}
    return lambda path: by_hash.get(sha256_file(path)) or by_title.get(normalise_title(path.stem))


def labelled_test_leaks(root: Path, pieces: dict[str, list[Path]], threshold: float) -> list[Exclusion]:
    """Pieces of the LM's splits (split -> paths) that a labelled test phrase was cut from or copied into.

    First the title/hash rule, then content: a piece holding >= threshold of some test phrase's
    NGRAM_NOTES-note runs (catches medleys and re-arrangements under other names, e.g. Song of Storms
    inside Legend_Of_Zelda_Ocarina_Of_Time_MedleyofTime.mid).
    """
    test = load_phrases(root, "test")
    index = PhraseIndex.from_files([p.path for p in test])
    title_or_hash = _title_or_hash_matcher(root, test)
    leaks = []
    for split, paths in pieces.items():
        for path in paths:
            piece = fingerprint(path)
            if phrase := title_or_hash(path):
                rule, share = TITLE_OR_HASH, index.shares(piece).get(phrase, 0.0)
            else:
                best = index.best_match(piece)
                if best.share < threshold:
                    continue
                rule, phrase, share = CONTENT, best.phrase, best.share
            leaks.append(Exclusion(path.relative_to(root).as_posix(), split, rule, phrase, round(share, 4)))
    return leaks


def _exclusion_counts(leaks: list[Exclusion]) -> dict[str, int]:
    counts = {"excluded_labelled_test": len(leaks)}
    for split in LM_SPLITS:
        for rule in (TITLE_OR_HASH, CONTENT):
            counts[f"excluded_{split}_{rule}"] = sum(e.split == split and e.rule == rule for e in leaks)
    return counts


def _overlap_threshold(cfg) -> float:
    threshold = cfg.overlap_threshold
    if not 0 < threshold <= 1:
        raise MoodgenError(
            f"data.overlap_threshold={threshold} must be in (0, 1]: the share of a test phrase's "
            f"{NGRAM_NOTES}-note runs that marks a piece as holding it (default 0.05)"
        )
    return threshold


def lm_files(cfg) -> LMFiles:
    """Unlabelled train pieces for the LM, the unlabelled test pieces as its validation set.

    With data.exclude_labelled_test (the default) both lose the pieces the labelled test phrases come
    from: validation too, since it picks checkpoints and stops training early. False reproduces the
    report's setup.
    """
    root = resolve_root(cfg.root, cfg.download)
    pieces = {split: list_midi(root / folder) for split, folder in LM_SPLITS.items()}
    leaks: list[Exclusion] = []
    if cfg.exclude_labelled_test:
        leaks = labelled_test_leaks(root, pieces, _overlap_threshold(cfg))
        dropped = {root / e.file for e in leaks}
        pieces = {split: [p for p in paths if p not in dropped] for split, paths in pieces.items()}
        counts = _exclusion_counts(leaks)
        log.info(
            "excluded %d unlabelled pieces holding a labelled test phrase: train %d by title/hash + %d by content, "
            "val %d + %d (content: >= %g of a phrase's %d-note runs)",
            len(leaks),
            counts["excluded_train_title_or_hash"],
            counts["excluded_train_content"],
            counts["excluded_val_title_or_hash"],
            counts["excluded_val_content"],
            cfg.overlap_threshold,
            NGRAM_NOTES,
        )
    train, val = pieces["train"], pieces["val"]
    if cfg.max_files:
        train, val = train[: cfg.max_files], val[: cfg.max_files]
    return LMFiles(
        root=root,
        train=train,
        val=val,
        summary={"source": "vgmidi", "root": str(root), **_exclusion_counts(leaks)},
        excluded=[asdict(e) for e in leaks],
    )
