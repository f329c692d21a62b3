"""What a command prints and leaves: third-party chatter only with verbose=true, nothing behind after
a failed option check, group suggestions without the schema nodes."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import pytest

from moodgen.cli import drop_zero_flops, quiet_console

from .conftest import TINY_MODEL, TINY_TRAINER, error_line

NOISE = {
    "srun hint": r"The `srun` command is available on your system but is not used",
    "GPU line": r"GPU available:",
    "TPU line": r"TPU available:",
    "batch-limit note": r"`Trainer\((limit_\w+_batches|val_check_interval)=.*was configured so",
    "FLOPs column": r"\| FLOPs|Total Flops",
    "MLflow table creation": r"Creating initial MLflow database tables",
    "MLflow links": r"🏃 View run|🧪 View experiment at",
}


def train_output(tmp_path, midi_folder, *extra: str) -> str:
    cmd = [sys.executable, "-m", "moodgen.train", "data=folder", f"data.root={midi_folder}", "data.val_fraction=0.25"]
    cmd += [*TINY_MODEL, *TINY_TRAINER, "samples.n=1", "steering=none", f"paths.root_dir={tmp_path}", *extra]
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def said(output: str) -> list[str]:
    return [name for name, pattern in NOISE.items() if re.search(pattern, output)]


def test_training_is_quiet_by_default_and_verbose_shows_it_all(tmp_path, midi_folder):
    quiet = train_output(tmp_path / "quiet", midi_folder)
    assert said(quiet) == [], quiet
    assert "moodgen: run recorded" in quiet and "Trainable params" in quiet  # ours, and the summary, stay
    verbose = train_output(tmp_path / "verbose", midi_folder, "verbose=true")
    # the srun hint needs srun on PATH, the links an MLflow server: the rest shows on any machine
    assert {"GPU line", "TPU line", "FLOPs column", "MLflow table creation"} <= set(said(verbose)), verbose


def test_a_zero_flops_column_is_dropped_and_a_counted_one_kept():
    table = "\n".join(
        [
            "",
            "  | Name | Type          | Params | Mode  | FLOPs",
            "-----------------------------------------------",
            "0 | net  | LanguageModel | 27.9 K | train | 0    ",
            "-----------------------------------------------",
            "27.9 K    Trainable params",
            "0         Total Flops",
        ]
    )
    lines = drop_zero_flops(table).splitlines()
    assert lines[1] == "  | Name | Type          | Params | Mode"
    assert lines[2] == "-" * len(lines[1]) and lines[3] == "0 | net  | LanguageModel | 27.9 K | train"
    assert not any("Flops" in line for line in lines)
    counted = table.replace("0         Total Flops", "1.2 M     Total Flops")
    assert drop_zero_flops(counted) == counted


def test_verbose_lets_mlflow_links_and_lightning_lines_through_again(monkeypatch):
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    record = logging.LogRecord(rank_zero.name, logging.INFO, __file__, 1, "GPU available: False, used: False", (), None)
    try:
        quiet_console(verbose=False)
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
        assert not rank_zero.filter(record)
        quiet_console(verbose=True)
        assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ
        assert rank_zero.filter(record)
        monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # the user's own choice
        quiet_console(verbose=False)
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "false"
    finally:
        quiet_console(verbose=True)


def run_failing(module: str, args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env)
    assert result.returncode == 2 and "moodgen: error:" in result.stderr, result.stderr
    return result


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("moodgen.train", ["data.root=nope"]),  # missing data, found after Hydra made its run folder
        ("moodgen.generate", ["mood=calm"]),  # no trained model: the store is opened, nothing recorded
        ("moodgen.train", ["model.lr=-1"]),  # an option out of range
    ],
)
def test_a_failed_command_leaves_no_folders_behind(tmp_path, module, args):
    run_failing(module, args, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_command_keeps_what_was_there(tmp_path):
    earlier = tmp_path / "outputs" / "train" / "2020-01-01_00-00-00_earlier"
    earlier.mkdir(parents=True)
    (earlier / "train.log").write_text("an earlier run\n")
    (tmp_path / "mlruns").mkdir()
    run_failing("moodgen.generate", ["mood=calm"], tmp_path)
    assert (tmp_path / "mlruns" / "mlflow.db").exists()  # the store was there before: it stays
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["train"]
    assert [p.name for p in (tmp_path / "outputs" / "train").iterdir()] == [earlier.name]


def test_an_unknown_group_option_lists_real_options_only(tmp_path):
    line = error_line("moodgen.train", ["model=lstm_smal"], tmp_path)
    assert "available options in 'model': lstm lstm_small mlstm paper" in line
    assert "schema" not in line and line.endswith("did you mean lstm_small?")


def test_one_value_for_a_list_option_is_one_line_showing_the_brackets(tmp_path):
    line = error_line("moodgen.generate", ["mood=calm", "steering.hold=density"], tmp_path)
    assert line.endswith(
        "steering.hold=density: steering.hold is a list; write it in brackets, e.g. 'steering.hold=[density]'"
    )
