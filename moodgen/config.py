"""Typed structured configs, one dataclass per config group.

Each group's YAML files start from the group's ``schema`` entry registered here, so a wrong
type (``model.dropout=abc``) or an unknown key fails while Hydra composes, before any work.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from .errors import MoodgenError


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric option, declared beside its field with `ranged` and checked
    by `check_config` when a command composes its config (and for each job of a sweep)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # `low` itself is not allowed
    high_open: bool = False
    also: tuple[float, ...] = ()  # single values with a meaning of their own, e.g. -1 for "no limit"
    note: str = ""  # what `also` means
    counts: Range | None = None  # for options that take a share or a count: the range of whole numbers

    def allows(self, value: float) -> bool:
        if self.counts is not None and isinstance(value, int):
            return self.counts.allows(value)
        if value in self.also:
            return True
        if math.isnan(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self, key: str) -> str:
        low, high = (None if x is None else _number(x) for x in (self.low, self.high))
        if low is not None and high is not None and not (self.low_open or self.high_open):
            text = f"{low}..{high}"
        elif low is not None and high is not None:
            text = f"{low} {'<' if self.low_open else '<='} {key} {'<' if self.high_open else '<='} {high}"
        elif low is not None:
            text = f"{key} {'>' if self.low_open else '>='} {low}"
        else:
            text = f"{key} <= {high}"
        if self.also:
            text = f"{' or '.join(map(_number, self.also))} ({self.note}) or {text}"
        if self.counts is not None:
            text = f"a share {text} or a whole number {self.counts.describe('').strip()}"
        return text


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


RANGE = "range"  # the dataclass field metadata key of an option's Range
COUNT = Range(1)  # how many of something, at least one
SIZE = Range(1, 65536)  # layer widths, batch sizes, sequence lengths
POSITIVE = Range(0, low_open=True)  # learning rates, seconds, temperatures
NON_NEGATIVE = Range(0)
SHARE = Range(0, 1)  # probabilities and shares
DROPOUT = Range(0, 1, high_open=True)  # a share of units or examples left out: 1 would leave nothing
TOP_P = Range(0, 1, low_open=True)  # nucleus mass: 0 keeps no token
SEED = Range(0, 2**32 - 1)  # what NumPy and Lightning accept
GRID = Range(2)  # density grid points
TRIALS = Range(1, 10_000)  # Optuna trials
LOG2_C = Range(-30, 30)  # logistic regression C = 2 ** value
BATCHES = Range(0, 1, counts=Range(0))  # Lightning's limit_*_batches: a share (1.0: all) or a count


def ranged(default: Any, valid: Range) -> Any:
    """A dataclass field whose values must lie in `valid` (each item, for a list or dict option);
    a callable `default` is a default factory. OmegaConf ignores the metadata; `check_config` reads it."""
    if callable(default):
        return field(default_factory=default, metadata={RANGE: valid})
    return field(default=default, metadata={RANGE: valid})


@dataclass
class DataConfig:
    name: str = MISSING  # a source in moodgen.data.SOURCES: vgmidi | folder
    root: str | None = None  # else $MOODGEN_DATA_DIR, else the user cache (downloaded)
    download: bool = True  # fetch VGMIDI into the user cache when no root is found
    exclude_labelled_test: bool = True  # drop LM train/val pieces the labelled test phrases come from
    # ... by title/hash, and by content: a piece holding >= this share of a test phrase's 12-note runs
    # (VGMIDI: unrelated pieces reach 1.1 %, a re-arrangement 8 %, a medley 46 %, same-title pieces 76-100 %)
    overlap_threshold: float = ranged(0.05, Range(0, 1, low_open=True))
    # folder source: share of pieces held out for validation
    val_fraction: float = ranged(0.1, Range(0, 1, low_open=True, high_open=True))
    max_files: int | None = ranged(None, COUNT)  # cap per split, for quick runs and tests
    num_workers: int = ranged(0, NON_NEGATIVE)
    # limits on each MIDI file read for training (moodgen.data.limits.MidiLimits, same defaults): a file
    # over one is skipped with its reason (VGMIDI's largest: 57 KB, 7,107 notes, 864 s, 25,937 REMI tokens)
    max_file_mb: float = ranged(16.0, POSITIVE)
    max_notes: int = ranged(50_000, COUNT)
    max_seconds: float = ranged(3600.0, POSITIVE)
    max_tokens: int = ranged(100_000, COUNT)  # per piece, after tokenization


@dataclass
class TokenizerConfig:
    name: str = MISSING  # a tokenizer in moodgen.tokenizers.TOKENIZERS: remi | tsd | midilike | structured
    pitch_range: list[int] = ranged(lambda: [21, 109], Range(0, 127))
    beat_res: dict[str, int] = ranged(lambda: {"0_4": 8, "4_12": 4}, COUNT)
    num_velocities: int = ranged(16, Range(1, 127))
    use_tempos: bool = False
    use_time_signatures: bool = False
    use_rests: bool = False
    use_sustain_pedals: bool = False
    use_chords: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # any other miditok.TokenizerConfig field


@dataclass
class ModelConfig:
    name: str = MISSING  # preset name, used in run names
    cell: str = "lstm"  # a layer in moodgen.models.LAYERS: lstm | mlstm
    embedding_dim: int = ranged(128, SIZE)
    hidden_size: int = ranged(256, SIZE)
    num_layers: int = ranged(2, Range(1, 64))
    dropout: float = ranged(0.1, DROPOUT)  # on the input of every recurrent layer
    noise_std: float = ranged(0.0, NON_NEGATIVE)  # Gaussian noise after the first recurrent layer, training only
    output_dropout: float = ranged(0.0, DROPOUT)  # extra dropout layer before the output layer (0 = none)
    lr: float = ranged(2e-3, POSITIVE)
    weight_decay: float = ranged(0.0, NON_NEGATIVE)
    batch_size: int = ranged(32, SIZE)
    seq_len: int = ranged(128, SIZE)


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = ranged(1, Range(1, also=(-1,), note="every device"))  # (or "auto", or a list of ids)
    strategy: str = "auto"
    num_nodes: int = ranged(1, COUNT)
    precision: str = "32-true"
    max_epochs: int = ranged(4, COUNT)  # Lightning's -1 (endless) is refused
    max_steps: int = ranged(-1, Range(1, also=(-1,), note="no limit"))
    max_time: str | None = None  # "DD:HH:MM:SS" wall-clock cap
    limit_train_batches: Any = ranged(1.0, BATCHES)
    limit_val_batches: Any = ranged(1.0, BATCHES)
    val_check_interval: Any = ranged(1.0, Range(0, 1, low_open=True, counts=COUNT))
    fast_dev_run: Any = ranged(False, NON_NEGATIVE)  # (true, or a number of batches)
    gradient_clip_val: float = ranged(1.0, NON_NEGATIVE)
    accumulate_grad_batches: int = ranged(1, COUNT)
    log_every_n_steps: int = ranged(10, COUNT)
    num_sanity_val_steps: int = ranged(2, Range(0, also=(-1,), note="all"))
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class LoggerConfig:
    name: str = MISSING  # mlflow | none
    tracking_uri: str | None = None  # else $MLFLOW_TRACKING_URI, else sqlite under paths.mlruns_dir
    experiment_name: str = "moodgen"
    run_name: str | None = None  # else built from the preset and the command-line overrides
    log_checkpoints: bool = True


@dataclass
class CallbacksConfig:
    monitor: str = "lm/val_loss"
    save_last: bool = True
    early_stopping_patience: int | None = ranged(None, NON_NEGATIVE)
    # a crash-safe copy of the training state while an epoch runs (kill -9 loses at most this much);
    # a step count, when set, replaces the clock (0 / null turns either off)
    checkpoint_every_minutes: float | None = ranged(2.0, NON_NEGATIVE)
    checkpoint_every_n_steps: int | None = ranged(None, NON_NEGATIVE)


@dataclass
class PathsConfig:
    root_dir: str = MISSING  # where the command was launched
    mlruns_dir: str = MISSING
    cache_dir: str = MISSING  # tokenized corpora and downloads
    output_dir: str = MISSING  # this run's Hydra output folder


@dataclass
class ClassifierConfig:
    name: str = MISSING  # logreg | finetune | none
    # final_cell | final_hidden | mean_hidden | all_layers (LM states) | handcrafted (no LM)
    # | fused (final_cell + handcrafted) | fused_<LM kind>, e.g. fused_mean_hidden
    features: str = "final_cell"
    compare: list[str] = field(default_factory=list)  # more feature sets, e.g. [mean_hidden, handcrafted]
    targets: list[str] = field(default_factory=lambda: ["mood4", "valence", "arousal"])
    cv: str = "kfold10"  # kfold10 (StratifiedKFold 10) | shuffle10 (the report's) | group10 (by piece)
    n_trials: int = ranged(30, TRIALS)  # Optuna trials per target and feature set (>= 1)
    log2_c_min: float = ranged(-10.0, LOG2_C)
    log2_c_max: float = ranged(6.0, LOG2_C)
    penalties: list[str] = field(default_factory=lambda: ["l1", "l2"])
    class_weight: str | None = None  # None | balanced
    # fixed C and penalty: no search (hparams_search=classifier_optuna sets them)
    C: float | None = ranged(None, POSITIVE)
    penalty: str | None = None
    max_iter: int = ranged(2000, COUNT)
    n_jobs: int = ranged(2, Range(1, also=(-1,), note="every core"))  # CV folds fitted in parallel
    # mood4 only: joint (one 4-class model) | va (a valence and an arousal head, P(mood) = P(v)·P(a))
    heads: str = "joint"
    # copies of the training phrases, never of validation or test rows: transpose | cut
    augment: list[str] = field(default_factory=list)
    transpose: list[int] = ranged(lambda: [-2, -1, 1, 2], Range(-6, 6))  # (semitones, not 0)
    cut_parts: int = ranged(2, Range(2, 4))  # augment=[cut]: each phrase's time split into this many equal parts (2..4)
    # repeated nested CV grouped by piece: `train` on the training phrases, `all` on every labelled
    # phrase (test ones too: a measure, never a selector); [] = off
    nested: list[str] = field(default_factory=lambda: ["train", "all"])
    nested_folds: int = ranged(5, Range(2, 10))  # outer StratifiedGroupKFold folds (2..10)
    nested_repeats: int = ranged(3, Range(1, 20))  # outer reshuffles (1..20)
    nested_trials: int = ranged(8, TRIALS)  # Optuna trials of each inner search (>= 1)
    steering_neurons: bool = True  # also fit the L1 probe whose neurons steering evolves
    # classifier=finetune: the LM + a linear head, fine-tuned; epochs chosen by the same CV on train
    finetune_epochs: int = ranged(5, COUNT)
    finetune_lr: float = ranged(2e-4, POSITIVE)
    finetune_head_lr: float = ranged(2e-3, POSITIVE)
    finetune_max_tokens: int = ranged(512, SIZE)  # phrases are cut to their first N tokens
    finetune_batch_size: int = ranged(16, SIZE)


@dataclass
class MoodConfig:
    """conf/mood_profile/<mood>.yaml: what a mood asks of the music beyond what its labelled phrases say."""

    tempo: float = ranged(120.0, POSITIVE)  # qpm written into the MIDI file (steering=attributes with tempo=true)
    scale: str | None = None  # major | minor: the tonic triad's (and key mask's) scale; null: from the mood's phrases
    attributes: dict[str, float] = field(default_factory=dict)  # attribute -> value, over the data's target
    guidance: float | None = ranged(None, NON_NEGATIVE)  # this mood's guidance; null: steering.guidance
    tonic_bias: float | None = ranged(None, NON_NEGATIVE)  # this mood's tonic-chord bias; null: steering's
    lean_on: str | None = None  # triad | third_fifth: the degrees this mood's tonic bias leans on; null: steering's
    hold: list[str] | None = None  # attributes whose asked bins its kept candidates are nearest; null: steering.hold


@dataclass
class SteeringConfig:
    name: str = MISSING  # a method in moodgen.steering.STEERING: none | rerank | neurons | conditioned | attributes
    candidates: int = ranged(4, COUNT)  # rerank, conditioned, attributes: pieces sampled per piece kept (ranked)
    # rerank and attributes: what ranks the candidates: the LM-state probe, or the hand-crafted descriptor model
    rank_by: str = "probe"
    keep: str = "pool"  # pool: the best n of all candidates | each: the best of each piece's own candidates
    # neurons: the genetic algorithm over the sentiment neurons' values
    population: int = ranged(12, COUNT)
    generations: int = ranged(6, COUNT)
    elite: int = ranged(2, NON_NEGATIVE)
    mutation_rate: float = ranged(0.3, SHARE)
    mutation_std: float = ranged(0.5, NON_NEGATIVE)
    crossover_rate: float = ranged(0.5, SHARE)
    gene_range: float = ranged(4.0, POSITIVE)  # genes live in the probe's standardised units, within +-gene_range
    fitness_pieces: int = ranged(4, COUNT)  # pieces generated per individual and generation
    fitness_seconds: float = ranged(10.0, POSITIVE)  # length of the fitness pieces
    # conditioned: the LM fine-tuned with a mood token on labelled + pseudo-labelled sequences
    # probe probability a chunk of an unlabelled piece needs to count as that mood
    threshold: float = ranged(0.6, SHARE)
    chunk_tokens: int = ranged(256, SIZE)  # length of those chunks (labelled phrases are cut to it too)
    max_chunks: int = ranged(1500, NON_NEGATIVE)  # chunks of unlabelled pieces scored by the probe
    steps: int = ranged(600, COUNT)  # fine-tuning steps
    batch_size: int = ranged(16, SIZE)
    lr: float = ranged(1e-3, POSITIVE)  # the LM's weights
    mood_lr: float = ranged(1e-2, POSITIVE)  # the mood vectors (they start at zero)
    seed: int = ranged(0, SEED)  # of the GA and the fine-tuning (not of the pieces): cached results are reproducible
    # attributes: the LM fine-tuned on every chunk's own musical attributes (moodgen.attributes)
    attributes: list[str] = field(default_factory=list)  # which attributes condition the LM
    attribute_dropout: float = ranged(0.1, DROPOUT)  # share of training chunks with each attribute left out
    # share with all of them left out: the unconditioned LM guidance needs
    condition_dropout: float = ranged(0.15, DROPOUT)
    target: str = "median"  # median | distinctive | phrases: what a mood's pieces ask for (attributes.targets)
    guidance: float = ranged(1.0, NON_NEGATIVE)  # classifier-free guidance: 0 unconditioned, 1 conditioned, > 1 beyond
    scale: str = "mask"  # mask | bias | off: pitches outside the piece's key
    scale_bias: float = ranged(4.0, NON_NEGATIVE)  # logits taken from out-of-key pitches with scale=bias
    velocity_range: bool = True  # velocities inside the mood's central range only
    register_range: bool = True  # pitches inside a register window only (register_window says which)
    register_window: str = "mood"  # mood: the mood's central range | phrase: per piece, one of its phrases' registers
    window_width: float = ranged(2.0, POSITIVE)  # register_window=phrase: the phrase's mean pitch -+ this many stds
    max_chord: int = ranged(0, NON_NEGATIVE)  # at most this many pitches at one position (0: no limit)
    tonic_bias: float = ranged(0.0, NON_NEGATIVE)  # logits added to the tonic chord's pitches lean_on names (0: none)
    lean_on: str = "triad"  # triad | third_fifth: the tonic chord's degrees the tonic bias adds its logits to
    # the key, tonic bias and register move probability among the pitches only, the chance of a note
    # staying the LM's (false: as before 2026-12-06, when a tonic bias also made notes likelier)
    keep_note_share: bool = True
    tempo: bool = True  # write the mood's tempo (conf/mood_profile/<mood>.yaml) into the MIDI file
    tonics: str = "uniform"  # uniform | data: each piece's tonic from all 12 alike, or as the mood's phrases' keys
    # attributes, candidates > 1: the kept candidates are those nearest (either side) the bins they asked for in these
    hold: list[str] = field(default_factory=list)
    moods: dict[str, MoodConfig] = field(default_factory=dict)  # conf/mood_profile/<mood>.yaml, one per mood


@dataclass
class SamplesConfig:
    """The pipeline's last stages: pieces for each mood, steered, judged, logged, then evaluated."""

    n: int = ranged(2, COUNT)  # pieces per mood
    duration: float = ranged(30.0, POSITIVE)  # seconds per piece
    max_tokens: int = ranged(4096, COUNT)  # safety cap per piece
    temperature: float = ranged(1.0, POSITIVE)
    top_p: float = ranged(0.95, TOP_P)
    evaluate: bool = True  # evaluate the pieces against VGMIDI's labelled test phrases (data=vgmidi)


