"""One recorded generation: pieces in a mood, judged, written and logged as one MLflow run.

Shared by `moodgen.generate` (one command) and `moodgen.serve` (one web request), so a piece from
the browser is made and recorded exactly like one from the command line.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from ..data.download import sha256_file
from ..moods import MOODS
from ..tracking import make_tracker
from .bundle import ModelBundle
from .run import generate_pieces, steering_report


@dataclass
class Generation:
    pieces: list[dict]  # each piece's sidecar, with its files
    metrics: dict[str, float]
    folder: Path
    run_id: str | None  # the generation's MLflow run (None with logger=none)


def output_folder(cfg) -> Path:
    """`out_dir`, else the run's Hydra output folder's `pieces/`."""
    return Path(cfg.out_dir or Path(cfg.paths.output_dir) / "pieces").expanduser().resolve()


def open_command(folder: Path, platform: str | None = None) -> str:
    """The command that opens `folder` in the desktop's file browser (the user plays the pieces from there)."""
    import shlex
    import sys

    platform = platform or sys.platform
    if platform.startswith("win"):
        return f'explorer "{folder}"'
    return f"{'open' if platform == 'darwin' else 'xdg-open'} {shlex.quote(str(folder))}"


def _contents(folder: Path) -> dict[Path, str]:
    """Each cached steering file's digest: new or changed ones go back to the model run."""
    return {p: sha256_file(p) for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}


def fresh_seed() -> int:
    """A new sampling seed (as the web page draws one per piece): each call of generate, new pieces."""
    return secrets.randbelow(2**31)


def resolve_seed(cfg) -> int:
    """`seed`, or (seed=null) a fresh one, written into `cfg` so the run's params and sidecars record it."""
    if cfg.seed is None:
        cfg.seed = fresh_seed()
    return int(cfg.seed)


def generate_recorded(cfg, bundle: ModelBundle, mood: int) -> Generation:
    """`cfg.n` pieces in `mood` (a `moodgen.generate` config), recorded as one MLflow run.

    seed=null draws a fresh seed (set in `cfg`, so the run's `seed` param and each sidecar hold it);
    the same seed, model run and settings make byte-identical pieces again. Steering files evolved on
    the way (genes, the mood-conditioned LM) are logged back to the model run, so the next
    generation with that model starts at once.
    """
    seed = resolve_seed(cfg)
    folder = output_folder(cfg)
    tracker = make_tracker(cfg, f"{cfg.task_name} {MOODS[mood]} · {cfg.steering.name}")
    cached = _contents(bundle.steering_dir)
    try:
        tracker.set_tags({"moodgen.model_run": bundle.run_id, "moodgen.mood": MOODS[mood], "moodgen.seed": seed})
        pieces = generate_pieces(bundle, cfg.steering, cfg, [mood], cfg.n, seed, folder)
        metrics = steering_report(pieces, cfg.steering.name, folder / MOODS[mood])
        evolved = [p for p, text in _contents(bundle.steering_dir).items() if cached.get(p) != text]
        if evolved and tracker.run_id:
            for path in evolved:
                tracker.client.log_artifact(bundle.run_id, str(path), "steering")
        tracker.log_metrics(metrics)
        for piece in pieces:  # this run's files only, even in a reused out_dir
            for path in piece["files"].values():
                tracker.log_artifact(path, f"pieces/{MOODS[mood]}")
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    return Generation(pieces, metrics, folder, tracker.run_id)
