"""Musical attributes, mood targets, constrained decoding, guidance and tempo: each control does what it claims."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import symusic
import torch
from omegaconf import OmegaConf

from moodgen.attributes import ATTRIBUTES, check_names, measure, to_bins
from moodgen.attributes.notes import notes_of
from moodgen.attributes.targets import SCALES, PhraseSummary, mood_targets, phrase_summary, target_bins
from moodgen.config import MoodConfig, SteeringConfig
from moodgen.errors import MoodgenError
from moodgen.generation.pieces import to_score
from moodgen.generation.sampler import sample
from moodgen.models.lstm import LanguageModel
from moodgen.steering.attributes import AttributeLM, Guided, check_options
from moodgen.steering.constraints import Constraints, token_values
from moodgen.tokenizers import build_tokenizer


def score_of(notes: list[tuple[float, float, int, int]], tpq: int = 480) -> symusic.Score:
    """(onset beats, duration beats, pitch, velocity) -> a one-track score."""
    score = symusic.Score(tpq)
    track = symusic.Track(name="piano", program=0, is_drum=False)
    for onset, duration, pitch, velocity in notes:
        track.notes.append(symusic.Note(int(onset * tpq), int(duration * tpq), pitch, velocity))
    score.tracks.append(track)
    return score


C_MAJOR_SCALE = [(i, 1, p, 64) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)]
# C minor triads, half a beat long every beat: chords, detached
C_MINOR_CHORDS = [(i, 0.5, p, 100) for i in range(8) for p in (48 + 12 * (i % 2), 51 + 12 * (i % 2), 55)]


def values(score) -> dict[str, float]:
    return dict(zip(ATTRIBUTES, measure(score, list(ATTRIBUTES)), strict=True))


def test_attributes_of_a_major_scale_in_quarter_notes():
    got = values(score_of(C_MAJOR_SCALE))
    assert got["density"] == pytest.approx(1.0)  # 16 notes in 16 beats
    assert got["velocity"] == 64
    assert got["register"] == pytest.approx(np.mean([60, 62, 64, 65, 67, 69, 71, 72]))
    assert got["spread"] == pytest.approx(np.std([60, 62, 64, 65, 67, 69, 71, 72]))
    assert got["mode"] > 0.1 and got["tonic"] == 0  # C major
    assert got["polyphony"] == 1.0
    assert got["articulation"] == pytest.approx(1.0)  # each note held to the next


def test_attributes_of_detached_minor_chords():
    got = values(score_of(C_MINOR_CHORDS))
    assert got["density"] == pytest.approx(24 / 7.5)  # 24 notes; the last ends at beat 7.5
    assert got["velocity"] == 100
    assert got["mode"] < -0.1 and got["tonic"] == 0  # C minor
    assert got["polyphony"] == 3.0
    assert got["articulation"] == pytest.approx(0.5)  # half-beat notes, a beat apart


def test_attributes_are_measured_in_beats_so_tempo_leaves_them_alone():
    slow = score_of(C_MAJOR_SCALE)
    fast = score_of(C_MAJOR_SCALE)
    fast.tempos = [symusic.Tempo(0, 180.0)]
    assert values(slow) == values(fast)


def test_bins_put_a_value_on_an_edge_in_the_upper_bin_and_unmeasured_at_minus_one():
    density = ATTRIBUTES["density"]
    assert [density.bin(v) for v in (0.0, density.edges[0], density.edges[-1] + 1, float("nan"))] == [0, 1, 4, -1]
    assert to_bins(np.array([[density.edges[1], np.nan]]), ["density", "velocity"]).tolist() == [[2, -1]]
    empty = measure(symusic.Score(480), ["density", "mode"])
    assert np.isnan(empty).all()


def test_unknown_or_repeated_attribute_names_are_one_clear_error():
    with pytest.raises(MoodgenError, match="velocity"):
        check_names(["velocity", "velocity"])
    with pytest.raises(MoodgenError, match="density"):
        check_names(["loudness"])


def test_targets_median_is_the_typical_phrase_distinctive_is_what_sets_the_mood_apart():
    # velocity bins of 8 phrases: mood 0 mostly bin 2 like everyone, but bin 0 only occurs in mood 0
    bins = np.array([[2], [2], [2], [0], [0], [2], [2], [3]])
    moods = np.array([0, 0, 0, 0, 0, 1, 2, 3])
    median = target_bins(bins, moods, ["velocity"], "median")
    distinctive = target_bins(bins, moods, ["velocity"], "distinctive")
    assert median[:, 0].tolist() == [2, 2, 2, 3]
    assert distinctive[0, 0] == 0 and distinctive[3, 0] == 3


def steering_cfg(**options):
    cfg = OmegaConf.structured(SteeringConfig)
    moods = {m: OmegaConf.structured(MoodConfig(tempo=t)) for m, t in zip(MOODS, (60, 80, 150, 140), strict=True)}
    defaults = {"name": "attributes", "attributes": list(ATTRIBUTES), "moods": moods}
    return OmegaConf.merge(cfg, defaults, options)


MOODS = ("depressed", "calm", "angry", "happy")


def test_mood_targets_come_from_the_phrases_and_the_mood_files_override_them():
    quiet, loud = score_of([(i, 1, 60 + i % 5, 40) for i in range(8)]), score_of(C_MINOR_CHORDS)
    scores, moods = [quiet, quiet, loud, loud, quiet, loud], np.array([0, 0, 2, 2, 1, 3])
    cfg = steering_cfg(moods={"happy": {"attributes": {"velocity": 30}, "scale": "major"}})
    targets = mood_targets(phrase_summary(scores, moods), cfg)
    velocity = list(ATTRIBUTES).index("velocity")
    assert targets.bins[0, velocity] == 0 and targets.bins[2, velocity] == ATTRIBUTES["velocity"].bin(100)
    assert targets.bins[3, velocity] == 0  # the override, although its phrases are loud
    assert targets.scale[2] == "minor" and targets.scale[3] == "major"  # data, then the override
    assert targets.tempo.tolist() == [60, 80, 150, 140]
    assert targets.bins[:, list(ATTRIBUTES).index("tonic")].tolist() == [-1] * 4  # drawn per piece
    assert targets.velocity[2].tolist() == [100, 100]


def transposed(notes, semitones):
    return [(onset, duration, pitch + semitones, velocity) for onset, duration, pitch, velocity in notes]


def test_tonics_from_data_draw_each_pieces_tonic_as_often_as_the_moods_phrases_are_in_it():
    from moodgen.steering.attributes import AttributeSteering

    # depressed in D (x3) and E, the other moods in C
    d, e, c = (score_of(transposed(C_MAJOR_SCALE, k)) for k in (2, 4, 0))
    summary = phrase_summary([d, d, d, e, c, c, c], np.array([0, 0, 0, 0, 1, 2, 3]))
    targets = mood_targets(summary, steering_cfg())
    assert targets.keys[0].argmax() == 2 and targets.keys[0][2] > targets.keys[0][4] > targets.keys[0][0] > 0
    steering = AttributeSteering(steering_cfg(tonics="data"))
    steering.targets = targets
    job = SimpleNamespace(generator=torch.Generator().manual_seed(0))
    drawn = np.bincount(steering.tonics(0, 4000, job), minlength=12) / 4000
    np.testing.assert_allclose(drawn, targets.keys[0], atol=0.03)
    uniform = np.bincount(AttributeSteering(steering_cfg()).tonics(0, 4000, job), minlength=12) / 4000
    np.testing.assert_allclose(uniform, np.full(12, 1 / 12), atol=0.03)
    with pytest.raises(MoodgenError, match=r"steering\.tonics=major \(use uniform or data\)"):
        check_options(steering_cfg(tonics="major"))
    with pytest.raises(MoodgenError, match=r"steering\.rank_by=judge \(use probe or descriptors\)"):
        check_options(steering_cfg(rank_by="judge"))


def test_keep_each_gives_a_pieces_candidates_one_key_and_each_piece_its_own_draw():
    from moodgen.steering.attributes import AttributeSteering

    job = SimpleNamespace(generator=torch.Generator().manual_seed(0))
    each = AttributeSteering(steering_cfg(candidates=4, keep="each")).candidate_tonics(0, 50, job)
    groups = each.reshape(50, 4)
    assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) > 6
    pooled = AttributeSteering(steering_cfg(candidates=4)).candidate_tonics(0, 50, job).reshape(50, 4)
    assert (pooled != pooled[:, :1]).any()
    with pytest.raises(MoodgenError, match=r"steering\.keep=best \(use pool or each\)"):
        check_options(steering_cfg(keep="best"))


def test_target_phrases_asks_each_piece_for_one_of_its_moods_phrases_and_the_mood_file_still_wins():
    from moodgen.steering.attributes import AttributeSteering

    # calm's phrases: quiet single notes, loud chords, and a silent one; the others one each
    quiet, loud, silent = (
        score_of([(i, 1, 60 + i % 5, 40) for i in range(8)]),
        score_of(C_MINOR_CHORDS),
        symusic.Score(480),
    )
    summary = phrase_summary([quiet, loud, silent, loud, quiet, loud], np.array([1, 1, 1, 0, 2, 3]))
    names = list(ATTRIBUTES)
    own = to_bins(summary.values, names)  # [phrases, A]
    cfg = steering_cfg(target="phrases", candidates=3, keep="each", moods={"angry": {"attributes": {"velocity": 127}}})
    steering, job = AttributeSteering(cfg), SimpleNamespace(generator=torch.Generator().manual_seed(0))
    steering.targets = targets = mood_targets(summary, cfg)
    tonic, condition = steering.candidate_conditions(1, 60, job)  # what generate asks of 60 calm pieces x 3
    pieces, keys = condition.reshape(60, 3, -1) - 1, tonic.reshape(60, 3)
    assert (pieces == pieces[:, :1]).all() and (keys == keys[:, :1]).all()  # a piece's candidates ask alike
    tonic_column = names.index("tonic")
    assert (pieces[:, 0, tonic_column] == ATTRIBUTES["tonic"].bin(0.0) + keys[:, 0]).all()  # the piece's key
    other = [a for a in range(len(names)) if a != tonic_column]
    drawn = {tuple(row[other]) for row in pieces[:, 0]}
    # calm's two sounding phrases, and the silent one filled in with calm's target bins: nothing else
    assert drawn == {tuple(own[0, other]), tuple(own[1, other]), tuple(targets.bins[1, other])}
    velocity = names.index("velocity")
    assert (targets.asked(2, 5, job.generator)[:, velocity] == ATTRIBUTES["velocity"].bin(127)).all()
    median = mood_targets(summary, steering_cfg(candidates=3, keep="each"))
    state = job.generator.get_state()
    assert (median.asked(1, 4, job.generator) == median.bins[1]).all()  # median: every piece the same bins
    assert torch.equal(job.generator.get_state(), state)  # and no draw: a seed's pieces stay as they were
    with pytest.raises(MoodgenError, match=r"steering\.target=typical \(use median, distinctive or phrases\)"):
        check_options(steering_cfg(target="typical"))


def test_register_window_phrase_gives_each_piece_the_register_of_one_of_its_moods_phrases():
    from moodgen.steering.attributes import AttributeSteering

    low, high = [(i, 1, 40 + 4 * (i % 5), 64) for i in range(8)], [(i, 1, 70 + 3 * (i % 5), 64) for i in range(8)]
    scores = [score_of(low), score_of(high), symusic.Score(480), score_of(C_MAJOR_SCALE), score_of(C_MINOR_CHORDS)]
    summary = phrase_summary([*scores, score_of(C_MAJOR_SCALE)], np.array([1, 1, 1, 0, 2, 3]))
    register, spread = (summary.values[:2, list(ATTRIBUTES).index(n)] for n in ("register", "spread"))
    assert (2 * spread > 6).all()  # wide enough that the window is the phrase's own, not the minimum

    def windows(centre):
        return {(int(np.floor(c - 2 * s)), int(np.ceil(c + 2 * s))) for c, s in zip(centre, spread, strict=True)}

    expected = windows(register)
    assert len(expected) == 2 and max(w[1] for w in expected) < 95  # calm's two sounding phrases: low and high
    cfg = steering_cfg(register_window="phrase", window_width=2.0, candidates=3, keep="each")
    steering, job = AttributeSteering(cfg), SimpleNamespace(generator=torch.Generator().manual_seed(0))
    steering.targets = mood_targets(summary, cfg)
    pieces = steering.candidate_registers(1, 40, job).reshape(40, 3, 2)  # what generate asks of 40 calm pieces x 3
    assert (pieces == pieces[:, :1]).all()  # a piece's candidates share its window
    assert {tuple(w) for w in pieces[:, 0]} == expected  # the silent phrase has none; both others are drawn
    state = job.generator.get_state()
    for options in ({}, {"register_window": "phrase", "register_range": False}):
        steering = AttributeSteering(steering_cfg(candidates=3, keep="each", **options))
        steering.targets = mood_targets(summary, steering.cfg)
        registers = steering.candidate_registers(1, 4, job)
        assert (registers == steering.targets.pitch[1]).all()  # mood (or no range): the mood's central range
        assert torch.equal(job.generator.get_state(), state)  # and no draw: a seed's pieces stay as they were
    calm_high = {"calm": {"attributes": {"register": 80}}}
    fixed = mood_targets(summary, steering_cfg(register_window="phrase", moods=calm_high))
    assert {tuple(w) for w in fixed.windows[1]} == windows([80, 80])  # the mood file's register wins, widths kept
    narrow = mood_targets(
        summary, steering_cfg(register_window="phrase", moods={"calm": {"attributes": {"spread": 4}}})
    )
    assert {tuple(w) for w in narrow.windows[1]} == {(int(np.floor(r - 8)), int(np.ceil(r + 8))) for r in register}
    one_pitch = phrase_summary([score_of([(i, 1, 60, 64) for i in range(4)])] * 4, np.arange(4))
    narrowest = mood_targets(one_pitch, steering_cfg(register_window="phrase")).windows
    assert all(w.tolist() == [[54, 66]] for w in narrowest)  # a phrase of one pitch still leaves an octave
    with pytest.raises(MoodgenError, match=r"steering\.register_window=song \(use mood or phrase\)"):
        check_options(steering_cfg(register_window="song"))


def test_the_phrase_summary_round_trips_through_json_with_unmeasured_values():
    scores = [score_of(C_MAJOR_SCALE), symusic.Score(480), score_of(C_MINOR_CHORDS), score_of(C_MAJOR_SCALE)]
    scores.append(score_of(C_MINOR_CHORDS))
    summary = phrase_summary(scores, np.array([0, 0, 1, 2, 3]))
    again = PhraseSummary.from_json(json.loads(json.dumps(summary.to_json())))
    np.testing.assert_array_equal(again.values, summary.values)  # the silent phrase's NaNs too
    assert np.isnan(again.values[1]).all() and again.moods.tolist() == [0, 0, 1, 2, 3]
    cfg = steering_cfg()
    assert (mood_targets(again, cfg).bins == mood_targets(summary, cfg).bins).all()


@pytest.mark.parametrize("damage", ["cut", "list", "keys"])
def test_a_damaged_kept_phrase_summary_is_one_line_naming_the_fix(tmp_path, damage):
    from moodgen.steering.attributes import kept_summary

    scores = [score_of(C_MAJOR_SCALE), score_of(C_MINOR_CHORDS), score_of(C_MAJOR_SCALE), score_of(C_MINOR_CHORDS)]
    text = json.dumps(phrase_summary(scores, np.arange(4)).to_json())
    path = tmp_path / "attributes_phrases.json"
    path.write_text(text)
    assert kept_summary(path).moods.tolist() == [0, 1, 2, 3]
    damaged = {"cut": text[: len(text) // 2], "list": "[1, 2]", "keys": json.dumps({**json.loads(text), "moods": None})}
    path.write_text(damaged[damage])
    with pytest.raises(MoodgenError, match=r"is damaged .*data_root=.*steering=none") as caught:
        kept_summary(path)
    assert "\n" not in str(caught.value)


def test_bad_attribute_options_are_one_line_naming_the_fix():
    with pytest.raises(MoodgenError, match=r"steering\.scale=loud \(use mask, bias or off\)"):
        check_options(steering_cfg(scale="loud"))
    with pytest.raises(MoodgenError, match="guidance"):
        check_options(steering_cfg(guidance=-1.0))
    check_options(steering_cfg())
    with pytest.raises(MoodgenError, match=r"steering\.hold=\[tonic\] \(name each at most once, from the attr"):
        check_options(steering_cfg(hold=["tonic"]))
    with pytest.raises(MoodgenError, match=r"steering\.hold=\[density,density\] \(name each at most once"):
        check_options(steering_cfg(hold=["density", "density"]))
    with pytest.raises(MoodgenError, match=r"nearest of several candidates \(set steering\.candidates > 1\)"):
        check_options(steering_cfg(hold=["density"], candidates=1))
    with pytest.raises(MoodgenError, match=r"steering\.moods\.calm\.hold=\[loudness\] \(name each"):
        check_options(steering_cfg(moods={"calm": {"hold": ["loudness"]}}))
    with pytest.raises(MoodgenError, match=r"steering\.lean_on=root \(use triad or third_fifth\)"):
        check_options(steering_cfg(lean_on="root"))
    with pytest.raises(MoodgenError, match=r"steering\.moods\.happy\.lean_on=fifth \(use triad, third_fifth or null\)"):
        check_options(steering_cfg(moods={"happy": {"lean_on": "fifth"}}))


def test_hold_counts_the_bins_each_candidate_is_from_what_it_asked_for(tokenizer):
    from moodgen.generation.pieces import score_ids
    from moodgen.steering.attributes import UNMEASURED_OFF, AttributeSteering

    # pitches 60-64 around 61.6-62: register bin 3 (61.5-65.5) both
    one_a_beat = score_of([(i, 1, 60 + i % 5, 80) for i in range(8)])  # density bin 0
    four_a_beat = score_of([(i / 4, 0.25, 60 + i % 5, 80) for i in range(32)])  # density bin 2 (3.6-4.6)
    pool = [score_ids(tokenizer, one_a_beat), score_ids(tokenizer, four_a_beat), []]
    names, held = list(ATTRIBUTES), ["density", "register"]
    asked = np.zeros((3, len(names)), dtype=int)  # bin + 1 per row; 0: not asked
    asked[:, names.index("density")] = [0 + 1, 0 + 1, 2 + 1]
    asked[:, names.index("register")] = [1 + 1, 4 + 1, 3 + 1]
    asked[:, names.index("velocity")] = 4 + 1  # asked, not held
    steering = AttributeSteering(steering_cfg(candidates=3))
    job = SimpleNamespace(tokenizer=tokenizer)
    assert steering.bins_off(job, pool, asked, held).tolist() == [0 + 2, 2 + 1, 2 * UNMEASURED_OFF]
    asked[:, names.index("register")] = 0
    assert steering.bins_off(job, pool, asked, held).tolist() == [0, 2, UNMEASURED_OFF]  # not asked: nothing held


@pytest.fixture(scope="module")
def tokenizer():
    from moodgen.config import TokenizerConfig

    return build_tokenizer(OmegaConf.merge(OmegaConf.structured(TokenizerConfig), {"name": "remi"}))


@pytest.fixture(scope="module")
def attribute_lm(tokenizer):
    torch.manual_seed(0)
    net = LanguageModel(len(tokenizer.vocab), embedding_dim=16, hidden_size=32, num_layers=1)
    model = AttributeLM(net, [ATTRIBUTES[n].bins for n in ATTRIBUTES])
    for table in model.attributes:  # as if fine-tuned: conditions change the logits
        torch.nn.init.normal_(table.weight, std=1.0)
    return model


def sampled(model, condition, guidance, constraints=None, n=4, tokens=300, seed=0):
    guided = Guided(model, condition, guidance, constraints)
    return sample(guided, n, tokens, 1, 2, generator=torch.Generator().manual_seed(seed))


def condition_rows(n: int) -> torch.Tensor:
    return torch.tensor([[b + 1 for b in (3, 4, 0, 2, 1, 5, 2, 1)]] * n)


def test_guidance_zero_is_the_unconditioned_lm_one_the_conditioned(attribute_lm):
    rows = condition_rows(4)
    unconditioned = sampled(attribute_lm, torch.zeros_like(rows), 1.0)
    assert sampled(attribute_lm, rows, 0.0) == unconditioned
    assert sampled(attribute_lm, rows, 1.0) != unconditioned


def test_guidance_mixes_conditioned_and_unconditioned_logits(attribute_lm):
    rows, tokens = condition_rows(2), torch.tensor([[1, 40, 100], [1, 7, 9]])
    attribute_lm.eval()
    cond, _ = attribute_lm(tokens, None, rows)
    uncond, _ = attribute_lm(tokens, None, torch.zeros_like(rows))
    got, _ = Guided(attribute_lm, rows, 2.5)(tokens)
    torch.testing.assert_close(got, uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=1e-5)


def constraint_cfg(**options):
    defaults = {"scale": "mask", "scale_bias": 4.0, "velocity_range": False, "register_range": False, "max_chord": 0}
    defaults["keep_note_share"] = True
    defaults["tonic_bias"], defaults["lean_on"] = 0.0, "triad"
    return SimpleNamespace(**(defaults | options))


class GrammarLM(torch.nn.Module):
    """Uniform over the REMI tokens that may come next: Bar, later Position, Pitch, Velocity, Duration.

    A stand-in for a trained LM that always writes valid notes, so what the constraints leave is seen.
    State per row: the last token's kind and the position within the bar.
    """

    def __init__(self, vocab: dict[str, int]):
        super().__init__()
        self.size = len(vocab)
        self.weight = torch.nn.Parameter(torch.zeros(1))  # the sampler asks for a device
        kinds = ("Bar_", "Position_", "Pitch_", "Velocity_", "Duration_")
        self.kind = torch.full((self.size,), -1)
        self.position = torch.full((self.size,), -1)
        for name, token in vocab.items():
            for k, prefix in enumerate(kinds):
                if name.startswith(prefix):
                    self.kind[token] = k
            if name.startswith("Position_"):
                self.position[token] = int(name.split("_")[1])

    def allowed(self, kind: int, position: int) -> torch.Tensor:
        later = (self.kind == 1) & (self.position > position)
        rules = {-1: self.kind == 0, 0: self.kind == 1, 1: self.kind == 2, 2: self.kind == 3, 3: self.kind == 4}
        if kind in rules:
            return rules[kind]
        return (self.kind == 2) | later | ((self.kind == 0) if not later.any() else torch.zeros_like(later))

    def forward(self, tokens, state=None, condition=None):
        kinds, positions = state if state is not None else (None, None)
        logits = torch.full((tokens.shape[0], tokens.shape[1], self.size), float("-inf"))
        for t in range(tokens.shape[1]):
            fed = tokens[:, t]
            kinds = self.kind[fed]
            previous = positions if positions is not None else torch.full_like(fed, -1)
            positions = torch.where(kinds == 1, self.position[fed], torch.where(kinds == 0, -1, previous))
            for row in range(len(fed)):
                logits[row, t, self.allowed(int(kinds[row]), int(positions[row]))] = 0.0
        return logits, (kinds, positions)


@pytest.fixture(scope="module")
def grammar_lm(tokenizer):
    return GrammarLM(tokenizer.vocab)


def pitches_velocities(tokenizer, sequences):
    notes = [notes_of(tokenizer.decode([ids])) for ids in sequences]
    return np.concatenate([x.pitch for x in notes]), np.concatenate([x.velocity for x in notes]), notes


def constrained(tokenizer, model, cfg, tonic, scale="minor", velocity=(0, 127), pitch=(0, 127)):
    constraints = Constraints(tokenizer.vocab, len(tokenizer.vocab), cfg)
    constraints.start(np.array(tonic), scale, np.array(velocity), np.array(pitch))
    return sampled(model, condition_rows(len(tonic)), 1.0, constraints, n=len(tonic), tokens=200)


def test_scale_mask_leaves_no_pitch_outside_each_pieces_key(tokenizer, grammar_lm):
    free = pitches_velocities(tokenizer, constrained(tokenizer, grammar_lm, constraint_cfg(scale="off"), [2, 9]))[0]
    assert not np.isin(free % 12, SCALES["minor"]).all()  # unconstrained, this LM leaves the scale
    sequences = constrained(tokenizer, grammar_lm, constraint_cfg(), tonic=[2, 9])
    for ids, tonic in zip(sequences, [2, 9], strict=True):
        pitch = notes_of(tokenizer.decode([ids])).pitch
        assert len(pitch) > 5 and np.isin((pitch - tonic) % 12, SCALES["minor"]).all()


def test_register_and_velocity_ranges_hold(tokenizer, grammar_lm):
    cfg = constraint_cfg(scale="off", register_range=True, velocity_range=True)
    sequences = constrained(tokenizer, grammar_lm, cfg, tonic=[0, 0], velocity=(60, 90), pitch=(55, 70))
    free = pitches_velocities(tokenizer, constrained(tokenizer, grammar_lm, constraint_cfg(scale="off"), [0, 0]))
    assert free[0].min() < 55 and free[1].max() > 90  # without the ranges, the LM leaves them
    pitch, velocity, _ = pitches_velocities(tokenizer, sequences)
    assert len(pitch) > 5 and pitch.min() >= 55 and pitch.max() <= 70
    assert velocity.min() >= 60 and velocity.max() <= 90


def test_each_row_keeps_to_its_own_register_window(tokenizer, grammar_lm):
    cfg = constraint_cfg(scale="off", register_range=True)
    windows = np.array([[50, 56], [70, 75]])  # [rows, 2]: register_window=phrase gives each piece its own
    constraints = Constraints(tokenizer.vocab, len(tokenizer.vocab), cfg)
    constraints.start(np.array([0, 0]), "minor", np.array([0, 127]), windows)
    sequences = sampled(grammar_lm, condition_rows(2), 1.0, constraints, n=2, tokens=200)
    for ids, (low, high) in zip(sequences, windows, strict=True):
        pitch = notes_of(tokenizer.decode([ids])).pitch
        assert len(pitch) > 5 and pitch.min() >= low and pitch.max() <= high


def test_max_chord_limits_the_pitches_at_one_position(tokenizer, grammar_lm):
    def chord_sizes(sequences):
        notes = [notes_of(tokenizer.decode([ids])) for ids in sequences]
        return np.concatenate([np.unique(x.onset, return_counts=True)[1] for x in notes])

    free = chord_sizes(constrained(tokenizer, grammar_lm, constraint_cfg(scale="off"), tonic=[0, 0]))
    assert free.max() > 2
    limited = chord_sizes(constrained(tokenizer, grammar_lm, constraint_cfg(scale="off", max_chord=2), tonic=[0, 0]))
    assert limited.max() <= 2


def test_token_values_reads_the_numbers_of_named_tokens(tokenizer):
    pitches = token_values(tokenizer.vocab, ("Pitch_",))
    assert sorted(pitches.values())[:2] == [21, 22] and tokenizer.vocab["Pitch_60"] in pitches


def test_tempo_is_the_files_tempo_and_the_cut_is_in_its_seconds(tokenizer, tmp_path):
    ids = tokenizer.encode(score_of(C_MAJOR_SCALE))[0].ids
    score = to_score(tokenizer, ids, 4.0, qpm=60.0)  # 4 s at 60 qpm: 4 beats
    path = tmp_path / "piece.mid"
    score.dump_midi(str(path))
    again = symusic.Score(str(path))
    assert [t.qpm for t in again.tempos][:1] == [pytest.approx(60.0)]
    assert float(again.to("second").end()) == pytest.approx(4.0, abs=0.05)
    assert len(notes_of(again)) == 4


def test_tonic_bias_makes_the_tonic_triad_more_frequent(tokenizer, grammar_lm):
    def triad_share(bias: float) -> float:
        pitch = pitches_velocities(
            tokenizer, constrained(tokenizer, grammar_lm, constraint_cfg(tonic_bias=bias), [4, 4])
        )[0]
        return float(np.isin((pitch - 4) % 12, (0, 3, 7)).mean())

    assert triad_share(3.0) > triad_share(0.0) + 0.2


def test_a_moods_own_tonic_bias_wins_over_the_steerings(tokenizer):
    constraints = Constraints(tokenizer.vocab, len(tokenizer.vocab), constraint_cfg(scale="off", tonic_bias=0.0))
    constraints.start(np.array([0]), "major", np.array([0, 127]), np.array([0, 127]), tonic_bias=3.0)
    c_major_triad = [tokenizer.vocab[f"Pitch_{p}"] for p in (60, 64, 67)]
    assert constraints.base[0, c_major_triad].tolist() == [3.0, 3.0, 3.0]
    assert constraints.base[0, tokenizer.vocab["Pitch_62"]] == 0.0
    with pytest.raises(MoodgenError, match=r"steering\.moods\.calm\.guidance"):
        check_options(steering_cfg(moods={"calm": {"guidance": -2.0}}))


@pytest.mark.parametrize("scale, third", [("major", 64), ("minor", 63)])
def test_leaning_on_the_third_and_fifth_leaves_the_tonic_as_the_lm_has_it(tokenizer, scale, third):
    """lean_on=third_fifth: the bias goes to the tonic chord's third and fifth in every octave, not its root; a
    mood's own lean_on wins over the steering's."""
    constraints = Constraints(tokenizer.vocab, len(tokenizer.vocab), constraint_cfg(scale="off", lean_on="triad"))
    constraints.start(np.array([0]), scale, np.array([0, 127]), np.array([0, 127]), 3.0, "third_fifth")
    logit = {p: float(constraints.base[0, tokenizer.vocab[f"Pitch_{p}"]]) for p in (48, 60, third, third + 12, 67, 62)}
    assert logit == {48: 0.0, 60: 0.0, third: 3.0, third + 12: 3.0, 67: 3.0, 62: 0.0}
    constraints.start(np.array([0]), scale, np.array([0, 127]), np.array([0, 127]), 3.0)  # the steering's: triad
    logit = {p: float(constraints.base[0, tokenizer.vocab[f"Pitch_{p}"]]) for p in (48, 60, third, third + 12, 67, 62)}
    assert logit == {48: 3.0, 60: 3.0, third: 3.0, third + 12: 3.0, 67: 3.0, 62: 0.0}


@pytest.mark.parametrize("scale, temperature", [("bias", 1.0), ("mask", 1.0), ("bias", 0.5)])
def test_pitch_constraints_choose_which_pitch_not_whether_a_note_comes(tokenizer, scale, temperature):
    """The key, tonic bias and register move probability among the pitches only: the chance that the
    next token is a note at all stays the LM's at the sampler's temperature (else a tonic bias doubles
    the notes per onset); a row whose pitches are all masked stays without a pitch, never NaN."""
    cfg = constraint_cfg(scale=scale, tonic_bias=3.0, register_range=True)
    constraints = Constraints(tokenizer.vocab, len(tokenizer.vocab), cfg, temperature)
    registers = np.array([[48, 72], [55, 80], [0, 5]])  # the last below the piano: no pitch left
    constraints.start(np.array([0, 7, 0]), "major", np.array([0, 127]), registers)
    logits = torch.randn(3, len(tokenizer.vocab), generator=torch.Generator().manual_seed(0))
    fed = torch.tensor([tokenizer.vocab["Bar_None"]] * 3)
    before, after = (logits / temperature).softmax(-1), (constraints(fed, logits) / temperature).softmax(-1)
    pitch = constraints.pitch_ids
    assert torch.allclose(after[:2, pitch].sum(1), before[:2, pitch].sum(1), atol=1e-5)
    others = torch.ones(len(tokenizer.vocab), dtype=torch.bool)
    others[pitch] = False
    assert torch.allclose(after[:2, others], before[:2, others], atol=1e-6)  # time, velocity, duration untouched
    c, e = tokenizer.vocab["Pitch_60"], tokenizer.vocab["Pitch_67"]  # C and G, both on the C major triad
    assert (after[0, c] / after[0, e]).item() == pytest.approx((before[0, c] / before[0, e]).item(), rel=1e-4)
    if scale == "bias":  # D, in the key but off the triad: e^3 / temperature below C
        d = tokenizer.vocab["Pitch_62"]
        ratio = (after[0, c] / after[0, d]) / (before[0, c] / before[0, d])
        assert ratio.item() == pytest.approx(np.exp(3.0 / temperature), rel=1e-4)
    assert after[0, tokenizer.vocab["Pitch_40"]] == 0  # out of the first row's register
    assert not after.isnan().any() and after[2, pitch].sum() == 0  # the row with no pitch left


def test_a_tonic_bias_leaves_the_number_of_notes_per_onset_as_the_lm_writes_it(tokenizer, grammar_lm):
    def notes_per_onset(bias: float) -> float:
        notes = pitches_velocities(
            tokenizer, constrained(tokenizer, grammar_lm, constraint_cfg(scale="off", tonic_bias=bias), [0, 0, 0, 0])
        )[2]
        return float(np.mean([len(x) / len(np.unique(x.onset)) for x in notes]))

    free, biased = notes_per_onset(0.0), notes_per_onset(3.0)
    assert biased == pytest.approx(free, rel=0.25), (free, biased)
    inflated = pitches_velocities(
        tokenizer,
        constrained(tokenizer, grammar_lm, constraint_cfg(scale="off", tonic_bias=3.0, keep_note_share=False), [0] * 4),
    )[2]
    assert np.mean([len(x) / len(np.unique(x.onset)) for x in inflated]) > 1.3 * free  # the switch off: as before
