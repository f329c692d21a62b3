"""hydra/launcher=slurm against a real one-node SLURM cluster (tests/slurm_cluster.py): sweeps as
real jobs under one parent run, DDP ranks started by srun, a failed job reported in one line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

from moodgen.cli import CONF_DIR
from moodgen.sweeps import SWEPT_FILE, MlflowSweepCallback
from moodgen.tracking import SLURM_JOB_TAG, sweep_job

from .conftest import TINY_MODEL, TINY_TRAINER
from .slurm_cluster import slurm_cluster  # noqa: F401 (the fixture)

# every job asks for what a 2-core node has spare: two jobs (or two DDP ranks) run at once
LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=5",
]
# a job's pipeline in seconds: one sample per mood, no steering (the sweeps compare val loss)
FAST = [a for a in TINY_TRAINER if not a.startswith(("samples.", "steering."))]
FAST += ["samples.n=1", "samples.max_tokens=32", "samples.duration=2", "steering=none"]


def folder_args(midi_folder) -> list[str]:
    return ["data=folder", f"data.root={midi_folder}", "data.val_fraction=0.25", *TINY_MODEL, *FAST]


def sweep(tmp_path, *args: str, expect: int = 0, background: bool = False) -> subprocess.CompletedProcess:
    """The sweep's command; `background`: started as a shell starts `cmd &` without job control (SIGINT ignored)."""
    command = [sys.executable, "-m", "moodgen.train", "-m", *LAUNCHER, *args, f"paths.root_dir={tmp_path}"]
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=300, preexec_fn=ignore_sigint
    )
    assert result.returncode == expect, result.stderr[-4000:]
    return result


def store(tmp_path) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    return client, client.get_experiment_by_name("moodgen").experiment_id


def parent_and_children(tmp_path, name: str):
    client, experiment = store(tmp_path)
    (parent,) = client.search_runs([experiment], filter_string=f"tags.`moodgen.sweep` = '{name}'")
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return client, parent, children


def sweep_dir(tmp_path, name: str) -> Path:
    (folder,) = (tmp_path / "multirun" / name).iterdir()
    return folder


def assert_real_jobs(cluster, children, folder: Path) -> None:
    """Each child ran in a SLURM job of its own, which the scheduler ran to completion."""
    jobs = [c.data.tags[SLURM_JOB_TAG] for c in children]
    assert len(set(jobs)) == len(children), jobs
    assert cluster.drained() == []
    for job in jobs:
        assert cluster.job(job).get("JobState") == "COMPLETED", cluster.job(job)
        assert (folder / ".submitit" / job / f"{job}_0_log.out").is_file()  # submitit's log of that job


def test_experiment_sweep_runs_each_arm_as_a_slurm_job(tmp_path, midi_folder, slurm_cluster):  # noqa: F811
    result = sweep(tmp_path, "+experiment=noise", *folder_args(midi_folder))
    assert "## noise: 2 arm(s)" in result.stdout
    client, parent, children = parent_and_children(tmp_path, "noise")
    # the arm labels name only the swept key, not the command's other overrides
    assert sorted(c.data.tags["moodgen.arm"] for c in children) == ["model.noise_std=0.0", "model.noise_std=0.1"]
    assert all(c.info.status == "FINISHED" and "lm/val_loss" in c.data.metrics for c in children)
    assert_real_jobs(slurm_cluster, children, sweep_dir(tmp_path, "noise"))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {"comparison/comparison.md", "comparison/comparison.csv", "comparison/val_loss.png"} <= artifacts
    assert parent.info.status == "FINISHED" and "sweep/best_val_loss" in parent.data.metrics
    assert slurm_cluster.drained() == []