@dataclass
class TrainConfig:
    task_name: str = "train"
    seed: int = ranged(42, SEED)
    optimized_metric: str = "lm/val_loss"
    tags: list[str] = field(default_factory=list)
    sweep_name: str = "train"  # names a multirun's parent MLflow run and folder (experiments set it)
    init_from: str | None = None  # start the LM from a checkpoint: an MLflow run id or a .ckpt path
    resume: str | None = None  # continue a stopped run (MLflow run id) from its last checkpoint
    verbose: bool = False  # print every third-party info line (Lightning's hardware lines, MLflow's setup, ...)
    data: DataConfig = MISSING
    tokenizer: TokenizerConfig = MISSING
    model: ModelConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING
    callbacks: CallbacksConfig = MISSING
    paths: PathsConfig = MISSING
    classifier: ClassifierConfig = MISSING
    steering: SteeringConfig = MISSING
    samples: SamplesConfig = field(default_factory=SamplesConfig)


@dataclass
class ClassifyConfig:
    """`python -m moodgen.classify`: the classifier stage on an LM already in the tracking store."""

    task_name: str = "classify"
    seed: int = ranged(42, SEED)
    lm_run: str = "latest"  # an MLflow run id, or the newest finished training run
    data_root: str | None = None  # VGMIDI root; else the LM run's data.root, $MOODGEN_DATA_DIR, cache
    optimized_metric: str = "clf/mood4/final_cell/cv_acc"
    verbose: bool = False  # print every third-party info line (Lightning's hardware lines, MLflow's setup, ...)
    classifier: ClassifierConfig = MISSING
    logger: LoggerConfig = MISSING
    paths: PathsConfig = MISSING


