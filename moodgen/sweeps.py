"""Sweeps (experiments and Optuna searches) as one parent MLflow run with a child run per job.

A Hydra callback opens the parent when the multirun starts and writes its id into the sweep
folder, where every job (in this process or on a cluster node) finds it; when the sweep ends,
the parent gets the comparison: a table of the arms, an overlay of their val-loss curves and,
for Optuna, the best trial and the study's plots.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("moodgen")

PARENT_FILE = "mlflow_parent_run_id"
SWEEP_TAG = "moodgen.sweep"


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
        from .comparison import compare_children

        parent = parent_run_id(config.hydra.sweep.dir)
        if parent is None:
            return
        try:
            table = compare_children(config, parent, Path(config.hydra.sweep.dir))
            if table:
                print(table, flush=True)
            study = study_of(config)
            if study is not None:
                from .comparison import log_study

                log_study(config, parent, study, Path(config.hydra.sweep.dir))
        except Exception as exc:  # runs in Hydra's `finally`: never mask the sweep's own error
            log.warning("sweep comparison failed: %s", exc)


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
