"""Sweeps (experiments and Optuna searches) as one parent MLflow run with a child run per job.

A Hydra callback opens the parent when the multirun starts and writes its id into the sweep
folder, where every job (in this process or on a cluster node) finds it; when the sweep ends,
the parent gets the comparison: a table of the arms, an overlay of their val-loss curves and,
for Optuna, the best trial and the study's plots.

A job that fails does not stop the sweep: it is written into the sweep folder (`job_failed`), shown
as `failed: <why>` in the comparison and on the parent (its child run, if it opened one, FAILED),
and the command ends with one line naming the failed jobs.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import optuna
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("moodgen")

PARENT_FILE = "mlflow_parent_run_id"
SWEEP_TAG = "moodgen.sweep"
FAILED_DIR = "failed_jobs"  # in the sweep folder: <job number>.json per failed job, from any node


def sweep_name(config: DictConfig) -> str:
    return config.hydra.sweeper.get("study_name") or config.get("sweep_name") or config.task_name


def parent_run_id(sweep_dir: str | Path) -> str | None:
    """The parent run of the sweep this job belongs to, if any (read by every job)."""
    path = Path(sweep_dir) / PARENT_FILE
    return path.read_text().strip() if path.exists() else None


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from .tracking import open_parent_run

        storage = config.hydra.sweeper.get("storage")
        if isinstance(storage, str) and storage.startswith("sqlite:///"):  # Optuna does not create folders
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if config.logger.name == "none":
            return
        name = sweep_name(config)
        parent = open_parent_run(config, name)
        folder = Path(config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PARENT_FILE).write_text(parent)
        log.info("sweep %r: parent MLflow run %s", name, parent)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failures = failed_jobs(config.hydra.sweep.dir)
        parent = parent_run_id(config.hydra.sweep.dir)
        if parent is not None:
            self.compare(config, parent, failures)
        launched = max(launched_jobs(config.hydra.sweep.dir), len(failures))
        # while the sweeper raises, report only when no job ran: then its error (Optuna: no best trial) is theirs
        if failures and (sys.exc_info()[1] is None or len(failures) == launched):
            report_failures(failures, launched)

    def compare(self, config: DictConfig, parent: str, failures: list[dict]) -> None:
        from .comparison import compare_children

        try:
            table = compare_children(config, parent, Path(config.hydra.sweep.dir), failures)
            if table:
                print(table, flush=True)
            study = study_of(config)
            if study is not None:
                from .comparison import log_study

                log_study(config, parent, study, Path(config.hydra.sweep.dir))
        except Exception as exc:  # runs in Hydra's `finally`: never mask the sweep's own error
            log.warning("sweep comparison failed: %s", exc)


def job_failed(exc: Exception) -> float:
    """A sweep job that failed: logged, written into the sweep folder for the parent run's comparison,
    and worth NaN to the sweeper, which then goes on (Optuna marks the trial FAIL; a failed job's own
    exception would end the study, and the basic sweeper's whole sweep, with a traceback)."""
    from hydra.core.hydra_config import HydraConfig

    from .cli import one_line
    from .errors import MoodgenError
    from .tracking import sweep_job

    user = isinstance(exc, MoodgenError)
    error = str(exc) if user else f"{type(exc).__name__}: {one_line(exc)}"[:500]
    log.error("this sweep job failed, the sweep goes on: %s", error, exc_info=None if user else exc)
    job = HydraConfig.get().job.num
    folder = Path(HydraConfig.get().sweep.dir) / FAILED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    record = {"job": job, "arm": sweep_job()[1], "error": error, "user": user}
    (folder / f"{job}.json").write_text(json.dumps(record))
    return math.nan


def failed_jobs(sweep_dir: str | Path) -> list[dict]:
    """The failed jobs of a sweep, in job order: {job, arm, error, user} each."""
    folder = Path(sweep_dir) / FAILED_DIR
    records = [json.loads(path.read_text()) for path in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(records, key=lambda record: record["job"])


def report_failures(failures: list[dict], launched: int) -> None:
    """The sweep's last line: its failed jobs (each arm was tried); exit 2 when every failure was
    user-fixable (MoodgenError), else 1."""
    from .cli import fail

    errors = list(dict.fromkeys(job["error"] for job in failures))
    if len(errors) == 1 and len(failures) == launched:
        message = f"{errors[0]} (each of the {launched} sweep job(s) failed so)"
    else:
        each = "; ".join(f"job #{job['job']}: {job['error']}" for job in failures)
        others = "the others ran" if len(failures) < launched else "none finished"
        message = f"{len(failures)} of {launched} sweep jobs failed, {others}: {each}"
    if all(job["user"] for job in failures):
        fail(message)
    print(f"moodgen: error: {message}", file=sys.stderr)
    sys.exit(1)


def launched_jobs(sweep_dir: str | Path) -> int:
    """How many jobs a sweep launched: their folders (hydra.sweep.subdir is the job number)."""
    folder = Path(sweep_dir)
    return sum(p.is_dir() and p.name.isdigit() for p in folder.iterdir()) if folder.is_dir() else 0


def study_of(config: DictConfig) -> optuna.Study | None:
    sweeper = config.hydra.sweeper
    if not sweeper.get("study_name") or not sweeper.get("storage"):
        return None
    try:
        return optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage)
    except KeyError:
        return None


def completed_trials(study_name: str, storage: str | None) -> int:
    if storage is None:
        return 0
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        return 0  # no database yet (and none is created by asking)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet
        return 0
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=finished))
