"""`python -m moodgen.generate mood=calm`: new pieces in a mood from the newest (or champion) model."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from .cli import hydra_entry
from .data.download import sha256_file

log = logging.getLogger("moodgen")


def _contents(folder: Path) -> dict[Path, str]:
    """Each cached steering file's digest: new or changed ones go back to the model run."""
    return {p: sha256_file(p) for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}


def generate(cfg: DictConfig) -> float | None:
    from .moods import MOODS, mood_index

    mood = mood_index(cfg.mood)  # an unknown mood fails here, before torch and mlflow load

    from .generation.bundle import from_run
    from .generation.run import generate_pieces, steering_report
    from .tracking import make_tracker

    bundle = from_run(cfg, cfg.model_run)
    folder = Path(cfg.out_dir or Path(cfg.paths.output_dir) / "pieces").expanduser().resolve()
    tracker = make_tracker(cfg, f"generate {MOODS[mood]} · {cfg.steering.name}")
    cached = _contents(bundle.steering_dir)
    try:
        tracker.set_tags({"moodgen.model_run": bundle.run_id, "moodgen.mood": MOODS[mood]})
        pieces = generate_pieces(bundle, cfg.steering, cfg, [mood], cfg.n, cfg.seed, folder)
        metrics = steering_report(pieces, cfg.steering.name, folder / MOODS[mood])
        evolved = [p for p, text in _contents(bundle.steering_dir).items() if cached.get(p) != text]
        if evolved and tracker.run_id:  # genes / weights go to the model run: later generation is instant
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
    for piece in pieces:
        judged = f", judged {piece['judged_mood']}" if piece["judged_mood"] else ""
        print(f"{piece['files']['midi']}  ({piece['seconds']:.1f} s, {piece['notes']} notes{judged})")
    print(f"moodgen: {len(pieces)} {MOODS[mood]} piece(s) in {folder} (model run {bundle.run_id})", flush=True)
    return metrics.get(f"steer/{cfg.steering.name}/accuracy")


main = hydra_entry("generate", generate)

if __name__ == "__main__":
    main()
