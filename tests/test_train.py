"""Training end to end: fast_dev_run for every preset, and a full run read back from MLflow."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from moodgen.data.vgmidi import default_cache_root
from moodgen.errors import MoodgenError
from moodgen.moods import MOODS
from moodgen.tracking import git_commit
from moodgen.train import train

from .conftest import REPO, TINY_MODEL, TINY_TRAINER, compose_train, error_line

PRESETS = ["lstm_small", "lstm", "mlstm", "paper"]


def folder_data(midi_folder) -> list[str]:
    return ["data=folder", f"data.root={midi_folder}", "data.val_fraction=0.25"]


@pytest.mark.parametrize("preset", PRESETS)
def test_fast_dev_run_every_preset(tmp_path, midi_folder, preset):
    # the presets' own sizes, one batch of 2 short windows, so even `paper` runs a real step on CPU
    cfg = compose_train(
        tmp_path,
        [
            *folder_data(midi_folder),
            f"model={preset}",
            "model.batch_size=2",
            "model.seq_len=32",
            "trainer.fast_dev_run=true",
            "logger=none",
            "samples.n=1",
            "samples.max_tokens=16",
        ],
    )
    assert train(cfg) > 0


@pytest.mark.parametrize("tokenizer", ["remi", "tsd", "midilike", "structured"])
def test_every_tokenizer_trains(tmp_path, midi_folder, tokenizer):
    cfg = compose_train(
        tmp_path,
        [*folder_data(midi_folder), f"tokenizer={tokenizer}", *TINY_MODEL, *TINY_TRAINER, "logger=none"],
    )
    assert train(cfg) > 0


def test_run_is_recorded_in_mlflow(tmp_path, vgmidi_root):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    cfg = compose_train(
        tmp_path,
        [
            f"data.root={vgmidi_root}",
            "data.max_files=6",
            *TINY_MODEL,
            *TINY_TRAINER,
            "trainer.max_epochs=2",
            "classifier=none",
        ],  # the classifier stage has its own tests
    )
    val_loss = train(cfg)
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("moodgen").experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["lm/best_val_loss"] == pytest.approx(val_loss)
    expected = {"lm/train_loss_epoch", "lm/val_loss", "lm/val_ppl", "lm/val_acc", "lm/unigram_val_ppl"}
    assert expected <= set(metrics)
    assert len(client.get_metric_history(run.info.run_id, "lm/val_loss")) == 2  # per epoch
    assert run.data.params["model.hidden_size"] == "32"
    assert run.data.params["data.exclude_labelled_test"] == "True"
    assert run.data.tags["data.train_files"] == "6"
    assert run.data.tags.get("mlflow.source.git.commit") == git_commit(REPO)
    folders = ("", "checkpoints", "tokenizer", "config", "data", *(f"samples/{m}" for m in MOODS))
    artifacts = {a.path for folder in folders for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"checkpoints/last.ckpt", "tokenizer/tokenizer.json", "config/config.yaml", "data/summary.json"} <= artifacts
    assert any(p.startswith("checkpoints/best-epoch") for p in artifacts)
    for mood in MOODS:  # 2 pieces per mood, each with its piano roll and sidecar
        assert {f"samples/{mood}/{mood}_{i}.{ext}" for i in range(2) for ext in ("mid", "png", "json")} <= artifacts


def test_same_seed_repeats_on_cpu(tmp_path, midi_folder):
    losses = [
        train(
            compose_train(
                tmp_path / str(i),
                [*folder_data(midi_folder), *TINY_MODEL, *TINY_TRAINER, "logger=none", "model.dropout=0.3"],
            )
        )
        for i in range(2)
    ]
    assert losses[0] == losses[1]


def test_too_little_data_is_a_clear_error(tmp_path, midi_folder):
    cfg = compose_train(tmp_path, [*folder_data(midi_folder), "logger=none", "model.seq_len=100000"])
    with pytest.raises(MoodgenError, match="fewer than one window"):
        train(cfg)


def test_cli_trains_and_prints_where_the_run_went(tmp_path, midi_folder):
    cmd = [
        sys.executable,
        "-m",
        "moodgen.train",
        *folder_data(midi_folder),
        *TINY_MODEL,
        *TINY_TRAINER,
        f"paths.root_dir={tmp_path}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "moodgen: run recorded: MLflow run" in result.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlruns/mlflow.db" in result.stdout
    assert (tmp_path / "mlruns" / "mlflow.db").exists()


def test_cli_missing_data_is_one_line(tmp_path):
    line = error_line("moodgen.train", [f"data.root={tmp_path}/nope"], tmp_path)
    assert line == (
        f"moodgen: error: data.root={tmp_path}/nope is not a VGMIDI copy (missing v1/vgmidi_train.csv); "
        "point it at your VGMIDI folder (the one holding v1/ and unlabelled/), "
        f"or unset it to use (or download) the copy in {default_cache_root()}"
    )
    assert "../shared" not in line  # a folder a user has, not the path only this repository's CI has
    assert not (tmp_path / "mlruns").exists()  # nothing recorded for a run that never started