def test_optuna_study_trials_are_slurm_jobs(tmp_path, midi_folder, slurm_cluster):  # noqa: F811
    # three trials asked at once: one job array, two jobs at a time on the 2-core node
    search = ["hparams_search=lm_optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=3"]
    sweep(tmp_path, *search, *folder_args(midi_folder))
    study = optuna.load_study(study_name="lm_optuna", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    client, parent, children = parent_and_children(tmp_path, "lm_optuna")
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["moodgen.arm"].split()[0].startswith("model.") for c in children)
    assert not any("data.root" in c.data.tags["moodgen.arm"] for c in children)
    assert_real_jobs(slurm_cluster, children, sweep_dir(tmp_path, "lm_optuna"))
    assert parent.data.metrics["study/best_value"] == pytest.approx(study.best_value)
    assert "comparison/comparison.md" in {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert slurm_cluster.drained() == []


def test_ddp_ranks_started_by_srun_record_one_run(tmp_path, midi_folder, slurm_cluster):  # noqa: F811
    # as the README tells it: one job, tasks_per_node=trainer.devices tasks that srun starts
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    sweep(tmp_path, *ddp, *folder_args(midi_folder))
    client, experiment = store(tmp_path)
    (run,) = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'train'")  # rank 1: none
    assert run.info.status == "FINISHED" and "lm/val_loss" in run.data.metrics
    assert run.data.params["trainer.strategy"] == "ddp"
    job = run.data.tags[SLURM_JOB_TAG]
    assert slurm_cluster.drained() == []
    info = slurm_cluster.job(job)
    assert info["JobState"] == "COMPLETED" and info["NumTasks"] == "2", info
    logs = sweep_dir(tmp_path, "train") / ".submitit" / job
    for rank in (0, 1):  # Lightning's SLURM environment joined both srun tasks into one process group
        text = (logs / f"{job}_{rank}_log.out").read_text() + (logs / f"{job}_{rank}_log.err").read_text()
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in text, text[-2000:]
    assert "moodgen: run recorded" not in (logs / f"{job}_1_log.out").read_text()
    assert slurm_cluster.drained() == []


def test_a_job_failing_inside_slurm_is_one_line_with_its_log(tmp_path, midi_folder, slurm_cluster):  # noqa: F811
    # model.seq_len=0 composes (a sweep is checked per job), and its range check fires in the job
    args = [a for a in folder_args(midi_folder) if not a.startswith("model.seq_len")]
    result = sweep(tmp_path, "model.seq_len=0,32", *args, expect=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("moodgen: error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr[-3000:]
    match = re.fullmatch(
        r"moodgen: error: 1 of 2 sweep jobs failed, the others ran: job #0 \(SLURM job (\d+_0), log (\S+)\): "
        r"model\.seq_len=0 is out of range: use 1\.\.65536",
        errors[0],
    )
    assert match, errors[0]
    job, log = match.groups()
    assert slurm_cluster.drained() == []
    assert Path(log).is_file() and "model.seq_len=0 is out of range" in Path(log).read_text()
    assert slurm_cluster.job(job).get("JobState") == "COMPLETED"  # the job ended cleanly, having said why
    _, parent, children = parent_and_children(tmp_path, "train")
    (other,) = children  # the failed arm stopped before its run opened
    assert other.data.tags["moodgen.arm"] == "model.seq_len=32" and other.info.status == "FINISHED"
    assert "lm/val_loss" in other.data.metrics and SLURM_JOB_TAG in other.data.tags
    assert parent.info.status == "FAILED" and "model.seq_len=0" in parent.data.tags["moodgen.failed_arms"]
    assert slurm_cluster.drained() == []


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
def test_a_sweep_whose_jobs_can_never_start_ends_in_one_line_with_its_jobs_cancelled(
    tmp_path,
    midi_folder,
    slurm_cluster,  # noqa: F811
    background,
):
    """A job asking more time than its partition allows pends (PartitionTimeLimit) forever; submitit would wait on.
    In the background (`nohup ... &`, SIGINT ignored) too: there interrupting submitit's wait needs a handler."""
    partition = f"short{tmp_path.name[-6:]}".replace("_", "")
    create = ["scontrol", "create", f"PartitionName={partition}", f"Nodes={slurm_cluster.node}", "MaxTime=1"]
    subprocess.run(create, check=True, capture_output=True, timeout=30)
    try:
        args = [f"hydra.launcher.partition={partition}", "model.dropout=0.1,0.2", *folder_args(midi_folder)]
        result = sweep(tmp_path, *args, expect=2, background=background)  # LAUNCHER asks 5 min, the partition 1
    finally:
        subprocess.run(["scontrol", "delete", f"PartitionName={partition}"], capture_output=True, timeout=30)
    line = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"moodgen: error: SLURM job \d+_\S+ can never start on partition {partition} \(PartitionTimeLimit\): "
        r"its time limit is over the partition's: lower hydra\.launcher\.timeout_min; "
        r"the sweep's SLURM job\(s\) \d+ were cancelled",
        line,
    ), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert slurm_cluster.drained() == []  # cancelled, not left pending
    _, parent, children = parent_and_children(tmp_path, "train")
    assert children == [] and parent.info.status == "FAILED"
    assert "PartitionTimeLimit" in parent.data.tags["moodgen.failed_arms"]


def test_a_job_waiting_in_the_queue_is_said_once_a_reason_and_left_to_wait(tmp_path, monkeypatch, caplog):
    """No cluster needed: what the watcher does with squeue's rows for jobs that will start in time."""
    from moodgen import slurm_watch

    monkeypatch.setattr(slurm_watch, "SAY_AFTER_S", 0.0)
    for name in ("12_0", "12_1", "13", "logs", "12_x"):
        (tmp_path / name).mkdir()
    watch = slurm_watch.SlurmWatch(tmp_path)
    assert watch.job_ids() == ["12", "13"]  # submitit's folders: array tasks under their array job
    caplog.set_level("INFO", logger="moodgen")
    for _ in range(3):
        assert not watch.check([("12_0", "gpu", "Resources"), ("13", "gpu", "Priority")], ["12", "13"])
    assert watch.check([("12_0", "gpu", "Resources"), ("13", "gpu", "Resources")], ["12", "13"]) is False
    said = [r.getMessage() for r in caplog.records if "waits on partition" in r.getMessage()]
    assert said == [
        "SLURM job 12_0 waits on partition gpu (Resources); `scancel 12_0` stops it",
        "SLURM job 13 waits on partition gpu (Priority); `scancel 13` stops it",
        "SLURM job 13 waits on partition gpu (Resources); `scancel 13` stops it",
    ]
    assert watch.cancelled is None


def test_a_watcher_stopped_while_squeue_answers_cancels_nothing(tmp_path, monkeypatch):
    """No cluster needed: the sweep ends (its jobs done) while the watcher waits on squeue; whatever squeue then
    says, a stopped watcher neither cancels jobs nor interrupts the command that is finishing."""
    import threading

    from moodgen import slurm_watch

    (tmp_path / "120_0").mkdir()
    asked, answer = threading.Event(), threading.Event()

    def pending_reasons(ids):
        asked.set()
        answer.wait(10)
        return [("120_[0-1%2]", "short", "PartitionTimeLimit")]

    done = []
    monkeypatch.setattr(slurm_watch, "pending_reasons", pending_reasons)
    monkeypatch.setattr(slurm_watch, "cancel", lambda ids: done.append(("scancel", *ids)))
    monkeypatch.setattr(slurm_watch._thread, "interrupt_main", lambda: done.append("interrupt"))
    watch = slurm_watch.SlurmWatch(tmp_path, poll_s=0.01).start()
    assert asked.wait(10)
    assert watch.stop() is None  # the sweep's end stops the watcher mid-question
    answer.set()
    watch._thread.join(10)
    assert not watch._thread.is_alive()
    assert done == [] and watch.cancelled is None


@pytest.mark.parametrize(
    ("params", "label"),
    [({}, "model.dropout=0.2"), ({"model.noise_std": "0.0,0.1"}, "model.dropout=0.2 model.noise_std=0.1")],
)
def test_arm_label_names_only_the_swept_keys(tmp_path, params, label):
    """No cluster needed: a sweep job's label (the comparison's arm) leaves out the overrides every
    arm shares, for sweeps on the command line and in the sweeper's params alike."""
    command = ["model.dropout=0.1,0.2", "trainer=cpu_short", "model.hidden_size=32", "+experiment=noise"]
    job = ["model.dropout=0.2", "trainer=cpu_short", "model.hidden_size=32", "+experiment=noise", "model.noise_std=0.1"]
    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        cfg = compose("train", overrides=[f"paths.root_dir={tmp_path}", "logger=none"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = command
        cfg.hydra.sweeper.params = params
        cfg.hydra.sweep.dir = str(tmp_path / "sweep")
    MlflowSweepCallback().on_multirun_start(cfg)  # the sweep's start writes what varies
    assert (tmp_path / "sweep" / SWEPT_FILE).is_file()
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.overrides.task = job
    HydraConfig.instance().set_config(cfg)
    try:
        assert sweep_job()[1] == label
    finally:
        HydraConfig.instance().cfg = None
