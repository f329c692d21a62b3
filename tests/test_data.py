"""Data roots, the report's labelled split, overlap exclusion, and bad files skipped one by one."""

from __future__ import annotations

from collections import Counter

import pytest
from omegaconf import OmegaConf

from moodgen.config import DataConfig
from moodgen.data import lm_files
from moodgen.data import vgmidi as vg
from moodgen.data.download import sha256_file
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
    assert (len(train), len(test)) == (161, 40)
    assert all(p.path.exists() for p in train + test)
    assert Counter(p.mood for p in train) == {0: 24, 1: 46, 2: 32, 3: 59}
    assert Counter(p.mood for p in test) == {0: 5, 1: 18, 2: 8, 3: 9}
    # always answering "calm" scores 45 % on the test split
    assert Counter(p.mood for p in test).most_common(1)[0] == (MOODS.index("calm"), 18)


def test_labelled_test_pieces_are_excluded_from_lm_training(vgmidi_root):
    with_overlap = lm_files(data_cfg(name="vgmidi", root=str(vgmidi_root), exclude_labelled_test=False))
    rigorous = lm_files(data_cfg(name="vgmidi", root=str(vgmidi_root)))
    removed = set(with_overlap.train) - set(rigorous.train)
    assert len(with_overlap.train) == 721 and len(with_overlap.val) == 99
    assert rigorous.summary["excluded_labelled_test"] == len(removed)
    assert 15 <= len(removed) <= 40  # the shared README measured ~21 test pieces by title
    test = vg.load_phrases(vgmidi_root, "test")
    titles = {vg.normalise_title(p.piece) for p in test}
    full_pieces = [vgmidi_root / "v1" / "midi" / f"{p.piece}.mid" for p in test]
    hashes = {sha256_file(p) for p in full_pieces if p.exists()}
    assert all(vg.normalise_title(p.stem) in titles or sha256_file(p) in hashes for p in removed)
    assert not set(rigorous.val) & set(rigorous.train)


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
