"""Hostile MIDI files and damaged caches: every reader skips or clips with a reason, never crashes or hangs.

The files are written byte by byte (a real writer refuses most of them): truncated, random bytes, a
wrong header, ticks per quarter 0, SMPTE timing, tempos of 0 / 3.6 / 100,000 qpm, one note at tick
2^31-1000, delta times that overflow into negative ticks, 100,000 notes, no notes, odd time
signatures, odd names. Each reader path (training data stage, classifier phrases, conditioning,
evaluate, survey) gets the same corpus.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from moodgen import tokenizers as tk
from moodgen.data.limits import DEFAULT_LIMITS, MidiLimits
from moodgen.data.midi import read_piano

from .conftest import compose_entry, compose_train, make_midi, scale_piece


def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(events: list[bytes], tpq: int = 480) -> bytes:
    """A format-0 MIDI file of raw track events (each: delta time + event bytes)."""
    track = b"".join(events) + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq) + b"MTrk" + struct.pack(">I", len(track)) + track


def notes(n: int = 32, step: int = 240) -> list[bytes]:
    """n eighth notes up and down an octave: music the tokenizer encodes."""
    out = []
    for i in range(n):
        pitch = 60 + (i % 12)
        out += [b"\x00" + bytes([0x90, pitch, 80]), vlq(step) + bytes([0x80, pitch, 0])]
    return out


def tempo(us_per_quarter: int) -> bytes:
    return b"\x00\xff\x51\x03" + us_per_quarter.to_bytes(3, "big")


def time_signature(numerator: int, denominator_power: int) -> bytes:
    return b"\x00\xff\x58\x04" + bytes([numerator, denominator_power, 24, 8])


def padding(ticks: int) -> list[bytes]:
    """Empty text events whose delta times add up to `ticks` (one delta holds at most 2^28-1)."""
    step, out = 2**28 - 1, []
    while ticks > step:
        out.append(vlq(step) + b"\xff\x01\x00")
        ticks -= step
    return [*out, vlq(ticks) + b"\xff\x01\x00"]


GOOD = smf(notes())
# kind -> (file name, bytes, the reason it is skipped for; None: read, clipped where needed)
HOSTILE = {
    "truncated": ("truncated.mid", GOOD[: len(GOOD) // 2], "unreadable MIDI"),
    "random_bytes": ("random.mid", np.random.default_rng(0).bytes(300), "no MThd header"),
    "wrong_header": ("header.mid", b"RIFF" + GOOD[4:], "no MThd header"),
    "zero_bytes": ("zero.mid", b"", "empty file"),
    "tpq_0": ("tpq0.mid", smf(notes(), tpq=0), "time division of 0 ticks"),
    "smpte": ("smpte.mid", GOOD[:12] + b"\xe7\x28" + GOOD[14:], "SMPTE"),
    "tempo_0us": ("tempo0.mid", smf([tempo(0), *notes()]), None),  # infinitely fast: clipped
    "tempo_slowest": ("slow.mid", smf([tempo(0xFFFFFF), *notes()]), None),  # 3.58 qpm
    "tempo_100000qpm": ("fast.mid", smf([tempo(600), *notes()]), None),
    "far_tick": ("far.mid", smf([*padding(2**31 - 1000), *notes(1)]), "max_seconds"),
    "overflowed_ticks": ("wrap.mid", smf([*padding(9 * (2**28 - 1)), *notes(4)]), "negative tick"),
    "huge": ("huge.mid", smf(notes(100_000, step=1)), "max_notes"),
    "no_notes": ("empty.mid", smf([tempo(500_000)]), "no notes"),
    "time_signature_0_4": ("ts0.mid", smf([time_signature(0, 2), *notes()]), None),
    "time_signature_4_0": ("tsden.mid", smf([time_signature(4, 255), *notes()]), None),
    "name_spaces": ("my piece.mid", GOOD, None),
    "name_unicode": ("Ünïcødé ♪.mid", GOOD, None),
    "name_upper_case": ("UPPER.MID", GOOD, None),
    "name_leading_dash": ("-dash.mid", GOOD, None),
}
KINDS = sorted(HOSTILE)
SKIPPED = [k for k in KINDS if HOSTILE[k][2]]


def write(kind: str, folder: Path) -> Path:
    name, data, _ = HOSTILE[kind]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def good_pieces(folder: Path, n: int, prefix: str = "good", seed: int = 0) -> list[Path]:
    return [make_midi(folder / f"{prefix}_{i}.mid", scale_piece(seed + i, 48), tracks=2) for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tk.build_tokenizer(compose_train(tmp_path_factory.mktemp("tok"), []).tokenizer)


@pytest.mark.parametrize("kind", KINDS)
def test_reader_skips_with_the_reason_or_reads_a_sane_score(tmp_path, kind):
    path = write(kind, tmp_path)
    reason = HOSTILE[kind][2]
    start = time.perf_counter()
    if reason:
        with pytest.raises(ValueError, match=reason):
            read_piano(path)
    else:
        score = read_piano(path)
        seconds = float(score.to("second").end())
        assert np.isfinite(seconds) and 0 < seconds <= DEFAULT_LIMITS.max_seconds
        assert all(DEFAULT_LIMITS.min_qpm <= t.qpm <= DEFAULT_LIMITS.max_qpm for t in score.tempos)
    assert time.perf_counter() - start < 2.0


def test_out_of_range_tempos_are_clipped_with_one_warning_naming_the_file(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        score = read_piano(write("tempo_100000qpm", tmp_path))
        read_piano(tmp_path / "fast.mid")  # read again (fingerprint, then tokenizer): no second warning
    assert [t.qpm for t in score.tempos] == [DEFAULT_LIMITS.max_qpm]
    assert [r.getMessage().split(": ")[0] for r in caplog.records] == [str(tmp_path / "fast.mid")]


def test_limits_can_be_lowered_and_match_the_data_config(tmp_path):
    from moodgen.config import DataConfig

    config = DataConfig(name="folder")
    for name in ("max_file_mb", "max_notes", "max_seconds", "max_tokens"):  # one set of defaults, config and code
        assert getattr(config, name) == getattr(DEFAULT_LIMITS, name)
    assert MidiLimits.from_config(config) == DEFAULT_LIMITS
    piece = make_midi(tmp_path / "p.mid", scale_piece(0, 48))
    with pytest.raises(ValueError, match="over max_notes=10"):
        read_piano(piece, MidiLimits(max_notes=10))
    with pytest.raises(ValueError, match="over max_seconds=5"):
        read_piano(piece, MidiLimits(max_seconds=5))
    with pytest.raises(ValueError, match="over max_file_mb"):
        read_piano(piece, MidiLimits(max_file_mb=0.0001))
    from moodgen.errors import MoodgenError

    with pytest.raises(MoodgenError, match=r"data\.max_tokens=0"):
        MidiLimits.from_config({"max_tokens": 0})


@pytest.mark.parametrize("kind", KINDS)
def test_encode_corpus_skips_each_hostile_file_by_name(tmp_path, tokenizer, kind):
    files = [*good_pieces(tmp_path, 2), write(kind, tmp_path)]
    start = time.perf_counter()
    corpus = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    assert time.perf_counter() - start < 5.0
    name, _, reason = HOSTILE[kind]
    if reason:
        assert corpus.names == ["good_0.mid", "good_1.mid"]
        assert len(corpus.skipped) == 1 and corpus.skipped[0][0] == name and reason in corpus.skipped[0][1]
    else:
        assert corpus.names[-1] == name and not corpus.skipped
        assert len(corpus.piece(2)) < DEFAULT_LIMITS.max_tokens


def test_max_tokens_skips_a_piece_after_tokenizing(tmp_path, tokenizer):
    files = good_pieces(tmp_path, 2)
    full = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    limit = len(full.piece(0)) - 1
    capped = tk.encode_corpus(tokenizer, files, tmp_path / "cache", MidiLimits(max_tokens=limit))  # its own entry
    assert capped.names == [] and all(f"over max_tokens={limit}" in r for _, r in capped.skipped)


def test_train_data_stage_reads_a_folder_of_every_hostile_kind(tmp_path):
    from moodgen.pipeline import Context, data_stage
    from moodgen.tracking import NullTracker

    folder = tmp_path / "midi"
    good_pieces(folder, 8)
    for kind in KINDS:
        write(kind, folder)
    cfg = compose_train(tmp_path, ["data=folder", f"data.root={folder}", "data.val_fraction=0.5", "model.seq_len=32"])
    start = time.perf_counter()
    ctx = data_stage(Context(cfg=cfg, tracker=NullTracker(tmp_path), output_dir=tmp_path / "out"))
    assert time.perf_counter() - start < 20.0
    skipped = dict(ctx.train_corpus.skipped + ctx.val_corpus.skipped)
    assert sorted(skipped) == sorted(HOSTILE[k][0] for k in SKIPPED)
    assert ctx.train_corpus.n_tokens + ctx.val_corpus.n_tokens < 20 * 2000  # no 100k-token piece got in
    assert np.isfinite(ctx.metrics["lm/unigram_val_ppl"])


def test_a_split_of_only_bad_files_names_them_not_seq_len(tmp_path, tokenizer):
    corpus = tk.encode_corpus(tokenizer, [write("tpq_0", tmp_path), write("far_tick", tmp_path)])
    message = corpus.too_short("validation", 33)
    assert "2 of 2 validation MIDI file(s) were skipped" in message and "tpq0.mid: time division of 0" in message
    assert "seq_len" not in message.split(":", 1)[1].split("skipped")[1]


@pytest.mark.parametrize("kind", KINDS)
def test_classifier_phrase_features_stay_finite(tmp_path, tokenizer, kind):
    from moodgen.classifier.features import MUSICAL, phrase_features

    corpus = tk.encode_corpus(tokenizer, [*good_pieces(tmp_path, 2), write(kind, tmp_path)])
    features = phrase_features(MUSICAL, None, tokenizer, corpus)
    assert features.shape[0] == len(corpus.names) and np.isfinite(features).all()


@pytest.mark.parametrize("kind", ["tempo_0us", "tpq_0"])
def test_handcrafted_descriptors_of_an_unchecked_score_are_finite(tmp_path, kind):
    """A score read past moodgen.data.midi (symusic directly) still gives the judge finite numbers."""
    import symusic

    from moodgen.classifier.handcrafted import describe, describe_tonal

    score = symusic.Score(str(write(kind, tmp_path)))
    assert np.isfinite(describe(score)).all() and np.isfinite(describe_tonal(score)).all()


def test_unchecked_scores_are_refused_by_reason_not_by_a_crash(tmp_path, tokenizer):
    """What read_piano guards, checked on scores parsed by symusic directly (tpq 0, overflowed ticks)."""
    import symusic

    from moodgen.data.midi import piano_score

    with pytest.raises(ValueError, match="ticks per quarter note is 0"):
        piano_score(symusic.Score(str(write("tpq_0", tmp_path))))
    with pytest.raises(ValueError, match="tokenizer failed"):  # REMI: KeyError on a negative position
        tk.encode_score(tokenizer, symusic.Score(str(write("overflowed_ticks", tmp_path))))


def test_probe_gives_no_mood_to_a_piece_the_tokenizer_cannot_encode(tmp_path, tokenizer):
    """A readable piece whose notes all lie outside the tokenizer's pitch range: a NaN row, not a crash."""
    from sklearn.linear_model import LogisticRegression

    from moodgen.classifier.features import phrase_features
    from moodgen.evaluation.mood import mood_probabilities
    from moodgen.evaluation.sets import from_folder
    from moodgen.generation.pieces import Judges
    from moodgen.models import LanguageModel

    net = LanguageModel(len(tokenizer), embedding_dim=8, hidden_size=16, num_layers=1)
    corpus = tk.encode_corpus(tokenizer, good_pieces(tmp_path / "train", 4))
    probe = LogisticRegression().fit(phrase_features("final_cell", net, tokenizer, corpus), [0, 1, 2, 3])
    good_pieces(tmp_path / "pieces", 2)
    make_midi(tmp_path / "pieces" / "subsonic.mid", [5, 7, 9, 11])  # below the tokenizer's pitch_range
    pieces = from_folder("generated", tmp_path / "pieces")
    judges = Judges(net=net, probe=probe, features="final_cell", tokenizer=tokenizer)
    proba = mood_probabilities(judges, tokenizer, pieces)["probe"]
    silent = [p.name for p in pieces.pieces].index("subsonic.mid")
    assert np.isnan(proba[silent]).all() and np.isfinite(np.delete(proba, silent, axis=0)).all()