@dataclass
class ComposeConfig:
    """What every entry point that composes pieces takes: the model, sampling, steering, where to write."""

    model_run: str = "latest"  # an MLflow run id, `latest`, or `champion` (the registered alias)
    temperature: float = ranged(1.0, POSITIVE)
    top_p: float = ranged(0.95, TOP_P)
    max_tokens: int = ranged(4096, COUNT)  # safety cap per piece
    out_dir: str | None = None  # else this run's output folder
    data_root: str | None = None  # VGMIDI root for steering=conditioned's fine-tuning; else the model run's
    verbose: bool = False  # print every third-party info line (Lightning's hardware lines, MLflow's setup, ...)
    steering: SteeringConfig = MISSING
    logger: LoggerConfig = MISSING
    paths: PathsConfig = MISSING


@dataclass
class GenerateConfig(ComposeConfig):
    """`python -m moodgen.generate mood=calm`: pieces in a mood from a trained model."""

    task_name: str = "generate"
    mood: str = MISSING  # depressed|sad, calm, angry|tense, happy|excited, or 0-3
    n: int = ranged(4, COUNT)
    duration: float = ranged(30.0, POSITIVE)  # seconds, tracked on the decoded music
    seed: int | None = ranged(None, SEED)  # null: a fresh one per call (printed and recorded); n: the same pieces again


