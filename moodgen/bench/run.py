"""The steering benchmark: methods x folds x fits x seeds x moods, judged by a judge that never saw the steering's data.

Every (fold, fit, seed, mood) is one unit with a sampling stream of its own; every method draws from
the same streams, so methods are compared unit by unit (paired by seed). A fit is one fitting of what a method
fits per fold (its fine-tuned LM, its GA genes) with its own `steering.seed`: with `fits` > 1 the tables carry
the spread another fit of the same settings brings, not one fit's luck.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic
import torch
from omegaconf import OmegaConf

from ..classifier.augment import ExtraRows, configured_copies, transpose_by
from ..classifier.features import HANDCRAFTED, key_blind, phrase_features
from ..classifier.report import write_rows
from ..config import check_ranges
from ..data import vgmidi
from ..errors import MoodgenError
from ..generation.bundle import ModelBundle
from ..generation.pieces import Judges, mood_name, predicted_moods, score_ids, to_score, write_piece
from ..generation.render import note_count
from ..moods import MOODS
from ..steering import STEERING, make_steering
from ..steering.base import GenerationJob, sampling_stream
from ..tokenizers import Corpus, encode_corpus
from .folds import FoldFeatures, FoldModels, fit_fold, piece_folds
from .musicality import PIECE_COLUMNS, fold_musicality, piece_row
from .stats import cluster_difference, paired_difference, wilson
from .views import CopyIndex, distribution_confusion, own_mood_closest

log = logging.getLogger("moodgen")
# metric name -> row column, in the order of `verdicts`' columns: the judge, the second judge, both as one panel
JUDGES = {"accuracy": "hit", "state_accuracy": "state_hit", "panel_accuracy": "panel_hit"}
# metric name and row column: both judges heard the same mood (right or wrong), how far either can be trusted
AGREEMENT = "judges_agree"
# metric name and row column: each judge hears the same mood in the music moved a semitone down and up. A
# listener does; a judge reading absolute pitch classes may not (experiments/attributes.md, "hears the key")
KEY_STABLE = {"key_stable": "key_stable", "state_key_stable": "state_key_stable"}
KEY_MOVES = (-1, 1)  # semitones: nearly no change of register, but 5 of a key's 7 pitch classes change
# every share reported per method and mood, and on the real excerpts
SHARES = {**JUDGES, AGREEMENT: AGREEMENT, **KEY_STABLE}
# how the fold's probe learns, in the fold cache's key: the GA's genes and the conditioned LM follow the probe (a
# new value refits them, and the fold's attribute LM, cached in the same folder, once). The fold's fine-tuned LMs
# also follow the sequences they learn from (GenerationJob.refit_stale)
FOLD_PROBE = "the fold's phrases and their classifier.augment copies"


@dataclass
class LabelledPhrases:
    """The labelled training phrases as the benchmark uses them: labels, pieces, features, decoded music."""

    phrases: list[vgmidi.Phrase]
    corpus: Corpus  # framed token ids, aligned with phrases
    moods: np.ndarray
    # each phrase's first `duration` seconds as the tokenizer decodes it: the view a generated piece gets,
    # and its length (whole phrases run ~100 s, so note counts, pitch counts and repeats would differ by length)
    scores: list[symusic.Score]


def check_options(cfg) -> None:
    from ..classifier.stage import check_options as check_classifier

    check_ranges(cfg)  # the ranges BenchmarkConfig declares (the CLI checks them at composition too)
    check_classifier(cfg.classifier)
    for name in [cfg.steering.name, *cfg.compare]:
        if name not in STEERING:
            raise MoodgenError(f"unknown steering {name!r} in the benchmark: use {', '.join(STEERING)}")
    for steering_cfg in method_configs(cfg):  # each method checks its own options: one line before any work
        make_steering(steering_cfg)


def method_configs(cfg) -> list:
    """The compared methods with their shipped settings (conf/steering/<name>.yaml and what it
    composes, e.g. conf/mood_profile/), then `steering` as set."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ..cli import CONF_DIR

    def shipped(name: str):
        return compose("benchmark", overrides=[f"steering={name}"]).steering

    configs = []
    for name in dict.fromkeys(cfg.compare):
        if name == cfg.steering.name:
            continue
        if GlobalHydra.instance().is_initialized():  # inside `python -m moodgen.benchmark`
            configs.append(shipped(name))
        else:  # called from Python
            with initialize_config_dir(str(CONF_DIR)):
                configs.append(shipped(name))
    return [*configs, cfg.steering]


