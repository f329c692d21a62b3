"""What every `python -m moodgen.<entry>` shares: config checks and one-line errors."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from .config import check_config, register_configs
from .errors import MoodgenError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
_NOISE = ("full_key:", "object_type=", "reference_type=", "To append to your config")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


class _SacctOnce(logging.Filter):
    """submitit asks `sacct` for its jobs' states on every poll; on a cluster without accounting
    (no slurmdbd) each call fails and is warned about. Said once: the jobs are still followed by
    their result files."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if _SacctOnce.said:
            return False
        _SacctOnce.said = True
        record.msg = "sacct is unavailable (no SLURM accounting); following the jobs by their result files"
        record.args = ()
        return True


def optuna_experimental_warning() -> type[Warning]:
    try:
        from optuna.exceptions import ExperimentalWarning
    except ImportError:
        return UserWarning
    return ExperimentalWarning


def quiet_third_party() -> None:
    """Silence advertising and deprecation chatter that is not ours to fix."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per artifact download
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropTips())
    logging.getLogger("submitit").addFilter(_SacctOnce())
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*number of training batches.*logging interval")
    warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy is deprecated")
    # our own Hydra callback is instantiated on Hydra's legacy (blacklist) path
    warnings.filterwarnings("ignore", message=r".*_target_='moodgen\..*with no\s+_execution_whitelist_")
    warnings.filterwarnings("ignore", category=optuna_experimental_warning())


# what a default (verbose=false) run keeps off the console; verbose=true lets it all through
QUIET_LINES: dict[str, tuple[str, ...]] = {
    # Lightning's hardware lines and its notes on how a configured batch limit is read
    "pytorch_lightning.utilities.rank_zero": ("GPU available:", "TPU available:", "HPU available:", "`Trainer("),
    "lightning_fabric.utilities.rank_zero": ("GPU available:", "TPU available:", "HPU available:"),
    # MLflow creating or migrating a new SQLite store
    "mlflow.store.db.utils": ("Creating initial MLflow database tables", "Updating database tables"),
}
QUIET_WARNINGS = (r"The `srun` command is available on your system but is not used",)


class _QuietLines(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().lstrip().startswith(self.prefixes)


class _NoZeroFlops(logging.Filter):
    """Lightning's model summary without its FLOPs column and total when nothing was counted (always,
    without an example_input_array): a column of zeros reads as a broken model."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = drop_zero_flops(record.getMessage()), ()
        return True


def drop_zero_flops(text: str) -> str:
    lines = text.split("\n")
    header = next((i for i, line in enumerate(lines) if " | " in line and "FLOPs" in line.split(" | ")[-1]), None)
    total = next((i for i, line in enumerate(lines) if line.rstrip().endswith("Total Flops")), None)
    if header is None or total is None or lines[total].split()[0] != "0":
        return text
    columns = len(lines[header].split(" | "))
    kept = []
    for i, line in enumerate(lines):
        if i == total:
            continue
        parts = line.split(" | ")
        kept.append(" | ".join(parts[:-1]).rstrip() if len(parts) == columns else line)
    width = len(kept[header])
    return "\n".join("-" * width if line and set(line) == {"-"} else line for line in kept)


_QUIET_FILTERS: dict[str, logging.Filter] = {name: _QuietLines(p) for name, p in QUIET_LINES.items()}
_QUIET_FILTERS["pytorch_lightning.callbacks.model_summary"] = _NoZeroFlops()


