"""Crash-safe training: kill -9 mid-epoch and after training, resume by the newest step, finished runs
left alone, dead runs marked, no metric step recorded twice, one store shared by concurrent commands."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from moodgen import tracking
from moodgen.train import train

from .conftest import REPO, TINY_MODEL, TINY_TRAINER, compose_train

CRASHING_TRAIN = """
import os, signal, sys
import pytorch_lightning as pl
from moodgen import pipeline
from moodgen.train import train
from tests.conftest import compose_train

kill_at, where, root, *overrides = sys.argv[1:]
original = pipeline._callbacks

def callbacks(cfg, checkpoint_dir):  # kill -9 once training reaches a step: nothing can clean up
    checkpoint, rest = original(cfg, checkpoint_dir)

    class Kill(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint, [*rest, Kill()]

if where == "training":
    pipeline._callbacks = callbacks
else:  # right after the LM stage, before the later stages
    def kill(ctx):
        os.kill(os.getpid(), signal.SIGKILL)

    pipeline.STAGES.insert(pipeline.STAGES.index(pipeline.lm_stage) + 1, kill)
train(compose_train(__import__("pathlib").Path(root), overrides))
"""


def killed_train(tmp_path: Path, where: str, overrides: list[str], kill_at: int = 0) -> str:
    """Train in a child process that is killed with SIGKILL; the run id it left behind."""
    code = textwrap.dedent(CRASHING_TRAIN)
    result = subprocess.run(
        [sys.executable, "-c", code, str(kill_at), where, str(tmp_path), *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == -9, result.stderr[-3000:]
    (run,) = client_of(tmp_path).search_runs([experiment_of(tmp_path)])
    assert run.info.status == "RUNNING"  # nobody closed it
    return run.info.run_id


def client_of(tmp_path: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")


def experiment_of(tmp_path: Path) -> str:
    return client_of(tmp_path).get_experiment_by_name("moodgen").experiment_id


def assert_no_step_twice(client: MlflowClient, run_id: str) -> None:
    for key in client.get_run(run_id).data.metrics:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} recorded a step twice: {sorted(steps)}"


def folder_run(midi_folder: Path) -> list[str]:
    return [
        "data=folder",
        f"data.root={midi_folder}",
        "data.val_fraction=0.25",
        *TINY_MODEL,
        *TINY_TRAINER,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.log_every_n_steps=1",
        "callbacks.checkpoint_every_n_steps=2",
    ]


def test_kill_9_in_the_first_epoch_resumes_from_the_periodic_checkpoint(tmp_path, midi_folder):
    run_id = killed_train(tmp_path, "training", folder_run(midi_folder), kill_at=3)
    client = client_of(tmp_path)
    local = Path(client.get_run(run_id).data.tags[tracking.OUTPUT_TAG]) / "checkpoints"
    assert [p.name for p in local.glob("step-*.ckpt")] == ["step-2.ckpt"]  # the newest periodic one, alone

    assert tracking.mark_dead_runs(client, experiment_of(tmp_path)) == [run_id]  # the next command sees it
    died = client.get_run(run_id)
    assert died.info.status == "FAILED" and tracking.DIED_TAG in died.data.tags

    train(compose_train(tmp_path, [f"resume={run_id}", f"paths.output_dir={tmp_path / 'resumed'}"]))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and tracking.DIED_TAG not in run.data.tags
    steps = [m.step for m in client.get_metric_history(run_id, "lm/train_loss_step")]
    assert steps[0] == 0 and max(steps) == 7  # 2 epochs x 4 batches, begun before the kill, ended after
    assert_no_step_twice(client, run_id)


def test_finished_run_is_complete_and_keeps_its_status(tmp_path, midi_folder, capsys):
    cfg = compose_train(tmp_path, [*folder_run(midi_folder), "trainer.max_epochs=1"])
    loss = train(cfg)
    client = client_of(tmp_path)
    (run,) = client.search_runs([experiment_of(tmp_path)])
    again = train(compose_train(tmp_path, [f"resume={run.info.run_id}", f"paths.output_dir={tmp_path / 'again'}"]))
    assert again == pytest.approx(loss)
    assert "is complete (FINISHED); nothing to resume" in capsys.readouterr().out
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "lm/val_loss")) == 1  # nothing ran again


def test_killed_after_training_resumes_with_the_later_stages(tmp_path, vgmidi_root):
    args = [
        f"data.root={vgmidi_root}",
        "data.max_files=6",
        *TINY_MODEL,
        *TINY_TRAINER,
        "classifier=quick",
        "classifier.n_trials=2",
        "classifier.n_jobs=1",
        "steering=none",
        "samples.evaluate=false",
    ]
    run_id = killed_train(tmp_path, "after_lm", args)
    client = client_of(tmp_path)
    train(compose_train(tmp_path, [f"resume={run_id}"]))  # the same output folder: the classifier is there
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert "clf/mood4/final_cell/cv_acc" in run.data.metrics and "samples/mean_notes" in run.data.metrics
    assert len(client.get_metric_history(run_id, "lm/val_loss")) == 1  # training was not run again
    assert_no_step_twice(client, run_id)


def _checkpoint(path: Path, step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.ones(2, 2)}}, path)
    return path


def test_newest_checkpoint_is_chosen_by_step_not_by_name(tmp_path):
    client = tracking.open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracking.get_or_create_experiment(client, "moodgen", tmp_path / "artifacts")
    output = tmp_path / "out"
    run_id = client.create_run(experiment, tags={tracking.OUTPUT_TAG: str(output)}).info.run_id
    # Ctrl-C at step 61 logged interrupted.ckpt; the resumed part reached step 250 before kill -9
    client.log_artifact(run_id, str(_checkpoint(tmp_path / "logged" / "interrupted.ckpt", 61)), "checkpoints")
    _checkpoint(output / "checkpoints" / "last.ckpt", 250)
    _checkpoint(output / "checkpoints" / "best-epoch00.ckpt", 100)
    (output / "checkpoints" / "step-240.ckpt").write_bytes(b"PK\x03\x04 truncated")  # damaged: passed over
    chosen = tracking.newest_checkpoint(client, client.get_run(run_id), tmp_path / "download")
    assert Path(chosen).name == "last.ckpt"


def test_a_live_run_is_not_marked_dead(tmp_path):
    client = tracking.open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracking.get_or_create_experiment(client, "moodgen", tmp_path / "artifacts")
    alive = client.create_run(experiment, tags={tracking.PROCESS_TAG: tracking.this_process()}).info.run_id
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_process = f"{tracking.this_process().split(':')[0]}:{gone.stdout.strip()}:1"
    dead = client.create_run(experiment, tags={tracking.PROCESS_TAG: dead_process}).info.run_id
    elsewhere = client.create_run(experiment, tags={tracking.PROCESS_TAG: "another-host:1:1"}).info.run_id
    assert tracking.mark_dead_runs(client, experiment) == [dead]
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_run(elsewhere).info.status == "RUNNING"  # another host's processes are not judged here


def test_a_run_of_another_host_is_judged_by_its_heartbeat(tmp_path):
    import time

    from moodgen.heartbeat import HEARTBEAT_TAG, grace_seconds

    client = tracking.open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracking.get_or_create_experiment(client, "moodgen", tmp_path / "artifacts")

    def elsewhere(seconds_ago: float) -> str:
        tags = {tracking.PROCESS_TAG: "another-host:1:1", HEARTBEAT_TAG: str(int(time.time() - seconds_ago))}
        return client.create_run(experiment, tags=tags).info.run_id

    silent, beating = elsewhere(grace_seconds() + 60), elsewhere(5)
    assert tracking.mark_dead_runs(client, experiment) == [silent]
    assert "sent no heartbeat" in client.get_run(silent).data.tags[tracking.DIED_TAG]
    assert client.get_run(beating).info.status == "RUNNING"


def test_a_live_run_beats_until_it_ends(tmp_path, monkeypatch):
    import time

    from moodgen.heartbeat import HEARTBEAT_TAG, INTERVAL_ENV

    monkeypatch.setenv(INTERVAL_ENV, "0.2")
    tracker = tracking.Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "moodgen", "beating", tmp_path / "artifacts")
    first = float(tracker.client.get_run(tracker.run_id).data.tags[HEARTBEAT_TAG])
    deadline = time.time() + 20
    while float(tracker.client.get_run(tracker.run_id).data.tags[HEARTBEAT_TAG]) <= first:
        assert time.time() < deadline, "no heartbeat after the first"
        time.sleep(0.2)
    tracker.end()
    assert not tracker.heartbeat.alive


CONCURRENT = """
import sys
from moodgen import tracking
uri, name = sys.argv[1:]
client = tracking.open_store(uri)
experiment = tracking.get_or_create_experiment(client, "moodgen", None)
client.create_run(experiment, run_name=name)
"""


def test_commands_starting_together_on_a_fresh_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT, uri, f"run{i}"], stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(e[-1500:] for e in errors)
    client = MlflowClient(tracking_uri=uri)
    names = {r.info.run_name for r in client.search_runs([client.get_experiment_by_name("moodgen").experiment_id])}
    assert names == {f"run{i}" for i in range(4)}


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, midi_folder):
    code = "from moodgen.train import main; main()"
    args = [*folder_run(midi_folder), "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args, f"paths.root_dir={tmp_path}", f"seed={seed}"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), b"\n".join(e[-1500:] for e in errors).decode()
    client = client_of(tmp_path)
    runs = client.search_runs([experiment_of(tmp_path)])
    folders = {r.data.tags[tracking.OUTPUT_TAG] for r in runs}
    assert len(runs) == 2 and len(folders) == 2
    seeds = {(Path(f) / ".hydra" / "overrides.yaml").read_text().count("seed=1") for f in folders}
    assert seeds == {0, 1}  # each folder holds its own run's record
    for run in runs:  # and is found by the run's MLflow id
        link = tmp_path / "outputs" / "runs" / run.info.run_id
        assert link.resolve() == Path(run.data.tags[tracking.OUTPUT_TAG])


def test_a_damaged_store_is_one_line(tmp_path):
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    # made by another process: this one has no cached connection to it
    subprocess.run([sys.executable, "-c", CONCURRENT, uri, "run"], check=True, capture_output=True)
    data = bytearray(database.read_bytes())
    data[100:4000] = b"A" * 3900
    database.write_bytes(bytes(data))
    from moodgen.errors import MoodgenError

    with pytest.raises(MoodgenError, match=r"MLflow store .*mlflow\.db is damaged .* move it aside"):
        tracking.open_store(uri)