def labelled_phrases(bundle: ModelBundle, cache_dir: Path, seconds: float | None) -> LabelledPhrases:
    if bundle.data is None:
        raise MoodgenError("the steering benchmark needs a model trained on VGMIDI (its labelled phrases)")
    _, root = bundle.data()
    rows = vgmidi.load_phrases(root, "train")  # never the test phrases
    corpus = encode_corpus(bundle.tokenizer, [p.path for p in rows], cache_dir)
    kept = set(corpus.names)
    phrases = [p for p in rows if p.path.name in kept]
    scores = [to_score(bundle.tokenizer, corpus.piece(i)[1:-1].tolist(), seconds) for i in range(len(phrases))]
    return LabelledPhrases(phrases, corpus, np.array([p.mood for p in phrases]), scores)


def fold_cache(cfg, bundle: ModelBundle, fold: int) -> Path:
    """Where a fold's GA genes and fine-tuned LMs (conditioned, attributes) are kept: per model run, split and probe
    settings; the LMs also by the sequences they learned from (GenerationJob.refit_stale)."""
    settings = {
        "run": bundle.run_id,
        "folds": cfg.folds,
        "split_seed": cfg.split_seed,
        "classifier": OmegaConf.to_container(cfg.classifier, resolve=True),
        "probe": FOLD_PROBE,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cfg.paths.cache_dir) / "benchmark" / f"{key}-fold{fold}"


def fold_job(cfg, bundle: ModelBundle, models: FoldModels, labelled: LabelledPhrases, conditioning) -> GenerationJob:
    names = {labelled.phrases[i].path.name for i in models.steer_rows}
    judges = dataclasses.replace(
        bundle.judges,
        probe=models.probe,
        features=cfg.classifier.features,
        judge=models.judge,
        judge_features=judge_kinds(cfg)[0],
        ranker=models.ranker,
    )
    return GenerationJob(
        bundle.net,
        bundle.tokenizer,
        judges,
        cfg.duration,
        cfg.temperature,
        cfg.top_p,
        cfg.max_tokens,
        torch.Generator(),  # each unit gets its own stream
        models.neurons,
        fold_cache(cfg, bundle, models.fold),
        (lambda: conditioning().only(names)) if conditioning else None,
        refit_stale=True,  # a fold's LMs follow the sequences the code cuts now, not the code that cached them
    )


def verdicts(job: GenerationJob, state_judge: Judges, scores: list[symusic.Score]) -> np.ndarray:
    """[n, 3] each score's mood index by the judge, the second judge and the panel (-1: silent, no mood)."""
    proba = job.judges.judge_proba(scores)
    state_proba = state_judge.probe_proba([score_ids(job.tokenizer, s) for s in scores])
    return np.stack([predicted_moods(proba), predicted_moods(state_proba), panel_moods(proba, state_proba)], axis=1)


def panel_moods(proba: np.ndarray, state_proba: np.ndarray) -> np.ndarray:
    """The two judges as one: the mood of their mean probabilities, which may be neither's first choice
    (a calm second to each judge's different first); -1 where a piece is silent."""
    return predicted_moods((np.asarray(proba, dtype=float) + np.asarray(state_proba, dtype=float)) / 2)


def moved_verdicts(job: GenerationJob, state_judge: Judges, scores: list[symusic.Score]) -> np.ndarray:
    """[n, len(KEY_MOVES), 3] each score's `verdicts` with every pitch moved by each of KEY_MOVES semitones."""
    moved = [verdicts(job, state_judge, [transpose_by(s, k) for s in scores]) for k in KEY_MOVES]
    return np.stack(moved, axis=1)


def key_fields(heard, moved) -> dict:
    """Whether the judge and the second judge hear the unmoved verdict's mood in every moved version (`heard`:
    a `verdicts` row; `moved`: its [moves, 3]); a silent piece is stable for neither."""
    moved = np.asarray(moved)
    return {
        column: int(heard[j] >= 0 and bool((moved[:, j] == heard[j]).all()))
        for j, column in enumerate(KEY_STABLE.values())
    }


