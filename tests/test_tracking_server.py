"""A team's tracking server for real: PostgreSQL + `mlflow server` with proxied artifacts, started by
scripts/tracking_server.sh; every entry point runs as a subprocess against
MLFLOW_TRACKING_URI=http://..., and parallel Optuna workers share one study in PostgreSQL.

Nothing may rely on a local artifact path: each run's files are found under the server's
--artifacts-destination, no mlruns/ appears where the commands ran, the training run's local
output folder is deleted before anything reads the model, and the model is looked up (latest and
the registry's champion alias), its steering cache read and written back, through the server.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from moodgen.errors import MoodgenError
from moodgen.study import WORKER_ATTR, fail_dead_trials
from moodgen.tracking import check_server

from .conftest import TINY_MODEL, TINY_TRAINER
from .tracking_server import TrackingServer, free_port, tracking_server  # noqa: F401 (the fixture)

TINY_STEERING = ["steering.steps=4", "steering.batch_size=4", "steering.chunk_tokens=64", "steering.max_chunks=24"]


def folder_args(midi_folder: Path) -> list[str]:
    return ["data=folder", f"data.root={midi_folder}", "data.val_fraction=0.25", *TINY_MODEL, *TINY_TRAINER]


def moodgen(server: TrackingServer, root: Path, module: str, *args: str, timeout: float = 300) -> str:
    """`python -m moodgen.<module> args` in `root`, recording to the server; its output."""
    command = [sys.executable, "-m", f"moodgen.{module}", *args, f"paths.root_dir={root}"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=timeout, env=server.env())
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def on_server(server: TrackingServer, client: MlflowClient, run_id: str, path: str) -> Path:
    """The file of a run's artifact in the server's artifacts destination (never a local store)."""
    run = client.get_run(run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri  # proxied by the server
    local = server.artifacts / run.info.artifact_uri.removeprefix("mlflow-artifacts:/") / path
    assert local.is_file(), f"{path} of run {run_id} is not in {server.artifacts}"
    return local


def no_local_store(root: Path) -> None:
    found = [p for name in ("mlruns", "mlartifacts") for p in root.rglob(name)]
    assert not found, f"a local MLflow store appeared: {found}"


SWEEPS = "team_sweeps"  # the sweeps' experiment: their children are training runs too, so not `latest` of moodgen


def runs(client: MlflowClient, query: str, experiment_name: str = "moodgen"):
    experiment = client.get_experiment_by_name(experiment_name).experiment_id
    return client.search_runs([experiment], filter_string=query, max_results=200)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_server_that_does_not_answer_is_one_line():
    port = free_port()  # nothing listens there
    with pytest.raises(MoodgenError, match=rf"the MLflow server http://127.0.0.1:{port} does not answer"):
        check_server(f"http://127.0.0.1:{port}", timeout=2)


@pytest.fixture(scope="module")
def server(tracking_server) -> TrackingServer:  # noqa: F811
    return tracking_server


@pytest.fixture(scope="module")
def client(server) -> MlflowClient:
    return MlflowClient(tracking_uri=server.uri)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("team")


@pytest.fixture(scope="module")
def model_run(server, client, work, vgmidi_root) -> str:
    """A tiny VGMIDI model trained against the server, its attribute steering cached with the run;
    the training run's local output folder is then deleted: only the server has the model."""
    root = work / "train"
    root.mkdir()
    args = [f"data.root={vgmidi_root}", "data.max_files=6", *TINY_MODEL, *TINY_TRAINER, "classifier=none"]
    # enough steps that its pieces hold notes (evaluate needs two)
    args += ["model.hidden_size=64", "model.batch_size=16", "trainer.max_epochs=2", "trainer.limit_train_batches=60"]
    out = moodgen(server, root, "train", *args, "model.lr=0.01", "samples.n=1", "samples.evaluate=false")
    assert f"in {server.uri}" in out and "browse it with: open http://127.0.0.1:" in out
    (run,) = runs(client, "tags.`moodgen.entry_point` = 'train'")
    shutil.rmtree(root / "outputs")
    no_local_store(root)
    return run.info.run_id


def test_training_records_on_the_server(server, client, model_run):
    run = client.get_run(model_run)
    assert run.info.status == "FINISHED" and "lm/val_loss" in run.data.metrics
    assert on_server(server, client, model_run, run.data.tags["moodgen.checkpoint"]).stat().st_size > 0
    on_server(server, client, model_run, "config/config.yaml")
    on_server(server, client, model_run, "tokenizer/tokenizer.json")
    on_server(server, client, model_run, "steering/attributes.pt")  # the samples stage's steering cache


