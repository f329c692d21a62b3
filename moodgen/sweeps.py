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
import os
import sys
from pathlib import Path
from typing import Any

import optuna
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("moodgen")

PARENT_FILE = "mlflow_parent_run_id"
SWEPT_FILE = "swept_keys.json"  # in the sweep folder: the keys that vary between arms (their labels)
SWEEP_TAG = "moodgen.sweep"
FAILED_DIR = "failed_jobs"  # in the sweep folder: <job number>.json per failed job, from any node


def sweep_name(config: DictConfig) -> str:
    return config.hydra.sweeper.get("study_name") or config.get("sweep_name") or config.task_name


def parent_run_id(sweep_dir: str | Path) -> str | None:
    """The parent run of the sweep this job belongs to, if any (read by every job)."""
    path = Path(sweep_dir) / PARENT_FILE
    return path.read_text().strip() if path.exists() else None


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a multirun varies: its command line's sweeps (`model.dropout=0.1,0.2`,
    `model.lr=interval(...)`) and the sweeper's own params (experiments, Optuna searches)."""
    from .cli import _is_sweep
    from .tracking import override_key

    keys = [override_key(str(o)) for o in config.hydra.overrides.task if _is_sweep(str(o))]
    keys += [override_key(str(key)) for key in (config.hydra.sweeper.get("params") or {})]
    return list(dict.fromkeys(keys))


def read_swept_keys(sweep_dir: str | Path) -> list[str] | None:
    """The swept keys the sweep's callback wrote (None: not a sweep this callback started)."""
    path = Path(sweep_dir) / SWEPT_FILE
    return json.loads(path.read_text()) if path.exists() else None


class MlflowSweepCallback(Callback):
    watch = None  # the SLURM jobs' watcher (moodgen.slurm_watch) while a hydra/launcher=slurm sweep runs

    def __getstate__(self) -> dict:
        """Without the watcher: submitit pickles the launcher, callbacks and all, into every job."""
        return {key: value for key, value in self.__dict__.items() if key != "watch"}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from .tracking import open_parent_run

        if str(config.hydra.launcher.get("_target_", "")).endswith("SlurmLauncher"):
            from .slurm_watch import SlurmWatch

            self.watch = SlurmWatch(Path(str(config.hydra.launcher.submitit_folder)).parent).start()
        storage = config.hydra.sweeper.get("storage")
        if isinstance(storage, str) and storage.startswith("sqlite:///"):  # Optuna does not create folders
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        folder = Path(config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SWEPT_FILE).write_text(json.dumps(swept_keys(config)))  # read by every job, on any node
        if config.logger.name == "none":
            return
        from .study import study_lock

        name = sweep_name(config)
        with study_lock(storage, config.hydra.sweeper.get("study_name")):  # workers of one study: one parent
            parent = open_parent_run(config, name)
        (folder / PARENT_FILE).write_text(parent)
        log.info("sweep %r: parent MLflow run %s", name, parent)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        never_started = self.watch.stop() if self.watch is not None else None
        failures = failed_jobs(config.hydra.sweep.dir)
        if never_started:  # cancelled by the watcher: no job can run, so none wrote its failure
            failures.append({"job": "-", "arm": "every arm", "error": never_started, "user": True})
        parent = parent_run_id(config.hydra.sweep.dir)
        if parent is not None:
            self.compare(config, parent, failures)
        if never_started:
            from .cli import fail

            fail(never_started)
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
    record = {"job": job, "arm": sweep_job()[1], "error": error, "user": user, **cluster_job()}
    (folder / f"{job}.json").write_text(json.dumps(record))
    return math.nan


def cluster_job() -> dict[str, str]:
    """Inside a SLURM job (hydra/launcher=slurm): {"slurm_job": its id, "log": submitit's log of this
    task, where the job's own log lines and tracebacks are}; {} elsewhere."""
    from .tracking import slurm_job_id

    slurm = slurm_job_id()
    if not slurm:
        return {}
    record = {"slurm_job": slurm}
    if os.environ.get("SUBMITIT_FOLDER"):
        try:
            import submitit

            record["log"] = str(submitit.JobEnvironment().paths.stdout)
        except Exception:  # not a submitit job after all: the id alone
            pass
    return record


def _job_name(job: dict) -> str:
    """'job #1' locally; 'job #1 (SLURM job 12_1, log .../12_1_0_log.out)' on a cluster."""
    where = [f"SLURM job {job['slurm_job']}"] if job.get("slurm_job") else []
    where += [f"log {job['log']}"] if job.get("log") else []
    return f"job #{job['job']}" + (f" ({', '.join(where)})" if where else "")


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
        logs = [job["log"] for job in failures if job.get("log")]
        where = f"; their logs: {', '.join(logs)}" if logs else ""
        message = f"{errors[0]} (each of the {launched} sweep job(s) failed so{where})"
    else:
        each = "; ".join(f"{_job_name(job)}: {job['error']}" for job in failures)
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
    from .study import open_storage

    try:
        return optuna.load_study(study_name=sweeper.study_name, storage=open_storage(sweeper.storage))
    except KeyError:
        return None


def completed_trials(study_name: str, storage: str | None) -> int:
    if storage is None:
        return 0
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        return 0  # no database yet (and none is created by asking)
    from .study import open_storage

    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:  # no such study yet
        return 0
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=finished))
