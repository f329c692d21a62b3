"""Option values out of their declared range, and `+key`s that are not options, are one line at composition."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
import symusic
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from moodgen import config
from moodgen.cli import CONF_DIR
from moodgen.config import RANGE, Range, check_config
from moodgen.errors import MoodgenError
from moodgen.generation.run import report_shortfall

from .conftest import REPO, error_line

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SEARCHES = sorted(p.stem for p in (CONF_DIR / "hparams_search").glob("*.yaml"))
ENTRIES = ("train", "classify", "generate", "evaluate", "benchmark", "serve")
REQUIRED = {"generate": ["mood=calm"], "evaluate": ["pieces=some_folder"]}  # options without a default


def composed(entry: str, tmp_path, overrides: list[str]):
    with initialize_config_dir(str(CONF_DIR), job_name="test"):
        return compose(
            entry, [f"paths.root_dir={tmp_path}", *REQUIRED.get(entry, []), *overrides], return_hydra_config=True
        )


def problem(entry: str, tmp_path, overrides: list[str]) -> str:
    with pytest.raises(MoodgenError) as raised:
        check_config(composed(entry, tmp_path, overrides), entry)
    (line,) = str(raised.value).splitlines()
    return line


# what the CLI prints is the checker's line: these run the entry points themselves
@pytest.mark.parametrize(
    ("entry", "override", "expected"),
    [
        ("train", "trainer.max_epochs=-1", "trainer.max_epochs=-1 is out of range: use trainer.max_epochs >= 1"),
        ("generate", "temperature=-1", "temperature=-1.0 is out of range: use temperature > 0"),
        ("train", "+foo=1", "foo is not an option of moodgen.train"),
    ],
)
def test_a_bad_value_or_key_is_one_line_before_any_work(tmp_path, entry, override, expected):
    args = [override, f"paths.root_dir={tmp_path}", *REQUIRED.get(entry, [])]
    assert expected in error_line(f"moodgen.{entry}", args, cwd=tmp_path)


@pytest.mark.parametrize(
    ("entry", "override", "expected"),
    [
        ("train", "model.seq_len=0", "model.seq_len=0 is out of range: use 1..65536"),
        ("train", "trainer.max_steps=0", "use -1 (no limit) or trainer.max_steps >= 1"),
        ("train", "samples.n=0", "samples.n=0 is out of range: use samples.n >= 1"),
        ("train", "samples.duration=0", "use samples.duration > 0"),
        ("train", "samples.top_p=0", "use 0 < samples.top_p <= 1"),
        ("train", "samples.temperature=-1", "use samples.temperature > 0"),
        ("train", "model.dropout=1", "use 0 <= model.dropout < 1"),
        ("train", "model.lr=nan", "model.lr=nan is out of range"),
        ("train", "data.val_fraction=1", "use 0 < data.val_fraction < 1"),
        ("train", "trainer.limit_train_batches=2.5", "use a share 0..1 or a whole number >= 0"),
        ("train", "classifier.transpose=[1,9]", "classifier.transpose=[1, 9] is out of range: use -6..6 for each"),
        ("train", "steering.moods.calm.guidance=-1", "steering.moods.calm.guidance=-1.0 is out of range"),
        ("generate", "n=0", "n=0 is out of range: use n >= 1"),
        ("generate", "duration=-5", "duration=-5.0 is out of range: use duration > 0"),
        ("generate", "seed=-1", "seed=-1 is out of range: use 0..4294967295"),  # null (fresh) is the default
        ("generate", "top_p=0", "use 0 < top_p <= 1"),
        ("generate", "steering.candidates=0", "use steering.candidates >= 1"),
        ("serve", "port=70000", "port=70000 is out of range: use 0..65535"),
        ("benchmark", "folds=1", "use folds >= 2"),
        ("classify", "classifier.nested_folds=1", "classifier.nested_folds=1 is out of range: use 2..10"),
    ],
)
def test_each_option_is_checked_against_its_declared_range(tmp_path, entry, override, expected):
    assert expected in problem(entry, tmp_path, [override])


def test_special_values_and_every_bad_option_at_once(tmp_path):
    allowed = ["trainer.max_steps=-1", "trainer.limit_train_batches=3", "trainer.num_sanity_val_steps=-1", "port=0"]
    check_config(composed("train", tmp_path, allowed[:3]), "train")
    check_config(composed("serve", tmp_path, allowed[3:]), "serve")
    line = problem("train", tmp_path, ["model.seq_len=0", "samples.n=0"])
    assert "model.seq_len=0" in line and "samples.n=0" in line


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("+model.foo=1", "model.foo is not an option of moodgen.train"),
        ("+model.dropuot=0.2", "did you mean model.dropout?"),
        ("+dropout=0.2", "did you mean model.dropout?"),
        ("++samples.temprature=0.5", "did you mean samples.temperature?"),
    ],
)
def test_a_plus_key_that_is_not_an_option_names_the_closest_one(tmp_path, override, expected):
    line = problem("train", tmp_path, [override])
    assert expected in line and "--cfg job" in line


def readme_plus_overrides() -> list[tuple[str, list[str]]]:
    """Every `+key=value` the README shows: (entry, overrides) of its commands and its inline mentions."""
    text = (REPO / "README.md").read_text()
    found = []
    for entry, rest in re.findall(r"python -m moodgen\.(\w+)([^\n`|#]*)", text):
        args = [a for a in rest.split() if "=" in a and not a.startswith("-") and not re.search("[<>…]", a)]
        if any(a.startswith("+") for a in args):
            found.append((entry, args))
    placeholders = {"<mood>": "calm", "<value>": "0.5"}
    for override in re.findall(r"`(\+[^`\s]+=[^`\s]+)`", text):
        for placeholder, value in placeholders.items():
            override = override.replace(placeholder, value)
        name = "noise" if override.startswith("+experiment") else "density"
        found.append(("train", [override.replace("<name>", name)]))
    return found


README_PLUS = readme_plus_overrides()


def test_the_readme_shows_plus_overrides():
    assert len(README_PLUS) >= 8  # the experiments, the mood-profile tweaks: the extraction works


@pytest.mark.parametrize(("entry", "overrides"), README_PLUS, ids=[" ".join(o) for _, o in README_PLUS])
def test_every_plus_override_the_readme_shows_is_accepted(tmp_path, entry, overrides):
    check_config(composed(entry, tmp_path, overrides), entry)


@pytest.mark.parametrize(
    "overrides",
    [[f"+experiment={e}"] for e in EXPERIMENTS] + [[f"hparams_search={s}"] for s in SEARCHES if s.startswith("lm")],
)
def test_shipped_experiments_and_searches_are_in_range(tmp_path, overrides):
    check_config(composed("train", tmp_path, overrides), "train")


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_entry_points_defaults_are_in_range(tmp_path, entry):
    cfg = composed(entry, tmp_path, [])
    check_config(cfg, entry)
    for group in ("steering", "classifier", "model", "trainer", "tokenizer"):
        for path in sorted((CONF_DIR / group).glob("*.yaml")) if group in cfg else []:
            check_config(composed(entry, tmp_path, [f"{group}={path.stem}"]), entry)


def schemas() -> list[type]:
    return [c for c in vars(config).values() if isinstance(c, type) and dataclasses.is_dataclass(c) and c is not Range]


UNRANGED = {"MoodConfig.attributes"}  # free-form values whose valid range depends on the attribute


def test_every_numeric_option_declares_its_range():
    numeric = re.compile(r"^(int|float)( \| None)?$|\[(str, )?(int|float)\]$|^Any$")
    missing = [
        f"{schema.__name__}.{f.name}"
        for schema in schemas()
        for f in dataclasses.fields(schema)
        if numeric.search(str(f.type)) and RANGE not in f.metadata
    ]
    assert sorted(set(missing) - UNRANGED) == []


def test_a_piece_cut_short_by_max_tokens_or_without_notes_is_reported(caplog):
    score = symusic.Score(480)
    settings = OmegaConf.create({"duration": 100.0, "max_tokens": 200})
    with caplog.at_level(logging.WARNING, logger="moodgen"):
        report_shortfall("calm_0", [], score, settings)
        track = symusic.Track()
        track.notes.append(symusic.Note(time=0, duration=480 * 20, pitch=60, velocity=80))  # 10 s at 120 qpm
        score.tracks.append(track)
        report_shortfall("calm_1", list(range(190)), score, settings)
        report_shortfall("calm_2", list(range(10)), score, OmegaConf.create({"duration": 10.5, "max_tokens": 200}))
    said = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in said] == ["calm_0 has no notes", "calm_1 lasts 10.0 s, not the 100 s asked"]
    assert "max_tokens=2090 would reach it" in said[1]