def test_repetition_is_bounded_on_long_loops_and_odd_time_signatures():
    import symusic

    from moodgen.evaluation.repetition import repetition

    def piece(bars: int, numerator: int, denominator: int) -> symusic.Score:
        score = symusic.Score(480)
        score.time_signatures = [symusic.TimeSignature(0, numerator, denominator)]
        track = symusic.Track("piano", 0, False)
        for i in range(bars):
            track.notes.append(symusic.Note(i * 1920, 480, 60, 80))
        score.tracks.append(track)
        return score

    start = time.perf_counter()
    assert repetition(piece(20_000, 4, 4))["longest_repeated_bars"] == 19_999  # one bar looped
    assert repetition(piece(100, 1, 64))["bars"] == 397  # bars of at least one beat, not 1/16 of one
    assert repetition(piece(100, 0, 4))["bars"] == repetition(piece(100, 4, 0))["bars"] == 100  # read as 4/4
    assert time.perf_counter() - start < 10.0  # the pure-Python programme took ~50 s on this loop alone


def fake_vgmidi(root: Path, kinds: list[str]) -> Path:
    """A VGMIDI-shaped root whose labelled phrases and unlabelled pieces both hold the hostile files."""
    header = "valence,arousal,id,part,repeat,filepath\n"
    phrases = root / "v1" / "phrases"
    rows = [f"{i % 2},{i // 2 % 2},{i},0,0,phrases/{p.name}" for i, p in enumerate(good_pieces(phrases, 4, "phrase"))]
    rows += [f"1,1,9,0,0,phrases/{write(kind, phrases).name}" for kind in kinds]
    (root / "v1" / "vgmidi_train.csv").write_text(header + "\n".join(rows) + "\n")
    test = [f"0,1,{i},0,0,test/{p.name}\n" for i, p in enumerate(good_pieces(root / "v1" / "test", 2, "test", 7))]
    (root / "v1" / "vgmidi_test.csv").write_text(header + "".join(test))
    good_pieces(root / "unlabelled" / "train", 3)
    good_pieces(root / "unlabelled" / "test", 1)
    for kind in kinds:
        write(kind, root / "unlabelled" / "train")
    return root


