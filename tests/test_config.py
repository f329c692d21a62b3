"""Every config group option composes into a valid typed config; bad options fail in one line."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from moodgen.cli import CONF_DIR, measured_on_test, one_line
from moodgen.config import GROUP_SCHEMAS
from moodgen.data import SOURCES
from moodgen.models import LAYERS
from moodgen.tokenizers import TOKENIZERS, build_tokenizer

from .conftest import compose_train, error_line

OPTIONS = [(group, path.stem) for group in GROUP_SCHEMAS for path in sorted((CONF_DIR / group).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_group_option_composes(tmp_path, group, option):
    if group == "mood_profile":  # composed by steering=attributes, one file per mood
        cfg = compose_train(tmp_path, ["steering=attributes"])
        assert cfg.steering.moods[option].tempo > 0
        return
    extra = ["data.root=/some/folder"] if (group, option) == ("data", "folder") else []
    cfg = compose_train(tmp_path, [f"{group}={option}", *extra])
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # nothing left unset
    assert isinstance(cfg[group], type(cfg[group]))


def test_each_option_names_a_registered_implementation(tmp_path):
    for option in ("remi", "tsd", "midilike", "structured"):
        cfg = compose_train(tmp_path, [f"tokenizer={option}"])
        assert cfg.tokenizer.name in TOKENIZERS
        assert len(build_tokenizer(cfg.tokenizer)) > 50
    for option in ("lstm_small", "lstm", "mlstm", "paper"):
        assert compose_train(tmp_path, [f"model={option}"]).model.cell in LAYERS
    for option in ("vgmidi", "folder"):
        cfg = compose_train(tmp_path, [f"data={option}", "data.root=/x"])
        assert cfg.data.name in SOURCES


def test_overrides_compose(tmp_path):
    cfg = compose_train(tmp_path, ["tokenizer=tsd", "model.dropout=0.25", "model=paper"])
    assert cfg.tokenizer.name == "tsd"
    assert cfg.model.dropout == 0.25
    assert cfg.model.num_layers == 4 and cfg.model.batch_size == 100 and cfg.model.seq_len == 256


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.dropout=abc", "could not be converted to Float"),
        ("model.foo=1", "Key 'foo' not in 'ModelConfig'"),
        ("model=nope", "available options in 'model'"),
        ("trainer.max_epochs=many", "could not be converted to Integer"),
    ],
)
def test_bad_option_is_one_clear_line(override, expected):
    assert expected in error_line("moodgen.train", [override])


@pytest.mark.parametrize(
    "metric",
    [
        "eval/mean_oa",
        "clf/mood4/final_cell/test_acc",
        "clf/mood4/final_cell/recall_calm",
        "steer/rerank/accuracy",
        "steer/rerank/calm/accuracy",
        "bench/rerank/accuracy",
        "clf/mood4/fused_mean_hidden/nested_acc",
    ],
)
def test_a_held_out_metric_cannot_be_optimised(metric):
    assert measured_on_test(metric)
    assert "held-out measure" in error_line("moodgen.train", [f"optimized_metric={metric}"])


def test_validation_and_cv_metrics_can_be_optimised():
    assert not any(
        measured_on_test(m) for m in ("lm/val_loss", "clf/mood4/final_cell/cv_acc", "clf/mood4/fused/train_nested_acc")
    )


def test_one_line_joins_the_cause_chain():
    try:
        try:
            raise ValueError("inner reason\n    full_key: a.b")
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        assert one_line(exc) == "outer inner reason"