def quiet_console(verbose: bool) -> None:
    """Keep third-party housekeeping off the console (the default), or let it all through (verbose=true):
    Lightning's srun hint and GPU/TPU lines, its batch-limit notes and a FLOPs column of zeros,
    MLflow's store creation and its "View run/experiment at" links after each run on a server;
    moodgen's own details (each mood's attribute targets, why a model run was picked) at debug level."""
    logging.getLogger("moodgen").setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, quiet in _QUIET_FILTERS.items():
        logger = logging.getLogger(name)
        if verbose:
            logger.removeFilter(quiet)
        elif quiet not in logger.filters:
            logger.addFilter(quiet)
    for message in QUIET_WARNINGS:
        ours = [f for f in warnings.filters if f[0] == "ignore" and getattr(f[1], "pattern", None) == message]
        if verbose and ours:
            warnings.filters[:] = [f for f in warnings.filters if f not in ours]
            getattr(warnings, "_filters_mutated", lambda: None)()  # what filterwarnings itself calls
        elif not verbose and not ours:
            warnings.filterwarnings("ignore", message=message)
    global _url_lines_suppressed
    if verbose and _url_lines_suppressed:
        os.environ.pop(MLFLOW_URL_LINES, None)
        _url_lines_suppressed = False
    elif not verbose and MLFLOW_URL_LINES not in os.environ:  # a value of the user's own is left alone
        os.environ[MLFLOW_URL_LINES] = "true"
        _url_lines_suppressed = True


MLFLOW_URL_LINES = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"  # MLflow's "🏃 View run ... at" after each run on a server
_url_lines_suppressed = False


def fail(message: str) -> NoReturn:
    print(f"moodgen: error: {message}", file=sys.stderr)
    sys.exit(2)