def test_conditioning_data_leaves_hostile_phrases_and_pieces_out(tmp_path, tokenizer, caplog):
    from moodgen.steering.conditioned import conditioning_source

    root = fake_vgmidi(tmp_path / "vgmidi", KINDS)
    data_cfg = compose_train(tmp_path, [f"data.root={root}"]).data
    with caplog.at_level(logging.WARNING):
        data = conditioning_source(data_cfg, root, tokenizer, tmp_path / "cache")()
    readable = [HOSTILE[k][0] for k in KINDS if not HOSTILE[k][2]]
    assert sorted(data.names) == sorted([f"phrase_{i}.mid" for i in range(4)] + readable)
    assert len(data.pieces) == 3 + len(readable) and len(data.moods) == len(data.names)
    assert all(len(p) < DEFAULT_LIMITS.max_tokens for p in [*data.pieces, *data.phrases])
    assert any("conditioning data: skipped" in r.getMessage() and "tpq0.mid" in r.getMessage() for r in caplog.records)
    strict = compose_train(tmp_path, [f"data.root={root}", "data.max_notes=20"]).data  # the model run's limits
    capped = conditioning_source(strict, root, tokenizer, tmp_path / "cache")()
    assert capped.names == [] and capped.pieces == []  # every usable file holds 32 or 48 notes


