"""The classifier stage: LM states of the labelled phrases -> CV + Optuna on train -> test once."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow.sklearn
import numpy as np
import sklearn
import torch

from ..data import vgmidi
from ..errors import MoodgenError
from ..moods import MOODS
from ..tokenizers import encode_corpus
from .features import FEATURES, cached_lm_features
from .finetune import finetune_and_select
from .handcrafted import describe
from .neurons import sentiment_neurons
from .report import evaluate, write_confusion, write_rows
from .search import search

log = logging.getLogger("moodgen")

# target -> (class names, label of a phrase)
TARGETS = {
    "mood4": (list(MOODS), lambda p: p.mood),
    "valence": (["negative", "positive"], lambda p: p.valence),
    "arousal": (["low", "high"], lambda p: p.arousal),
}
HANDCRAFTED = "handcrafted"


@dataclass
class LabelledSet:
    phrases: dict[str, list[vgmidi.Phrase]]  # split -> phrases that could be read
    skipped: list[tuple[str, str]]  # (file, reason) of phrases that could not


def save_sklearn(model, path: Path) -> None:
    """MLflow's sklearn model format, loadable with mlflow.sklearn.load_model(runs:/<id>/...).

    Requirements are stated, not inferred: inference imports the whole environment (seconds).
    """
    mlflow.sklearn.save_model(model, path, pip_requirements=[f"scikit-learn=={sklearn.__version__}"])


def weights_id(net: torch.nn.Module) -> str:
    """A hash of the weights: features are cached per checkpoint."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_options(cfg) -> None:
    if cfg.name not in ("logreg", "finetune"):
        raise MoodgenError(f"unknown classifier {cfg.name!r}: use logreg, finetune or none")
    for kind in [cfg.features, *cfg.compare]:
        if kind not in (*FEATURES, HANDCRAFTED):
            raise MoodgenError(f"unknown classifier feature {kind!r}: use {', '.join((*FEATURES, HANDCRAFTED))}")
    for target in cfg.targets:
        if target not in TARGETS:
            raise MoodgenError(f"unknown classifier target {target!r}: use {', '.join(TARGETS)}")
    for penalty in cfg.penalties:
        if penalty not in ("l1", "l2"):
            raise MoodgenError(f"unknown classifier penalty {penalty!r}: use l1 or l2")


def feature_matrix(kind: str, ctx, corpus, phrases: list[vgmidi.Phrase]) -> np.ndarray:
    if kind == HANDCRAFTED:  # on the decoded tokens: the judge sees generated pieces the same way
        decode = ctx.tokenizer.decode
        return np.stack([describe(decode([corpus.piece(i)[1:-1].tolist()])) for i in range(len(phrases))])
    net = ctx.module.net.cpu()
    return cached_lm_features(net, corpus, kind, weights_id(net), Path(ctx.cfg.paths.cache_dir))


def fit_and_report(x: dict, y: dict, classes: list[str], cfg, seed: int, folder: Path, title: str):
    """Search on train, refit, evaluate once on test; write the confusion matrix and trials table."""
    result = search(x["train"], y["train"], cfg, seed)
    report = evaluate(result.model.predict(x["test"]), y["test"], y["train"], classes)
    write_confusion(report["confusion"], classes, folder, title)
    write_rows(result.trials, folder / "trials.csv")
    metrics = {**report["metrics"], "cv_acc": result.cv_accuracy, "log2_C": float(np.log2(result.c))}
    return result, metrics


def finetune_target(ctx, corpora: dict, y: dict, classes: list[str], target: str, folder: Path) -> dict:
    """classifier=finetune for one target: CV over epochs on train, refit, test once."""
    cfg = ctx.cfg.classifier
    model, predicted, epochs, cv_acc, curve = finetune_and_select(
        ctx.module.net.cpu(), corpora, y, len(classes), cfg, ctx.cfg.seed
    )
    report = evaluate(predicted, y["test"], y["train"], classes)
    write_confusion(report["confusion"], classes, folder, f"{target} · finetune")
    write_rows([{"epochs": i + 1, "cv_accuracy": a} for i, a in enumerate(curve)], folder / "cv_by_epoch.csv")
    torch.save(model.state_dict(), folder / "model.pt")
    return {**report["metrics"], "cv_acc": cv_acc, "epochs": float(epochs)}


