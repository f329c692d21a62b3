"""Typed structured configs, one dataclass per config group.

Each group's YAML files start from the group's ``schema`` entry registered here, so a wrong
type (``model.dropout=abc``) or an unknown key fails while Hydra composes, before any work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class DataConfig:
    name: str = MISSING  # a source in moodgen.data.SOURCES: vgmidi | folder
    root: str | None = None  # else $MOODGEN_DATA_DIR, else the user cache (downloaded)
    download: bool = True  # fetch VGMIDI into the user cache when no root is found
    exclude_labelled_test: bool = True  # drop LM train/val pieces the labelled test phrases come from
    # ... by title/hash, and by content: a piece holding >= this share of a test phrase's 12-note runs
    # (VGMIDI: unrelated pieces reach 1.1 %, a re-arrangement 8 %, a medley 46 %, same-title pieces 76-100 %)
    overlap_threshold: float = 0.05
    val_fraction: float = 0.1  # folder source: share of pieces held out for validation
    max_files: int | None = None  # cap per split, for quick runs and tests
    num_workers: int = 0


@dataclass
class TokenizerConfig:
    name: str = MISSING  # a tokenizer in moodgen.tokenizers.TOKENIZERS: remi | tsd | midilike | structured
    pitch_range: list[int] = field(default_factory=lambda: [21, 109])
    beat_res: dict[str, int] = field(default_factory=lambda: {"0_4": 8, "4_12": 4})
    num_velocities: int = 16
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
    embedding_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1  # on the input of every recurrent layer
    noise_std: float = 0.0  # Gaussian noise after the first recurrent layer, training only
    output_dropout: float = 0.0  # extra dropout layer before the output layer (0 = none)
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    seq_len: int = 128


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int = 4
    max_steps: int = -1
    max_time: str | None = None  # "DD:HH:MM:SS" wall-clock cap
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    val_check_interval: Any = 1.0
    fast_dev_run: Any = False
    gradient_clip_val: float = 1.0
    accumulate_grad_batches: int = 1
    log_every_n_steps: int = 10
    num_sanity_val_steps: int = 2
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
    early_stopping_patience: int | None = None


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
    n_trials: int = 30  # Optuna trials per target and feature set (>= 1)
    log2_c_min: float = -10.0
    log2_c_max: float = 6.0
    penalties: list[str] = field(default_factory=lambda: ["l1", "l2"])
    class_weight: str | None = None  # None | balanced
    C: float | None = None  # fixed C and penalty: no search (hparams_search=classifier_optuna sets them)
    penalty: str | None = None
    max_iter: int = 2000
    n_jobs: int = 2  # CV folds fitted in parallel
    # mood4 only: joint (one 4-class model) | va (a valence and an arousal head, P(mood) = P(v)·P(a))
    heads: str = "joint"
    # copies of the training phrases, never of validation or test rows: transpose | cut
    augment: list[str] = field(default_factory=list)
    transpose: list[int] = field(default_factory=lambda: [-2, -1, 1, 2])  # semitones, each in -6..6, not 0
    cut_parts: int = 2  # augment=[cut]: each phrase's time split into this many equal parts (2..4)
    # repeated nested CV grouped by piece: `train` on the training phrases, `all` on every labelled
    # phrase (test ones too: a measure, never a selector); [] = off
    nested: list[str] = field(default_factory=lambda: ["train", "all"])
    nested_folds: int = 5  # outer StratifiedGroupKFold folds (2..10)
    nested_repeats: int = 3  # outer reshuffles (1..20)
    nested_trials: int = 8  # Optuna trials of each inner search (>= 1)
    steering_neurons: bool = True  # also fit the L1 probe whose neurons steering evolves
    # classifier=finetune: the LM + a linear head, fine-tuned; epochs chosen by the same CV on train
    finetune_epochs: int = 5
    finetune_lr: float = 2e-4
    finetune_head_lr: float = 2e-3
    finetune_max_tokens: int = 512  # phrases are cut to their first N tokens
    finetune_batch_size: int = 16


@dataclass
class MoodConfig:
    """conf/mood_profile/<mood>.yaml: what a mood asks of the music beyond what its labelled phrases say."""

    tempo: float = 120.0  # qpm written into the MIDI file (steering=attributes with tempo=true)
    scale: str | None = None  # major | minor: the key mask's scale; null: from the mood's phrases
    attributes: dict[str, float] = field(default_factory=dict)  # attribute -> value, over the data's target
    guidance: float | None = None  # this mood's guidance; null: steering.guidance
    tonic_bias: float | None = None  # this mood's tonic-triad bias; null: steering.tonic_bias


@dataclass
class SteeringConfig:
    name: str = MISSING  # a method in moodgen.steering.STEERING: none | rerank | neurons | conditioned | attributes
    candidates: int = 4  # rerank (and conditioned): pieces sampled per piece kept, by the probe
    # neurons: the genetic algorithm over the sentiment neurons' values
    population: int = 12
    generations: int = 6
    elite: int = 2
    mutation_rate: float = 0.3
    mutation_std: float = 0.5
    crossover_rate: float = 0.5
    gene_range: float = 4.0  # genes live in the probe's standardised units, within +-gene_range
    fitness_pieces: int = 4  # pieces generated per individual and generation
    fitness_seconds: float = 10.0  # length of the fitness pieces
    # conditioned: the LM fine-tuned with a mood token on labelled + pseudo-labelled sequences
    threshold: float = 0.6  # probe probability a chunk of an unlabelled piece needs to count as that mood
    chunk_tokens: int = 256  # length of those chunks (labelled phrases are cut to it too)
    max_chunks: int = 1500  # chunks of unlabelled pieces scored by the probe
    steps: int = 600  # fine-tuning steps
    batch_size: int = 16
    lr: float = 1e-3  # the LM's weights
    mood_lr: float = 1e-2  # the mood vectors (they start at zero)
    seed: int = 0  # of the GA and the fine-tuning (not of the pieces): cached results are reproducible
    # attributes: the LM fine-tuned on every chunk's own musical attributes (moodgen.attributes)
    attributes: list[str] = field(default_factory=list)  # which attributes condition the LM
    attribute_dropout: float = 0.1  # share of training chunks with each attribute left out
    condition_dropout: float = 0.15  # share with all of them left out: the unconditioned LM guidance needs
    target: str = "median"  # median | distinctive: a mood's target bin per attribute (attributes.targets)
    guidance: float = 1.0  # classifier-free guidance: 0 unconditioned, 1 conditioned, > 1 beyond
    scale: str = "mask"  # mask | bias | off: pitches outside the piece's key
    scale_bias: float = 4.0  # logits taken from out-of-key pitches with scale=bias
    velocity_range: bool = True  # velocities inside the mood's central range only
    register_range: bool = True  # pitches inside the mood's central range only
    max_chord: int = 0  # at most this many pitches at one position (0: no limit)
    tonic_bias: float = 0.0  # logits added to the key's tonic-triad pitches (0: none)
    tempo: bool = True  # write the mood's tempo (conf/mood_profile/<mood>.yaml) into the MIDI file
    moods: dict[str, MoodConfig] = field(default_factory=dict)  # conf/mood_profile/<mood>.yaml, one per mood


@dataclass
class SamplesConfig:
    """The pipeline's last stages: pieces for each mood, steered, judged, logged, then evaluated."""

    n: int = 2  # pieces per mood
    duration: float = 30.0  # seconds per piece
    max_tokens: int = 4096  # safety cap per piece
    temperature: float = 1.0
    top_p: float = 0.95
    evaluate: bool = True  # evaluate the pieces against VGMIDI's labelled test phrases (data=vgmidi)