def one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf errors span several lines and a cause chain: keep what names the fix."""
    parts: list[str] = []
    while exc is not None:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        parts += [ln for ln in lines if not ln.startswith(_NOISE)]
        exc = exc.__cause__
    text = " ".join(parts).split(" Config search path:")[0]
    text = text.replace(" Available options in", "; available options in").replace("\t", " ")
    return _BARE_LIST.sub(_list_in_brackets, _OPTIONS.sub(_options_without_schema, text))


# Hydra's "available options in 'model': lstm lstm_small ... schema" for an unknown group option;
# `schema` is each group's structured-config node (register_configs), not an option to choose
_OPTIONS = re.compile(
    r"Could not find '(?P<wanted>[^']+)'; available options in '(?P<group>[^']+)':(?P<options>(?: [^\s;]+)+)"
)


def _options_without_schema(match: re.Match) -> str:
    from difflib import get_close_matches

    options = [o for o in match["options"].split() if o != "schema"]
    group, wanted = match["group"], match["wanted"].rsplit("/", 1)[-1]
    text = f"Could not find '{match['wanted']}'; available options in '{group}': {' '.join(options)}"
    close = get_close_matches(wanted, options, n=1)
    return f"{text}; did you mean {close[0]}?" if close else text


# OmegaConf's answer to one value given for a list option (compare=none, steering.hold=density)
_BARE_LIST = re.compile(
    r"Error merging override (?P<key>[^=\s]+)=(?P<value>\S+) Invalid value assigned: \S+ is not a ListConfig, "
    r"TupleConfig, list, or tuple\."
)


def _list_in_brackets(match: re.Match) -> str:
    key, value = match["key"], match["value"]
    return f"{key}={value}: {key} is a list; write it in brackets, e.g. '{key}=[{value}]'"


MULTIRUN_FLAGS = ("-m", "--multirun")


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except Exception:  # a malformed override: let compose report it
        return False


def check_overrides(config_name: str, argv: list[str]) -> list[str]:
    """Compose once before Hydra runs, so a wrong option is one line instead of a stack.

    Returns the argv Hydra should see: with --multirun when the composed config asks for a sweep
    (experiments set hydra.mode: MULTIRUN, which Hydra must know before it composes), and, for an
    Optuna study in persistent storage, with n_trials lowered to the trials still missing, so the
    same command resumes an interrupted study. Other flags (--cfg, --help, ...) go to Hydra as they
    are; sweeps over several values are checked per job.
    """
    multirun = any(arg in MULTIRUN_FLAGS for arg in argv)
    overrides = [arg for arg in argv if arg not in MULTIRUN_FLAGS]
    if any(arg.startswith("-") for arg in overrides) or any(_is_sweep(arg) for arg in overrides):
        return argv
    try:
        with initialize_config_dir(str(CONF_DIR)):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    except Exception as exc:
        fail(one_line(exc))
    missing = sorted(key for key in OmegaConf.missing_keys(cfg) if not key.startswith("hydra."))
    if missing:
        fail(f"{missing[0]} has no value; set it on the command line, e.g. {missing[0]}=...")
    try:
        check_config(cfg, config_name)  # unknown `+key`s, values out of range; each sweep job again
    except MoodgenError as exc:
        fail(str(exc))
    if measured_on_test(str(cfg.get("optimized_metric", ""))):
        fail(test_metric_message(cfg.optimized_metric))  # before any training, not after it
    multirun = multirun or str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    if not multirun:
        return argv
    sweeper = cfg.hydra.sweeper
    if sweeper.get("study_name") and sweeper.get("storage"):
        from .study import StudySweeperConf
        from .sweeps import completed_trials

        done = completed_trials(sweeper.study_name, sweeper.storage)
        if done:
            remaining = max(0, sweeper.n_trials - done)
            print(
                f"moodgen: study {sweeper.study_name!r} has {done} finished trial(s); running {remaining} more "
                f"(n_trials={sweeper.n_trials} in total)",
                flush=True,
            )
            if sweeper.get("_target_") == StudySweeperConf._target_:
                return ["--multirun", *overrides]  # it keeps the study's total itself, shared by every worker
            overrides.append(f"hydra.sweeper.n_trials={remaining}")
            if sweeper.get("sampler") and sweeper.sampler.get("seed") is not None:
                # a re-seeded sampler would replay the first call's random start-up trials
                overrides.append(f"hydra.sweeper.sampler.seed={sweeper.sampler.seed + done}")
    return ["--multirun", *overrides]


# nested_: nested CV over every labelled phrase, test phrases included (train_nested_ stays allowed)
TEST_METRIC_PREFIXES = ("test_", "precision_", "recall_", "majority_acc", "best_constant_acc", "nested_")
# eval/: measured against the test phrases; steer/, bench/: generated pieces scored by a mood judge,
# which a sweep would learn to please rather than make the mood audible
HELD_OUT_PREFIXES = ("eval/", "steer/", "bench/")


def measured_on_test(metric: str) -> bool:
    """Not to be tuned on: test-split scores, evaluation vs vgmidi_test, and judged steering accuracy."""
    return metric.startswith(HELD_OUT_PREFIXES) or metric.rsplit("/", 1)[-1].startswith(TEST_METRIC_PREFIXES)


def test_metric_message(metric: str) -> str:
    return (
        f"optimized_metric={metric} is a held-out measure (test split, or the mood judge of generated pieces), "
        "and nothing is tuned on it; use lm/val_loss or a CV metric such as clf/mood4/final_cell/cv_acc"
    )


def optimized_value(cfg, metrics: dict[str, float]) -> float:
    """The value a sweeper optimises: cfg.optimized_metric, which the run must have measured."""
    if measured_on_test(cfg.optimized_metric):
        raise MoodgenError(test_metric_message(cfg.optimized_metric))
    if cfg.optimized_metric not in metrics:
        raise MoodgenError(
            f"optimized_metric={cfg.optimized_metric} was not measured; choose one of {', '.join(sorted(metrics))}"
        )
    return metrics[cfg.optimized_metric]


def overrides_label(limit: int = 120) -> str:
    """The command-line overrides of this job, for run names ('' outside a Hydra run)."""
    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return ""
    label = " ".join(o for o in overrides if not o.startswith(("data.root", "paths.", "hydra.")))
    return label[:limit]


def in_multirun() -> bool:
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


HYDRA_FILES = (".hydra",)  # besides <task>.log: what Hydra writes into a run folder before the task starts


def remove_leftovers(cfg, new_mlruns: Path | None) -> None:
    """After a command failed: its run folder when it holds only Hydra's own files (config copies and
    the log: the command stopped before writing anything), with the `outputs/` folders above it
    that are then empty, and `new_mlruns` (an MLflow store this command created) when no run was
    recorded in it. A folder with anything else in it, or one a recorded run links to, stays."""
    root = Path(OmegaConf.select(cfg, "paths.root_dir", default=None) or os.getcwd()).resolve()
    try:
        folder = Path(HydraConfig.get().runtime.output_dir).resolve()
    except ValueError:  # outside a Hydra run
        folder = None
    if folder is not None and folder.is_dir() and _only_hydra_files(folder) and not _linked(root, folder):
        shutil.rmtree(folder, ignore_errors=True)
        outputs = root / "outputs"
        parent = folder.parent
        while parent == outputs or outputs in parent.parents:
            try:
                parent.rmdir()  # only an empty one: another command's runs keep theirs
            except OSError:
                break
            parent = parent.parent
    if new_mlruns is not None and new_mlruns.is_dir() and _empty_store(new_mlruns):
        shutil.rmtree(new_mlruns, ignore_errors=True)


def _only_hydra_files(folder: Path) -> bool:
    return all(p.name in HYDRA_FILES or (p.is_file() and p.suffix == ".log") for p in folder.iterdir())


def _linked(root: Path, folder: Path) -> bool:
    """A recorded run's outputs/runs/<run id> link points at the folder (moodgen.tracking.link_run_folder)."""
    links = root / "outputs" / "runs"
    return links.is_dir() and any(p.is_symlink() and p.resolve() == folder for p in links.iterdir())


