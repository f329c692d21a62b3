"""The classifier stage: features of the labelled phrases -> CV + Optuna on train -> test once.

Beside the report's split it measures the whole selection procedure by repeated nested CV grouped
by piece (nested.py): on the training phrases (`train_nested_*`, fit to choose defaults by) and on
every labelled phrase (`nested_*`, which includes the test phrases: a measure, never a selector).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow.sklearn
import numpy as np
import sklearn
import torch

from ..artifacts import classifier_types
from ..config import check_ranges
from ..data import vgmidi
from ..errors import MoodgenError
from ..moods import MOODS
from ..tokenizers import encode_corpus
from .augment import AUGMENTATIONS, ExtraRows, configured_copies
from .features import feature_blocks, phrase_features
from .finetune import finetune_and_select
from .nested import nested_accuracies
from .neurons import sentiment_neurons
from .report import evaluate, write_confusion, write_rows
from .search import CV_PROTOCOLS, HEADS, search, with_options

log = logging.getLogger("moodgen")

# target -> (class names, label of a phrase)
TARGETS = {
    "mood4": (list(MOODS), lambda p: p.mood),
    "valence": (["negative", "positive"], lambda p: p.valence),
    "arousal": (["low", "high"], lambda p: p.arousal),
}
SPLITS = ("train", "test")
TRUSTED_TYPES = classifier_types()  # what moodgen.artifacts.load_classifier trusts, whatever a model's MLmodel says
STEERING_FEATURES = "final_cell"  # the steering stage writes the probe's neurons into the LM's cell state
# nested CV scope -> metric prefix: `nested_` metrics include the test phrases, so sweeps must not optimise them
NESTED_SCOPES = {"train": "train_nested", "all": "nested"}


@dataclass
class LabelledSet:
    phrases: dict[str, list[vgmidi.Phrase]]  # split -> phrases that could be read
    skipped: list[tuple[str, str]]  # (file, reason) of phrases that could not

    @property
    def every(self) -> list[vgmidi.Phrase]:
        """Training phrases first, then test phrases: the row order of every all-phrase matrix."""
        return [p for split in SPLITS for p in self.phrases[split]]


def save_sklearn(model, path: Path) -> None:
    """MLflow's sklearn model format, loadable with mlflow.sklearn.load_model(runs:/<id>/...).

    Requirements are stated, not inferred: inference imports the whole environment (seconds). The
    skops format loads only listed types: this package's estimator is listed beside sklearn's. moodgen
    reads it back with moodgen.artifacts.load_classifier: the skops file only, with its own list.
    """
    mlflow.sklearn.save_model(
        model,
        path,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,  # the default only off Databricks
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        skops_trusted_types=TRUSTED_TYPES,
    )


def check_options(cfg) -> None:
    if cfg.name not in ("logreg", "finetune"):
        raise MoodgenError(f"unknown classifier {cfg.name!r}: use logreg, finetune or none")
    for kind in [cfg.features, *cfg.compare]:
        feature_blocks(kind)  # one clear error for an unknown kind
    for target in cfg.targets:
        if target not in TARGETS:
            raise MoodgenError(f"unknown classifier target {target!r}: use {', '.join(TARGETS)}")
    for penalty in cfg.penalties:
        if penalty not in ("l1", "l2"):
            raise MoodgenError(f"unknown classifier penalty {penalty!r}: use l1 or l2")
    choices = {
        "cv": (cfg.cv, CV_PROTOCOLS),
        "heads": (cfg.heads, HEADS),
        "class_weight": (cfg.class_weight, (None, "balanced")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise MoodgenError(f"unknown classifier.{name}={value}: use {' or '.join(map(str, allowed))}")
    for option, allowed in ((cfg.augment, AUGMENTATIONS), (cfg.nested, tuple(NESTED_SCOPES))):
        for value in option:
            if value not in allowed:
                raise MoodgenError(f"unknown classifier option {value!r} in {list(option)}: use {', '.join(allowed)}")
    check_ranges(cfg, "classifier.")  # the ranges ClassifierConfig declares (the CLI checks them at composition)
    if 0 in cfg.transpose:
        raise MoodgenError(f"classifier.transpose={list(cfg.transpose)}: use nonzero semitones in -6..6")
    if "transpose" in cfg.augment and not cfg.transpose:
        raise MoodgenError("classifier.augment=[transpose] needs classifier.transpose, e.g. [-2,-1,1,2]")


def feature_matrix(kind: str, ctx, corpus) -> np.ndarray:
    """`kind` features of a corpus of phrases; LM states cached per checkpoint in paths.cache_dir."""
    return phrase_features(kind, ctx.module.net.cpu(), ctx.tokenizer, corpus, Path(ctx.cfg.paths.cache_dir))


def heads_for(cfg, target: str) -> str:
    """Valence × arousal heads answer the 4 moods only; the 2-class targets are one model anyway."""
    return cfg.heads if target == "mood4" else "joint"


def fit_and_report(
    x: dict,
    y: dict,
    classes: list[str],
    cfg,
    seed: int,
    folder: Path,
    title: str,
    groups: np.ndarray | None = None,
    extra: ExtraRows | None = None,
    heads: str = "joint",
):
    """Search on train (plus train's copies), refit, evaluate once on test; write confusion and trials."""
    result = search(x["train"], y["train"], cfg, seed, groups, extra, heads)
    report = evaluate(result.model.predict(x["test"]), y["test"], y["train"], classes)
    write_confusion(report["confusion"], classes, folder, title)
    write_rows(result.trials, folder / "trials.csv")
    return result, {**report["metrics"], "cv_acc": result.cv_accuracy, **result.chosen}


def nested_scores(x, y, groups, n_train: int, extra: ExtraRows | None, cfg, seed: int, heads: str) -> dict:
    """Mean and std (over outer folds) of nested-CV accuracy, per scope, and the seconds it took."""
    scores = {}
    for scope in cfg.nested:
        rows = np.arange(n_train) if scope == "train" else np.arange(len(y))
        started = time.perf_counter()
        copies = extra.of(rows) if extra is not None else None
        accuracies = nested_accuracies(x[rows], y[rows], groups[rows], cfg, seed, copies, heads)
        prefix = NESTED_SCOPES[scope]
        scores[f"{prefix}_acc"] = float(accuracies.mean())
        scores[f"{prefix}_acc_std"] = float(accuracies.std(ddof=1)) if len(accuracies) > 1 else 0.0
        scores[f"{prefix}_seconds"] = time.perf_counter() - started
    return scores


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
    started = time.perf_counter()
    labelled, corpora = labelled_corpora(ctx)
    out = ctx.output_dir / "classifier"
    metrics = {
        "clf/train_phrases": len(labelled.phrases["train"]),
        "clf/test_phrases": len(labelled.phrases["test"]),
        "clf/skipped_phrases": len(labelled.skipped),
    }
    copies = configured_copies(ctx.tokenizer, [p.path for p in labelled.every], cfg)
    if copies is not None:
        metrics["clf/augmented_rows"] = len(copies[1])
    rows = []
    for kind in dict.fromkeys([cfg.features, *cfg.compare]):
        rows += probe_kind(ctx, kind, labelled, corpora, copies, out, metrics)
    if cfg.steering_neurons:
        x = {s: feature_matrix(STEERING_FEATURES, ctx, corpora[s]) for s in SPLITS}
        ctx.classifiers["steering"], ctx.neurons = steering_probe(
            cfg, x, labelled, ctx.cfg.seed, out / "steering", metrics
        )
    if cfg.name == "finetune":
        for target in cfg.targets:
            classes, label = TARGETS[target]
            y = {s: np.array([label(p) for p in labelled.phrases[s]]) for s in SPLITS}
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
    (out / "settings.json").write_text(json.dumps({**settings(cfg), "skipped": labelled.skipped}, indent=2))
    metrics["clf/seconds"] = time.perf_counter() - started
    ctx.tracker.log_artifact(out, "classifier")
    ctx.record(metrics)
    return ctx


def settings(cfg) -> dict:
    """What a probe was built with: generation reads `features` to compute the same features."""
    keys = ("features", "targets", "cv", "heads", "augment", "transpose", "cut_parts", "class_weight")
    return {key: (list(cfg[key]) if key in ("targets", "augment", "transpose") else cfg[key]) for key in keys}


def probe_kind(ctx, kind: str, labelled: LabelledSet, corpora: dict, copies, out: Path, metrics: dict) -> list[dict]:
    """Every target on one feature kind: the report's split, nested CV, the model kept for generation."""
    cfg, seed = ctx.cfg.classifier, ctx.cfg.seed
    x_every = np.concatenate([feature_matrix(kind, ctx, corpora[s]) for s in SPLITS])
    extra = ExtraRows(feature_matrix(kind, ctx, copies[0]), copies[1]) if copies is not None else None
    n_train = len(labelled.phrases["train"])
    x = {"train": x_every[:n_train], "test": x_every[n_train:]}
    groups = np.array([p.piece for p in labelled.every])
    rows = []
    for target in cfg.targets:
        classes, label = TARGETS[target]
        y_every = np.array([label(p) for p in labelled.every])
        y = {"train": y_every[:n_train], "test": y_every[n_train:]}
        heads = heads_for(cfg, target)
        folder = out / target / kind
        started = time.perf_counter()
        train_copies = extra.of(np.arange(n_train)) if extra is not None else None
        result, scores = fit_and_report(
            x, y, classes, cfg, seed, folder, f"{target} · {kind}", groups[:n_train], train_copies, heads
        )
        scores["search_seconds"] = time.perf_counter() - started
        scores.update(nested_scores(x_every, y_every, groups, n_train, extra, cfg, seed, heads))
        metrics.update({f"clf/{target}/{kind}/{k}": v for k, v in scores.items()})
        rows.append({"target": target, "features": kind, "heads": heads, "penalty": result.penalty, **scores})
        log.info(
            "classifier %s on %s: test acc %.3f (train-majority %.3f, best constant %.3f), CV %.3f, %s%s",
            target,
            kind,
            scores["test_acc"],
            scores["majority_acc"],
            scores["best_constant_acc"],
            scores["cv_acc"],
            result.penalty,
            "".join(f", {k} {scores[k]:.3f}" for k in scores if k.endswith("nested_acc")),
        )
        save_sklearn(result.model, folder / "model")
        ctx.classifiers[f"{target}/{kind}"] = result.model
    return rows


def steering_probe(cfg, x: dict, labelled: LabelledSet, seed: int, folder: Path, metrics: dict):
    """The L1 probe on the LM's final cell state whose non-zero neurons the steering stage evolves.

    Unweighted, whatever classifier.class_weight says: class weights let L1 keep several times more
    neurons (216 instead of about 60 on the default LM), and every kept neuron is a gene to evolve.
    """
    classes, label = TARGETS["mood4"]
    y = {s: np.array([label(p) for p in labelled.phrases[s]]) for s in SPLITS}
    l1_cfg = with_options(cfg, penalties=["l1"], class_weight=None)
    result, scores = fit_and_report(x, y, classes, l1_cfg, seed, folder, "mood4 · L1 steering probe")
    neurons = sentiment_neurons(result.model, classes)
    (folder / "neurons.json").write_text(json.dumps(neurons, indent=2))
    save_sklearn(result.model, folder / "model")
    metrics.update({f"clf/steering/{k}": v for k, v in scores.items()})
    metrics["clf/steering/neurons"] = neurons["count"]
    log.info("steering probe (L1): %d sentiment neurons, test acc %.3f", neurons["count"], scores["test_acc"])
    return result.model, neurons


def labelled_corpora(ctx) -> tuple[LabelledSet, dict]:
    """The report's split, tokenized; phrases that cannot be read are listed and left out."""
    phrases, corpora, skipped = {}, {}, []
    for split in SPLITS:
        rows = vgmidi.load_phrases(ctx.files.root, split)
        corpus = encode_corpus(ctx.tokenizer, [p.path for p in rows], Path(ctx.cfg.paths.cache_dir))
        kept = set(corpus.names)
        phrases[split] = [p for p in rows if p.path.name in kept]
        corpora[split] = corpus
        skipped += corpus.skipped
    if skipped:
        log.warning("classifier: skipped %d phrase(s): %s", len(skipped), "; ".join(f"{n} ({r})" for n, r in skipped))
    return LabelledSet(phrases, skipped), corpora
