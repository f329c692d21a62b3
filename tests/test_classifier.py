"""The sentiment classifier: honest CV on train rows, a seeded Optuna search, neurons, the stage."""

from __future__ import annotations

import json

import mlflow.sklearn
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from moodgen.classifier import search as search_module
from moodgen.classifier.neurons import sentiment_neurons
from moodgen.classifier.stage import fit_and_report
from moodgen.classify import classify
from moodgen.cli import CONF_DIR
from moodgen.config import ClassifierConfig
from moodgen.errors import MoodgenError
from moodgen.train import train

from .conftest import TINY_MODEL, TINY_TRAINER, compose_train


def clf_cfg(**kw):
    return OmegaConf.structured(ClassifierConfig(**{"name": "logreg", "n_trials": 4, **kw}))


def blobs(n: int, seed: int = 0, classes: int = 4, dim: int = 6):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, dim)) + 2.0 * np.eye(classes, dim)[y]
    return x, y


@pytest.mark.parametrize(("name", "val_size"), [("kfold10", {16, 17}), ("shuffle10", {33})])
def test_cv_protocols_split_sizes(name, val_size):
    x, y = blobs(161)
    folds = list(search_module.splitter(name).split(x, y))
    assert len(folds) == 10
    assert {len(val) for _, val in folds} == val_size
    assert all(len(set(train) & set(val)) == 0 for train, val in folds)


def test_model_selection_never_sees_test_rows(monkeypatch, tmp_path):
    x_train, y_train = blobs(80)
    x_test, y_test = blobs(40, seed=1)
    x_test[:, 0] = 1e6  # a value no training row has: any fit that sees it is caught
    fitted_rows = []
    original = search_module.cross_val_score

    def spy(model, x, y, **kw):
        fitted_rows.append(x)
        return original(model, x, y, **kw)

    monkeypatch.setattr(search_module, "cross_val_score", spy)
    result, metrics = fit_and_report(
        {"train": x_train, "test": x_test},
        {"train": y_train, "test": y_test},
        ["a", "b", "c", "d"],
        clf_cfg(),
        0,
        tmp_path,
        "t",
    )
    assert fitted_rows and all(rows.shape[0] == 80 and rows.max() < 1e5 for rows in fitted_rows)
    assert result.model[0].mean_[0] < 1e5  # the refit scaler saw training rows only
    assert 0.0 <= metrics["test_acc"] <= 1.0


def test_search_is_seeded_and_stays_in_its_space():
    x, y = blobs(60)
    cfg = clf_cfg(n_trials=6, log2_c_min=-3.0, log2_c_max=2.0, penalties=["l1", "l2"])
    first = search_module.search(x, y, cfg, seed=7)
    again = search_module.search(x, y, cfg, seed=7)
    assert first.trials == again.trials
    assert all(-3.0 <= t["log2_C"] <= 2.0 and t["penalty"] in ("l1", "l2") for t in first.trials)
    assert first.cv_accuracy == max(t["cv_accuracy"] for t in first.trials)
    l1_only = search_module.search(x, y, clf_cfg(n_trials=3, penalties=["l1"]), seed=7)
    assert {t["penalty"] for t in l1_only.trials} == {"l1"}


def test_neuron_report_matches_the_coefficients():
    x, y = blobs(120, dim=10)
    model = search_module.make_model(0.05, "l1", None, 2000).fit(x, y)
    report = sentiment_neurons(model, ["a", "b", "c", "d"])
    coef = model[-1].coef_
    assert sorted((e["class"], e["neuron"]) for e in report["neurons"]) == sorted(
        ("abcd"[k], int(i)) for k, i in zip(*np.nonzero(coef), strict=True)
    )
    for entry in report["neurons"]:
        assert entry["weight"] == pytest.approx(coef["abcd".index(entry["class"]), entry["neuron"]])
    assert report["count"] == len(np.flatnonzero(np.abs(coef).sum(0)))
    assert 0 < report["count"] < 10  # L1 at this C keeps few of the 10 inputs


TINY_CLASSIFIER = ["classifier.n_trials=2", "classifier.targets=[mood4,valence]", "classifier.compare=[handcrafted]"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, vgmidi_root):
    """One tiny LM + classifier run on VGMIDI, recorded in a temporary MLflow store."""
    tmp_path = tmp_path_factory.mktemp("clf")
    cfg = compose_train(
        tmp_path, [f"data.root={vgmidi_root}", "data.max_files=6", *TINY_MODEL, *TINY_TRAINER, *TINY_CLASSIFIER]
    )
    train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("moodgen").experiment_id])
    return tmp_path, client, run