def _empty_store(mlruns: Path) -> bool:
    """The default SQLite store holds no run and no artifact file, and nothing else is in its folder."""
    import fcntl
    import sqlite3
    from contextlib import closing

    expected = {"mlflow.db", "mlflow.db.lock", "mlflow.db-journal", "artifacts"}
    if any(p.name not in expected for p in mlruns.iterdir()):
        return False
    artifacts = mlruns / "artifacts"
    if artifacts.is_dir() and any(p.is_file() for p in artifacts.rglob("*")):
        return False
    database = mlruns / "mlflow.db"
    if not database.exists():
        return True
    with open(mlruns / "mlflow.db.lock", "a") as lock:  # as moodgen.tracking.open_store: not mid-creation
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
                return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        except sqlite3.Error:  # no runs table yet: nothing was recorded
            return True


def hydra_entry(config_name: str, task: Callable[[Any], Any]) -> Callable[[], Any]:
    """Build a `main()` that checks overrides, runs Hydra, and turns MoodgenError into one line.

    Inside a sweep a failed job does not stop the others: it is recorded (moodgen.sweeps.job_failed)
    and worth NaN to the sweeper, so an Optuna trial is marked FAIL and the study goes on; the
    sweep's parent run lists it, and the command ends with one line naming the failed jobs.
    """
    import hydra

    register_configs()
    quiet_third_party()
    from .study import register_plugin

    register_plugin()  # the sweeper of hydra/sweeper=moodgen_optuna

    def guarded(cfg):
        quiet_console(bool(cfg.get("verbose", False)))
        mlruns = OmegaConf.select(cfg, "paths.mlruns_dir", default=None)
        had_mlruns = mlruns is None or Path(mlruns).exists()
        try:
            check_config(cfg, config_name)  # sweeps over values skip check_overrides
            return task(cfg)
        except KeyboardInterrupt:
            print("moodgen: stopped (Ctrl-C)", file=sys.stderr, flush=True)
            sys.exit(130)
        except Exception as exc:
            if in_multirun():
                from .sweeps import job_failed

                return job_failed(exc)
            remove_leftovers(cfg, None if had_mlruns else Path(mlruns))
            if isinstance(exc, MoodgenError):
                fail(str(exc))
            raise

    def main() -> Any:
        sys.argv[1:] = check_overrides(config_name, sys.argv[1:])
        return hydra.main(config_path=str(CONF_DIR), config_name=config_name)(guarded)()

    return main
