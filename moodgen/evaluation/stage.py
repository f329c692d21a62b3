"""The training pipeline's last stage: evaluate its own samples against VGMIDI's labelled test phrases."""

from __future__ import annotations

import logging

from ..data import vgmidi
from ..generation.bundle import from_context
from .run import evaluate
from .sets import as_long_as, from_files, from_folder

log = logging.getLogger("moodgen")


def evaluate_stage(ctx):
    samples = ctx.output_dir / "samples"
    if not ctx.cfg.samples.evaluate or ctx.files.summary.get("source") != "vgmidi" or not samples.is_dir():
        return ctx
    try:
        result = evaluate_samples(ctx, samples)
    except Exception as exc:  # the trained model and its samples count more than their report
        log.warning("evaluation stage failed, the run keeps its model and samples: %s", first_line(exc))
        ctx.record({"eval/failed": 1.0})
        return ctx
    ctx.tracker.log_artifact(result.folder, "evaluation")
    ctx.report = result.report
    ctx.record(result.metrics)
    return ctx


def first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def evaluate_samples(ctx, samples):
    root = ctx.files.root
    generated = from_folder("samples", samples)
    reference = from_files("vgmidi_test", [p.path for p in vgmidi.load_phrases(root, "test")], root, 0, 0)
    reference = as_long_as(reference, generated)  # like with like: the samples' length
    bundle = from_context(ctx)
    return evaluate(generated, reference, ctx.output_dir / "evaluation", bundle.judges, bundle.tokenizer)
