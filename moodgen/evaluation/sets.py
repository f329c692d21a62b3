"""The piece sets an evaluation compares: a folder, an MLflow run's pieces, or a VGMIDI reference."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic

from ..data.midi import MIDI_SUFFIXES, read_piano
from ..errors import MoodgenError
from ..generation.pieces import first_seconds
from ..generation.render import note_count
from ..generation.sidecar import read_sidecar

log = logging.getLogger("moodgen")
COMPANIONS = (".json", ".png", ".wav", ".ogg", ".csv", ".html", ".md")  # written beside pieces: not skipped
REFERENCES = ("vgmidi_test", "vgmidi_unlabelled_test")
RUN_FOLDERS = ("pieces", "samples")  # a generation run's pieces, a training run's samples


@dataclass
class Piece:
    name: str
    path: Path
    score: symusic.Score  # every track merged into one piano track
    sidecar: dict | None = None  # moodgen's JSON beside a generated piece: requested mood, method, ...


@dataclass
class PieceSet:
    label: str
    pieces: list[Piece]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    run_id: str | None = None  # the MLflow run the pieces came from


def read_pieces(files: list[Path], base: Path) -> tuple[list[Piece], list[tuple[str, str]]]:
    pieces, skipped = [], []
    for path in files:
        name = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
        if path.suffix.lower() not in MIDI_SUFFIXES:
            skipped.append((name, "not a MIDI file"))
            continue
        try:
            score = read_piano(path)
        except ValueError as exc:
            skipped.append((name, str(exc)))
            continue
        try:
            sidecar = read_sidecar(path)
        except ValueError as exc:  # the music is still there: evaluated, without a requested mood
            log.warning("%s: %s; evaluated without its requested mood", name, exc)
            sidecar = None
        pieces.append(Piece(name, path, score, sidecar))
    return pieces, skipped


def from_files(label: str, files: list[Path], base: Path, max_pieces: int, seed: int) -> PieceSet:
    pieces, skipped = read_pieces(files, base)
    if max_pieces and len(pieces) > max_pieces:
        keep = sorted(np.random.default_rng(seed).choice(len(pieces), max_pieces, replace=False))
        pieces = [pieces[i] for i in keep]
    if skipped:
        log.warning("%s: skipped %d file(s): %s", label, len(skipped), "; ".join(f"{n} ({r})" for n, r in skipped[:20]))
    if len(pieces) < 2:
        raise MoodgenError(
            f"{label}: {len(pieces)} usable MIDI piece(s) in {base} ({len(skipped)} skipped); "
            "set-level metrics need at least 2 — point it at a folder of .mid files"
        )
    return PieceSet(label, pieces, skipped)


def folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in COMPANIONS)


def from_folder(label: str, folder: Path, max_pieces: int = 0, seed: int = 0) -> PieceSet:
    return from_files(label, folder_files(folder), folder, max_pieces, seed)


def from_run(cfg, run_id: str) -> PieceSet:
    """A generation run's `pieces/` or a training run's `samples/`, downloaded from the store."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..tracking import tracking_uri

    uri = tracking_uri(cfg)
    client = MlflowClient(tracking_uri=uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise MoodgenError(
            f"pieces={run_id!r} is neither a folder nor an MLflow run in {uri}; "
            "give a folder of MIDI files or a generation run id from `mlflow ui`"
        ) from None
    logged = {a.path for a in client.list_artifacts(run_id)}
    folder = next((f for f in RUN_FOLDERS if f in logged), None)
    if folder is None:
        raise MoodgenError(f"run {run_id} holds no pieces ({' or '.join(RUN_FOLDERS)}/ artifacts)")
    with tempfile.TemporaryDirectory(prefix=f"moodgen-eval-{run_id[:8]}-") as download:  # read into memory
        local = Path(client.download_artifacts(run_id, folder, download))
        pieces = from_folder("generated", local, cfg.max_pieces, cfg.seed)
    pieces.run_id = run_id
    return pieces


def generated_set(cfg) -> PieceSet:
    folder = Path(cfg.pieces).expanduser()
    if folder.is_dir():
        return from_folder("generated", folder.resolve(), cfg.max_pieces, cfg.seed)
    return from_run(cfg, str(cfg.pieces))


def reference_set(cfg) -> PieceSet:
    """VGMIDI's labelled test phrases, its unlabelled test pieces, or any folder."""
    from ..data import vgmidi

    if cfg.reference in REFERENCES:
        root = vgmidi.resolve_root(cfg.data_root, download=True)
        if cfg.reference == "vgmidi_test":
            files = [p.path for p in vgmidi.load_phrases(root, "test")]
        else:
            files = sorted(p for p in (root / "unlabelled" / "test").rglob("*") if p.is_file())
        return from_files(cfg.reference, files, root, cfg.max_pieces, cfg.seed)
    folder = Path(cfg.reference).expanduser()
    if not folder.is_dir():
        options = ", ".join(REFERENCES)
        raise MoodgenError(f"unknown reference {cfg.reference!r}: use {options} or a folder of MIDI files")
    return from_folder(folder.name, folder.resolve(), cfg.max_pieces, cfg.seed)


def as_long_as(reference: PieceSet, generated: PieceSet) -> PieceSet:
    """The reference with each piece cut to its first N seconds, N the longest generated piece's length.

    Note and pitch counts, pitch range and repeated bars grow with a piece's length: VGMIDI's test
    phrases run about 100 s, the pieces 30 s, so whole phrases would differ from them by length alone.
    A piece shorter than N stays as it is, and so does one with no note ending within N seconds (silent
    there, or one chord held across N): nothing would be left of it. Exact for one tempo (VGMIDI's
    phrases); else cut in proportion.
    """
    seconds = max(p.score.to("second").end() for p in generated.pieces)
    cuts = [first_seconds(p.score, seconds) for p in reference.pieces]
    pieces = [
        dataclasses.replace(p, score=c) if note_count(c) else p for p, c in zip(reference.pieces, cuts, strict=True)
    ]
    return dataclasses.replace(reference, label=f"{reference.label}, first {seconds:.0f} s", pieces=pieces)
