"""`python -m moodgen.train`: compose the config, run the pipeline, return the optimised metric."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from .cli import hydra_entry, overrides_label
from .errors import MoodgenError

log = logging.getLogger("moodgen")


def run_name(cfg: DictConfig) -> str:
    name = cfg.logger.run_name or f"{cfg.model.name}-{cfg.tokenizer.name}"
    label = overrides_label()
    return f"{name} {label}".strip()


def train(cfg: DictConfig) -> float | None:
    """Run one training job and return cfg.optimized_metric (what a sweeper optimises)."""
    # heavy imports here, so a wrong option is reported before torch and mlflow load
    from . import pipeline
    from .data import lm_files
    from .tracking import make_tracker

    files = lm_files(cfg.data)  # a wrong data path fails here, before a run is recorded
    tracker = make_tracker(cfg, run_name(cfg))
    try:
        ctx = pipeline.run(cfg, tracker, files)
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
        checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
        if checkpoints.is_dir():
            tracker.log_artifact(checkpoints, "checkpoints")
        tracker.end("KILLED")
        log.warning("interrupted: checkpoints so far are in %s", checkpoints)
        raise
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    print(f"moodgen: run recorded: {tracker.where()}", flush=True)
    if tracker.run_id:
        print(f"moodgen: browse it with: mlflow ui --backend-store-uri {tracker.uri}", flush=True)
    if cfg.optimized_metric not in ctx.metrics:
        raise MoodgenError(
            f"optimized_metric={cfg.optimized_metric} was not measured; choose one of {', '.join(sorted(ctx.metrics))}"
        )
    return ctx.metrics[cfg.optimized_metric]


main = hydra_entry("train", train)

if __name__ == "__main__":
    main()
