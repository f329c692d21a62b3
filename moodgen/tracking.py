"""MLflow: where the store is, one run per invocation, and what goes into it.

Default store: SQLite at ``mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts/`` under the
launch folder; ``logger.tracking_uri`` or ``$MLFLOW_TRACKING_URI`` point elsewhere. Only the
rank-0 process of a distributed run records anything.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from .heartbeat import HEARTBEAT_TAG, Heartbeat, beat_value, grace_seconds, stale

log = logging.getLogger(__name__)


def default_tracking_uri(mlruns_dir: str | Path) -> str:
    return f"sqlite:///{Path(mlruns_dir).resolve() / 'mlflow.db'}"


def tracking_uri(cfg: DictConfig) -> str:
    return (
        cfg.logger.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(cfg.paths.mlruns_dir)
    )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store (None for servers and other stores)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def open_store(uri: str) -> MlflowClient:
    """A client whose store is open: a new SQLite store is created (and migrated) under a file lock,
    so two commands starting together on a fresh store do not both migrate it; a damaged database
    is one line naming the file and the fix."""
    import fcntl

    from sqlalchemy.exc import DatabaseError

    from .errors import MoodgenError

    database = sqlite_path(uri)
    if database is None:
        if uri.startswith(("http://", "https://")):
            check_server(uri)
        return MlflowClient(tracking_uri=uri)
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            client = MlflowClient(tracking_uri=uri)  # opens the store: creates or migrates its tables
            client.search_experiments(max_results=1)
        except DatabaseError as exc:
            reason = str(exc.orig or exc).splitlines()[0]
            raise MoodgenError(
                f"the MLflow store {database} is damaged ({reason}); move it aside (its runs' files stay in "
                f"{database.parent / 'artifacts'}) or point logger.tracking_uri at another store"
            ) from None
    return client


def check_server(uri: str, timeout: float = 10) -> None:
    """An MLflow server that does not answer is one line at once (MLflow's client would retry for minutes)."""
    import urllib.error
    import urllib.request

    from .errors import MoodgenError

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answers (a proxy or an auth layer may guard /health): the client says more
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MoodgenError(
            f"the MLflow server {uri} does not answer ({reason}); start it (scripts/tracking_server.sh start) "
            "or point MLFLOW_TRACKING_URI / logger.tracking_uri at a running one"
        ) from None


# The MLflow UI (3.x) opens an experiment without this tag in its GenAI view ("Traces"); this kind
# selects the classic runs table and charts.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# MLflow 3.17 has no experiment-level setting for the runs table's default columns (they are kept in
# each browser); a shared view is the nearest: an experiment tag `mlflow.sharedViewState.<key>` that
# the page applies when opened as #/experiments/<id>?viewStateShareKey=<key> (runs_view_url), and
# then keeps in that browser. Its columns are what a user compares runs by.
RUNS_VIEW_KEY = "moodgen-runs"
RUNS_VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW_KEY}"
KEY_METRICS = (
    "lm/best_val_loss",  # the language model (lower is better)
    "lm/best_val_ppl",
    "clf/mood4/final_cell/cv_acc",  # the mood classifier: CV on the training phrases
    "clf/mood4/final_cell/test_acc",
    "steer/attributes/accuracy",  # the training run's own samples, default steering, judged by its probe
    "bench/attributes/accuracy",  # the steering benchmark: a cross-fitted judge
    "bench/none/accuracy",
)


CHART_SECTIONS = ("Key metrics", "Model metrics", "System metrics")  # the last two: MLflow's own names


def runs_view_state() -> str:
    """The shared view's JSON (the page's own serialised state): runs newest first, the key metrics
    as columns and, in the chart view, as a first section of their own ("Key metrics"); every other
    metric is charted after it in its usual section (the UI adds those)."""
    columns = ["attributes.`Duration`", *(f"metrics.`{key}`" for key in KEY_METRICS)]
    section = {"display": True, "isReordered": True, "deleted": False, "isGenerated": False}
    sections = [{"uuid": f"moodgen-{name.split()[0].lower()}", "name": name, **section} for name in CHART_SECTIONS]
    charts = [
        {
            "uuid": f"moodgen-chart-{i}",
            "type": "BAR",
            "runsCountToCompare": 10,
            "metricSectionId": sections[0]["uuid"],
            "deleted": False,
            "isGenerated": False,
            "displayName": key,
            "metricKey": key,
        }
        for i, key in enumerate(KEY_METRICS)
    ]
    state = {
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "selectedColumns": columns,
        "compareRunCharts": charts,
        "compareRunSections": sections,
        "isAccordionReordered": True,
    }
    return json.dumps(state, separators=(",", ":"))