@dataclass
class BenchmarkConfig(ComposeConfig):
    """`python -m moodgen.benchmark steering=rerank`: steering accuracy by a cross-fitted judge, paired by seed."""

    task_name: str = "benchmark"
    compare: list[str] = field(default_factory=lambda: ["none"])  # more methods on the same streams
    seeds: int = ranged(4, COUNT)  # sampling seeds first_seed .. first_seed + seeds - 1
    first_seed: int = ranged(0, SEED)
    n: int = ranged(8, COUNT)  # pieces per (fold, seed, mood)
    duration: float = ranged(30.0, POSITIVE)
    folds: int = ranged(2, Range(2))  # folds of the labelled training phrases, by piece
    # each method's fold LMs (GA genes) fitted this many times, with steering.seed, +1, ...: units per fit
    fits: int = ranged(1, COUNT)
    split_seed: int = ranged(0, SEED)  # of the folds
    seed: int = ranged(0, SEED)  # of the fold probes' and judges' searches
    # the judges count pitch classes from the estimated tonic (false: absolute, as the run's judge and probe
    # read them, and hear the key; experiments/attributes.md)
    key_blind: bool = True
    grid_points: int = ranged(200, GRID)  # of the distribution-confusion densities
    classifier: ClassifierConfig = MISSING  # how the fold probes and judges are searched


