"""What every `python -m moodgen.<entry>` shares: config checks and one-line errors."""

from __future__ import annotations

import logging
import os
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
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*number of training batches.*logging interval")
    warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy is deprecated")
    # our own Hydra callback is instantiated on Hydra's legacy (blacklist) path
    warnings.filterwarnings("ignore", message=r".*_target_='moodgen\..*with no\s+_execution_whitelist_")
    warnings.filterwarnings("ignore", category=optuna_experimental_warning())


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
    return text.replace(" Available options in", "; available options in").replace("\t", " ")


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
        from .sweeps import completed_trials

        done = completed_trials(sweeper.study_name, sweeper.storage)
        if done:
            remaining = max(0, sweeper.n_trials - done)
            print(
                f"moodgen: study {sweeper.study_name!r} has {done} finished trial(s); running {remaining} more "
                f"(n_trials={sweeper.n_trials} in total)",
                flush=True,
            )
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


def hydra_entry(config_name: str, task: Callable[[Any], Any]) -> Callable[[], Any]:
    """Build a `main()` that checks overrides, runs Hydra, and turns MoodgenError into one line.

    Inside a sweep a failed job does not stop the others: it is recorded (moodgen.sweeps.job_failed)
    and worth NaN to the sweeper, so an Optuna trial is marked FAIL and the study goes on; the
    sweep's parent run lists it, and the command ends with one line naming the failed jobs.
    """
    import hydra

    register_configs()
    quiet_third_party()

    def guarded(cfg):
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
            if isinstance(exc, MoodgenError):
                fail(str(exc))
            raise

    def main() -> Any:
        sys.argv[1:] = check_overrides(config_name, sys.argv[1:])
        return hydra.main(config_path=str(CONF_DIR), config_name=config_name)(guarded)()

    return main
