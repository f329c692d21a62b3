"""The `moodgen` experiment is made for the classic runs table: its kind, and the runs view with the key metrics."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from moodgen.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    KEY_METRICS,
    RUNS_VIEW_KEY,
    RUNS_VIEW_TAG,
    get_or_create_experiment,
    open_store,
    runs_view_url,
)


def test_a_fresh_store_gets_a_model_training_experiment(tmp_path):
    client = open_store(f"sqlite:///{tmp_path}/mlflow.db")
    experiment_id = get_or_create_experiment(client, "moodgen", tmp_path / "artifacts")
    tags = client.get_experiment(experiment_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    view = json.loads(tags[RUNS_VIEW_TAG])
    assert view["selectedColumns"][1:] == [f"metrics.`{key}`" for key in KEY_METRICS]
    assert {"lm/best_val_loss", "clf/mood4/final_cell/cv_acc", "bench/attributes/accuracy"} <= set(KEY_METRICS)
    assert [chart["metricKey"] for chart in view["compareRunCharts"]] == list(KEY_METRICS)
    assert get_or_create_experiment(client, "moodgen", tmp_path / "artifacts") == experiment_id


def test_an_experiment_made_before_gets_the_tags_and_a_hand_set_kind_stays(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = open_store(uri)
    old = client.create_experiment("moodgen")  # as an earlier moodgen (or `mlflow experiments create`) made it
    client.set_experiment_tag(old, RUNS_VIEW_TAG, '{"selectedColumns": []}')  # an outdated view of ours
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert get_or_create_experiment(MlflowClient(tracking_uri=uri), "moodgen", None) == old
    tags = client.get_experiment(old).tags
    assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert "lm/best_val_loss" in tags[RUNS_VIEW_TAG]
    other = client.create_experiment("genai-notes", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    get_or_create_experiment(client, "genai-notes", None)
    assert client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_the_runs_view_link_opens_the_runs_tab_in_model_training_mode():
    url = runs_view_url("http://127.0.0.1:5000/", "7")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/7/runs?")
    assert url.endswith(f"?workflowType=machine_learning&viewStateShareKey={RUNS_VIEW_KEY}")