@dataclass
class EvaluateConfig:
    """`python -m moodgen.evaluate pieces=<folder|run id> reference=vgmidi_test`: objective evaluation."""

    task_name: str = "evaluate"
    pieces: str = MISSING  # a folder of MIDI files (with JSON sidecars) or an MLflow generation/training run id
    reference: str = "vgmidi_test"  # vgmidi_test | vgmidi_unlabelled_test | a folder of MIDI files
    model_run: str | None = None  # the classifier's model run; else the pieces' own, else `latest`
    data_root: str | None = None  # VGMIDI root for the vgmidi_* references; else $MOODGEN_DATA_DIR, cache
    out_dir: str | None = None  # else this run's output folder
    max_pieces: int = ranged(0, NON_NEGATIVE)  # 0: every piece of each set
    # cut each reference piece to the longest generated piece's length (counts and repeats grow with length)
    match_length: bool = True
    grid_points: int = ranged(1000, GRID)  # the common grid the distance densities are compared on
    seed: int = ranged(0, SEED)
    verbose: bool = False  # print every third-party info line (Lightning's hardware lines, MLflow's setup, ...)
    logger: LoggerConfig = MISSING
    paths: PathsConfig = MISSING


@dataclass
class ServeConfig(ComposeConfig):
    """`python -m moodgen.serve`: the local mood-picker web page (pieces go to <out_dir>/<piece id>/)."""

    task_name: str = "serve"
    host: str = "127.0.0.1"
    port: int = ranged(8765, Range(0, 65535))  # 0: any free port
    default_duration: float = ranged(30.0, POSITIVE)  # seconds, the page's length control starts here
    min_duration: float = ranged(5.0, POSITIVE)
    max_duration: float = ranged(120.0, POSITIVE)  # longer requests are refused with 422


