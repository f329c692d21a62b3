"""The listening-test kit: the report's survey rescored, anonymised questionnaires, one-line errors."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from moodgen.generation.render import missing_audio_tool
from moodgen.moods import ALIASES, MOODS
from moodgen.survey.__main__ import main
from moodgen.survey.answers import read_responses
from moodgen.survey.report import score_survey
from moodgen.survey.score import fleiss_kappa, score_answers

from .conftest import make_midi, scale_piece

# The report's listening test: 23 respondents, 8 questions, and the score the report printed per row.
REPORT_SURVEY = Path(__file__).parent / "data" / "report_survey.csv"
REPORT_KEY = "0,3,2,2,1,0,3,1"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m moodgen.survey <args>` in this process: (exit status, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- score: the report's survey ------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_scores():
    return score_survey(REPORT_SURVEY, REPORT_KEY)


def test_report_survey_accuracy_recomputed_from_the_answers(report_scores):
    assert report_scores.answers == 23 * 8
    assert sum(report_scores.scores) == 91
    assert report_scores.accuracy == Fraction(91, 184)  # 49.46 %


def test_report_survey_stated_scores_and_the_row_that_disagrees(report_scores):
    assert report_scores.stated_counts == (90, 184)
    assert report_scores.stated_accuracy == Fraction(90, 184)  # the report's 48.91 %
    assert report_scores.disagreeing == [13]  # row 14: answers 0,3,1,2,1,0,3,1
    assert (report_scores.stated[13], report_scores.scores[13]) == (6, 7)


def test_report_survey_per_mood_and_confusion(report_scores):
    assert report_scores.confusion == [[22, 5, 12, 7], [11, 23, 9, 3], [3, 11, 26, 6], [1, 3, 22, 20]]
    accuracy = [report_scores.mood_accuracy(mood) for mood in range(len(MOODS))]
    assert accuracy == [Fraction(22, 46), Fraction(23, 46), Fraction(26, 46), Fraction(20, 46)]


def test_report_survey_fleiss_kappa(report_scores):
    observed, chance = Fraction(1452, 4048), Fraction(9190, 33856)
    assert report_scores.agreement == observed
    assert report_scores.chance_agreement == chance
    assert report_scores.kappa == (observed - chance) / (1 - chance)
    assert round(float(report_scores.kappa), 4) == 0.1198


def test_score_prints_and_writes_the_figures(capsys, tmp_path):
    code, out, err = run_cli(capsys, "score", f"responses={REPORT_SURVEY}", f"key={REPORT_KEY}", f"out={tmp_path}")
    assert (code, err) == (0, "")
    for figure in (
        "91/184 = 49.46 %",
        "90/184 = 48.91 %",
        "row 14: stated 6, answers give 7",
        "depressed  22/46 = 47.83 %",
        "happy      20/46 = 43.48 %",
        "Fleiss' kappa   0.1198",
    ):
        assert figure in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mean_accuracy"]["exact"] == "91/184"
    assert summary["stated_disagreements"] == [{"row": 14, "stated": 6, "computed": 7}]
    assert summary["fleiss_kappa"]["value"] == pytest.approx(0.11976, abs=1e-5)
    rows = read_rows(tmp_path / "scores.csv")
    assert [int(r["score"]) for r in rows][:3] == [6, 3, 8]
    assert [r["row"] for r in rows if r["stated_matches"] == "False"] == ["14"]
    assert read_rows(tmp_path / "confusion.csv")[3] == {
        "intended / answered": "happy",
        "depressed": "1",
        "calm": "3",
        "angry": "22",
        "happy": "20",
    }


def test_answers_and_key_may_be_mood_names_or_aliases(tmp_path, report_scores):
    # every third answer by an alias where the mood has one, the rest by name: the same figures
    spellings = {**{m: m for m in MOODS}, **{m: a for a, m in ALIASES.items()}}
    with REPORT_SURVEY.open() as handle:
        rows = list(csv.reader(handle))
    named = [rows[0]] + [
        [spellings[MOODS[int(a)]] if i % 3 == 0 else MOODS[int(a)].upper() for i, a in enumerate(row[:-1])] + row[-1:]
        for row in rows[1:]
    ]
    responses = tmp_path / "named.csv"
    with responses.open("w", newline="") as handle:
        csv.writer(handle).writerows(named)
    key = ",".join(MOODS[int(m)] for m in REPORT_KEY.split(","))
    assert score_survey(responses, key) == report_scores


def test_kappa_is_undefined_for_one_respondent_or_a_single_answered_mood():
    assert fleiss_kappa([[0, 1, 2]]) is None
    assert fleiss_kappa([[2, 2, 2], [2, 2, 2]]) is None
    assert fleiss_kappa([[0, 1], [1, 0]]) is not None
    assert score_answers([[0, 1, 2]], [0, 1, 3]).kappa is None


# --- make: anonymised questionnaires ------------------------------------------------------------


def write_generated_pieces(folder: Path, per_mood: int = 3, wav: bool = True) -> Path:
    """Pieces laid out as `moodgen.generate` writes them: <mood>/<mood>_<i>.mid, .json and (rendered) .wav."""
    for mood_number, mood in enumerate(MOODS):
        for i in range(per_mood):
            midi = make_midi(folder / mood / f"{mood}_{i}.mid", scale_piece(mood_number * per_mood + i, 16))
            sidecar = {"mood": mood, "method": "rerank", "model_run": "0123abcd", "seed": i}
            midi.with_suffix(".json").write_text(json.dumps(sidecar))
            if wav:  # distinct bytes per piece, no mood in them: the copy is traceable to its original
                midi.with_suffix(".wav").write_bytes(b"RIFF" + f"piece {mood_number * per_mood + i}".encode())
    return folder


@pytest.fixture
def pieces(tmp_path) -> Path:
    return write_generated_pieces(tmp_path / "pieces")


def make(capsys, pieces: Path, out: Path, *options: str) -> tuple[int, str, str]:
    return run_cli(capsys, "make", f"pieces={pieces}", f"out={out}", *options)


def key_rows(out: Path) -> list[dict[str, str]]:
    return read_rows(out / "answer_key.csv")


def test_make_names_and_page_leak_no_mood(capsys, pieces, tmp_path):
    code, _, err = make(capsys, pieces, tmp_path / "survey", "per_mood=2")
    assert (code, err) == (0, "")
    questionnaire = tmp_path / "survey" / "questionnaire"
    names = sorted(p.name for p in questionnaire.iterdir())
    assert names == ["index.html"] + [f"q{i:02d}.wav" for i in range(1, 9)]
    html = (questionnaire / "index.html").read_text()
    # mood names only as the four choices of each question, nothing of the original files
    for mood in MOODS:
        assert len(re.findall(rf"\b{mood}\b", html, re.IGNORECASE)) == 8
    for word in [*ALIASES, "rerank", "0123abcd", *(p.stem for p in pieces.rglob("*.mid"))]:
        assert word not in html
    blocks = re.findall(r'<fieldset class="question">.*?</fieldset>', html, re.DOTALL)
    assert len(blocks) == 8
    assert len({re.sub(r"\d+", "#", block) for block in blocks}) == 1  # identical but for the numbers
    assert "http" not in html and "Blob" in html  # no external assets; answers saved in the page
    assert "answer_key" not in html and not (questionnaire / "answer_key.csv").exists()


def test_make_answer_key_maps_each_question_to_its_piece(capsys, pieces, tmp_path):
    make(capsys, pieces, tmp_path / "survey", "per_mood=2")
    rows = key_rows(tmp_path / "survey")
    assert [r["question"] for r in rows] == [f"q{i}" for i in range(1, 9)]
    for row in rows:
        original = Path(row["original"])
        copied = tmp_path / "survey" / "questionnaire" / row["file"]
        assert copied.read_bytes() == original.with_suffix(".wav").read_bytes()
        assert row["mood"] == json.loads(original.with_suffix(".json").read_text())["mood"]
        assert MOODS[int(row["mood_index"])] == row["mood"]
    assert sorted(r["mood"] for r in rows) == sorted(MOODS * 2)
    assert len({r["original"] for r in rows}) == 8


def test_make_shuffles_with_the_seed(capsys, pieces, tmp_path):
    def questions(out: str, seed: int) -> list[str]:
        make(capsys, pieces, tmp_path / out, "per_mood=2", f"seed={seed}")
        return [row["original"] for row in key_rows(tmp_path / out)]

    first = questions("a", 0)
    assert questions("b", 0) == first
    assert questions("c", 1) != first
    moods = [Path(original).parent.name for original in first]
    assert moods != sorted(moods, key=MOODS.index)  # not in mood order: the order would give moods away


def test_key_from_make_scores_concatenated_downloads(capsys, pieces, tmp_path):
    make(capsys, pieces, tmp_path / "survey", "per_mood=1")
    moods = [row["mood_index"] for row in key_rows(tmp_path / "survey")]
    header = "respondent," + ",".join(f"q{i}" for i in range(1, len(moods) + 1))
    wrong_first = [str((int(moods[0]) + 1) % 4), *moods[1:]]
    downloads = f"{header}\nAnn,{','.join(moods)}\n{header}\nBo,{','.join(wrong_first)}\n"
    responses = tmp_path / "answers.csv"
    responses.write_text(downloads)
    scores = score_survey(responses, str(tmp_path / "survey" / "answer_key.csv"))
    assert scores.scores == [4, 3]
    assert read_responses(responses, 4).names == ["Ann", "Bo"]


def test_make_copies_midi_with_one_warning_without_fluidsynth(capsys, caplog, tmp_path, monkeypatch):
    monkeypatch.setattr("moodgen.survey.make.missing_audio_tool", lambda: "fluidsynth")
    pieces = write_generated_pieces(tmp_path / "pieces", wav=False)
    code, _, _ = make(capsys, pieces, tmp_path / "survey", "per_mood=1")
    assert code == 0
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "fluidsynth not found" in warnings[0].getMessage()
    rows = key_rows(tmp_path / "survey")
    assert [r["file"] for r in rows] == [f"q{i:02d}.mid" for i in range(1, 5)]
    questionnaire = tmp_path / "survey" / "questionnaire"
    for row in rows:
        assert (questionnaire / row["file"]).read_bytes() == Path(row["original"]).read_bytes()
    assert 'href="q01.mid" download' in (questionnaire / "index.html").read_text()


@pytest.mark.skipif(missing_audio_tool() is not None, reason="needs fluidsynth and a General MIDI soundfont")
def test_make_renders_wav_when_pieces_have_none(capsys, tmp_path):
    pieces = write_generated_pieces(tmp_path / "pieces", per_mood=1, wav=False)
    code, _, err = make(capsys, pieces, tmp_path / "survey", "per_mood=1")
    assert (code, err) == (0, "")
    for row in key_rows(tmp_path / "survey"):
        assert (tmp_path / "survey" / "questionnaire" / row["file"]).read_bytes()[:4] == b"RIFF"


def test_make_lists_pieces_without_a_readable_mood(capsys, pieces, tmp_path):
    calm = pieces / "calm"
    make_midi(calm / "no_sidecar.mid", scale_piece(1, 8))
    make_midi(calm / "broken.mid", scale_piece(2, 8)).with_suffix(".json").write_text("{not json")
    make_midi(calm / "no_mood.mid", scale_piece(3, 8)).with_suffix(".json").write_text('{"method": "none"}')
    make_midi(calm / "joyful.mid", scale_piece(4, 8)).with_suffix(".json").write_text('{"mood": "joyful"}')
    code, out, _ = make(capsys, pieces, tmp_path / "survey", "per_mood=3")
    assert code == 0
    assert "skipped 4 MIDI file(s)" in out
    assert "no_sidecar.mid: no sidecar no_sidecar.json" in out
    assert "broken.mid: broken.json is not readable JSON" in out
    assert 'no_mood.mid: no_mood.json has no "mood"' in out
    assert "joyful.mid: joyful.json names an unknown mood 'joyful'" in out
    assert len(key_rows(tmp_path / "survey")) == 12


# --- one clear error line ------------------------------------------------------------------------


def one_error_line(capsys, args: list[str]) -> str:
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("moodgen: error: "), err
    return err


def test_make_errors(capsys, pieces, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no MIDI pieces in" in one_error_line(capsys, ["make", f"pieces={empty}"])
    for sidecar in pieces.rglob("*.json"):
        if sidecar.parent.name == "depressed":
            sidecar.unlink()
    err = one_error_line(capsys, ["make", f"pieces={pieces}", f"out={tmp_path / 's'}"])
    assert "only 0 depressed piece(s)" in err and "n=2" in err and "no sidecar depressed_0.json" in err
    err = one_error_line(capsys, ["make", f"pieces={pieces}", "moods=calm", "per_mood=4", f"out={tmp_path / 's'}"])
    assert "only 3 calm piece(s)" in err and "lower per_mood" in err
    assert "unknown option 'perMood' for make" in one_error_line(capsys, ["make", f"pieces={pieces}", "perMood=2"])
    assert "per_mood=0: expected 1 or more" in one_error_line(capsys, ["make", f"pieces={pieces}", "per_mood=0"])
    assert "seed=x: expected a whole number" in one_error_line(capsys, ["make", f"pieces={pieces}", "seed=x"])
    assert "unknown mood 'joy'" in one_error_line(capsys, ["make", f"pieces={pieces}", "moods=calm,joy"])
    assert "make needs pieces=" in one_error_line(capsys, ["make"])
    assert "unknown command 'mk'" in one_error_line(capsys, ["mk"])
    assert not (tmp_path / "s").exists()  # nothing half-written


def test_make_refuses_to_overwrite_a_questionnaire(capsys, pieces, tmp_path):
    make(capsys, pieces, tmp_path / "survey")
    assert "already holds a questionnaire" in one_error_line(
        capsys, ["make", f"pieces={pieces}", f"out={tmp_path / 'survey'}", "seed=1"]
    )


@pytest.mark.parametrize(
    ("responses", "key", "message"),
    [
        ("q1,q2,q3\n0,1,2\n0,1\n", "0,1,2", "line 3: 2 values, but the header has 3 columns"),
        ("q1,q2,q3\n0,1,4\n", "0,1,2", "line 2, q3: unknown mood '4'"),
        ("q1,q2,q3\n0,-1,2\n", "0,1,2", "line 2, q2: unknown mood '-1'"),
        ("q1,q2,q3\n0,,2\n", "0,1,2", "line 2, q2: no answer"),
        ("q1,q2,q3,q4\n0,1,2,3\n", "0,1,2", "has 4 question columns, but the key has 3 answers"),
        ("q1,q3\n0,1\n", "0,1", "without gaps"),
        ("q1,q2,q3,age\n0,1,2,30\n", "0,1,2", "unknown column 'age'"),
        ("q1,q2,q3,stated_score\n0,1,2,three\n", "0,1,2", "stated_score 'three' is not a whole number"),
        ("q1,q2,q3\n", "0,1,2", "has a header but no responses"),
        ("q1,q2,q3\n0,1,2\n", "0,1,9", "key item 3: unknown mood '9'"),
    ],
)
def test_score_errors(capsys, tmp_path, responses, key, message):
    path = tmp_path / "responses.csv"
    path.write_text(responses)
    assert message in one_error_line(capsys, ["score", f"responses={path}", f"key={key}"])


def test_score_error_for_missing_files(capsys, tmp_path):
    assert "not found" in one_error_line(capsys, ["score", f"responses={tmp_path / 'no.csv'}", "key=0"])
    err = one_error_line(capsys, ["score", f"responses={REPORT_SURVEY}", f"key={tmp_path / 'key.csv'}"])
    assert "key.csv not found" in err
    assert "score needs responses=... and key=..." in one_error_line(capsys, ["score"])


def test_module_entry_point_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "moodgen.survey", "score", f"responses={REPORT_SURVEY}", "key=0,3", "colour=red"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "moodgen: error: unknown option 'colour' for score: use responses, key, out\n"
