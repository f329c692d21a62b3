"""Untrusted artifacts: a planted classifier or checkpoint is refused in one line and never runs code."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator

from moodgen.artifacts import read_checkpoint
from moodgen.classifier.heads import ValenceArousalClassifier
from moodgen.classifier.search import make_model
from moodgen.classifier.stage import save_sklearn
from moodgen.errors import MoodgenError
from moodgen.generation.bundle import from_run
from moodgen.tracking import CHECKPOINT_TAG
from moodgen.train import train

from .conftest import TINY_MODEL, TINY_TRAINER, compose_entry, compose_train, error_line, make_midi, scale_piece

PROBE = "classifier/mood4/final_cell/model"  # the mood probe from_run loads (features=final_cell)


class PickledCode:
    """Unpickling it runs `exec`: it writes `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


class SneakyEstimator(BaseEstimator):
    """A type of the file's own: constructing it (skops calls __setstate__) writes `marker`."""

    def __init__(self, marker: str = ""):
        self.marker = marker

    def __setstate__(self, state):
        super().__setstate__(state)
        Path(state["marker"]).write_text("ran")

    def predict_proba(self, x):
        return np.full((len(x), 4), 0.25)


@pytest.fixture(scope="module")
def store(tmp_path_factory, midi_folder):
    """A tiny trained run (no classifier stage), and a local copy of its files to plant runs from."""
    root = tmp_path_factory.mktemp("trust")
    cfg = compose_train(
        root,
        [
            "data=folder",
            f"data.root={midi_folder}",
            "data.val_fraction=0.25",
            *TINY_MODEL,
            *TINY_TRAINER,
            "classifier=none",
            "steering=none",
            "samples.n=1",
        ],
    )
    train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("moodgen").experiment_id])
    files = root / "trained"
    files.mkdir()
    for folder in ("checkpoints", "tokenizer", "config"):
        client.download_artifacts(run.info.run_id, folder, str(files))
    return root, client, run, files


def plant(store, *, checkpoint: Path | None = None, probe: Path | None = None) -> str:
    """A finished training run like the trained one, with the test's checkpoint and/or mood probe."""
    _, client, run, files = store
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    planted = client.create_run(run.info.experiment_id, tags=tags).info.run_id
    for folder in ("tokenizer", "config"):
        client.log_artifacts(planted, str(files / folder), folder)
    stored = Path(run.data.tags[CHECKPOINT_TAG])  # checkpoints/<name>.ckpt
    if checkpoint is not None:
        named = checkpoint.parent / "planted" / stored.name
        named.parent.mkdir(exist_ok=True)
        shutil.copy(checkpoint, named)
        client.log_artifact(planted, str(named), str(stored.parent))
    else:
        client.log_artifact(planted, str(files / stored), str(stored.parent))
    if probe is not None:
        client.log_artifacts(planted, str(probe), PROBE)
    client.set_terminated(planted, "FINISHED")
    return planted


def generate_cfg(store, tmp_path: Path, run_id: str):
    return compose_entry("generate", store[0], ["mood=calm", f"model_run={run_id}", f"out_dir={tmp_path}"], "gen")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "\x1b" not in message, message
    return message


def test_a_sound_probe_loads_and_an_absent_one_stays_none(store, tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 8))
    model = ValenceArousalClassifier(make_model(1.0, "l2", None, 200), make_model(1.0, "l1", None, 200))
    model.fit(x, np.arange(40) % 4)
    save_sklearn(model, tmp_path / "model")
    planted = plant(store, probe=tmp_path / "model")
    bundle = from_run(generate_cfg(store, tmp_path, planted), planted)
    assert isinstance(bundle.judges.probe, ValenceArousalClassifier)
    np.testing.assert_allclose(bundle.judges.probe.predict_proba(x), model.predict_proba(x))
    assert bundle.judges.judge is None  # no hand-crafted judge in the run: absent, as before
    assert isinstance(mlflow.sklearn.load_model(str(tmp_path / "model")), ValenceArousalClassifier)  # MLflow's too
    trained = store[2].info.run_id
    assert from_run(generate_cfg(store, tmp_path, trained), trained).judges.probe is None


def pickled_probe(folder: Path, marker: Path) -> Path:
    """An MLflow sklearn model in the cloudpickle format whose unpickling writes `marker`."""
    mlflow.sklearn.save_model(PickledCode(marker), folder, serialization_format="cloudpickle", pip_requirements=[])
    return folder


def test_a_pickled_probe_is_refused_and_never_runs(store, tmp_path):
    marker = tmp_path / "ran"
    model = pickled_probe(tmp_path / "model", marker)
    cfg = generate_cfg(store, tmp_path, plant(store, probe=model))
    with pytest.raises(MoodgenError, match=rf"^classifier {PROBE} of run {cfg.model_run} is refused: ") as exc:
        from_run(cfg, cfg.model_run)
    line = one_line(exc)
    assert "serialization_format: cloudpickle" in line and "could run code" in line and "moodgen.train" in line
    assert not marker.exists()
    mlflow.sklearn.load_model(str(model))  # the plant is armed: MLflow's own loader runs it
    assert marker.exists()


@pytest.mark.slow  # a second python process: about 10 s of imports
def test_generate_refuses_a_pickled_probe_in_one_line(store, tmp_path):
    marker = tmp_path / "ran"
    run_id = plant(store, probe=pickled_probe(tmp_path / "model", marker))
    args = ["mood=calm", "n=1", "steering=none", f"model_run={run_id}", f"paths.root_dir={store[0]}"]
    line = error_line("moodgen.generate", [*args, f"out_dir={tmp_path}"], tmp_path)
    assert line.startswith(f"moodgen: error: classifier {PROBE} of run {run_id} is refused: ")
    assert not marker.exists()


def test_a_skops_probe_with_types_of_its_own_is_refused(store, tmp_path):
    marker = tmp_path / "ran"
    sneaky = f"{SneakyEstimator.__module__}.{SneakyEstimator.__qualname__}"
    # the MLmodel trusts the type itself: MLflow would construct it
    mlflow.sklearn.save_model(
        SneakyEstimator(str(marker)),
        tmp_path / "model",
        serialization_format="skops",
        skops_trusted_types=[sneaky],
        pip_requirements=[],
    )
    marker.unlink()  # MLflow loads the model back once while saving it
    cfg = generate_cfg(store, tmp_path, plant(store, probe=tmp_path / "model"))
    with pytest.raises(MoodgenError, match=rf"is refused: it holds types moodgen does not trust \({sneaky}\)"):
        from_run(cfg, cfg.model_run)
    assert not marker.exists()
    mlflow.sklearn.load_model(str(tmp_path / "model"))
    assert marker.exists()


def test_a_damaged_probe_is_an_error_not_a_missing_probe(store, tmp_path):
    model = make_model(1.0, "l2", None, 200).fit(np.eye(8), np.arange(8) % 4)
    save_sklearn(model, tmp_path / "model")
    skops_file = tmp_path / "model" / "model.skops"
    skops_file.write_bytes(skops_file.read_bytes()[:100])
    cfg = generate_cfg(store, tmp_path, plant(store, probe=tmp_path / "model"))
    with pytest.raises(MoodgenError, match=rf"classifier {PROBE} of run \w+ is damaged \(model.skops: ") as exc:
        from_run(cfg, cfg.model_run)
    assert "python -m moodgen.train" in one_line(exc)


def bad_checkpoint(kind: str, good: Path, folder: Path) -> Path:
    path = folder / f"{kind}.ckpt"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        return path
    state = torch.load(good, map_location="cpu", weights_only=True)
    if kind == "pickled code":
        state["callbacks"] = PickledCode(folder / "ran")
    elif kind == "zeroed":
        state["state_dict"] = {k: torch.zeros_like(v) for k, v in state["state_dict"].items()}
    elif kind == "nan":
        state["state_dict"]["net.head.bias"][0] = float("nan")
    torch.save(state, path)
    return path


CHECKPOINTS = {
    "pickled code": r"is refused: it holds more than weights \(Unsupported global: GLOBAL exec .*could run code",
    "truncated": r"is damaged \(truncated or not a checkpoint: ",
    "zeroed": r"is damaged \(every weight is zero\)",
    "nan": r"is damaged \(weights net.head.bias hold NaN or inf\)",
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINTS))
def test_a_bad_checkpoint_is_one_line_naming_it(store, tmp_path, kind, monkeypatch):
    # where the environment turns weights-only loading off, only an explicit weights_only=True holds
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    stored = store[2].data.tags[CHECKPOINT_TAG]
    path = bad_checkpoint(kind, store[3] / stored, tmp_path)
    cfg = generate_cfg(store, tmp_path, plant(store, checkpoint=path))
    with pytest.raises(MoodgenError, match=rf"^checkpoint {stored} of run \w+ {CHECKPOINTS[kind]}") as exc:
        from_run(cfg, cfg.model_run)
    assert "python -m moodgen.train" in one_line(exc)
    with pytest.raises(MoodgenError, match=rf"^checkpoint {path} {CHECKPOINTS[kind]}"):
        read_checkpoint(path)  # the helper the training pipeline reads checkpoints with
    assert not (tmp_path / "ran").exists()


def test_evaluate_stops_at_a_refused_probe_instead_of_leaving_mood_out(store, tmp_path):
    from moodgen.evaluate import evaluate

    marker = tmp_path / "ran"
    run_id = plant(store, probe=pickled_probe(tmp_path / "model", marker))
    pieces = tmp_path / "pieces"
    for i in range(2):
        make_midi(pieces / f"calm_{i}.mid", scale_piece(i, 48), tracks=2)
    cfg = compose_entry("evaluate", store[0], [f"pieces={pieces}", f"reference={pieces}", f"model_run={run_id}"], "ev")
    with pytest.raises(MoodgenError, match=rf"classifier {PROBE} of run {run_id} is refused: ") as exc:
        evaluate(cfg)
    one_line(exc)
    assert not marker.exists()