def test_stage_logs_metrics_model_and_neurons(trained_run):
    _, client, run = trained_run
    metrics = run.data.metrics
    for target in ("mood4", "valence"):
        for kind in ("final_cell", "handcrafted"):
            for name in ("test_acc", "test_balanced_acc", "test_macro_f1", "majority_acc", "cv_acc", "log2_C"):
                assert f"clf/{target}/{kind}/{name}" in metrics
    assert metrics["clf/mood4/final_cell/best_constant_acc"] == pytest.approx(0.45)  # always "calm"
    assert metrics["clf/mood4/final_cell/majority_acc"] == pytest.approx(9 / 40)  # train's majority: happy
    assert metrics["clf/train_phrases"] == 161 and metrics["clf/test_phrases"] == 40
    run_id = run.info.run_id
    model = mlflow.sklearn.load_model(f"runs:/{run_id}/classifier/mood4/final_cell/model")
    assert model.predict(np.zeros((1, 32))).shape == (1,)  # hidden_size 32 in TINY_MODEL
    files = {a.path for a in client.list_artifacts(run_id, "classifier/mood4/final_cell")}
    assert {
        "classifier/mood4/final_cell/confusion.png",
        "classifier/mood4/final_cell/confusion.csv",
        "classifier/mood4/final_cell/trials.csv",
    } <= files
    local = client.download_artifacts(run_id, "classifier/steering/neurons.json", str(trained_run[0]))
    with open(local) as handle:
        neurons = json.load(handle)
    assert neurons["count"] == metrics["clf/steering/neurons"]


def test_classify_reproduces_the_run(trained_run):
    tmp_path, client, run = trained_run
    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        cfg = compose(
            "classify",
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path / 'classify'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "lm_run=latest",
                *TINY_CLASSIFIER,
            ],
        )
    classify(cfg)
    runs = client.search_runs(
        [client.get_experiment_by_name("moodgen").experiment_id],
        filter_string="tags.`moodgen.entry_point` = 'classify'",
    )
    assert len(runs) == 1 and runs[0].data.tags["moodgen.lm_run"] == run.info.run_id
    for key, value in run.data.metrics.items():
        if key.startswith("clf/"):
            assert runs[0].data.metrics[key] == pytest.approx(value), key


def test_classify_unknown_run_is_one_clear_error(trained_run):
    tmp_path, _, _ = trained_run
    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        cfg = compose(
            "classify",
            overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'x'}", "lm_run=0123456789abcdef"],
        )
    with pytest.raises(MoodgenError, match=r"no MLflow run '0123456789abcdef'.*lm_run=latest"):
        classify(cfg)


def test_finetune_selects_epochs_by_cv_and_learns_a_separable_task():
    from moodgen.classifier.finetune import finetune_and_select
    from moodgen.models import LanguageModel
    from moodgen.tokenizers import Corpus

    def corpus(n: int, seed: int):
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % 2
        pieces = [rng.integers(2 + 10 * k, 12 + 10 * k, size=rng.integers(8, 20)) for k in labels]
        offsets = np.cumsum([0] + [len(p) for p in pieces])
        return Corpus(np.concatenate(pieces).astype(np.int32), offsets, [f"p{i}" for i in range(n)]), labels

    train_corpus, y_train = corpus(40, 0)
    test_corpus, y_test = corpus(20, 1)
    net = LanguageModel(30, embedding_dim=8, hidden_size=16, num_layers=1)
    before = [p.detach().clone() for p in net.parameters()]
    cfg = clf_cfg(name="finetune", finetune_epochs=3, finetune_lr=1e-2, finetune_head_lr=1e-2, finetune_batch_size=8)
    model, predicted, epochs, cv_acc, curve = finetune_and_select(
        net, {"train": train_corpus, "test": test_corpus}, {"train": y_train, "test": y_test}, 2, cfg, seed=0
    )
    assert len(curve) == 3 and 1 <= epochs <= 3 and cv_acc == pytest.approx(max(curve))
    assert predicted.shape == (20,)
    assert np.mean(predicted == y_test) >= 0.8
    assert model.head.out_features == 2
    assert all((a == b).all() for a, b in zip(net.parameters(), before, strict=True))  # pretrained LM untouched
