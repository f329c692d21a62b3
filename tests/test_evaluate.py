"""Evaluation: hand-checkable features, distances, repetition, mood accuracy, the entry point, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import symusic

from moodgen.data.midi import read_piano
from moodgen.errors import MoodgenError
from moodgen.evaluate import evaluate
from moodgen.evaluation.describe import describe_piece, mean_polyphony, pitch_class_entropy, pitch_name
from moodgen.evaluation.mood import mood_accuracy
from moodgen.evaluation.repetition import repetition
from moodgen.evaluation.sets import Piece, PieceSet, as_long_as, reference_set
from moodgen.evaluation.yang_lerch import (
    common_grid,
    compare_sets,
    density,
    inter_set_distances,
    intra_set_distances,
    kl_divergence,
    overlap_area,
    piece_features,
)
from moodgen.generation.pieces import first_seconds

from .conftest import compose_entry, error_line, make_midi, scale_piece

C_MAJOR_BAR = [60, 62, 64, 65, 67, 69, 71, 72]  # eight eighth notes: one 4/4 bar at tpq 480


def score_of(notes: list[tuple[int, int, int]], tpq: int = 480) -> symusic.Score:
    """(time, duration, pitch) in ticks -> a one-track score."""
    score = symusic.Score(tpq)
    track = symusic.Track(name="piano", program=0, is_drum=False)
    for time, duration, pitch in notes:
        track.notes.append(symusic.Note(time=time, duration=duration, pitch=pitch, velocity=80))
    score.tracks.append(track)
    return score


def test_yang_lerch_features_by_hand(tmp_path):
    # C4 E4 G4 C5 as eighth notes at 120 qpm (the MIDI default): 0.25 s apart
    features = piece_features(read_piano(make_midi(tmp_path / "arpeggio.mid", [60, 64, 67, 72])))
    assert features["pitch_count"][0] == 4
    expected_pch = np.zeros(12)
    expected_pch[[0, 4, 7]] = [0.5, 0.25, 0.25]
    assert np.allclose(features["pitch_class_histogram"], expected_pch)
    pctm = features["pitch_class_transition_matrix"].reshape(12, 12)
    assert pctm[0, 4] == pctm[4, 7] == pctm[7, 0] == pytest.approx(1 / 3) and pctm.sum() == pytest.approx(1)
    assert features["pitch_range"][0] == 12
    assert features["avg_pitch_interval"][0] == pytest.approx((4 + 3 + 5) / 3)
    assert features["note_count"][0] == 4
    assert features["avg_ioi"][0] == pytest.approx(0.25)
    assert features["note_length_histogram"][3] == 1.0  # every note an eighth (class 3)
    assert features["note_length_transition_matrix"].reshape(12, 12)[3, 3] == 1.0


def test_distances_by_hand():
    a = np.array([[1.0], [2.0], [4.0]])
    b = np.array([[4.0], [6.0]])
    assert sorted(intra_set_distances(a)) == [1.0, 2.0, 3.0]
    assert sorted(inter_set_distances(a, b)) == [0.0, 2.0, 2.0, 3.0, 4.0, 5.0]
    vectors = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert intra_set_distances(vectors).tolist() == [5.0]


def test_density_overlap_and_kl():
    rng = np.random.default_rng(0)
    near, far = rng.normal(0, 1, 200), rng.normal(20, 1, 200)
    grid = common_grid(near, far)
    p, q = density(near, grid), density(far, grid)
    assert np.trapezoid(p, grid) == pytest.approx(1.0)
    assert overlap_area(p, p, grid) == pytest.approx(1.0)
    assert kl_divergence(p, p, grid) == pytest.approx(0.0, abs=1e-9)
    assert overlap_area(p, q, grid) < 0.01 and kl_divergence(p, q, grid) > 5
    same = np.full(10, 3.0)  # equal distances still make a finite density
    assert np.isfinite(density(same, common_grid(same, near))).all()


def test_a_set_against_itself_overlaps_and_unlike_sets_do_not():
    like = [piece_features(score_of([(i * 240, 240, p) for i, p in enumerate(scale_piece(s, 32))])) for s in range(6)]
    unlike = [piece_features(score_of([(i * 960, 1920, 30 + s) for i in range(4)])) for s in range(6)]
    to_itself = {c.feature: c for c in compare_sets(like, like[::-1])}
    to_unlike = {c.feature: c for c in compare_sets(like, unlike)}
    assert to_itself["pitch_range"].oa > 0.8
    assert to_unlike["note_count"].oa < 0.05 and to_unlike["note_count"].kl > to_itself["note_count"].kl


def test_repetition_shows_a_loop_and_silence():
    loop = score_of([(i * 240, 240, C_MAJOR_BAR[i % 8]) for i in range(64)])  # one bar, 8 times
    assert repetition(loop)["longest_repeated_bars"] == 7
    assert repetition(loop)["unique_4bar_ratio"] == pytest.approx(1 / 5)
    assert repetition(loop)["silence_ratio"] == pytest.approx(0.0)
    varied = score_of([(i * 240, 240, 48 + i) for i in range(64)])  # 8 different bars
    assert repetition(varied)["longest_repeated_bars"] == 0 and repetition(varied)["unique_4bar_ratio"] == 1.0
    ends_on_a_bar_line = score_of([(0, 480, 60), (1920, 0, 62)])  # a zero-length note opening bar 2
    assert repetition(ends_on_a_bar_line)["bars"] == 2
    half_silent = score_of([(0, 480, 60), (960, 480, 62)])  # sounds 0-0.5 s and 1-1.5 s of 1.5 s
    assert repetition(half_silent)["silence_ratio"] == pytest.approx(1 / 3)


def test_piece_description_by_hand():
    assert (pitch_name(60), pitch_name(45), pitch_name(91), pitch_name(61)) == ("C4", "A2", "G6", "C#4")
    chord = score_of([(0, 960, 60), (0, 960, 64), (960, 960, 67)])  # two notes, then one
    assert mean_polyphony(chord) == pytest.approx(1.5)
    described = describe_piece(chord)
    assert described["notes"] == 3 and described["range"] == "C4–G4" and described["tempo_qpm"] == "none"
    assert described["seconds"] == pytest.approx(2.0)
    assert pitch_class_entropy(np.array([60, 72])) == 0.0
    assert pitch_class_entropy(np.arange(12)) == pytest.approx(math.log2(12))


def test_no_judge_accuracy_for_pieces_the_judge_itself_ranked(tmp_path):
    """rank_by=descriptors keeps what the run's hand-crafted judge likes: its score on them is the ranking's."""
    from moodgen.evaluation.run import evaluate as evaluate_sets
    from moodgen.generation.pieces import JUDGE, PROBE, Judges

    class Calm:
        def predict_proba(self, rows):
            return np.tile([0.0, 1.0, 0.0, 0.0], (len(rows), 1))

    def music(k: int) -> symusic.Score:  # a different melody, rhythm and range each
        step = 120 + 60 * k
        return score_of([(i * step, step, p + 2 * k + i % (k + 2)) for i, p in enumerate(C_MAJOR_BAR * 4)])

    def pieces(judged_by):
        sidecar = {"mood": "calm", "judged_by": judged_by}
        return PieceSet("g", [Piece(f"p{k}", Path(f"p{k}.mid"), music(k), sidecar) for k in range(3)])

    reference = PieceSet("r", [Piece(f"r{k}", Path(f"r{k}.mid"), music(k + 3)) for k in range(3)])
    for judged_by, has_judge in ((PROBE, False), (JUDGE, True)):
        result = evaluate_sets(pieces(judged_by), reference, tmp_path / judged_by, Judges(judge=Calm()))
        assert ("eval/mood/judge/accuracy" in result.metrics) == has_judge


def test_mood_accuracy_and_confusion(tmp_path):
    moods = ["depressed", "calm", "calm", "happy", "depressed"]
    pieces = PieceSet("g", [Piece(f"p{i}", Path(f"p{i}.mid"), score_of([]), {"mood": m}) for i, m in enumerate(moods)])
    predicted = np.eye(4)[[0, 1, 3, 3, 0]]  # right, right, calm heard as happy, right, ...
    predicted[4] = np.nan  # ... and a silent piece: no mood, a miss (not an argmax of ties, "depressed")
    metrics = mood_accuracy(pieces, predicted, "judge", tmp_path)
    assert metrics["eval/mood/judge/accuracy"] == 0.6
    assert metrics["eval/mood/judge/calm/accuracy"] == 0.5
    assert metrics["eval/mood/judge/depressed/accuracy"] == 0.5
    rows = (tmp_path / "judge" / "confusion.csv").read_text().splitlines()
    assert rows[0].endswith(",silent") and rows[1] == "depressed,1,0,0,0,1" and rows[2] == "calm,0,1,0,1,0"


def generated_folder(root: Path, count: int = 4) -> Path:
    """Pieces laid out as `moodgen.generate` writes them: <mood>/<mood>_<i>.mid + .json sidecar."""
    for i in range(count):
        mood = ("calm", "happy")[i % 2]
        path = make_midi(root / mood / f"{mood}_{i}.mid", scale_piece(i, 64), tracks=2)
        path.with_suffix(".json").write_text(json.dumps({"mood": mood, "method": "none"}))
    return root


def test_evaluate_folder_vs_folder_writes_report_and_mlflow_run(tmp_path):
    from mlflow.tracking import MlflowClient

    pieces = generated_folder(tmp_path / "pieces")
    (pieces / "notes.txt").write_text("not music")  # listed as skipped, the rest evaluated
    make_midi(pieces / "calm" / "silent.mid", [])
    (pieces / "calm" / "calm_0.json").write_text("[not, json")  # evaluated, without its requested mood
    reference = generated_folder(tmp_path / "reference", 5)
    cfg = compose_entry("evaluate", tmp_path, [f"pieces={pieces}", f"reference={reference}"])
    mean_oa = evaluate(cfg)
    folder = tmp_path / "out" / "evaluation"
    report = (folder / "report.html").read_text()
    assert "data:image/png;base64," in report and 'src="http' not in report and "<link" not in report  # offline
    assert "Set-level metrics vs reference, first " in report  # the reference cut to the pieces' length
    skipped = (folder / "skipped.csv").read_text()
    assert "notes.txt,not a MIDI file" in skipped and "silent.mid,no notes" in skipped
    rows = (folder / "pieces.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and sum(row.split(",")[-1] == "calm" for row in rows) == 1  # calm_0 lost its mood only
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("moodgen").experiment_id])
    assert run.data.metrics["eval/mean_oa"] == pytest.approx(mean_oa) and 0 <= mean_oa <= 1
    assert "eval/generated/longest_repeated_bars" in run.data.metrics
    assert "Musical attributes" in report
    attributes = (folder / "attributes.csv").read_text().splitlines()
    assert attributes[0].startswith("set,pieces,density,velocity") and len(attributes) >= 3  # generated + reference
    assert any(a.path == "evaluation/report.html" for a in client.list_artifacts(run.info.run_id, "evaluation"))


def test_evaluate_a_generation_run_by_id(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("moodgen", artifact_location=(tmp_path / "mlruns" / "artifacts").as_uri())
    generation = client.create_run(experiment, tags={"moodgen.entry_point": "generate"}).info.run_id
    client.log_artifacts(generation, str(generated_folder(tmp_path / "made")), "pieces")
    cfg = compose_entry("evaluate", tmp_path, [f"pieces={generation}", f"reference={tmp_path / 'made'}"])
    evaluate(cfg)
    runs = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'evaluate'")
    assert runs[0].data.tags["moodgen.pieces_run"] == generation


def test_bad_pieces_are_one_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = compose_entry("evaluate", tmp_path, [f"pieces={empty}", f"reference={empty}"])
    with pytest.raises(MoodgenError, match="0 usable MIDI piece"):
        evaluate(cfg)
    with pytest.raises(MoodgenError, match="grid_points >= 2"):
        evaluate(compose_entry("evaluate", tmp_path, [f"pieces={empty}", "grid_points=1"]))
    with pytest.raises(MoodgenError, match="neither a folder nor an MLflow run"):
        evaluate(compose_entry("evaluate", tmp_path, ["pieces=no_such_thing"]))
    assert "0 usable MIDI piece" in error_line("moodgen.evaluate", [f"pieces={empty}", f"paths.root_dir={tmp_path}"])


def test_the_reference_is_cut_to_the_generated_pieces_length():
    """Counts and repeats grow with length: whole 100 s phrases against 30 s pieces would differ by it alone."""
    beats = score_of([(i * 480, 480, 60 + i % 5) for i in range(20)])  # 20 beats: 10 s at 120 qpm
    late = score_of([(19 * 480, 480, 60)])  # silent for its first 9.5 s
    reference = PieceSet("ref", [Piece("r", Path("r.mid"), beats), Piece("late", Path("l.mid"), late)])
    generated = PieceSet("gen", [Piece(n, Path(n), score_of([(0, 480 * k, 60)])) for n, k in (("a", 8), ("b", 2))])
    cut = as_long_as(reference, generated)  # the longest piece: 8 beats, 4 s
    assert [n.pitch for n in cut.pieces[0].score.tracks[0].notes] == [60 + i % 5 for i in range(8)]
    assert cut.label == "ref, first 4 s" and len(cut.pieces[1].score.tracks[0].notes) == 1  # silent cut: whole
    assert len(reference.pieces[0].score.tracks[0].notes) == 20  # the reference itself is left as it was


@pytest.mark.parametrize("tpq", [24, 480])
def test_a_note_ending_at_the_cut_is_kept(tpq):
    """The cut tick comes from float32 seconds (2879.9998 for 2880): truncating it dropped such a note."""
    qpm = 100.5
    for sixteenths in range(1, 100):
        end = sixteenths * tpq // 4
        score = score_of([(0, end, 60), (end, 100 * tpq, 62)], tpq)
        score.tempos.append(symusic.Tempo(0, qpm))
        cut = first_seconds(score, end / tpq * 60 / qpm)  # the first note's end
        assert [n.pitch for n in cut.tracks[0].notes] == [60], (tpq, sixteenths)


@pytest.mark.parametrize("reference", ["vgmidi_test", "vgmidi_unlabelled_test"])
def test_reference_sets_from_vgmidi(tmp_path, vgmidi_root, reference):
    overrides = ["pieces=x", f"reference={reference}", f"data_root={vgmidi_root}", "max_pieces=5"]
    assert len(reference_set(compose_entry("evaluate", tmp_path, overrides)).pieces) == 5


def test_a_failing_evaluation_never_fails_the_training_run(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from moodgen.evaluation import stage
    from moodgen.pipeline import Context
    from moodgen.tracking import NullTracker

    (tmp_path / "samples").mkdir()
    ctx = Context(cfg=compose_entry("train", tmp_path, []), tracker=NullTracker(tmp_path), output_dir=tmp_path)
    ctx.files = SimpleNamespace(summary={"source": "vgmidi"}, root=tmp_path)

    def broken(ctx, samples):
        raise RuntimeError("matplotlib ran out of fonts")

    monkeypatch.setattr(stage, "evaluate_samples", broken)
    assert stage.evaluate_stage(ctx).metrics == {"eval/failed": 1.0}
