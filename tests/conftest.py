"""Shared fixtures: the shared VGMIDI copy, tiny MIDI files built in code, composed configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import symusic
from hydra import compose, initialize_config_dir

from moodgen.cli import CONF_DIR
from moodgen.config import register_configs

REPO = Path(__file__).resolve().parent.parent
VGMIDI = Path(os.environ.get("MOODGEN_TEST_DATA", REPO.parent / "shared" / "data" / "vgmidi"))

register_configs()


def make_midi(path: Path, pitches: list[int], *, tracks: int = 1, step: int = 240) -> Path:
    """A small piano MIDI file: `pitches` as consecutive eighth notes (tpq 480), split over tracks."""
    score = symusic.Score(480)
    for t in range(tracks):
        track = symusic.Track(name=f"hand{t}", program=0, is_drum=False)
        for i, pitch in enumerate(pitches[t::tracks]):
            track.notes.append(symusic.Note(time=(i * tracks + t) * step, duration=step, pitch=pitch, velocity=80))
        score.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


def scale_piece(seed: int, length: int = 96) -> list[int]:
    """A deterministic melody: up and down a C major scale from a seed-dependent start."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    return [48 + (seed % 5) + steps[(i + seed) % len(steps)] + 12 * ((i // 8) % 2) for i in range(length)]


@pytest.fixture(scope="session")
def vgmidi_root() -> Path:
    if not (VGMIDI / "v1" / "vgmidi_train.csv").exists():
        pytest.skip(f"shared VGMIDI copy not found at {VGMIDI} (set MOODGEN_TEST_DATA)")
    return VGMIDI


@pytest.fixture(scope="session")
def midi_folder(tmp_path_factory) -> Path:
    """Twelve short two-hand pieces: enough for a train/val split by piece."""
    folder = tmp_path_factory.mktemp("midi")
    for i in range(12):
        make_midi(folder / f"piece_{i:02d}.mid", scale_piece(i), tracks=2)
    return folder


def compose_entry(entry: str, tmp_path: Path, overrides: list[str], output: str = "out"):
    """An entry point's config (train, classify, generate) as Hydra builds it, paths inside tmp_path."""
    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        return compose(
            entry,
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path / output}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                *overrides,
            ],
        )


def error_line(module: str, args: list[str], cwd: Path = REPO) -> str:
    """Run `python -m <module> <args>`, which must fail with exit 2 and one `moodgen: error:` line."""
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moodgen: error:"), result.stderr
    return lines[0]


def compose_train(tmp_path: Path, overrides: list[str]):
    return compose_entry("train", tmp_path, overrides)


# a model small enough that any test trains it in a second or two
TINY_MODEL = [
    "model.embedding_dim=16",
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.seq_len=32",
    "model.batch_size=4",
]
TINY_TRAINER = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "samples.n=2",
    "samples.max_tokens=64",
    "samples.duration=4",
    # the samples stage's steering (attributes by default) fine-tunes in a moment
    "steering.steps=4",
    "steering.batch_size=4",
    "steering.chunk_tokens=64",
    "steering.max_chunks=24",
]


# screenshots and other files a person looks at after a run: under $MOODGEN_ARTIFACTS/<test> when it
# is set (CI can keep that folder), else in the test's tmp folder; listed at the end of the session
ARTIFACT_FOLDERS: list[Path] = []


@pytest.fixture
def artifacts_dir(request, tmp_path) -> Path:
    base = os.environ.get("MOODGEN_ARTIFACTS")
    folder = Path(base) / request.node.name if base else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    ARTIFACT_FOLDERS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter):
    kept = [folder for folder in ARTIFACT_FOLDERS if folder.is_dir() and any(folder.iterdir())]
    if kept:
        terminalreporter.write_sep("-", "test artefacts (screenshots)")
        for folder in kept:
            terminalreporter.write_line(f"{folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")


def require_tool(available: bool, reason: str) -> None:
    """Skip without a system tool; in CI (CI=true, where .ci/run installs it) its absence is a failure."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)