def verdict_fields(mood: int, heard) -> dict:
    """A row's verdicts (one `verdicts` row): the mood each judge heard and whether it is the requested
    (or labelled) one, and whether the two judges heard the same mood."""
    fields = {}  # judged + hit, state_judged + state_hit, panel_judged + panel_hit
    for column, got in zip(JUDGES.values(), (int(h) for h in heard), strict=True):
        fields |= {f"{column.removesuffix('hit')}judged": mood_name(got), column: int(got == mood)}
    got, state_got = int(heard[0]), int(heard[1])
    return fields | {AGREEMENT: int(got == state_got and got >= 0)}  # a silent piece is no mood either judge heard


def judge_real(
    job: GenerationJob, state_judge: Judges, scores: list[symusic.Score], moods: np.ndarray, fold: int
) -> list[dict]:
    """The yardstick's rows: real phrases the judges never saw, cut to the pieces' length and judged the way
    the pieces are (a judge's accuracy on whole ~100 s phrases is not what it has on 30 s of music)."""
    heard, moved = verdicts(job, state_judge, scores), moved_verdicts(job, state_judge, scores)
    return [
        {
            "fold": fold,
            "mood": MOODS[mood],
            **verdict_fields(mood, verdict),
            **key_fields(verdict, moves),
            "notes": note_count(score),
            "seconds": round(float(score.to("second").end()), 3),
        }
        for score, mood, verdict, moves in zip(scores, moods, heard, moved, strict=True)
    ]


def yardsticks(real: list[dict]) -> dict[str, dict[str, float]]:
    """Each judge's accuracy on the real excerpts, the judges' agreement and each judge's key stability (every
    share of SHARES), per mood and "all": the mean over folds of each fold's.

    An excerpt without notes (a phrase that opens with a rest or a note held past the cut) is left out:
    its silence is the cut's, not music a judge failed to hear.
    """
    real = [r for r in real if r["notes"] > 0]
    out = {}
    for name, column in SHARES.items():
        per_fold = [
            hit_shares([r for r in real if r["fold"] == fold], column) for fold in sorted({r["fold"] for r in real})
        ]
        out[name] = {k: float(np.mean([shares[k] for shares in per_fold if k in shares])) for k in ["all", *MOODS]}
    return out


def hit_shares(rows: list[dict], column: str) -> dict[str, float]:
    """Share of rows with `column` set, per mood present and "all"."""
    shares = {
        m: float(np.mean([r[column] for r in rows if r["mood"] == m]))
        for m in MOODS
        if any(r["mood"] == m for r in rows)
    }
    return {**shares, "all": float(np.mean([r[column] for r in rows]))}


def fit_settings(steering_cfg, fit: int):
    """A method's settings for fit `fit`: its `steering.seed` + fit (fit 0: the settings as given), so each fit
    fine-tunes (or evolves) anew and is cached beside the others (`cached_finetune`)."""
    return OmegaConf.merge(steering_cfg, {"seed": steering_cfg.seed + fit})


def unit_stream(seed: int, mood: int, fold: int, fit: int) -> torch.Generator:
    """A unit's sampling stream. Fit 0's is the (seed, mood, fold) stream the benchmark has always drawn, so a
    row with `fits=1` repeats one made before fits; another fit draws new pieces, even of a method that fits
    nothing (a fit repeating fit 0's pieces would count the same music twice)."""
    return sampling_stream(seed, mood, fold, *([fit] if fit else []))


