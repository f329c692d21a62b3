"""Data roots, the report's labelled split, overlap exclusion, and bad files skipped one by one."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from moodgen.config import DataConfig
from moodgen.data import lm_files
from moodgen.data import vgmidi as vg
from moodgen.data.download import sha256_file
from moodgen.data.overlap import NGRAM_NOTES, PhraseIndex, fingerprint
from moodgen.errors import MoodgenError
from moodgen.moods import MOODS, mood_index
from moodgen.tokenizers import build_tokenizer, encode_corpus

from .conftest import compose_train, make_midi, scale_piece


def data_cfg(**kw):
    return OmegaConf.structured(DataConfig(**kw))


def test_root_from_config_then_env(vgmidi_root, monkeypatch, tmp_path):
    monkeypatch.delenv(vg.ENV_VAR, raising=False)
    assert vg.resolve_root(str(vgmidi_root)) == vgmidi_root.resolve()
    monkeypatch.setenv(vg.ENV_VAR, str(vgmidi_root))
    assert vg.resolve_root(None) == vgmidi_root.resolve()
    # config beats environment
    with pytest.raises(MoodgenError, match=r"data.root=.*missing v1/vgmidi_train.csv"):
        vg.resolve_root(str(tmp_path))


def test_wrong_env_root_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(vg.ENV_VAR, str(tmp_path))
    with pytest.raises(MoodgenError, match=r"MOODGEN_DATA_DIR"):
        vg.resolve_root(None)


def test_no_data_and_no_download_says_how_to_point_at_a_copy(monkeypatch, tmp_path):
    monkeypatch.delenv(vg.ENV_VAR, raising=False)
    monkeypatch.setattr(vg, "default_cache_root", lambda: tmp_path / "empty")
    with pytest.raises(MoodgenError, match=r"set data.root="):
        vg.resolve_root(None, download=False)


def test_labelled_split_matches_the_report(vgmidi_root):
    train, test = vg.load_phrases(vgmidi_root, "train"), vg.load_phrases(vgmidi_root, "test")
    # 161 train rows, but Goldeneye_Statue_0 is listed as both depressed and happy: dropped
    assert (len(train), len(test)) == (159, 40)
    assert "Goldeneye_Statue_0" not in {p.path.stem for p in train}
    assert len({p.path for p in train}) == len(train)
    assert all(p.path.exists() for p in train + test)
    assert Counter(p.mood for p in train) == {0: 23, 1: 46, 2: 32, 3: 58}
    assert Counter(p.mood for p in test) == {0: 5, 1: 18, 2: 8, 3: 9}
    # always answering "calm" scores 45 % on the test split
    assert Counter(p.mood for p in test).most_common(1)[0] == (MOODS.index("calm"), 18)


LABEL_HEADER = ["valence", "arousal", "id", "part", "repeat", "filepath"]


def write_labels(path: Path, rows: list[tuple[int | str, int | str, str]]) -> Path:
    """A v1-layout label CSV: (valence, arousal, filepath) per row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LABEL_HEADER)
        writer.writerows([v, a, f"piece_{i}", 0, -1, f] for i, (v, a, f) in enumerate(rows))
    return path