GROUP_SCHEMAS = {
    "data": DataConfig,
    "tokenizer": TokenizerConfig,
    "model": ModelConfig,
    "trainer": TrainerConfig,
    "logger": LoggerConfig,
    "callbacks": CallbacksConfig,
    "paths": PathsConfig,
    "classifier": ClassifierConfig,
    "steering": SteeringConfig,
    "mood_profile": MoodConfig,
}


def option_problems(cfg: DictConfig, prefix: str = "") -> tuple[list[str], list[str], list[str]]:
    """(keys no schema declares, out-of-range lines, declared keys) of a composed config: each node is
    walked against the dataclass it was built from, nested groups and dict values (steering.moods) too."""
    unknown: list[str] = []
    bad: list[str] = []
    known: list[str] = []

    def visit(node: DictConfig, prefix: str) -> None:
        schema = OmegaConf.get_type(node)
        declared = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
        for key in node:
            name = f"{prefix}{key}"
            if name == "hydra":
                continue
            if declared is not None and key not in declared:
                unknown.append(name)  # only `+key=...` gets one in: the schemas are struct
                continue
            known.append(name)
            try:
                value = node[key]
            except Exception:  # unset, or not resolvable yet: whoever reads it reports that
                continue
            valid = declared[key].metadata.get(RANGE) if declared is not None else None
            if valid is not None:
                bad.extend(out_of_range(name, value, valid))
            elif isinstance(value, DictConfig):
                visit(value, f"{name}.")

    visit(cfg, prefix)
    return unknown, bad, known


def out_of_range(name: str, value: Any, valid: Range) -> list[str]:
    """The one-line complaint about an option's value (each value of a list or dict option), if any."""
    container = isinstance(value, DictConfig | ListConfig)
    values = (value.values() if isinstance(value, DictConfig) else value) if container else [value]
    if all(valid.allows(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)):
        return []
    if not container:
        return [f"{name}={value} is out of range: use {valid.describe(name)}"]
    each = valid.describe("each value")
    each = each if "each value" in each else f"{each} for each value"
    return [f"{name}={OmegaConf.to_container(value)} is out of range: use {each}"]