def run_method(
    cfg, steering_cfg, job: GenerationJob, state_judge: Judges, unit: tuple[int, int], folder: Path, copies: CopyIndex
) -> tuple[list[dict], dict]:
    """Every seed and mood of one method on one (fold, fit): pieces written, each judged by both judges
    (the steering never sees `state_judge`); (unit rows, scores by mood)."""
    fold, fit = unit
    steering = make_steering(fit_settings(steering_cfg, fit))
    where = folder / f"fold{fold}" / (f"fit{fit}" if cfg.fits > 1 else "")
    rows, scores_by_mood = [], {m: [] for m in range(len(MOODS))}
    for seed in range(cfg.first_seed, cfg.first_seed + cfg.seeds):
        for mood in range(len(MOODS)):
            unit_job = dataclasses.replace(job, generator=unit_stream(seed, mood, fold, fit))
            sequences = steering.generate(unit_job, mood, cfg.n)
            qpm = steering.qpm(mood, unit_job)
            scores = [to_score(job.tokenizer, ids, cfg.duration, qpm) for ids in sequences]
            heard_all, moved_all = verdicts(job, state_judge, scores), moved_verdicts(job, state_judge, scores)
            for i, (score, heard, moved) in enumerate(zip(scores, heard_all, moved_all, strict=True)):
                sidecar = {"mood": MOODS[mood], "method": steering_cfg.name, "fold": fold, "fit": fit, "seed": seed}
                piece = write_piece(where / f"seed{seed}", f"{MOODS[mood]}_{i}", score, sidecar, wav=False, png=False)
                rows.append(
                    {
                        "method": steering_cfg.name,
                        "fold": fold,
                        "fit": fit,
                        "seed": seed,
                        "mood": MOODS[mood],
                        "index": i,
                        **verdict_fields(mood, heard),
                        **key_fields(heard, moved),
                        "notes": piece["notes"],
                        "seconds": piece["seconds"],
                        "copied": copies.copied_share(score),
                        **piece_row(score),
                        "midi": piece["files"]["midi"],
                    }
                )
                scores_by_mood[mood].append(score)
    return rows, scores_by_mood


def accuracy_rows(rows: list[dict], method: str) -> dict[str, float]:
    """bench/<method>/... overall and per mood, with Wilson 95 % intervals: each judge's accuracy
    (`accuracy`: the hand-crafted judge; `state_accuracy`: the LM-state one; `panel_accuracy`: both as
    one), the judges' agreement (`judges_agree`) and whether each hears the same mood a semitone down and
    up (`key_stable`, `state_key_stable`); and the silent share."""
    mine = [r for r in rows if r["method"] == method]
    metrics = {f"bench/{method}/silent": float(np.mean([r["judged"] == "silent" for r in mine]))}
    for label, group in [("all", mine), *((m, [r for r in mine if r["mood"] == m]) for m in MOODS)]:
        prefix = f"bench/{method}" if label == "all" else f"bench/{method}/{label}"
        for name, column in SHARES.items():
            hits = sum(r[column] for r in group)
            low, high = wilson(hits, len(group))
            metrics |= {
                f"{prefix}/{name}": hits / len(group),
                f"{prefix}/{name}_low": low,
                f"{prefix}/{name}_high": high,
            }
    return metrics


def unit_accuracy(rows: list[dict], method: str, column: str = "hit") -> dict[tuple, float]:
    """(fold, fit, seed, mood) -> share of hits (by the judge whose `column` it is) of that unit's pieces."""
    units: dict[tuple, list[int]] = {}
    for r in rows:
        if r["method"] == method:
            units.setdefault((r["fold"], r["fit"], r["seed"], r["mood"]), []).append(r[column])
    return {unit: float(np.mean(hits)) for unit, hits in units.items()}


def paired_rows(rows: list[dict], methods: list[str]) -> list[dict]:
    """Each pair of methods by each judge: the mean difference in accuracy over shared units, with a 95 % t interval
    over units, and one over (fold, fit) clusters (`cluster_difference`: the interval that carries what another fit
    changes, not only what another seed does)."""
    out = []
    for judge, column in JUDGES.items():
        for i, a in enumerate(methods):
            for b in methods[:i]:
                ua, ub = unit_accuracy(rows, a, column), unit_accuracy(rows, b, column)
                shared = sorted(ua.keys() & ub.keys())
                diff = paired_difference(np.array([ua[u] for u in shared]), np.array([ub[u] for u in shared]))
                clusters = [unit[:2] for unit in shared]  # (fold, fit)
                by_fit = cluster_difference(np.array([ua[u] - ub[u] for u in shared]), clusters)
                out.append({"judge": judge, "method": a, "baseline": b, **diff, **by_fit})
    return out


def fit_levels(rows: list[dict], method: str) -> dict[str, float]:
    """bench/<method>/fit<r>/[<mood>/]<judge>: each judge's share per fit (over both folds), overall and per mood."""
    metrics = {}
    for fit in sorted({r["fit"] for r in rows if r["method"] == method}):
        mine = [r for r in rows if r["method"] == method and r["fit"] == fit]
        for name, column in JUDGES.items():
            shares = hit_shares(mine, column)
            metrics |= {
                f"bench/{method}/fit{fit}/{name}" if k == "all" else f"bench/{method}/fit{fit}/{k}/{name}": v
                for k, v in shares.items()
            }
    return metrics


