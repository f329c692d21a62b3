"""The steering benchmark's parts that need no model: folds by piece, intervals, paired differences, views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic
import torch
from omegaconf import OmegaConf

from moodgen.bench.folds import FoldFeatures, fit_fold, piece_folds
from moodgen.bench.stats import paired_difference, wilson
from moodgen.bench.views import CopyIndex, own_mood_closest
from moodgen.classifier.augment import ExtraRows
from moodgen.config import ClassifierConfig
from moodgen.data.vgmidi import Phrase
from moodgen.errors import MoodgenError
from moodgen.moods import MOODS

from .conftest import error_line, make_midi, scale_piece


def phrases(n_pieces: int, per_piece: int) -> list[Phrase]:
    return [
        Phrase(Path(f"p{p}_{k}.mid"), f"p{p}", valence=p % 2, arousal=(p // 2) % 2)
        for p in range(n_pieces)
        for k in range(per_piece)
    ]


def test_folds_never_split_a_piece_and_keep_every_mood():
    rows = phrases(40, 3)
    folds = piece_folds(rows, 2, seed=0)
    for piece in {r.piece for r in rows}:
        assert len({folds[i] for i, r in enumerate(rows) if r.piece == piece}) == 1
    for fold in (0, 1):
        assert {r.mood for r, f in zip(rows, folds, strict=True) if f == fold} == {0, 1, 2, 3}


def test_wilson_interval_matches_hand_computed_values():
    assert wilson(0, 8) == pytest.approx((0.0, 0.3244), abs=1e-4)
    assert wilson(8, 8) == pytest.approx((0.6756, 1.0), abs=1e-4)
    low, high = wilson(4, 8)
    assert low == pytest.approx(1 - high) and low == pytest.approx(0.2152, abs=1e-4)


def test_paired_difference_uses_the_pairs():
    a, b = np.array([0.5, 0.6, 0.7, 0.8]), np.array([0.4, 0.5, 0.6, 0.7])  # always 0.1 better
    result = paired_difference(a, b)
    assert result["diff"] == pytest.approx(0.1) and result["high"] - result["low"] == pytest.approx(0.0, abs=1e-12)
    shuffled = paired_difference(a, b[::-1])  # the same values, wrongly paired: a wide interval
    assert shuffled["high"] - shuffled["low"] > 0.3


def test_units_are_keyed_by_fit_and_the_interval_over_fits_carries_a_fits_luck():
    """Two methods, 2 folds x 3 fits x 4 seeds, one mood: b beats a by exactly one fit's offset in every unit of
    that fit. Over units the difference looks sure; over the six (fold, fit) clusters it is as wide as the fits'
    spread. A key without the fit would pair 8 units, not 24."""
    from moodgen.bench.run import paired_rows

    offsets = {0: 0.5, 1: -0.25, 2: 0.0}  # each fit's difference, the same in every one of its units
    rows = []
    for fold in (0, 1):
        for fit, offset in offsets.items():
            for seed in range(4):
                base = (seed % 2) * 0.5  # 0 or 0.5: both methods' pieces alike but for the fit's offset
                for method, hit in (("a", base), ("b", base + offset)):
                    rows.append({"method": method, "fold": fold, "fit": fit, "seed": seed, "mood": "calm", "hit": hit})
    for row in paired_rows([r | {"state_hit": 0, "panel_hit": 0} for r in rows], ["a", "b"]):
        if row["judge"] != "accuracy":
            continue
        assert row["units"] == 24 and row["clusters"] == 6
        assert row["diff"] == pytest.approx(np.mean(list(offsets.values())))
        cluster_means = np.array([offsets[fit] for fold in (0, 1) for fit in offsets])
        by_hand = paired_difference(cluster_means, np.zeros(6))
        assert (row["cluster_low"], row["cluster_high"]) == pytest.approx((by_hand["low"], by_hand["high"]))
        assert row["cluster_high"] - row["cluster_low"] > 2 * (row["high"] - row["low"])


def test_a_paired_table_has_rows_or_says_why_it_has_none():
    from moodgen.bench.summary import paired_table

    row = {"method": "b", "baseline": "a", "diff": 0.1, "low": 0.0, "high": 0.2, "units": 8}
    assert paired_table([row | {"judge": "accuracy"}])[2] == "| b | a | +0.100 [+0.000, +0.200] | 8 |"
    assert paired_table([], "accuracy") == [
        "One method, nothing to pair it with: name others in `compare` (e.g. `compare=[none]`)."
    ]
    assert paired_table([row | {"judge": "accuracy"}], "state_accuracy") == []  # said once, under the first judge


def test_a_fits_stream_is_its_own_and_fit_0s_the_one_drawn_before_fits():
    from moodgen.bench.run import fit_settings, unit_stream
    from moodgen.steering.base import sampling_stream

    def draw(generator):
        return torch.rand(4, generator=generator)

    assert torch.equal(draw(unit_stream(3, 1, 0, 0)), draw(sampling_stream(3, 1, 0)))
    assert not torch.equal(draw(unit_stream(3, 1, 0, 1)), draw(unit_stream(3, 1, 0, 0)))
    assert not torch.equal(draw(unit_stream(3, 1, 0, 1)), draw(unit_stream(3, 1, 0, 2)))
    assert [fit_settings(OmegaConf.create({"name": "attributes", "seed": 5}), fit).seed for fit in (0, 2)] == [5, 7]


def test_the_yardstick_is_each_judges_share_per_mood_averaged_over_folds():
    """Fold 0 has two calm excerpts, fold 1 one: pooled, calm would be 2/3, not the folds' mean 1/2.
    A note-less excerpt (silent in its first seconds) is no music to judge: left out, not a miss."""
    from moodgen.bench.run import yardsticks

    def row(fold, mood, hit, state_hit, notes=12):
        verdicts = {"hit": hit, "state_hit": state_hit, "panel_hit": hit, "judges_agree": 0}
        verdicts |= {"key_stable": 1, "state_key_stable": 0}
        return {"fold": fold, "mood": mood, **verdicts, "notes": notes}

    real = [row(f, m, 0, 0) for f in (0, 1) for m in ("depressed", "angry")]
    real += [row(0, "calm", 1, 0), row(0, "calm", 1, 0), row(0, "happy", 0, 1), row(1, "calm", 0, 1)]
    real += [row(1, "happy", 1, 1), row(1, "happy", 1, 0), row(1, "happy", 0, 0, notes=0)]
    scores = yardsticks(real)
    assert scores["accuracy"] == {
        "all": pytest.approx(2 / 5),
        "depressed": 0.0,
        "calm": 0.5,
        "angry": 0.0,
        "happy": 0.5,
    }
    assert scores["state_accuracy"]["calm"] == 0.5 and scores["state_accuracy"]["happy"] == 0.75


def test_the_judges_agree_when_both_hear_one_mood_right_or_wrong_and_silence_is_no_agreement():
    from moodgen.bench.run import AGREEMENT, accuracy_rows, verdict_fields, yardsticks

    depressed, calm, angry, happy, silent = 0, 1, 2, 3, -1
    assert verdict_fields(calm, (calm, calm, calm))[AGREEMENT] == 1
    assert verdict_fields(calm, (happy, happy, happy))[AGREEMENT] == 1  # both wrong, the same way
    assert verdict_fields(calm, (calm, angry, calm))[AGREEMENT] == 0
    assert verdict_fields(calm, (silent, silent, silent))[AGREEMENT] == 0
    verdicts = [(calm, calm, calm), (calm, happy, happy), (calm, calm, angry), (angry, angry, happy)]
    verdicts += [(depressed, silent, silent), (happy, happy, happy)]
    rows = [
        {"method": "m", "fold": i % 2, "mood": MOODS[m], "notes": 9, **verdict_fields(m, (got, state_got, got))}
        | {"key_stable": 0, "state_key_stable": 0}
        for i, (m, got, state_got) in enumerate(verdicts)
    ]
    metrics = accuracy_rows(rows, "m")
    assert metrics["bench/m/calm/judges_agree"] == pytest.approx(2 / 3) and metrics["bench/m/angry/judges_agree"] == 0
    assert metrics["bench/m/depressed/judges_agree"] == 0 and metrics["bench/m/happy/judges_agree"] == 1
    assert metrics["bench/m/judges_agree"] == 0.5 and metrics["bench/m/calm/accuracy"] == pytest.approx(2 / 3)
    agree = yardsticks(rows)[AGREEMENT]  # on real excerpts: per fold (calm 1/2 and 1), then their mean
    assert agree["calm"] == 0.75 and agree["angry"] == 0


def test_a_judge_is_key_stable_where_it_hears_one_mood_a_semitone_down_and_up(monkeypatch):
    """A judge reading absolute pitch classes (calm if a C sounds, else happy) is unstable on a piece of Cs and
    stable on one of B, C and C# (moved a semitone either way, a C still sounds); the second judge here counts
    notes, which no move changes. Red if the moves are not applied, or one move is enough to be stable."""
    from moodgen.bench import run
    from moodgen.classifier.augment import transpose_by

    calm, happy, silent = 1, 3, -1

    def pitch_class_judges(job, state_judge, scores):  # the first judge hears C; the second judge density
        pitches = [[n.pitch for t in s.tracks for n in t.notes] for s in scores]
        first = [silent if not p else calm if any(q % 12 == 0 for q in p) else happy for p in pitches]
        second = [silent if not p else calm if len(p) < 4 else happy for p in pitches]
        return np.stack([first, second, first], axis=1)

    monkeypatch.setattr(run, "verdicts", pitch_class_judges)

    def score_of(pitches):
        score, track = symusic.Score(480), symusic.Track()
        for i, pitch in enumerate(pitches):
            track.notes.append(symusic.Note(480 * i, 480, pitch, 80))
        score.tracks.append(track)
        return score

    # Cs only; B, C and C# (moved down: B flat, B, C; up: C, C#, D); MIDI's edges (moved, one note is left
    # out); C and C# (a C moved down, none moved up) and B and C (none down, a C up): one move is not enough
    scores = [score_of(p) for p in ([60, 72], [59, 60, 61], [127, 0], [60, 61], [59, 60])]
    assert run.KEY_MOVES == (-1, 1)
    assert [n.pitch for n in transpose_by(scores[2], 1).tracks[0].notes] == [1]
    assert [n.pitch for n in scores[2].tracks[0].notes] == [127, 0]  # the piece itself is not moved
    heard = pitch_class_judges(None, None, scores)
    moved = run.moved_verdicts(None, None, scores)
    assert moved.shape == (5, 2, 3)
    stable = [run.key_fields(h, m) for h, m in zip(heard, moved, strict=True)]
    assert [s["key_stable"] for s in stable] == [0, 1, 0, 0, 0]
    assert [s["state_key_stable"] for s in stable] == [1, 1, 1, 1, 1]
    assert run.key_fields((silent, silent, silent), np.full((2, 3), silent)) == {"key_stable": 0, "state_key_stable": 0}
    rows = [
        {"method": "m", "fold": 0, "mood": mood, "notes": 3, **run.verdict_fields(calm, h), **s}
        for mood in MOODS
        for h, s in zip(heard, stable, strict=True)
    ]
    metrics = run.accuracy_rows(rows, "m")
    assert metrics["bench/m/angry/key_stable"] == pytest.approx(1 / 5) and metrics["bench/m/state_key_stable"] == 1


def test_the_panel_hears_the_mood_of_both_judges_mean_probabilities_not_a_vote():
    from moodgen.bench.run import panel_moods, verdict_fields

    judge = np.array([[0.40, 0.35, 0.25, 0.00], [0.10, 0.70, 0.10, 0.10], [np.nan] * 4])
    second = np.array([[0.00, 0.35, 0.25, 0.40], [0.50, 0.00, 0.20, 0.30], [np.nan] * 4])
    # first piece: depressed to one judge, happy to the other, calm second to both: the panel hears calm;
    # second: calm 0.35 against depressed 0.30; third: silent, no mood
    assert panel_moods(judge, second).tolist() == [1, 1, -1]
    fields = verdict_fields(1, (0, 3, 1))
    assert fields["panel_judged"] == "calm" and fields["panel_hit"] == 1 and fields["hit"] == 0


def test_both_judges_learn_only_from_the_other_fold_and_the_steering_only_from_its_own():
    """Fold 1 writes each mood's feature one mood later than fold 0: a model fitted on fold 0's rows
    reads fold 0 right and fold 1 wrong, so each model shows which rows it learned from."""
    y = np.arange(160) % 4
    folds = (np.arange(160) // 4) % 2
    written = np.where(folds == 0, y, (y + 1) % 4)
    rng = np.random.default_rng(0)
    x = 3.0 * np.eye(4)[written] + rng.normal(scale=0.1, size=(160, 4))
    cfg = OmegaConf.structured(ClassifierConfig(name="logreg", n_trials=2, heads="joint"))
    # each model's features in another column order: a model shows which it learned from
    probe, ranker, judge, state = x, x[:, [1, 0, 3, 2]], x[:, ::-1], x[:, [2, 3, 0, 1]]
    models = fit_fold(0, folds, FoldFeatures(probe, ranker, judge, state), y, cfg, seed=0)
    steer = folds == 0
    assert (models.probe.predict(probe[steer]) == y[steer]).all()
    assert (models.ranker.predict(ranker[steer]) == y[steer]).all()
    assert (models.judge.predict(judge[steer]) != y[steer]).all()  # it reads fold 0 as fold 1 writes
    assert (models.state_judge.predict(state[steer]) != y[steer]).all()
    assert (models.judge.predict(judge[~steer]) == y[~steer]).all()
    assert (models.state_judge.predict(state[~steer]) == y[~steer]).all()


def test_the_steering_folds_probe_and_ranker_learn_from_its_phrases_copies_too():
    """As the classifier stage trains the run's probe and judge on classifier.augment copies, the fold's probe and
    ranker learn from the copies of their own kind of its own phrases, never another fold's; the judges from
    phrases alone. The phrases carry no mood; the probe's copies write each mood in one column, the ranker's two
    columns later, and the other fold's copies one column later than its own fold's."""
    y = np.arange(160) % 4
    folds = (np.arange(160) // 4) % 2
    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.1, size=(160, 4))

    def copies(shift: int) -> ExtraRows:
        written = np.where(folds == 0, y + shift, y + shift + 1) % 4
        noise = rng.normal(scale=0.1, size=(320, 4))
        return ExtraRows(3.0 * np.eye(4)[np.repeat(written, 2)] + noise, np.repeat(np.arange(160), 2))

    cfg = OmegaConf.structured(ClassifierConfig(name="logreg", n_trials=2, heads="joint"))
    plain = fit_fold(0, folds, FoldFeatures(x, x, x, x), y, cfg, seed=0)
    models = fit_fold(0, folds, FoldFeatures(x, x, x, x, probe_copies=copies(0), ranker_copies=copies(2)), y, cfg, 0)
    moods = 3.0 * np.eye(4)  # row k: column k written
    assert models.probe.predict(moods).tolist() == [0, 1, 2, 3]
    assert models.ranker.predict(moods).tolist() == [2, 3, 0, 1]  # mood m written in column m + 2
    assert plain.probe.predict(moods).tolist() != [0, 1, 2, 3]  # the phrases alone do not say it
    for judge in ("judge", "state_judge"):
        assert np.array_equal(getattr(models, judge).predict_proba(x), getattr(plain, judge).predict_proba(x))


def test_fold_models_keep_a_pieces_phrases_together_under_group10():
    """classifier.cv=group10 needs each phrase's piece: the benchmark hands fit_fold the pieces."""
    y = np.arange(160) % 4
    folds = (np.arange(160) // 4) % 2
    x = 3.0 * np.eye(4)[y] + np.random.default_rng(0).normal(scale=0.1, size=(160, 4))
    cfg = OmegaConf.structured(ClassifierConfig(name="logreg", n_trials=2, heads="joint", cv="group10"))
    with pytest.raises(MoodgenError, match="group10 needs the pieces"):
        fit_fold(0, folds, FoldFeatures(x, x, x, x), y, cfg, seed=0)
    models = fit_fold(0, folds, FoldFeatures(x, x, x, x), y, cfg, seed=0, pieces=np.arange(160) // 2)
    assert (models.judge.predict(x) == y).all()


def test_own_mood_closest_reads_each_row():
    matrix = np.array([[0.9, 0.1, 0.1, 0.1], [0.2, 0.8, 0.1, 0.1], [0.1, 0.9, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7]])
    assert own_mood_closest(matrix) == 0.75


def test_copied_share_finds_a_planted_copy(tmp_path):
    source = make_midi(tmp_path / "train.mid", scale_piece(0, 64))
    index = CopyIndex([source])
    assert index.copied_share(symusic.Score(str(source))) == 1.0
    other = symusic.Score(str(make_midi(tmp_path / "other.mid", [60 + (i * 7) % 13 for i in range(64)])))
    assert index.copied_share(other) < 0.1


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("seeds=0", "use seeds >= 1"),
        ("fits=0", "use fits >= 1"),
        ("grid_points=1", "grid_points >= 2"),
        ("compare=[nope]", "unknown steering"),
        ("key_blind=maybe", "not a valid bool"),
        ("steering.lean_on=root", "steering.lean_on=root (use triad or third_fifth)"),
    ],
)
def test_bad_benchmark_option_is_one_line_before_any_model_loads(tmp_path, option, expected):
    assert expected in error_line("moodgen.benchmark", [option, f"paths.root_dir={tmp_path}"], cwd=tmp_path)


def test_musicality_diversity_is_relative_to_real_music_and_duplicates_are_counted():
    from moodgen.bench.musicality import diversity, duplicate_pairs

    from .test_attributes import score_of

    def melody(shift: int, count: int) -> symusic.Score:
        return score_of([(i * 0.5, 0.5, 60 + shift + (i * 7) % 12, 80) for i in range(count)])

    real = [melody(s, 20 + 4 * s) for s in range(5)]
    collapsed = [melody(0, 20) for _ in range(5)]
    assert diversity(collapsed, real) == 0.0 and duplicate_pairs(collapsed) == 10
    assert diversity(real, real) == pytest.approx(1.0) and duplicate_pairs(real) == 0
    assert np.isnan(diversity(real[:1], real))