def fitted_judge(pieces: list[Path]):
    """A real hand-crafted-feature judge (scaler + logistic regression) fitted on normal pieces."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from moodgen.classifier.handcrafted import describe
    from moodgen.generation.pieces import Judges

    x = np.stack([describe(read_piano(p)) for p in pieces])
    return Judges(judge=make_pipeline(StandardScaler(), LogisticRegression()).fit(x, np.arange(len(x)) % 4))


def test_evaluate_a_folder_mixing_hostile_and_normal_pieces(tmp_path, monkeypatch):
    """`python -m moodgen.evaluate`'s own function: bounded time, finite metrics and mood probabilities."""
    from moodgen import evaluate as entry
    from moodgen.evaluation import mood

    pieces, reference = tmp_path / "pieces", tmp_path / "reference"
    normal = good_pieces(pieces, 3)
    for kind in KINDS:
        write(kind, pieces)
    judges = fitted_judge(good_pieces(reference, 4, "ref"))
    probabilities = {}

    def recorded(*args):
        probabilities.update(original(*args))
        return probabilities

    original = mood.mood_probabilities
    monkeypatch.setattr(mood, "load_judges", lambda cfg, generated: (judges, None))
    monkeypatch.setattr("moodgen.evaluation.run.mood_probabilities", recorded)
    cfg = compose_entry("evaluate", tmp_path, [f"pieces={pieces}", f"reference={reference}", "logger=none"])
    start = time.perf_counter()
    mean_oa = entry.evaluate(cfg)
    assert time.perf_counter() - start < 60.0  # the note at tick 2^31-1000 alone took over 500 s
    assert np.isfinite(mean_oa)
    assert probabilities["judge"].shape == (len(normal) + len(KINDS) - len(SKIPPED), 4)
    assert np.isfinite(probabilities["judge"]).all()
    skipped = (tmp_path / "out" / "evaluation" / "skipped.csv").read_text()
    assert all(HOSTILE[k][0] in skipped for k in SKIPPED)