def benchmark(cfg, bundle: ModelBundle, out: Path) -> dict:
    """Run the benchmark into `out`; returns metrics and the summary table's path."""
    check_options(cfg)
    start = time.perf_counter()
    cache_dir = Path(cfg.paths.cache_dir)
    labelled = labelled_phrases(bundle, cache_dir, cfg.duration)
    folds = piece_folds(labelled.phrases, cfg.folds, cfg.split_seed)
    pieces = np.array([p.piece for p in labelled.phrases])  # for classifier.cv=group10
    copies = copy_index(bundle)
    configs = method_configs(cfg)
    methods = [c.name for c in configs]
    features = fold_features(cfg, bundle, labelled, cache_dir, neurons="neurons" in methods)
    memo: dict = {}

    def conditioning():  # tokenized once for every fold, only when a method needs it
        if "data" not in memo:
            memo["data"] = bundle.conditioning()
        return memo["data"]

    rows, real_verdicts, confusion = [], [], {m: [] for m in methods}
    musicality: dict[str, list[dict]] = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    for fold in range(cfg.folds):
        models = fit_fold(fold, folds, features, labelled.moods, cfg.classifier, cfg.seed, pieces)
        job = fold_job(cfg, bundle, models, labelled, conditioning if bundle.conditioning else None)
        state_judge = dataclasses.replace(job.judges, probe=models.state_judge, features=judge_kinds(cfg)[1])
        excerpts = [labelled.scores[i] for i in models.steer_rows]
        real_verdicts += judge_real(job, state_judge, excerpts, labelled.moods[models.steer_rows], fold)
        real = {m: [labelled.scores[i] for i in models.judge_rows if labelled.moods[i] == m] for m in range(4)}
        for fit in range(cfg.fits):
            for steering_cfg in configs:
                begin = time.perf_counter()
                folder = out / "pieces" / steering_cfg.name
                unit_rows, generated = run_method(cfg, steering_cfg, job, state_judge, (fold, fit), folder, copies)
                seconds[steering_cfg.name] += time.perf_counter() - begin
                rows += unit_rows
                confusion[steering_cfg.name].append(distribution_confusion(generated, real, cfg.grid_points))
                musicality[steering_cfg.name].append(fold_musicality(generated, real, cfg.grid_points))
                took = time.perf_counter() - begin
                log.info("benchmark fold %d, fit %d, %s: %.1f s", fold, fit, steering_cfg.name, took)
    real_rows = [piece_row(score) for score in labelled.scores]
    seed_of = {c.name: c.seed for c in configs}  # fit r fits with its steering.seed + r
    return report(
        cfg, rows, real_verdicts, confusion, musicality, real_rows, seconds, seed_of, out, time.perf_counter() - start
    )


def judge_kinds(cfg) -> tuple[str, str]:
    """The features of the judge and of the second judge: the run's judge's and the shipped probe's, each
    with its pitch-class shares counted from the tonic where `key_blind` (experiments/attributes.md)."""
    kinds = (HANDCRAFTED, cfg.classifier.features)
    return tuple(key_blind(kind) for kind in kinds) if cfg.key_blind else kinds


def fold_features(cfg, bundle: ModelBundle, labelled: LabelledPhrases, cache_dir: Path, neurons: bool) -> FoldFeatures:
    """What the fold models read: the probe what the shipped probe reads, the ranker what the run's judge
    (which generating ranks by) reads, both also of the phrases' `classifier.augment` copies, as the stage
    trains them; the judges `judge_kinds`; final cell states only for `neurons`."""

    @functools.cache  # with key_blind=false the judge reads the ranker's kind: computed once
    def of(kind: str) -> np.ndarray:
        return phrase_features(kind, bundle.net, bundle.tokenizer, labelled.corpus, cache_dir)

    copies = configured_copies(bundle.tokenizer, [p.path for p in labelled.phrases], cfg.classifier)

    def augment_rows(kind: str) -> ExtraRows | None:
        if copies is None:
            return None
        return ExtraRows(phrase_features(kind, bundle.net, bundle.tokenizer, copies[0], cache_dir), copies[1])

    judge, state_judge = judge_kinds(cfg)
    return FoldFeatures(
        of(cfg.classifier.features),
        of(HANDCRAFTED),
        of(judge),
        of(state_judge),
        of("final_cell") if neurons else None,
        augment_rows(cfg.classifier.features),
        augment_rows(HANDCRAFTED),
    )


