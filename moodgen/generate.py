"""`python -m moodgen.generate mood=calm`: new pieces in a mood from the newest (or champion) model."""

from __future__ import annotations

from omegaconf import DictConfig

from .cli import hydra_entry


def generate(cfg: DictConfig) -> float | None:
    from .moods import MOODS, mood_index

    mood = mood_index(cfg.mood)  # an unknown mood fails here, before torch and mlflow load

    from .generation.bundle import from_run
    from .generation.session import generate_recorded, open_command

    bundle = from_run(cfg, cfg.model_run)
    result = generate_recorded(cfg, bundle, mood)  # seed=null: a fresh seed, set in cfg.seed
    print_pieces(result.pieces)
    folder = result.folder / MOODS[mood]
    print(f"moodgen: {len(result.pieces)} {MOODS[mood]} piece(s) in {folder}", flush=True)
    print(f"moodgen: model run {bundle.run_id} ({bundle.picked or 'model_run=' + str(cfg.model_run)})", flush=True)
    print(f"moodgen: seed {cfg.seed}: make these again with seed={cfg.seed} model_run={bundle.run_id}", flush=True)
    print(f"moodgen: listen: {open_command(folder)}", flush=True)
    return result.metrics.get(f"steer/{cfg.steering.name}/accuracy")


def print_pieces(pieces: list[dict]) -> None:
    """One line per piece: the file to play (the WAV; the MIDI where no WAV was rendered), its length,
    notes and the mood its judge hears (the hand-crafted judge; the LM-state probe where the steering
    ranked by the first)."""
    for piece in pieces:
        path = piece["files"].get("wav") or piece["files"]["midi"]
        judged = f", judged {piece['judged_mood']} by the {piece['judged_by']}" if piece["judged_mood"] else ""
        notes = f"{piece['notes']} notes" if piece["notes"] else "SILENT: no notes"
        print(f"{path}  ({piece['seconds']:.1f} s, {notes}{judged})", flush=True)


main = hydra_entry("generate", generate)

if __name__ == "__main__":
    main()