def closest_option(key: str, known: list[str]) -> str | None:
    """The option a mistyped key most likely meant: the same name elsewhere (dropout -> model.dropout),
    a near name beside it (model.dropuot), else a near full name (modle.dropout)."""
    parent, _, leaf = key.rpartition(".")
    same = [k for k in known if k.rpartition(".")[2] == leaf]
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    near = difflib.get_close_matches(leaf, list(siblings), 1, 0.6)
    guesses = same or [siblings[n] for n in near] or difflib.get_close_matches(key, known, 1, 0.8)
    return guesses[0] if guesses else None


def check_config(cfg: DictConfig, entry: str) -> None:
    """Every option of a composed config is one its schema declares, within its declared range;
    else one line naming the option and the fix (the closest option, for a mistyped `+key`)."""
    unknown, _, known = option_problems(cfg)
    if unknown:
        key = unknown[0]
        guess = closest_option(key, known)
        hint = f"did you mean {guess}? " if guess else ""
        raise MoodgenError(
            f"{key} is not an option of moodgen.{entry} (+ adds keys only inside free-form settings such as "
            f"steering.moods.<mood>.attributes); {hint}see them all with: python -m moodgen.{entry} --cfg job"
        )
    check_ranges(cfg)


def check_ranges(cfg: DictConfig, prefix: str = "") -> None:
    """Every option under `cfg` (one group's node too, named with `prefix`, e.g. "classifier.") within
    its declared range; else one line naming each option out of range and its range."""
    bad = option_problems(cfg, prefix)[1]
    if bad:
        raise MoodgenError("; ".join(bad))


@functools.cache
def run_token() -> str:
    """Tells apart output folders of commands started in the same second: the SLURM job and step
    (every rank of one job shares it), torchrun's run id, else random, fixed for this process."""
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
    return os.environ.get("TORCHELASTIC_RUN_ID") or uuid.uuid4().hex[:8]


GPU_ACCELERATORS = ("gpu", "cuda", "auto")


def gpus_per_node(accelerator: Any, devices: Any) -> int | None:
    """What a SLURM job asks for (hydra.launcher.gpus_per_node): trainer.devices GPUs when training
    on GPUs, none for CPU (sbatch refuses a GPU request where the partition has none: "Invalid
    generic resource (gres) specification"). `auto` counts as GPU: trainer=ddp is built on
    trainer=gpu; on a CPU partition give trainer.accelerator=cpu. devices=-1/"auto" asks for 1 GPU
    (the count is unknown before the job runs): set trainer.devices to the count instead."""
    if str(accelerator).lower() not in GPU_ACCELERATORS:
        return None
    if isinstance(devices, bool):
        return 1
    if isinstance(devices, int):
        return devices if devices > 0 else 1
    if isinstance(devices, (list, tuple, ListConfig)):
        return max(1, len(devices))
    text = str(devices).strip()
    if text.isdigit():
        return max(1, int(text))
    ids = [part for part in text.strip("[]").split(",") if part.strip()]  # "0,1": device ids
    return len(ids) if text not in ("auto", "-1") and ids else 1


def register_configs() -> None:
    # `${cwd:}`: the launch folder, resolvable outside a Hydra run too (tests, notebooks)
    OmegaConf.register_resolver("cwd", os.getcwd, replace=True)
    OmegaConf.register_resolver("gpus_per_node", gpus_per_node, replace=True)  # hydra/launcher=slurm
    OmegaConf.register_resolver("run_token", run_token, replace=True, use_cache=True)  # kept in the config, as `now`
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig, replace=True)
    cs.store(name="classify_schema", node=ClassifyConfig, replace=True)
    cs.store(name="generate_schema", node=GenerateConfig, replace=True)
    cs.store(name="evaluate_schema", node=EvaluateConfig, replace=True)
    cs.store(name="benchmark_schema", node=BenchmarkConfig, replace=True)
    cs.store(name="serve_schema", node=ServeConfig, replace=True)
    for group, node in GROUP_SCHEMAS.items():
        cs.store(group=group, name="schema", node=node, replace=True)
    from .study import register_config

    register_config()  # hydra/sweeper=moodgen_optuna: Optuna studies shared by parallel workers
