"""`python -m moodgen.train`: compose the config, run the pipeline, return the optimised metric."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .cli import hydra_entry, optimized_value, overrides_label
from .errors import MoodgenError

log = logging.getLogger("moodgen")


def run_name(cfg: DictConfig) -> str:
    name = cfg.logger.run_name or f"{cfg.model.name}-{cfg.tokenizer.name}"
    label = overrides_label()
    return f"{name} {label}".strip()


def check_launch(cfg: DictConfig) -> None:
    """DDP's script launcher re-runs the command line in every rank: inside a local multirun each
    rank would launch the whole sweep again, so that combination is refused up front."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not str(cfg.trainer.strategy).startswith("ddp"):
        return
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if hydra_cfg.mode == RunMode.MULTIRUN and "BasicLauncher" in launcher:
        raise MoodgenError(
            "trainer=ddp inside a local multirun would re-launch the sweep in every rank; run the arms one "
            "at a time, or sweep on a cluster with hydra/launcher=slurm (one job per arm, srun starts the ranks)"
        )


def resume_config(cfg: DictConfig) -> tuple[DictConfig, str | None]:
    """The stopped run's own config (with this command's paths) and its newest checkpoint; no
    checkpoint (None) when the run is FINISHED already."""
    from .tracking import resume_checkpoint

    run, stored, checkpoint = resume_checkpoint(cfg, cfg.resume)
    run_id = run.info.run_id
    paths = OmegaConf.to_container(cfg.paths, resolve=True)
    original = OmegaConf.select(stored, "paths.output_dir")
    if original and Path(original).is_dir():
        # the same checkpoint folder: Lightning then restores the best score and file kept so far
        paths["output_dir"] = original
    keep = {"paths": paths, "resume": run_id}
    merged = OmegaConf.merge(cfg, {k: v for k, v in stored.items() if k not in keep}, keep)
    if checkpoint:
        log.info("resuming run %s from %s", run_id, checkpoint)
    return merged, checkpoint


def finished_run(cfg: DictConfig) -> float | None:
    """resume= of a FINISHED run: nothing to do, and its record is left as it is."""
    from .tracking import open_store, tracking_uri

    run = open_store(tracking_uri(cfg)).get_run(cfg.resume)
    print(
        f"moodgen: run {cfg.resume} is complete (FINISHED); nothing to resume. "
        f"Make music with it: python -m moodgen.generate model_run={cfg.resume} mood=calm",
        flush=True,
    )
    return run.data.metrics.get(cfg.optimized_metric)


def train(cfg: DictConfig) -> float | None:
    """Run one training job and return cfg.optimized_metric (what a sweeper optimises)."""
    # heavy imports here, so a wrong option is reported before torch and mlflow load
    from . import pipeline
    from .data import lm_files
    from .tracking import make_tracker

    check_launch(cfg)
    checkpoint = None
    if cfg.resume:
        cfg, checkpoint = resume_config(cfg)
        if checkpoint is None:
            return finished_run(cfg)
    files = lm_files(cfg.data)  # a wrong data path fails here, before a run is recorded
    tracker = make_tracker(cfg, run_name(cfg), run_id=cfg.resume)
    try:
        ctx = pipeline.run(cfg, tracker, files, resume_from=checkpoint)
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
        checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
        try:
            if checkpoints.is_dir():
                tracker.log_artifact(checkpoints, "checkpoints")
        finally:
            tracker.end("KILLED")
        log.warning("interrupted: checkpoints so far are in %s; continue with resume=%s", checkpoints, tracker.run_id)
        raise
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    if not ctx.is_main:
        return ctx.metrics.get(cfg.optimized_metric)
    print(f"moodgen: run recorded: {tracker.where()}", flush=True)
    if tracker.run_id:
        print(f"moodgen: browse it with: {tracker.browse_hint()}", flush=True)
    print_made(ctx)
    return optimized_value(cfg, ctx.metrics)


def print_made(ctx) -> None:
    """The files a user opens after training: the samples (one command to listen) and the report."""
    from .generation.session import open_command

    if ctx.samples_dir is not None:
        print(f"moodgen: samples (per mood: .wav, .mid, piano-roll .png): {ctx.samples_dir}", flush=True)
        print(f"moodgen: listen: {open_command(ctx.samples_dir)}", flush=True)
    if ctx.report is not None:
        print(f"moodgen: evaluation report: {ctx.report}", flush=True)


main = hydra_entry("train", train)

if __name__ == "__main__":
    main()
