"""Experiments, Optuna sweeps, DDP, SLURM-style launching and resume."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from moodgen import pipeline
from moodgen.cli import CONF_DIR
from moodgen.train import train

from .conftest import TINY_MODEL, TINY_TRAINER, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SEARCHES = sorted(p.stem for p in (CONF_DIR / "hparams_search").glob("*.yaml"))


def folder_args(midi_folder) -> list[str]:
    return ["data=folder", f"data.root={midi_folder}", "data.val_fraction=0.25", *TINY_MODEL, *TINY_TRAINER]


def cli(tmp_path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", *args, f"paths.root_dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def store(tmp_path) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    return client, client.get_experiment_by_name("moodgen").experiment_id


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(tmp_path, name):
    cfg = compose_train(tmp_path, [f"+experiment={name}"])
    assert cfg.sweep_name == name
    assert cfg.trainer.max_epochs <= 3  # a small, equal budget on CPU


@pytest.mark.parametrize("name", SEARCHES)
def test_every_search_composes(tmp_path, name):
    from hydra import compose, initialize_config_dir

    entry = "classify" if name.startswith("classifier") else "train"
    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        cfg = compose(
            entry, overrides=[f"hparams_search={name}", f"paths.root_dir={tmp_path}"], return_hydra_config=True
        )
    assert cfg.hydra.sweeper.study_name == name
    assert str(cfg.hydra.sweeper.storage).startswith(f"sqlite:///{tmp_path}/mlruns/")
    assert cfg.hydra.sweeper.params


def test_experiment_makes_one_parent_with_a_child_per_arm(tmp_path, midi_folder):
    result = cli(tmp_path, "moodgen.train", "+experiment=noise", *folder_args(midi_folder))
    assert "## noise: 2 arm(s)" in result.stdout  # the comparison table is printed
    client, experiment = store(tmp_path)
    (parent,) = client.search_runs([experiment], filter_string="tags.`moodgen.sweep` = 'noise'")
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["moodgen.arm"] for c in children) == ["model.noise_std=0.0", "model.noise_std=0.1"]
    assert {c.data.params["model.noise_std"] for c in children} == {"0.0", "0.1"}
    assert len({c.data.params["seed"] for c in children}) == 1  # same seed, data and budget
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {"comparison/comparison.md", "comparison/comparison.csv", "comparison/val_loss.png"} <= artifacts
    assert parent.info.status == "FINISHED"


def failing_sweep(tmp_path, *args: str) -> str:
    """A sweep with a failing job: exit 2 once every job was tried, one line naming the failed jobs."""
    command = [sys.executable, "-m", "moodgen.train", "-m", *args, f"paths.root_dir={tmp_path}"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


def test_a_failed_arm_does_not_stop_the_others_and_the_parent_lists_it(tmp_path, midi_folder):
    missing = tmp_path / "missing.ckpt"
    line = failing_sweep(tmp_path, f"init_from={missing},null", *folder_args(midi_folder))
    expected = f"1 of 2 sweep jobs failed, the others ran: job #0: init_from={missing}: no such checkpoint file"
    assert line == f"moodgen: error: {expected}"
    client, experiment = store(tmp_path)
    (parent,) = client.search_runs([experiment], filter_string="tags.`moodgen.sweep` = 'train'")
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_arm = {c.data.params["init_from"]: c for c in children}
    assert by_arm[str(missing)].info.status == "FAILED"
    assert by_arm[str(missing)].data.tags["moodgen.error"].endswith("no such checkpoint file")
    assert by_arm["None"].info.status == "FINISHED" and "lm/val_loss" in by_arm["None"].data.metrics  # it still ran
    assert parent.info.status == "FAILED" and f"init_from={missing}" in parent.data.tags["moodgen.failed_arms"]
    table = client.download_artifacts(parent.info.run_id, "comparison/comparison.md", str(tmp_path))
    assert "| failed: init_from=" in Path(table).read_text()


def test_a_failed_optuna_trial_is_marked_fail_and_the_study_goes_on(tmp_path, midi_folder):
    args = [a for a in folder_args(midi_folder) if not a.startswith("model.seq_len")]
    search = ["hparams_search=lm_optuna", "hydra.sweeper.n_trials=3", "model.seq_len=choice(0,32)"]
    line = failing_sweep(tmp_path, *search, *args)
    assert "sweep jobs failed, the others ran: job #0: model.seq_len=0 is out of range: use 1..65536" in line
    study = optuna.load_study(study_name="lm_optuna", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    states = {t.params["model.seq_len"]: t.state for t in study.trials}
    assert states == {0: optuna.trial.TrialState.FAIL, 32: optuna.trial.TrialState.COMPLETE}
    client, experiment = store(tmp_path)
    (parent,) = client.search_runs([experiment], filter_string="tags.`moodgen.sweep` = 'lm_optuna'")
    assert "model.seq_len=0 is out of range" in parent.data.tags["moodgen.failed_arms"]
    assert parent.data.metrics["study/best_value"] == pytest.approx(study.best_value)


def test_optuna_study_resumes_to_its_total(tmp_path, midi_folder):
    args = ["moodgen.train", "-m", "hparams_search=lm_optuna", *folder_args(midi_folder)]
    cli(tmp_path, *args, "hydra.sweeper.n_trials=2")
    second = cli(tmp_path, *args, "hydra.sweeper.n_trials=4")
    assert "has 2 finished trial(s); running 2 more" in second.stdout
    study = optuna.load_study(study_name="lm_optuna", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 4  # the resumed call explores anew
    client, experiment = store(tmp_path)
    (parent,) = client.search_runs([experiment], filter_string="tags.`moodgen.sweep` = 'lm_optuna'")
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 4
    assert parent.data.metrics["study/best_value"] == pytest.approx(study.best_value)
    assert "study/optimization_history.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "study")}


def test_ddp_two_cpu_processes(tmp_path, midi_folder):
    cli(
        tmp_path,
        "moodgen.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        *folder_args(midi_folder),
    )
    client, experiment = store(tmp_path)
    (run,) = client.search_runs([experiment])  # rank 1 recorded nothing
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp"
    assert "lm/val_loss" in run.data.metrics


def test_ddp_in_a_local_multirun_is_refused(tmp_path, midi_folder):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "moodgen.train",
            "-m",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "model.dropout=0.1,0.2",
            *folder_args(midi_folder),
            f"paths.root_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert "moodgen: error: trainer=ddp inside a local multirun" in result.stderr


def test_submitit_local_launcher(tmp_path, midi_folder):
    cli(tmp_path, "moodgen.train", "-m", "hydra/launcher=submitit_local", *folder_args(midi_folder))
    client, experiment = store(tmp_path)
    runs = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'train'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert "mlflow.parentRunId" in runs[0].data.tags


class _StopAt:
    """Simulates Ctrl-C mid-epoch at a given step."""

    def __init__(self, step: int):
        self.step = step

    def __call__(self, cfg, checkpoint_dir):
        import pytorch_lightning as pl

        checkpoint, callbacks = ORIGINAL_CALLBACKS(cfg, checkpoint_dir)
        step = self.step

        class Stop(pl.Callback):
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_step == step:
                    raise KeyboardInterrupt

        return checkpoint, [*callbacks, Stop()]


ORIGINAL_CALLBACKS = pipeline._callbacks


def test_resume_continues_the_same_run(tmp_path, midi_folder, monkeypatch):
    args = [
        *folder_args(midi_folder),
        "trainer.limit_train_batches=4",
        "trainer.max_epochs=3",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
    ]
    monkeypatch.setattr(pipeline, "_callbacks", _StopAt(6))  # epoch 2 of 3, mid-epoch
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit):
        train(compose_train(tmp_path / "first", args))
    signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after a Ctrl-C
    monkeypatch.setattr(pipeline, "_callbacks", ORIGINAL_CALLBACKS)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'first' / 'mlruns' / 'mlflow.db'}")
    (stopped,) = client.search_runs([client.get_experiment_by_name("moodgen").experiment_id])
    assert stopped.info.status == "KILLED"
    run_id = stopped.info.run_id
    stopped_steps = [m.step for m in client.get_metric_history(run_id, "lm/train_loss_step")]

    resumed = compose_train(tmp_path / "first", [f"resume={run_id}", f"paths.output_dir={tmp_path / 'resumed'}"])
    train(resumed)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "lm/train_loss_step")]
    assert max(stopped_steps) <= 6 < max(steps)  # the same run's steps go on past the interruption
    assert max(m.step for m in client.get_metric_history(run_id, "epoch")) == 11  # 3 epochs x 4 batches
    val = [m.value for m in client.get_metric_history(run_id, "lm/val_loss")]
    assert len(val) == 3  # one per epoch, across both parts
    assert run.data.metrics["lm/best_val_loss"] == pytest.approx(min(val))  # best over both parts


def test_init_from_a_checkpoint(tmp_path, midi_folder):
    first = compose_train(tmp_path / "a", [*folder_args(midi_folder), "logger=none"])
    train(first)
    checkpoint = next((tmp_path / "a" / "out" / "checkpoints").glob("best-*.ckpt"))
    loss = train(
        compose_train(
            tmp_path / "b",
            [*folder_args(midi_folder), "logger=none", f"init_from={checkpoint}", "trainer.limit_train_batches=1"],
        )
    )
    scratch = train(
        compose_train(tmp_path / "c", [*folder_args(midi_folder), "logger=none", "trainer.limit_train_batches=1"])
    )
    assert loss < scratch  # a head start from the trained weights


def test_slurm_launcher_config_composes(tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", f"paths.root_dir={tmp_path}"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 4 and launcher.tasks_per_node == 4 and launcher.nodes == 1