def copy_index(bundle: ModelBundle) -> CopyIndex:
    """Runs of all labelled phrases (train and test) and of the LM's training pieces."""
    data_cfg, root = bundle.data()
    phrases = [p.path for split in ("train", "test") for p in vgmidi.load_phrases(root, split)]
    lm = vgmidi.lm_files(OmegaConf.merge(data_cfg, {"root": str(root)}))
    return CopyIndex(sorted(set(phrases + lm.train)))


def musicality_metrics(rows: list[dict], folds: list[dict], method: str) -> dict[str, float]:
    """bench/<method>/{overlap, overlap/<feature>, duplicates, alive, repeated_bars, unique_4bar, diversity/<mood>}."""
    mine = [r for r in rows if r["method"] == method]
    metrics = {f"bench/{method}/{k}": float(np.mean([r[k] for r in mine])) for k in PIECE_COLUMNS}
    metrics[f"bench/{method}/overlap"] = float(np.nanmean([f["overlap"] for f in folds]))
    for key in sorted({k for f in folds for k in f if k.startswith("overlap/")}):  # each feature's: where it is lost
        metrics[f"bench/{method}/{key}"] = float(np.nanmean([f.get(key, np.nan) for f in folds]))
    metrics[f"bench/{method}/duplicates"] = float(np.sum([f["duplicates"] for f in folds]))
    for m, mood in enumerate(MOODS):
        per_fold = [f.get(f"diversity/{m}", np.nan) for f in folds]
        metrics[f"bench/{method}/{mood}/diversity"] = float(np.nanmean(per_fold))
    return metrics


def report(
    cfg, rows, real_verdicts, confusion, musicality, real_rows, seconds, seed_of, out: Path, total_seconds: float
) -> dict:
    """`seed_of`: each method's `steering.seed`, in the methods' order."""
    from .summary import write_summary

    methods = list(seed_of)
    metrics: dict[str, float] = {f"bench/real/{k}": float(np.mean([r[k] for r in real_rows])) for k in PIECE_COLUMNS}
    for method in methods:
        metrics |= accuracy_rows(rows, method)
        metrics |= musicality_metrics(rows, musicality[method], method)
        matrix = np.nanmean(np.stack(confusion[method]), axis=0)
        metrics[f"bench/{method}/own_mood_closest"] = own_mood_closest(matrix)
        metrics[f"bench/{method}/copied"] = float(np.nanmean([r["copied"] for r in rows if r["method"] == method]))
        metrics[f"bench/{method}/seconds"] = seconds[method]
        if cfg.fits > 1:
            metrics |= fit_levels(rows, method)
        write_rows(
            [{"generated": MOODS[m], **dict(zip(MOODS, matrix[m].round(4).tolist(), strict=True))} for m in range(4)],
            out / f"distribution_{method}.csv",
        )
        confusion[method] = matrix
    yardstick = yardsticks(real_verdicts)  # each judge on real excerpts it did not learn from
    for name, scores in yardstick.items():
        metrics |= {f"bench/judge/{k}/{name}" if k != "all" else f"bench/judge/{name}": v for k, v in scores.items()}
    paired = paired_rows(rows, methods)
    # bench/diff/<a>_vs_<b>/{accuracy,low,high}; the second judge's and the panel's prefixed state_, panel_
    for p in paired:
        prefix = f"bench/diff/{p['method']}_vs_{p['baseline']}/" + p["judge"].removesuffix("accuracy")
        metrics |= {f"{prefix}accuracy": p["diff"], f"{prefix}low": p["low"], f"{prefix}high": p["high"]}
        if cfg.fits > 1:  # over (fold, fit) clusters: with one fit a fold, two clusters say next to nothing
            metrics |= {f"{prefix}fit_low": p["cluster_low"], f"{prefix}fit_high": p["cluster_high"]}
    metrics["bench/seconds"] = total_seconds
    write_rows([{k: v for k, v in r.items() if k != "midi"} for r in rows], out / "units.csv")
    write_rows(paired, out / "paired.csv")
    write_rows(real_verdicts, out / "real.csv")
    summary = write_summary(cfg, metrics, yardstick, paired, confusion, methods, seed_of, out / "summary.md")
    return {"metrics": metrics, "summary": summary}