@pytest.fixture(scope="module")
def generation(server, client, work, model_run) -> str:
    """`generate model_run=latest` through the server: the model and its steering cache downloaded."""
    root = work / "generate"
    root.mkdir()
    steering = ["steering=attributes", "steering.candidates=1", *TINY_STEERING]
    out = moodgen(server, root, "generate", "model_run=latest", "mood=calm", "n=6", "duration=4", "seed=0", *steering)
    assert "attribute LM fine-tuned" not in out  # the cached one came from the model run on the server
    assert out.count("SILENT: no notes") <= 4  # evaluate needs 2 pieces with notes; this tiny LM draws some silent
    (run,) = runs(client, "tags.`moodgen.entry_point` = 'generate'")
    assert run.data.tags["moodgen.model_run"] == model_run
    on_server(server, client, run.info.run_id, "pieces/calm/calm_0.mid")
    no_local_store(root)
    return run.info.run_id


def test_generate_latest_reads_the_model_and_its_steering_cache_through_the_server(generation):
    pass  # the fixture's checks: latest found on the server, the cached attribute LM used, pieces recorded there


def test_evaluate_a_generation_run_from_the_server(server, client, work, generation, midi_folder):
    root = work / "evaluate"
    root.mkdir()
    moodgen(server, root, "evaluate", f"pieces={generation}", f"reference={midi_folder}")
    (run,) = runs(client, "tags.`moodgen.entry_point` = 'evaluate'")
    assert run.data.tags["moodgen.pieces_run"] == generation and "eval/mean_oa" in run.data.metrics
    on_server(server, client, run.info.run_id, "evaluation/report.html")
    no_local_store(root)


def request(url: str, body: dict | None = None, timeout: float = 10) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=timeout) as answer:
        return json.load(answer)


