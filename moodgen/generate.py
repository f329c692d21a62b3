"""`python -m moodgen.generate mood=calm`: new pieces in a mood from the newest (or champion) model."""

from __future__ import annotations

from omegaconf import DictConfig

from .cli import hydra_entry


def generate(cfg: DictConfig) -> float | None:
    from .moods import MOODS, mood_index

    mood = mood_index(cfg.mood)  # an unknown mood fails here, before torch and mlflow load

    from .generation.bundle import from_run
    from .generation.session import generate_recorded

    bundle = from_run(cfg, cfg.model_run)
    result = generate_recorded(cfg, bundle, mood)
    for piece in result.pieces:
        judged = f", judged {piece['judged_mood']}" if piece["judged_mood"] else ""
        notes = f"{piece['notes']} notes" if piece["notes"] else "SILENT: no notes"
        print(f"{piece['files']['midi']}  ({piece['seconds']:.1f} s, {notes}{judged})")
    print(
        f"moodgen: {len(result.pieces)} {MOODS[mood]} piece(s) in {result.folder} (model run {bundle.run_id})",
        flush=True,
    )
    return result.metrics.get(f"steer/{cfg.steering.name}/accuracy")


main = hydra_entry("generate", generate)

if __name__ == "__main__":
    main()
