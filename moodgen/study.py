"""Optuna studies that several sweep processes share, on one machine or many.

`hydra/sweeper=moodgen_optuna` (what `hparams_search=...` uses) is Hydra's Optuna sweeper with
three changes, so that any number of `python -m moodgen.train -m hparams_search=lm_optuna` workers
can run one study in one storage (`hydra.sweeper.storage=postgresql://...`) at the same time:

- `n_trials` is the study's total: a worker claims a trial only while the study holds fewer than
  n_trials finished (complete or pruned) and running trials, so all workers together finish
  exactly n_trials (one worker never runs more than n_trials, so a search whose every trial fails
  still ends); the same command run again later continues the study up to that total.
- A trial's worker is recorded (`moodgen.worker`, host:pid:start) and a heartbeat is kept while the
  trial runs; the next worker marks a trial FAIL whose worker died on its host, or whose heartbeat
  is older than `grace_period` seconds (any host), and the study goes on without it.
- Each trial's sampler is seeded with the sampler's seed plus the trial's number, so workers that
  start together draw different trials, and a continued study does not replay its first ones.

Claims are serialised per study: a PostgreSQL advisory lock, MySQL's GET_LOCK, or a lock file
beside a SQLite database.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from .heartbeat import Heartbeat

log = logging.getLogger("moodgen")

WORKER_ATTR = "moodgen.worker"  # user attr of a trial: host:pid:start of the sweep process running it
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SAMPLERS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")


@dataclass
class StudySweeperConf(OptunaSweeperConf):
    _target_: str = "moodgen.study.StudySweeper"
    n_jobs: int = 1  # trials a worker runs at once (its launcher's batch)
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 120  # a running trial with no heartbeat for this long is marked FAIL


def register_config() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(
        group="hydra/sweeper", name="moodgen_optuna", node=StudySweeperConf, provider="moodgen", replace=True
    )


def register_plugin() -> None:
    from hydra.core.plugins import Plugins

    Plugins.instance().register(StudySweeper)


def lock_key(study_name: str) -> int:
    """A signed 64-bit number naming the study's lock (PostgreSQL advisory locks take one)."""
    digest = hashlib.sha256(f"moodgen.optuna:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def study_lock(storage: Any, study_name: str | None) -> Iterator[None]:
    """Held while a worker counts a study's trials and claims the next ones (or opens the sweep's
    parent run), so two workers never claim the same open place; a worker that dies drops it."""
    if not isinstance(storage, str) or not study_name:
        yield  # in memory, or a study no other process can name
        return
    if storage.startswith("sqlite:///"):
        import fcntl

        database = Path(storage.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        with open(database.with_name(f"{database.name}.{lock_key(study_name) & 0xFFFFFFFF:08x}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield
        return
    if not storage.startswith(("postgresql", "mysql")):
        yield  # journal files and other storages: claims are not serialised
        return
    import sqlalchemy

    postgres = storage.startswith("postgresql")
    take, give = (
        ("select pg_advisory_lock(:key)", "select pg_advisory_unlock(:key)")
        if postgres
        else ("select get_lock(:key, -1)", "select release_lock(:key)")
    )
    key = lock_key(study_name) if postgres else f"moodgen.optuna:{study_name}"[:64]
    engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(take), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text(give), {"key": key})
    finally:
        engine.dispose()


def open_storage(storage: Any, **options: Any) -> Any:
    """An RDB storage URL as an RDBStorage (`options`: heartbeat_interval, grace_period), its tables
    created under a lock: workers starting together on a new database would race to create them."""
    if not (isinstance(storage, str) and storage.startswith(("sqlite", "postgresql", "mysql"))):
        return storage
    with study_lock(storage, "<tables>"):
        return optuna.storages.RDBStorage(storage, **options)


def trial_heartbeat(storage: Any, trial_id: int) -> Heartbeat | None:
    """A running trial's heartbeat in its RDB storage, at once and then every heartbeat_interval."""
    if not (isinstance(storage, optuna.storages.RDBStorage) and storage.heartbeat_interval):
        return None
    beat = functools.partial(storage.record_heartbeat, trial_id)
    return Heartbeat(beat, storage.heartbeat_interval, f"trial-{trial_id}", now=True)


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """RUNNING trials whose worker is gone become FAIL: its process died on this host, or its
    heartbeat is older than the grace period (a worker on any host). Returns their numbers."""
    from .tracking import process_died

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    reasons = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker and process_died(worker):  # on this host: known at once, before its heartbeat is stale
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            reasons[trial.number] = f"its worker {worker} died"
    still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for number in sorted(running - still):
        reason = reasons.get(number) or "no heartbeat from its worker within the grace period"
        log.warning(
            "study %r: trial %d was left RUNNING (%s); marked FAIL, the study goes on", study.study_name, number, reason
        )
    return sorted(running - still)


class StudyWorkers(OptunaSweeperImpl):
    """Hydra's Optuna sweep loop, as one of any number of workers on one study (see the module)."""

    def __init__(self, *args: Any, sampler_config: Any, heartbeat_interval: int, grace_period: int):
        super().__init__(*args)
        self.sampler_config = sampler_config
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period

    def _reseed(self, study: optuna.Study, number: int) -> None:
        """The sampler for trial `number`: its seed plus the number (an unseeded sampler stays)."""
        config = self.sampler_config
        if not isinstance(config, dict) or config.get("seed") is None or config.get("_partial_"):
            return
        study.sampler = instantiate(config, seed=int(config["seed"]) + number, _execution_whitelist_=SAMPLERS)

    def _claim(self, study: optuna.Study, wanted: int, space: tuple) -> tuple[list, list]:
        """Up to `wanted` new trials, with their overrides: as many as the study's total leaves open."""
        from .tracking import this_process

        trials, overrides = [], []
        with study_lock(self.storage, study.study_name):
            fail_dead_trials(study)
            present = study.get_trials(deepcopy=False)
            finished = sum(t.state in FINISHED for t in present)
            running = sum(t.state == TrialState.RUNNING and WORKER_ATTR in t.user_attrs for t in present)
            for _ in range(max(0, min(wanted, self.n_trials - finished - running))):
                self._reseed(study, len(study.get_trials(deepcopy=False)))
                with warnings.catch_warnings():  # heartbeats are kept by this loop, not by study.optimize
                    warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used")
                    trial = study.ask()
                trial.set_user_attr(WORKER_ATTR, this_process())
                trials.append(trial)
                overrides += self._configure_trials([trial], *space)  # sampled under the lock: sees every claim
        return trials, overrides

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config()
        params_conf.extend(arguments)
        is_grid_sampler = (
            isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler
        )
        distributions, fixed_params, fixed_overrides = create_params_from_overrides(params_conf)
        if is_grid_sampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(grid)
            total = 1
            for choices in grid.values():
                total *= len(choices)
            self.n_trials = min(self.n_trials, total)
        for name in fixed_params:
            distributions.pop(name, None)
        directions = self._get_directions()
        storage = open_storage(self.storage, heartbeat_interval=self.heartbeat_interval, grace_period=self.grace_period)
        with study_lock(self.storage, self.study_name):
            study = optuna.create_study(
                study_name=self.study_name,
                storage=storage,
                sampler=self.sampler,
                directions=directions,
                load_if_exists=True,
            )
        log.info(
            "study %r in %s: up to %d trials in total, shared with any other worker",
            study.study_name,
            _safe(self.storage),
            self.n_trials,
        )
        space = (distributions, fixed_params, fixed_overrides)
        asked = 0
        while asked < self.n_trials:
            trials, overrides = self._claim(study, min(self.n_jobs, self.n_trials - asked), space)
            if not trials:
                break
            asked += len(trials)
            beats = [trial_heartbeat(storage, trial._trial_id) for trial in trials]
            try:
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            except BaseException:  # interrupted (Ctrl-C) or broken: its trials end FAIL, not RUNNING
                for trial in trials:
                    with contextlib.suppress(Exception):
                        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            finally:
                for beat in filter(None, beats):
                    beat.stop()
            self.job_idx += len(returns)
            self._tell(study, trials, returns, len(directions))
        finished = len(study.get_trials(deepcopy=False, states=FINISHED))
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        elsewhere = f", {running} running elsewhere" if running else ""
        log.info(
            "study %r: %d of %d trials finished%s; this worker ran %d",
            study.study_name,
            finished,
            self.n_trials,
            elsewhere,
            asked,
        )
        self._save_results(study, len(directions))

    def _tell(self, study: optuna.Study, trials: list, returns: list, objectives: int) -> None:
        failures = []
        for trial, ret in zip(trials, returns, strict=True):
            try:
                value = ret.return_value
                values = [float(value)] if objectives == 1 else [float(v) for v in value]
                if len(values) != objectives:
                    raise ValueError(f"{objectives} objectives, but the job returned {len(values)} values")
                study.tell(trial, values=values, state=TrialState.COMPLETE)
            except Exception as exc:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                log.warning("Failed experiment: %s", exc)
                failures.append(exc)
        if failures and len(failures) / len(returns) > self.max_failure_rate:
            log.error(
                "Failed %d times out of %d with max_failure_rate=%s.",
                len(failures),
                len(returns),
                self.max_failure_rate,
            )
            for ret in returns:
                ret.return_value  # noqa: B018 - raises the job's own error, with its traceback

    def _save_results(self, study: optuna.Study, objectives: int) -> None:
        if objectives == 1:
            best = study.best_trial  # no finished trial: ValueError, as with Hydra's own sweeper
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info("Best parameters: %s", best.params)
            log.info("Best value: %s", best.value)
        else:
            solutions = [{"params": t.params, "values": t.values} for t in study.best_trials]
            results = {"name": "optuna", "solutions": solutions}
        OmegaConf.save(OmegaConf.create(results), f"{self.config.hydra.sweep.dir}/optimization_results.yaml")


def _safe(storage: Any) -> str:
    """A storage URL without its password, for logs."""
    if not isinstance(storage, str):
        return type(storage).__name__
    from sqlalchemy.engine import make_url

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:
        return storage.split("@")[-1]


class StudySweeper(OptunaSweeper):
    """`hydra/sweeper=moodgen_optuna`: Hydra's Optuna sweeper as one worker of a shared study."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
        heartbeat_interval: int = 10,
        grace_period: int = 120,
    ) -> None:
        sampler_config = OmegaConf.to_container(sampler, resolve=True) if isinstance(sampler, DictConfig) else sampler
        self.sweeper = StudyWorkers(
            instantiate(sampler, _execution_whitelist_=SAMPLERS),
            direction,
            storage,
            study_name,
            n_trials,
            n_jobs,
            max_failure_rate,
            custom_search_space,
            params,
            sampler_config=sampler_config,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
        )
