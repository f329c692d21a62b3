"""The training pipeline's last stage: evaluate its own samples against VGMIDI's labelled test phrases."""

from __future__ import annotations

import logging

from ..data import vgmidi
from ..errors import MoodgenError
from .run import evaluate
from .sets import from_files, from_folder

log = logging.getLogger("moodgen")


def evaluate_stage(ctx):
    samples = ctx.output_dir / "samples"
    if not ctx.cfg.samples.evaluate or ctx.files.summary.get("source") != "vgmidi" or not samples.is_dir():
        return ctx
    from ..generation.bundle import from_context

    root = ctx.files.root
    try:
        generated = from_folder("samples", samples)
        reference = from_files("vgmidi_test", [p.path for p in vgmidi.load_phrases(root, "test")], root, 0, 0)
    except MoodgenError as exc:  # e.g. an undertrained LM's silent samples: the trained model still counts
        log.warning("evaluation stage skipped: %s", exc)
        return ctx
    bundle = from_context(ctx)
    result = evaluate(generated, reference, ctx.output_dir / "evaluation", bundle.judges, bundle.tokenizer)
    ctx.tracker.log_artifact(result.folder, "evaluation")
    ctx.record(result.metrics)
    return ctx