@pytest.mark.parametrize("kind", KINDS)
def test_survey_lists_hostile_pieces_as_skipped(tmp_path, kind):
    from moodgen.survey.pieces import find_pieces

    for path in [*good_pieces(tmp_path, 1), write(kind, tmp_path)]:
        path.with_suffix(".json").write_text(json.dumps({"mood": "calm"}))
    pieces, skipped = find_pieces(tmp_path)
    name, _, reason = HOSTILE[kind]
    if reason:
        assert [p.midi.name for p in pieces] == ["good_0.mid"]
        assert [(p.name, reason in r) for p, r in skipped] == [(name, True)]
    else:
        assert sorted(p.midi.name for p in pieces) == sorted(["good_0.mid", name]) and not skipped


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "inconsistent":  # a well-formed file whose arrays do not fit the entry
        from moodgen.classifier.features import FEATURES

        with path.open("wb") as handle:
            meta = json.dumps({"names": ["x.mid"], "skipped": []})
            states = {kind: np.zeros((1, 2)) for kind in FEATURES}  # every LM-state kind, one row too few
            np.savez(handle, ids=np.full(3, 10**6), offsets=np.array([0, 5]), meta=meta, **states)
    elif how == "flipped":
        middle = len(data) // 3  # inside the stored arrays: the zip's CRC-32 no longer matches
        data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(os.urandom(64))


DAMAGE = ["truncated", "flipped", "garbage", "inconsistent"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_corpus_cache_is_named_deleted_and_rebuilt(tmp_path, tokenizer, caplog, how):
    files = [*good_pieces(tmp_path, 3), write("tpq_0", tmp_path)]
    clean = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    (entry,) = (tmp_path / "cache" / "tokens").glob("*.npz")
    damage(entry, how)
    with caplog.at_level(logging.WARNING):
        rebuilt = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(entry) in warnings[0] and "rebuilding" in warnings[0]
    assert np.array_equal(rebuilt.ids, clean.ids) and np.array_equal(rebuilt.offsets, clean.offsets)
    assert rebuilt.names == clean.names and rebuilt.skipped == clean.skipped
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = tk.encode_corpus(tokenizer, files, tmp_path / "cache")  # healed: loads without a warning
    assert not caplog.records and np.array_equal(again.ids, clean.ids)
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary file left behind


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_lm_feature_cache_is_named_deleted_and_rebuilt(tmp_path, tokenizer, caplog, how):
    from moodgen.classifier.features import phrase_features
    from moodgen.models import LanguageModel

    net = LanguageModel(len(tokenizer), embedding_dim=8, hidden_size=16, num_layers=1)
    corpus = tk.encode_corpus(tokenizer, good_pieces(tmp_path, 3))
    clean = phrase_features("final_cell", net, tokenizer, corpus, tmp_path / "cache")
    (entry,) = (tmp_path / "cache" / "features").iterdir()
    damage(entry, how)
    with caplog.at_level(logging.WARNING):
        rebuilt = phrase_features("final_cell", net, tokenizer, corpus, tmp_path / "cache")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(entry) in warnings[0]
    assert how != "inconsistent" or "not 3 rows" in warnings[0]  # the entry's own check, not a missing name
    assert np.array_equal(rebuilt, clean) and entry.exists()
