"""`python -m moodgen.evaluate pieces=<folder|run id> reference=vgmidi_test`: an offline HTML report + MLflow run."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from .cli import hydra_entry

log = logging.getLogger("moodgen")


def evaluate(cfg: DictConfig) -> float:
    from .config import check_ranges
    from .evaluation.mood import load_judges
    from .evaluation.run import evaluate as evaluate_sets
    from .evaluation.sets import as_long_as, generated_set, reference_set
    from .tracking import make_tracker

    check_ranges(cfg)  # the ranges EvaluateConfig declares (the CLI checks them at composition too)
    generated = generated_set(cfg)  # bad paths and empty sets fail here, before any run is opened
    reference = reference_set(cfg)
    if cfg.match_length:  # like with like: the reference cut to the pieces' length
        reference = as_long_as(reference, generated)
    judges, tokenizer = load_judges(cfg, generated)
    folder = Path(cfg.out_dir or Path(cfg.paths.output_dir) / "evaluation").expanduser().resolve()
    tracker = make_tracker(cfg, f"evaluate {generated.run_id or Path(str(cfg.pieces)).name} vs {reference.label}")
    try:
        if generated.run_id:  # linked to the generation (or training) run it evaluates
            tracker.set_tags({"moodgen.pieces_run": generated.run_id})
        result = evaluate_sets(generated, reference, folder, judges, tokenizer, cfg.grid_points)
        tracker.log_metrics(result.metrics)
        tracker.log_artifact(folder, "evaluation")
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    print(f"moodgen: report {result.report} ({len(generated.pieces)} vs {len(reference.pieces)} pieces)", flush=True)
    return result.metrics["eval/mean_oa"]


main = hydra_entry("evaluate", evaluate)

if __name__ == "__main__":
    main()