def runs_view_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table on an MLflow server (e.g. `mlflow ui` at http://127.0.0.1:5000) in
    the runs view. MLflow 3.17's own UI decides GenAI or classic by its "GenAI | Model training"
    switch (remembered per browser, GenAI at first), not by the experiment's kind: the link sets it."""
    query = f"workflowType=machine_learning&viewStateShareKey={RUNS_VIEW_KEY}"
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def experiment_tags() -> dict[str, str]:
    return {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, RUNS_VIEW_TAG: runs_view_state()}


def get_or_create_experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    """The experiment's id, created with experiment_tags(); an experiment made before them (or by
    another tool) gets them the first time a command opens it. A kind a user set by hand stays."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = (artifact_root / name).as_uri() if artifact_root else None
        try:
            return client.create_experiment(name, artifact_location=location, tags=experiment_tags())
        except MlflowException:  # another command created it a moment ago
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    # the kind is set once; the view is ours and follows KEY_METRICS
    missing = {
        key: value
        for key, value in experiment_tags().items()
        if key not in experiment.tags or (key == RUNS_VIEW_TAG and experiment.tags[key] != value)
    }
    for key, value in missing.items():
        client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        items = {}
        for key, value in tree.items():
            items.update(flatten(value, f"{prefix}{key}."))
        return items
    return {prefix.rstrip("."): tree}


def git_commit(folder: str | Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


class _RunOwnedLogger(MLFlowLogger):
    """Lightning's MLflow logger, except that the pipeline (not fit) ends the run, and no (metric,
    step) is recorded twice: not `epoch` (Lightning adds it to every call), not a resumed run's
    steps that the part which stopped recorded already."""

    def __init__(self, *args, recorded: set[tuple[str, int]], **kwargs):
        super().__init__(*args, **kwargs)
        self._recorded = recorded

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step is not None:
            metrics = {k: v for k, v in metrics.items() if (k, step) not in self._recorded}
            self._recorded.update((k, step) for k in metrics)
        if metrics:
            super().log_metrics(metrics, step)

    def finalize(self, status: str = "success") -> None:
        pass


PROCESS_TAG = "moodgen.process"  # host:pid:start time of the process a RUNNING run belongs to
DIED_TAG = "moodgen.died"


def _start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (None: no such process, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def on_this_host(process: str) -> bool:
    return process.rsplit(":", 2)[0] == socket.gethostname()


def process_died(process: str) -> bool:
    """True when the recorded process is gone from this host (or its pid now names a later process);
    a run of another host is never judged from here."""
    _, pid, start = ([*process.rsplit(":", 2), "", ""])[:3]
    if not on_this_host(process) or not pid.isdigit():
        return False
    return _start_time(int(pid)) != start


def mark_dead_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """RUNNING runs whose process died (kill -9, a crash, a lost node) become FAILED, with a tag saying
    so: the next command that opens the store finds them. A run of this host is judged by its
    process, one of another host by its heartbeat (moodgen.heartbeat)."""
    marked = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=500):
        process = run.data.tags.get(PROCESS_TAG)
        if not process:
            continue
        if on_this_host(process):
            if not process_died(process):
                continue
            why = f"process {process} ended without closing the run"
        elif stale(run.data.tags.get(HEARTBEAT_TAG)):
            why = f"process {process} of another host sent no heartbeat for over {grace_seconds():.0f} s"
        else:
            continue
        run_id = run.info.run_id
        client.set_tag(run_id, DIED_TAG, why)
        client.set_terminated(run_id, "FAILED")
        hint = f"; continue it with: python -m moodgen.train resume={run_id}"
        log.warning(
            "run %s was left RUNNING by a process that died; marked FAILED%s",
            run_id,
            hint if run.data.tags.get("moodgen.entry_point") == "train" else "",
        )
        marked.append(run_id)
    return marked


def recorded_steps(client: MlflowClient, run_id: str) -> set[tuple[str, int]]:
    """(metric, step) pairs a run holds already."""
    run = client.get_run(run_id)
    return {(key, m.step) for key in run.data.metrics for m in client.get_metric_history(run_id, key)}


class Tracker:
    """One MLflow run: params, tags, metrics and artifacts, plus Lightning's logger for it."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        artifact_root: Path | None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ):
        self.uri = uri
        # Lightning's logger calls mlflow.set_tracking_uri, which exports MLFLOW_TRACKING_URI
        # for the whole process; end() restores it so the next run in a sweep chooses afresh.
        self._env_uri = os.environ.get("MLFLOW_TRACKING_URI")
        self.client = open_store(uri)
        self.experiment_id = get_or_create_experiment(self.client, experiment, artifact_root)
        self.experiment = experiment
        mark_dead_runs(self.client, self.experiment_id)
        tags = {**(tags or {}), PROCESS_TAG: this_process(), HEARTBEAT_TAG: beat_value()}
        self.recorded: set[tuple[str, int]] = set()
        if run_id is None:
            self.run_id = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags).info.run_id
        else:  # resume: the same run goes on, without recording a step twice
            self.run_id = run_id
            self.recorded = recorded_steps(self.client, run_id)
            self.client.update_run(run_id, "RUNNING")
            self.set_tags({PROCESS_TAG: tags[PROCESS_TAG], HEARTBEAT_TAG: tags[HEARTBEAT_TAG]})
            if DIED_TAG in self.client.get_run(run_id).data.tags:
                self.client.delete_tag(run_id, DIED_TAG)
        self.lightning_logger = _RunOwnedLogger(
            experiment_name=experiment, tracking_uri=uri, run_id=self.run_id, log_model=False, recorded=self.recorded
        )
        self.heartbeat = Heartbeat.of_run(self.client, self.run_id)  # for commands on other hosts (mark_dead_runs)

    def log_params(self, params: dict[str, Any]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if (k, step) not in self.recorded]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_json(self, data: Any, artifact_file: str) -> None:
        self.client.log_text(self.run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def end(self, status: str = "FINISHED") -> None:
        self.heartbeat.stop()
        self.client.set_terminated(self.run_id, status)
        if self._env_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = self._env_uri

    def where(self) -> str:
        return f"MLflow run {self.run_id} (experiment {self.experiment!r}) in {self.uri}"

    def browse_hint(self) -> str:
        """How to look at the run: a server's own page, else `mlflow ui` on the store and the runs
        table it serves (the key-metric columns; MLflow's own start page is the GenAI view)."""
        if self.uri.startswith(("http://", "https://")):
            return f"open {self.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        table = runs_view_url("http://127.0.0.1:5000", self.experiment_id)
        return f"mlflow ui --backend-store-uri {self.uri}  (then open {table})"


class NullTracker:
    """logger=none, or a non-zero rank: the same calls, recorded nowhere."""

    run_id = None
    lightning_logger = False

    def __init__(self, output_dir: str | Path = "."):
        self.output_dir = output_dir

    def log_params(self, params):
        pass

    def set_tags(self, tags):
        pass

    def log_metrics(self, metrics, step=0):
        pass

    def log_artifact(self, path, artifact_path=None):
        pass

    def log_json(self, data, artifact_file):
        pass

    def end(self, status="FINISHED"):
        pass

    def where(self) -> str:
        return f"no tracking (logger=none); files are in {self.output_dir}"


def _store(cfg: DictConfig) -> tuple[str, Path | None]:
    """(tracking URI, artifact root): the default store keeps artifacts beside its database."""
    uri = tracking_uri(cfg)
    if uri != default_tracking_uri(cfg.paths.mlruns_dir):
        return uri, None  # a server or another store decides where artifacts go
    Path(cfg.paths.mlruns_dir).mkdir(parents=True, exist_ok=True)
    return uri, Path(cfg.paths.mlruns_dir).resolve() / "artifacts"


def sweep_job() -> tuple[str | None, str]:
    """(parent run id, arm label) when this job is one of a Hydra multirun's jobs."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .sweeps import parent_run_id

    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None, ""
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None, ""
    from .sweeps import read_swept_keys

    # the keys that vary between the arms: written by the sweep's callback (command-line sweeps and
    # the sweeper's params), else the sweeper's params; the label leaves out what every arm shares
    swept = read_swept_keys(hydra_cfg.sweep.dir)
    if swept is None:
        swept = [str(key) for key in (hydra_cfg.sweeper.get("params") or {})]
    overrides = list(hydra_cfg.overrides.task)
    arm = [o for o in overrides if override_key(o) in swept] or overrides
    return parent_run_id(hydra_cfg.sweep.dir), " ".join(_short(o) for o in arm)


def override_key(override: str) -> str:
    """'+model.lr=0.1' -> 'model.lr', 'model=lstm' -> 'model', '~tags' -> 'tags'."""
    return override.lstrip("+~").split("=", 1)[0].split("@", 1)[0]


SLURM_JOB_TAG = "moodgen.slurm_job"  # the SLURM job (array jobs as <array id>_<task>, as submitit names them)


def slurm_job_id() -> str | None:
    """This process's SLURM job, as squeue/scontrol and submitit's log names show it; None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


def _short(override: str) -> str:
    """'model.lr=0.0024479668' -> 'model.lr=0.002448': arm labels that fit a table."""
    key, _, value = override.partition("=")
    if len(value) <= 8:
        return override
    try:
        return f"{key}={float(value):.4g}"
    except ValueError:
        return override


def make_tracker(cfg: DictConfig, run_name: str, run_id: str | None = None) -> Tracker | NullTracker:
    """A new run (a child of the sweep's parent inside a multirun), or `run_id` reopened to resume it."""
    if cfg.logger.name == "none" or rank_zero_only.rank != 0:
        return NullTracker(cfg.paths.output_dir)
    uri, artifact_root = _store(cfg)
    tags = {"moodgen.entry_point": cfg.task_name}
    commit = git_commit(Path(__file__).parent)  # the code that ran, wherever it was launched
    if commit:
        tags["mlflow.source.git.commit"] = commit
    slurm = slurm_job_id()
    if slurm:
        tags[SLURM_JOB_TAG] = slurm
    parent, arm = sweep_job()
    if parent:
        tags["mlflow.parentRunId"] = parent
        tags[ARM_TAG] = arm
    tracker = Tracker(uri, cfg.logger.experiment_name, run_name, artifact_root, tags, run_id=run_id)
    folder = Path(cfg.paths.output_dir).resolve()
    tracker.set_tags({OUTPUT_TAG: str(folder)})  # a resumed run's newest local files are in its new folder
    link_run_folder(Path(cfg.paths.root_dir), tracker.run_id, folder)
    if run_id is not None:
        return tracker  # a resumed run keeps the config it was started with
    resolved = OmegaConf.to_container(cfg, resolve=True)
    tracker.log_params(flatten(resolved))
    tracker.client.log_text(tracker.run_id, OmegaConf.to_yaml(resolved), "config/config.yaml")
    hydra_dir = Path(cfg.paths.output_dir) / ".hydra"  # Hydra's own record: overrides, hydra.yaml
    if hydra_dir.is_dir():
        tracker.log_artifact(hydra_dir, "config/hydra")
    return tracker


def link_run_folder(root: Path, run_id: str, folder: Path) -> Path | None:
    """`<root>/outputs/runs/<run id>` -> the run's output folder: a run's files found by its MLflow id.
    The folder itself is named by time and token (Hydra makes it before the run, and its id, exist)."""
    link = root / "outputs" / "runs" / run_id
    fresh = link.with_name(f".{run_id}.{os.getpid()}")
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(folder, target_is_directory=True)
        os.replace(fresh, link)  # a resumed run's link moves to its new folder in one step
    except OSError as exc:  # a file system without links: the run's tag still names the folder
        log.debug("no link %s: %s", link, exc)
        return None
    return link


def open_parent_run(config: DictConfig, name: str) -> str:
    """The parent run of a sweep; an Optuna study reuses its parent, so a resumed study adds children."""
    from .sweeps import SWEEP_TAG

    uri, artifact_root = _store(config)
    client = open_store(uri)
    experiment_id = get_or_create_experiment(client, config.logger.experiment_name, artifact_root)
    study = config.hydra.sweeper.get("study_name")
    if study:
        existing = client.search_runs(
            [experiment_id], filter_string=f"tags.`{SWEEP_TAG}` = '{name}'", order_by=["attributes.start_time DESC"]
        )
        if existing:
            client.update_run(existing[0].info.run_id, "RUNNING")
            return existing[0].info.run_id
    tags = {SWEEP_TAG: name, "moodgen.entry_point": f"{config.task_name} sweep"}
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    sweep = OmegaConf.to_container(config.hydra.sweeper, resolve=False)
    client.log_text(run.info.run_id, OmegaConf.to_yaml(sweep), "config/sweeper.yaml")
    return run.info.run_id


CHECKPOINT_TAG = "moodgen.checkpoint"  # artifact path of a train run's best checkpoint
OUTPUT_TAG = "moodgen.output_dir"  # where the run's local files (checkpoints while training) are
ARM_TAG = "moodgen.arm"  # a sweep job's swept overrides


@dataclass(frozen=True)
class RunNeed:
    """Something a training run must hold for a task (steering=conditioned: the mood classifier).

    `has(client, run)` says whether it does; `setting(run)` names the run's option that left it out
    (e.g. "classifier=none"), for the line that says why a newer run was passed over."""

    what: str  # "a mood classifier": read as "newest with <what>"
    has: Callable[[Any, Any], bool]
    setting: Callable[[Any], str] = lambda run: ""


def find_train_run(cfg: DictConfig, ref: str, option: str = "lm_run"):
    """An MLflow run by id, or `latest`: the newest finished training run with a checkpoint."""
    from mlflow.exceptions import MlflowException

    from .errors import MoodgenError

    if ref == "latest":
        client, run, _ = newest_train_run(cfg)
        return client, run
    uri = tracking_uri(cfg)
    client = open_store(uri)
    try:
        run = client.get_run(ref)
    except MlflowException:
        raise MoodgenError(
            f"no MLflow run {ref!r} in {uri}; use {option}=latest or a run id from `mlflow ui`"
        ) from None
    if CHECKPOINT_TAG not in run.data.tags:
        raise MoodgenError(
            f"run {ref} has no checkpoint (fast_dev_run or logger.log_checkpoints=false?); "
            "train one with: python -m moodgen.train"
        )
    return client, run


def newest_train_run(
    cfg: DictConfig, needs: Sequence[RunNeed] = (), purpose: str = "", fix: str = ""
) -> tuple[Any, Any, str]:
    """(client, run, why): the newest finished training run with a checkpoint and all of `needs`.

    `why` says which run it is and why newer ones were passed over, e.g. "newest with a mood
    classifier; 2 newer runs have no mood classifier: classifier=none" (also logged). No such run:
    one line naming what `purpose` (e.g. "steering=conditioned") needs, the newest run's setting,
    and `fix` (else: train such a run, or name one with model_run=).
    """
    from .errors import MoodgenError

    uri = tracking_uri(cfg)
    client = open_store(uri)
    experiment = client.get_experiment_by_name(cfg.logger.experiment_name)
    runs = (
        []
        if experiment is None
        else client.search_runs(
            [experiment.experiment_id],
            filter_string="attributes.status = 'FINISHED' and tags.`moodgen.entry_point` = 'train'",
            order_by=["attributes.start_time DESC"],
            max_results=100,
        )
    )
    runs = [run for run in runs if CHECKPOINT_TAG in run.data.tags]
    if not runs:
        raise MoodgenError(
            f"no finished training run with a checkpoint in {uri} (experiment "
            f"{cfg.logger.experiment_name!r}); train one with: python -m moodgen.train"
        )
    passed: list[tuple[Any, RunNeed]] = []  # newer runs, each with the first need it lacks
    for run in runs:
        lacking = next((need for need in needs if not need.has(client, run)), None)
        if lacking is None:
            why = passed_over(needs, passed)
            log.debug("model run %s (%s)", run.info.run_id, why)  # the entry points print it
            return client, run, why
        passed.append((run, lacking))
    newest, lacking = passed[0]
    setting = lacking.setting(newest)
    raise MoodgenError(
        f"no finished training run in {uri} has {lacking.what}, which {purpose or 'this'} needs (the newest, "
        f"{newest.info.run_id[:8]}, has none{': ' + setting if setting else ''}); "
        f"{fix or 'train one with it (python -m moodgen.train), or pick a run with model_run=<run id>'}"
    )


def passed_over(needs: Sequence[RunNeed], passed: list[tuple[Any, RunNeed]]) -> str:
    """'the newest finished training run', or 'newest with X; 2 newer runs have none: classifier=none'."""
    if not needs:
        return "the newest finished training run"
    what = " and ".join(need.what for need in needs)
    if not passed:
        return f"the newest finished training run; it has {what}"
    settings = list(dict.fromkeys(need.setting(run) or run.info.run_id[:8] for run, need in passed))
    lacked = " or ".join(dict.fromkeys(need.what.removeprefix("a ").removeprefix("an ") for _, need in passed))
    newer = f"{len(passed)} newer run{'s' if len(passed) > 1 else ''} {'have' if len(passed) > 1 else 'has'}"
    return f"newest with {what}; {newer} no {lacked}: {', '.join(settings)}"


def checkpoint_step(path: str | Path) -> int | None:
    """The training step a Lightning checkpoint was saved at (None: damaged or not a checkpoint)."""
    from .artifacts import read_checkpoint

    try:
        return int(read_checkpoint(path)["global_step"])
    except Exception as exc:  # truncated, damaged or foreign files are passed over, said once each
        log.warning("passing over checkpoint %s: it cannot be read (%s)", path, str(exc).splitlines()[0][:120])
        return None


def newest_checkpoint(client: MlflowClient, run, download: Path) -> str | None:
    """The run's checkpoint with the most training steps: local files (written until the process
    stopped) and logged artifacts alike; interrupted, last, periodic and best ones all compete."""
    run_id = run.info.run_id
    local = Path(run.data.tags.get(OUTPUT_TAG, "/nonexistent")) / "checkpoints"
    candidates = sorted(local.glob("*.ckpt")) if local.is_dir() else []
    for artifact in client.list_artifacts(run_id, "checkpoints"):
        if artifact.path.endswith(".ckpt") and not (local / Path(artifact.path).name).exists():
            candidates.append(Path(client.download_artifacts(run_id, artifact.path, str(download))))
    steps = {str(path): checkpoint_step(path) for path in candidates}
    readable = {path: step for path, step in steps.items() if step is not None}
    return max(readable, key=readable.get) if readable else None


def resume_checkpoint(cfg: DictConfig, run_id: str) -> tuple[object, DictConfig, str | None]:
    """(the MLflow run, its stored config, local path of its newest checkpoint; None when FINISHED).

    A RUNNING run whose process died is marked so first; one still running on this host is refused.
    """
    from mlflow.exceptions import MlflowException

    from .errors import MoodgenError

    client = open_store(tracking_uri(cfg))
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise MoodgenError(f"resume={run_id}: no such MLflow run in {tracking_uri(cfg)}") from None
    if run.data.tags.get("moodgen.entry_point") != "train":
        raise MoodgenError(f"resume={run_id} is not a training run; give the id of a `moodgen.train` run")
    if run.info.status == "RUNNING" and mark_dead_runs(client, run.info.experiment_id):
        run = client.get_run(run_id)
    process = run.data.tags.get(PROCESS_TAG, "")
    if run.info.status == "RUNNING" and on_this_host(process):
        raise MoodgenError(f"resume={run_id}: the run is still running (process {process}); wait for it or stop it")
    beat = run.data.tags.get(HEARTBEAT_TAG)
    if run.info.status == "RUNNING" and beat and not stale(beat):
        raise MoodgenError(
            f"resume={run_id}: the run is still running on another host (process {process}, heartbeat "
            f"{time.time() - float(beat):.0f} s ago); wait for it, or stop it there"
        )
    download = Path(cfg.paths.output_dir) / "resumed_from"
    download.mkdir(parents=True, exist_ok=True)
    stored = OmegaConf.load(client.download_artifacts(run_id, "config/config.yaml", str(download)))
    if run.info.status == "FINISHED":
        return run, stored, None
    checkpoint = newest_checkpoint(client, run, download)
    if checkpoint is None:
        raise MoodgenError(
            f"resume={run_id}: the run stopped before its first checkpoint, so there is nothing to continue; "
            "start it again with the same command (callbacks.checkpoint_every_minutes sets how often one is kept)"
        )
    return run, stored, checkpoint


def init_checkpoint(cfg: DictConfig, ref: str) -> str:
    """`init_from`: a .ckpt path as it is, or an MLflow run id -> its best checkpoint, downloaded."""
    if ref.endswith(".ckpt") or Path(ref).exists():
        if not Path(ref).exists():
            from .errors import MoodgenError

            raise MoodgenError(f"init_from={ref}: no such checkpoint file")
        return ref
    client, run = find_train_run(cfg, ref, option="init_from")
    folder = Path(cfg.paths.output_dir) / "init_from"
    folder.mkdir(parents=True, exist_ok=True)
    return client.download_artifacts(run.info.run_id, run.data.tags[CHECKPOINT_TAG], str(folder))