def test_serve_composes_with_the_champion_and_caches_its_steering_on_the_server(server, client, work, model_run):
    """The registry's alias through the server; new steering settings fine-tune anew, written back beside the run's."""
    model = client.get_run(model_run)
    client.create_registered_model("moodgen")
    version = client.create_model_version("moodgen", f"{model.info.artifact_uri}/checkpoints", run_id=model_run)
    client.set_registered_model_alias("moodgen", "champion", version.version)
    cache = on_server(server, client, model_run, "steering/attributes.pt")
    before, beside = digest(cache), set(cache.parent.glob("attributes-*.pt"))
    root = work / "serve"
    root.mkdir()
    port = free_port()
    command = [sys.executable, "-m", "moodgen.serve", f"port={port}", f"paths.root_dir={root}", "model_run=champion"]
    command += ["steering=attributes", "steering.candidates=1", *TINY_STEERING, "steering.steps=3"]  # new settings
    command += ["min_duration=1", "default_duration=3", f"out_dir={root / 'pieces'}"]
    url = f"http://127.0.0.1:{port}"
    with open(root / "serve.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=server.env())
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, (root / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "moodgen.serve did not answer within 180 s"
                try:
                    status = request(f"{url}/api/status", timeout=5)
                    break
                except OSError:
                    time.sleep(0.5)
            assert status["model"]["run_id"] == model_run  # the champion, found through the server
            job = request(f"{url}/api/pieces", {"mood": "calm", "duration": 3})
            while job["state"] == "running":
                assert time.monotonic() < deadline + 120, "the piece took over 2 minutes"
                time.sleep(0.3)
                job = request(f"{url}/api/jobs/{job['id']}")
            assert job["state"] == "done", job.get("error")
            with urllib.request.urlopen(url + job["piece"]["files"]["midi"], timeout=10) as answer:
                assert answer.read().startswith(b"MThd")
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    run = client.get_run(job["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["moodgen.entry_point"] == "serve"
    assert run.data.tags["moodgen.model_run"] == model_run
    on_server(server, client, job["run_id"], "pieces/calm/calm_0.mid")
    assert "attribute LM fine-tuned" in (root / "serve.log").read_text()  # other settings: fine-tuned anew ...
    assert len(set(cache.parent.glob("attributes-*.pt")) - beside) == 1  # ... written back to the model run
    assert digest(cache) == before  # on the server, beside the run's own, which stays as trained
    no_local_store(root)


# --- parallel Optuna workers on one study in PostgreSQL -----------------------------------------

STUDY = "parallel_lm"


def worker(server: TrackingServer, root: Path, midi_folder: Path, n_trials: int, log: Path) -> subprocess.Popen:
    """One `python -m moodgen.train -m hparams_search=lm_optuna` worker of the shared study."""
    command = [sys.executable, "-m", "moodgen.train", "-m", "hparams_search=lm_optuna", *folder_args(midi_folder)]
    command += [
        "samples.n=1",  # a trial's pieces are rendered to audio when fluidsynth is there: fewer, sooner
        "samples.evaluate=false",
        f"hydra.sweeper.storage={server.optuna}",
        f"hydra.sweeper.study_name={STUDY}",
        f"hydra.sweeper.n_trials={n_trials}",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=3",
        f"logger.experiment_name={SWEEPS}",
        f"paths.root_dir={root}",
    ]
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=server.env())


def finished(process: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert process.returncode == 0, text[-3000:]
    return text


def study_of(server: TrackingServer) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=server.optuna)


def children_of_study(client: MlflowClient):
    (parent,) = runs(client, f"tags.`moodgen.sweep` = '{STUDY}'", SWEEPS)  # every worker: one parent
    return parent, runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", SWEEPS)


def arm(params: dict) -> tuple:
    return tuple(sorted((key, f"{float(value):.6g}") for key, value in params.items()))


@pytest.fixture(scope="module")
def two_workers(server, work, midi_folder) -> list[str]:
    root = work / "optuna"
    root.mkdir()
    logs = [root / "worker_a.log", root / "worker_b.log"]
    processes = [worker(server, root, midi_folder, 4, log) for log in logs]
    outputs = [finished(p, log) for p, log in zip(processes, logs, strict=True)]
    no_local_store(root)
    return outputs


def test_two_workers_run_exactly_n_trials_in_total(server, client, two_workers):
    study = study_of(server)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4  # none lost, none extra
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert len({arm(t.params) for t in study.trials}) == 4  # no trial drawn twice
    assert len({t.user_attrs[WORKER_ATTR] for t in study.trials}) == 2  # both workers ran trials
    parent, children = children_of_study(client)
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    params = {"model.dropout", "model.noise_std", "model.output_dropout", "model.lr"}
    assert {arm({k: c.data.params[k] for k in params}) for c in children} == {arm(t.params) for t in study.trials}
    assert parent.data.metrics["study/best_value"] == pytest.approx(study.best_value)
    for path in ("comparison/comparison.md", "comparison/val_loss.png", "study/optimization_history.png"):
        on_server(server, client, parent.info.run_id, path)  # the sweep's comparison, on the server
    for child in children:
        on_server(server, client, child.info.run_id, child.data.tags["moodgen.checkpoint"])


def test_a_killed_worker_s_trial_is_marked_failed_and_the_study_goes_on(server, client, work, midi_folder, two_workers):
    root = work / "optuna"
    first = worker(server, root, midi_folder, 5, root / "worker_c.log")
    deadline = time.monotonic() + 180
    study = study_of(server)
    try:
        while True:  # until the worker is inside a trial of its own, its child run open
            assert first.poll() is None, (root / "worker_c.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker claimed no trial within 180 s"
            mine = [t for t in study.trials if f":{first.pid}:" in t.user_attrs.get(WORKER_ATTR, "")]
            child = runs(client, f"tags.`moodgen.process` LIKE '%:{first.pid}:%'", SWEEPS)
            if mine and mine[0].state == optuna.trial.TrialState.RUNNING and child:
                killed = mine[0].number
                break
            time.sleep(0.5)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    # the next worker starts well after the grace period (3 s): it finds the trial by its stopped heartbeat
    out = finished(worker(server, root, midi_folder, 5, root / "worker_d.log"), root / "worker_d.log")
    assert "has 4 finished trial(s); running 1 more (n_trials=5 in total)" in out
    assert f"trial {killed} was left RUNNING" in out and "marked FAIL, the study goes on" in out
    states = {t.number: t.state for t in study_of(server).trials}
    assert states.pop(killed) == optuna.trial.TrialState.FAIL
    assert list(states.values()) == [optuna.trial.TrialState.COMPLETE] * 5
    _, children = children_of_study(client)
    statuses = sorted(c.info.status for c in children)
    assert statuses == ["FAILED"] + ["FINISHED"] * 5  # the killed trial's child run, marked by the next worker
    (dead,) = [c for c in children if c.info.status == "FAILED"]
    assert "moodgen.died" in dead.data.tags


def test_the_optuna_dashboard_shows_the_study(server, two_workers, work):
    dashboard = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) or shutil.which(
        "optuna-dashboard"
    )
    if dashboard is None:
        pytest.skip("optuna-dashboard is not installed: pip install -e '.[dev]'")
    port = free_port()
    command = [dashboard, server.optuna, "--host", "127.0.0.1", "--port", str(port)]
    with open(work / "dashboard.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (work / "dashboard.log").read_text()[-2000:]
                try:
                    studies = request(f"http://127.0.0.1:{port}/api/studies", timeout=5)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "optuna-dashboard did not answer within 60 s"
                    time.sleep(0.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/", timeout=10) as page:
                assert b"<html" in page.read().lower()
        finally:
            process.terminate()
            process.wait(30)
    assert STUDY in {s["study_name"] for s in studies["study_summaries"]}


def test_a_dead_worker_on_this_host_fails_its_trial_at_once(tmp_path):
    """No heartbeat needed on the worker's own host: its process is gone, so its trial is FAIL."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    from moodgen.tracking import this_process

    trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{gone.pid}:1")
    alive = study.ask()
    alive.set_user_attr(WORKER_ATTR, this_process())
    assert fail_dead_trials(study) == [trial.number]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]
