"""`python -m moodgen.classify lm_run=<id>|latest`: the classifier stage on a stored LM, no retraining."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .cli import hydra_entry, optimized_value
from .errors import MoodgenError

log = logging.getLogger("moodgen")


def load_lm_context(cfg: DictConfig, tracker):
    """A pipeline Context holding the stored run's tokenizer, best weights and data root."""
    from .artifacts import load_lm_checkpoint
    from .data import vgmidi
    from .data.files import LMFiles
    from .pipeline import Context
    from .tokenizers import load_tokenizer
    from .tracking import CHECKPOINT_TAG, find_train_run

    client, run = find_train_run(cfg, cfg.lm_run)
    run_id = run.info.run_id
    download = Path(tempfile.mkdtemp(prefix=f"moodgen-{run_id[:8]}-"))
    stored = run.data.tags[CHECKPOINT_TAG]
    checkpoint = Path(client.download_artifacts(run_id, stored, str(download)))
    tokenizer = load_tokenizer(Path(client.download_artifacts(run_id, "tokenizer", str(download))))
    lm_cfg = OmegaConf.load(client.download_artifacts(run_id, "config/config.yaml", str(download)))
    root = vgmidi.resolve_root(cfg.data_root or lm_cfg.data.root, download=True)
    fix = "retrain with python -m moodgen.train, or use another run (lm_run=<run id>)"
    module = load_lm_checkpoint(checkpoint, name=f"{stored} of run {run_id}", fix=fix)  # weights only, checked
    # the stored run's config, with this command's classifier, paths and seed on top
    merged = OmegaConf.merge(lm_cfg, {"classifier": cfg.classifier, "paths": cfg.paths, "seed": cfg.seed})
    log.info("classifying with LM run %s (%s), checkpoint %s", run_id, run.info.run_name, checkpoint.name)
    tracker.set_tags({"moodgen.lm_run": run_id})
    ctx = Context(
        cfg=merged,
        tracker=tracker,
        output_dir=Path(cfg.paths.output_dir),
        tokenizer=tokenizer,
        module=module,
        files=LMFiles(root=root, train=[], val=[], summary={"source": "vgmidi"}),
    )
    return ctx


def classify(cfg: DictConfig) -> float:
    from .classifier.stage import classify_stage
    from .tracking import make_tracker

    if cfg.classifier.name == "none":
        raise MoodgenError("classifier=none leaves nothing to do; use classifier=logreg")
    tracker = make_tracker(cfg, f"classify {cfg.lm_run}")
    try:
        ctx = classify_stage(load_lm_context(cfg, tracker))
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    print(f"moodgen: run recorded: {tracker.where()}", flush=True)
    return optimized_value(cfg, ctx.metrics)


main = hydra_entry("classify", classify)

if __name__ == "__main__":
    main()