@dataclass
class TrainConfig:
    task_name: str = "train"
    seed: int = 42
    optimized_metric: str = "lm/val_loss"
    tags: list[str] = field(default_factory=list)
    sweep_name: str = "train"  # names a multirun's parent MLflow run and folder (experiments set it)
    init_from: str | None = None  # start the LM from a checkpoint: an MLflow run id or a .ckpt path
    resume: str | None = None  # continue a stopped run (MLflow run id) from its last checkpoint
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
    seed: int = 42
    lm_run: str = "latest"  # an MLflow run id, or the newest finished training run
    data_root: str | None = None  # VGMIDI root; else the LM run's data.root, $MOODGEN_DATA_DIR, cache
    optimized_metric: str = "clf/mood4/final_cell/cv_acc"
    classifier: ClassifierConfig = MISSING
    logger: LoggerConfig = MISSING
    paths: PathsConfig = MISSING


@dataclass
class ComposeConfig:
    """What every entry point that composes pieces takes: the model, sampling, steering, where to write."""

    model_run: str = "latest"  # an MLflow run id, `latest`, or `champion` (the registered alias)
    temperature: float = 1.0
    top_p: float = 0.95
    max_tokens: int = 4096  # safety cap per piece
    out_dir: str | None = None  # else this run's output folder
    data_root: str | None = None  # VGMIDI root for steering=conditioned's fine-tuning; else the model run's
    steering: SteeringConfig = MISSING
    logger: LoggerConfig = MISSING
    paths: PathsConfig = MISSING