def test_duplicate_label_rows_keep_one_phrase_and_contradictions_drop_it(tmp_path, caplog):
    write_labels(
        tmp_path / "v1" / "vgmidi_train.csv",
        [
            (0, 0, "phrases/split_1/Clash_0.mid"),
            (1, 0, "phrases/split_1/Calm_0.mid"),
            (1, 1, "phrases/split_1/Clash_0.mid"),
            (1, 0, "phrases/split_1/Calm_0.mid"),
            (0, 1, "phrases/split_1/Tense_0.mid"),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="moodgen"):
        phrases = vg.load_phrases(tmp_path, "train")
    assert [(p.path.name, p.mood) for p in phrases] == [("Calm_0.mid", 1), ("Tense_0.mid", 2)]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "phrases/split_1/Clash_0.mid" in warning
    assert "depressed (valence 0, arousal 0)" in warning and "happy (valence 1, arousal 1)" in warning


def test_label_that_is_not_0_or_1_is_one_clear_error(tmp_path):
    write_labels(tmp_path / "v1" / "vgmidi_train.csv", [(0, "high", "phrases/split_1/A_0.mid")])
    with pytest.raises(MoodgenError, match=r"A_0.mid has valence='0' arousal='high'; VGMIDI v1 labels are 0 or 1"):
        vg.load_phrases(tmp_path, "train")


def random_melody(seed: int, length: int) -> list[int]:
    """Pitches no scale_piece run shares: random leaps over two octaves above middle C."""
    return np.random.default_rng(seed).integers(60, 84, size=length).tolist()


def fake_vgmidi(root: Path, train: dict[str, list[int]], val: dict[str, list[int]], phrase: list[int]) -> Path:
    """A VGMIDI-layout folder with one labelled test phrase (of the piece Test_Tune) and the given pieces."""
    write_labels(root / "v1" / "vgmidi_train.csv", [(1, 0, "phrases/split_1/Other_Tune_0.mid")])
    write_labels(root / "v1" / "vgmidi_test.csv", [(1, 1, "phrases/split_1/Test_Tune_0.mid")])
    make_midi(root / "v1" / "phrases" / "split_1" / "Test_Tune_0.mid", phrase)
    (root / "v1" / "midi").mkdir()
    for folder, pieces in (("train", train), ("test", val)):
        (root / "unlabelled" / folder).mkdir(parents=True)
        for name, pitches in pieces.items():
            make_midi(root / "unlabelled" / folder / f"{name}.mid", pitches, tracks=2)
    return root


@pytest.fixture
def leaky_vgmidi(tmp_path) -> Path:
    """The test phrase hidden under other names in both LM splits, beside unrelated pieces."""
    phrase = random_melody(0, 60)
    return fake_vgmidi(
        tmp_path / "vgmidi",
        train={
            "Some_Medley": scale_piece(1) + phrase + scale_piece(2),  # all of it, amid other music
            "Unrelated": scale_piece(3),
            "Test_Tune": scale_piece(4),  # same title as the phrase's piece: the title rule's case
        },
        val={"Another_Medley": scale_piece(5)[:40] + phrase[:20] + scale_piece(6), "Unrelated_Too": scale_piece(7)},
        phrase=phrase,
    )


def test_planted_copy_of_a_test_phrase_is_excluded_from_lm_train_and_val(leaky_vgmidi):
    files = lm_files(data_cfg(name="vgmidi", root=str(leaky_vgmidi)))
    assert [p.name for p in files.train] == ["Unrelated.mid"]
    assert [p.name for p in files.val] == ["Unrelated_Too.mid"]
    rules = {(Path(e["file"]).name, e["split"], e["rule"], e["test_phrase"]) for e in files.excluded}
    assert rules == {
        ("Some_Medley.mid", "train", "content", "Test_Tune_0"),
        ("Test_Tune.mid", "train", "title_or_hash", "Test_Tune_0"),
        ("Another_Medley.mid", "val", "content", "Test_Tune_0"),
    }
    shares = {Path(e["file"]).name: e["share"] for e in files.excluded}
    assert shares["Some_Medley.mid"] == 1.0 and shares["Test_Tune.mid"] == 0.0
    # 20 of 60 notes: 9 of the phrase's 49 distinct 12-note runs
    assert shares["Another_Medley.mid"] == pytest.approx((20 - NGRAM_NOTES + 1) / (60 - NGRAM_NOTES + 1), abs=1e-4)
    assert {k: v for k, v in files.summary.items() if k.startswith("excluded")} == {
        "excluded_labelled_test": 3,
        "excluded_train_title_or_hash": 1,
        "excluded_train_content": 1,
        "excluded_val_title_or_hash": 0,
        "excluded_val_content": 1,
    }


def test_overlap_threshold_decides_how_much_of_a_phrase_is_a_copy(leaky_vgmidi):
    # Another_Medley holds 18 % of the phrase's runs, Some_Medley all of them
    files = lm_files(data_cfg(name="vgmidi", root=str(leaky_vgmidi), overlap_threshold=0.5))
    assert [p.name for p in files.val] == ["Another_Medley.mid", "Unrelated_Too.mid"]
    assert [p.name for p in files.train] == ["Unrelated.mid"]
    with pytest.raises(MoodgenError, match=r"data.overlap_threshold=0.0 must be in \(0, 1\]"):
        lm_files(data_cfg(name="vgmidi", root=str(leaky_vgmidi), overlap_threshold=0.0))


def test_no_exclusion_reproduces_the_report_setup(leaky_vgmidi):
    files = lm_files(data_cfg(name="vgmidi", root=str(leaky_vgmidi), exclude_labelled_test=False))
    assert len(files.train) == 3 and len(files.val) == 2
    assert files.excluded == [] and files.summary["excluded_labelled_test"] == 0


def test_content_fingerprint_merges_hands_and_ignores_the_file_name(tmp_path):
    melody = random_melody(1, 40)
    one_hand = fingerprint(make_midi(tmp_path / "a.mid", melody))
    two_hands = fingerprint(make_midi(tmp_path / "b.mid", melody, tracks=2))
    assert len(one_hand) == 40 - NGRAM_NOTES + 1 and np.array_equal(one_hand, two_hands)
    index = PhraseIndex({"phrase": one_hand, "too_short": fingerprint(make_midi(tmp_path / "c.mid", melody[:5]))})
    assert index.names == ["phrase"]  # fewer notes than one run: nothing to match
    assert index.best_match(fingerprint(make_midi(tmp_path / "d.mid", scale_piece(0)))).share == 0.0


def test_real_leaks_are_excluded_from_lm_train_and_val(vgmidi_root):
    report = lm_files(data_cfg(name="vgmidi", root=str(vgmidi_root), exclude_labelled_test=False))
    rigorous = lm_files(data_cfg(name="vgmidi", root=str(vgmidi_root)))
    assert (len(report.train), len(report.val)) == (721, 99) and report.excluded == []
    assert (len(rigorous.train), len(rigorous.val)) == (698, 82)
    assert {k: v for k, v in rigorous.summary.items() if k.startswith("excluded")} == {
        "excluded_labelled_test": 40,
        "excluded_train_title_or_hash": 21,
        "excluded_train_content": 2,  # MedleyofTime and A Link to the Past's Kakariko Village
        "excluded_val_title_or_hash": 17,
        "excluded_val_content": 0,
    }
    by_name = {Path(e["file"]).name: e for e in rigorous.excluded}
    for split, kept in (("train", rigorous.train), ("val", rigorous.val)):
        removed = set(getattr(report, split)) - set(kept)
        assert {p.name for p in removed} == {n for n, e in by_name.items() if e["split"] == split}
    medley = by_name["Legend_Of_Zelda_Ocarina_Of_Time_MedleyofTime.mid"]
    assert (medley["split"], medley["rule"]) == ("train", "content")
    assert medley["test_phrase"] == "Legend_of_Zelda_Ocarina_of_Time_Song_of_Storms_by_BlueSCD_0"
    assert medley["share"] > 0.4
    test = vg.load_phrases(vgmidi_root, "test")
    full_pieces = [vgmidi_root / "v1" / "midi" / f"{p.piece}.mid" for p in test]
    hashes = {sha256_file(p) for p in full_pieces if p.exists()}
    titles = {vg.normalise_title(p.piece) for p in test}
    title_or_hash = [vgmidi_root / e["file"] for e in rigorous.excluded if e["rule"] == "title_or_hash"]
    assert all(vg.normalise_title(p.stem) in titles or sha256_file(p) in hashes for p in title_or_hash)
    # the content rule alone would catch every title/hash match, in validation too: they hold >= 3/4
    assert all(e["share"] >= 0.75 for e in rigorous.excluded if e["rule"] == "title_or_hash")
    # the kept pieces sit far below the threshold: none holds 2 % of any test phrase's runs
    index = PhraseIndex.from_files([p.path for p in test])
    assert max(index.best_match(fingerprint(p)).share for p in rigorous.train + rigorous.val) < 0.02


def test_moods_by_name_alias_and_number():
    assert [mood_index(m) for m in ("depressed", "sad", "calm", "tense", "happy", "3")] == [0, 0, 1, 2, 3, 3]
    with pytest.raises(MoodgenError, match=r"unknown mood 'joyful'.*0=depressed"):
        mood_index("joyful")


def test_folder_source_splits_by_piece(midi_folder):
    files = lm_files(data_cfg(name="folder", root=str(midi_folder), val_fraction=0.25))
    assert len(files.train) == 9 and len(files.val) == 3
    assert not set(files.train) & set(files.val)


def test_folder_errors(tmp_path):
    with pytest.raises(MoodgenError, match=r"data=folder needs a folder: add data.root="):
        lm_files(data_cfg(name="folder"))
    with pytest.raises(MoodgenError, match=r"is not a folder"):
        lm_files(data_cfg(name="folder", root=str(tmp_path / "missing")))
    with pytest.raises(MoodgenError, match=r"holds 0 MIDI"):
        lm_files(data_cfg(name="folder", root=str(tmp_path)))


def test_bad_files_are_skipped_with_reasons(tmp_path):
    good = [make_midi(tmp_path / f"good{i}.mid", scale_piece(i)) for i in range(2)]
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"MThd this is not midi")
    empty = make_midi(tmp_path / "empty.mid", [])
    corpus = encode_corpus(build_tokenizer(compose_train(tmp_path, []).tokenizer), [*good, garbage, empty])
    assert corpus.names == ["good0.mid", "good1.mid"]
    reasons = dict(corpus.skipped)
    assert set(reasons) == {"garbage.mid", "empty.mid"}
    assert "unreadable" in reasons["garbage.mid"] and reasons["empty.mid"] == "no notes"


def test_shared_copy_has_one_unreadable_file(vgmidi_root, tmp_path):
    tokenizer = build_tokenizer(compose_train(tmp_path, []).tokenizer)
    files = lm_files(data_cfg(name="vgmidi", root=str(vgmidi_root)))
    corpus = encode_corpus(tokenizer, files.train, tmp_path / "cache")
    assert len(corpus.skipped) == 1
    assert len(corpus.names) == len(files.train) - 1


def test_label_file_with_unknown_columns_is_one_clear_error(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "vgmidi_train.csv").write_text("mood,path\n1,a.mid\n")
    with pytest.raises(MoodgenError, match=r"lacks column\(s\) arousal, filepath, valence"):
        vg.load_phrases(tmp_path, "train")