def classify_stage(ctx):
    cfg = ctx.cfg.classifier
    if cfg.name == "none":
        return ctx
    check_options(cfg)
    if ctx.files.summary.get("source") != "vgmidi":
        log.info("classifier stage skipped: it needs VGMIDI's labelled phrases (data=vgmidi)")
        return ctx
    labelled, corpora = labelled_corpora(ctx)
    out = ctx.output_dir / "classifier"
    rows, metrics = (
        [],
        {
            "clf/train_phrases": len(labelled.phrases["train"]),
            "clf/test_phrases": len(labelled.phrases["test"]),
            "clf/skipped_phrases": len(labelled.skipped),
        },
    )
    for kind in dict.fromkeys([cfg.features, *cfg.compare]):
        x = {s: feature_matrix(kind, ctx, corpora[s], labelled.phrases[s]) for s in ("train", "test")}
        for target in cfg.targets:
            classes, label = TARGETS[target]
            y = {s: np.array([label(p) for p in labelled.phrases[s]]) for s in ("train", "test")}
            folder = out / target / kind
            result, scores = fit_and_report(x, y, classes, cfg, ctx.cfg.seed, folder, f"{target} · {kind}")
            metrics.update({f"clf/{target}/{kind}/{k}": v for k, v in scores.items()})
            rows.append({"target": target, "features": kind, "penalty": result.penalty, **scores})
            log.info(
                "classifier %s on %s: test acc %.3f (train-majority %.3f, best constant %.3f), CV %.3f, C=2^%.2f %s",
                target,
                kind,
                scores["test_acc"],
                scores["majority_acc"],
                scores["best_constant_acc"],
                scores["cv_acc"],
                scores["log2_C"],
                result.penalty,
            )
            save_sklearn(result.model, folder / "model")
            ctx.classifiers[f"{target}/{kind}"] = result.model
        if kind == cfg.features == "final_cell" and cfg.steering_neurons:  # neurons are cell-state units
            ctx.classifiers["steering"], ctx.neurons = steering_probe(
                cfg, x, labelled, ctx.cfg.seed, out / "steering", metrics
            )
    if cfg.name == "finetune":
        for target in cfg.targets:
            classes, label = TARGETS[target]
            y = {s: np.array([label(p) for p in labelled.phrases[s]]) for s in ("train", "test")}
            scores = finetune_target(ctx, corpora, y, classes, target, out / target / "finetune")
            metrics.update({f"clf/{target}/finetune/{k}": v for k, v in scores.items()})
            rows.append({"target": target, "features": "finetune", "penalty": "", **scores})
            log.info(
                "classifier %s fine-tuned: test acc %.3f, CV %.3f after %d epochs",
                target,
                scores["test_acc"],
                scores["cv_acc"],
                scores["epochs"],
            )
    write_rows(rows, out / "summary.csv")
    (out / "settings.json").write_text(
        json.dumps(
            {"features": cfg.features, "targets": list(cfg.targets), "cv": cfg.cv, "skipped": labelled.skipped},
            indent=2,
        )
    )
    ctx.tracker.log_artifact(out, "classifier")
    ctx.record(metrics)
    return ctx


def steering_probe(cfg, x: dict, labelled: LabelledSet, seed: int, folder: Path, metrics: dict):
    """The L1 probe whose non-zero neurons the steering stage evolves (same features, same CV)."""
    classes, label = TARGETS["mood4"]
    y = {s: np.array([label(p) for p in labelled.phrases[s]]) for s in ("train", "test")}
    l1_cfg = _with(cfg, penalties=["l1"])
    result, scores = fit_and_report(x, y, classes, l1_cfg, seed, folder, "mood4 · L1 steering probe")
    neurons = sentiment_neurons(result.model, classes)
    (folder / "neurons.json").write_text(json.dumps(neurons, indent=2))
    save_sklearn(result.model, folder / "model")
    metrics.update({f"clf/steering/{k}": v for k, v in scores.items()})
    metrics["clf/steering/neurons"] = neurons["count"]
    log.info("steering probe (L1): %d sentiment neurons, test acc %.3f", neurons["count"], scores["test_acc"])
    return result.model, neurons


def _with(cfg, **changes):
    from omegaconf import OmegaConf

    copy = OmegaConf.to_container(cfg)
    copy.update(changes)
    return OmegaConf.create(copy)


def labelled_corpora(ctx) -> tuple[LabelledSet, dict]:
    """The report's split, tokenized; phrases that cannot be read are listed and left out."""
    phrases, corpora, skipped = {}, {}, []
    for split in ("train", "test"):
        rows = vgmidi.load_phrases(ctx.files.root, split)
        corpus = encode_corpus(ctx.tokenizer, [p.path for p in rows], Path(ctx.cfg.paths.cache_dir))
        kept = set(corpus.names)
        phrases[split] = [p for p in rows if p.path.name in kept]
        corpora[split] = corpus
        skipped += corpus.skipped
    if skipped:
        log.warning("classifier: skipped %d phrase(s): %s", len(skipped), "; ".join(f"{n} ({r})" for n, r in skipped))
    return LabelledSet(phrases, skipped), corpora