@dataclass
class GenerateConfig(ComposeConfig):
    """`python -m moodgen.generate mood=calm`: pieces in a mood from a trained model."""

    task_name: str = "generate"
    mood: str = MISSING  # depressed|sad, calm, angry|tense, happy|excited, or 0-3
    n: int = 4
    duration: float = 30.0  # seconds, tracked on the decoded music
    seed: int = 0


@dataclass
class BenchmarkConfig(ComposeConfig):
    """`python -m moodgen.benchmark steering=rerank`: steering accuracy by a cross-fitted judge, paired by seed."""

    task_name: str = "benchmark"
    compare: list[str] = field(default_factory=lambda: ["none"])  # more methods on the same streams
    seeds: int = 4  # sampling seeds first_seed .. first_seed + seeds - 1
    first_seed: int = 0
    n: int = 8  # pieces per (fold, seed, mood)
    duration: float = 30.0
    folds: int = 2  # folds of the labelled training phrases, by piece
    split_seed: int = 0  # of the folds
    seed: int = 0  # of the fold probes' and judges' searches
    grid_points: int = 200  # of the distribution-confusion densities
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
    max_pieces: int = 0  # 0: every piece of each set
    grid_points: int = 1000  # the common grid the distance densities are compared on
    seed: int = 0
    logger: LoggerConfig = MISSING
    paths: PathsConfig = MISSING


@dataclass
class ServeConfig(ComposeConfig):
    """`python -m moodgen.serve`: the local mood-picker web page (pieces go to <out_dir>/<piece id>/)."""

    task_name: str = "serve"
    host: str = "127.0.0.1"
    port: int = 8765
    default_duration: float = 30.0  # seconds, the page's length control starts here
    min_duration: float = 5.0
    max_duration: float = 120.0  # longer requests are refused with 422


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


def register_configs() -> None:
    # `${cwd:}`: the launch folder, resolvable outside a Hydra run too (tests, notebooks)
    OmegaConf.register_resolver("cwd", os.getcwd, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig, replace=True)
    cs.store(name="classify_schema", node=ClassifyConfig, replace=True)
    cs.store(name="generate_schema", node=GenerateConfig, replace=True)
    cs.store(name="evaluate_schema", node=EvaluateConfig, replace=True)
    cs.store(name="benchmark_schema", node=BenchmarkConfig, replace=True)
    cs.store(name="serve_schema", node=ServeConfig, replace=True)
    for group, node in GROUP_SCHEMAS.items():
        cs.store(group=group, name="schema", node=node, replace=True)
