"""Steering and judging pieces without a trained model: selection, the GA's winner, silent pieces, streams."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import symusic
import torch
from sklearn.linear_model import LogisticRegression

from moodgen.classifier.augment import transpose_by
from moodgen.classifier.features import RELATIVE
from moodgen.classifier.handcrafted import NAMES
from moodgen.errors import MoodgenError
from moodgen.generation.pieces import Judges, predicted_moods
from moodgen.generation.run import steering_report
from moodgen.steering.base import GenerationJob, sampling_stream
from moodgen.steering.neurons import distinct_best, genetic_search
from moodgen.steering.rerank import keep_best

from .conftest import make_midi

GA = SimpleNamespace(
    population=6, generations=3, elite=1, mutation_rate=0.5, mutation_std=0.5, crossover_rate=0.5, gene_range=2.0
)


class FixedProbe:
    """A probe whose scores are given per piece (pieces are one-token sequences naming their row)."""

    def __init__(self, scores: list[float]):
        self.scores, self.probe = scores, "fixed"

    def probe_proba(self, pool):
        proba = np.zeros((len(pool), 4))
        for row, piece in enumerate(pool):
            proba[row] = np.nan if not piece else self.scores[piece[0]]  # every mood's column alike
        return proba


def test_rerank_keeps_the_pieces_the_probe_rates_highest():
    pool = [[0], [1], [2], [3], []]  # the empty one is a silent piece
    job = SimpleNamespace(judges=FixedProbe([0.1, 0.9, 0.4, 0.7]))
    assert keep_best(job, pool, mood=1, n=2) == [[1], [3]]
    assert keep_best(job, pool, mood=1, n=4)[-1] == [0]  # silent ranks below every sounding piece


class DensityRanker:
    """A descriptor model that rates a piece 'angry' the closer it plays to 4 notes a second (as written)."""

    def predict_proba(self, rows):
        angry = np.exp(-np.abs(rows[:, NAMES.index("notes_per_second")] - 4.0))
        zero = np.zeros_like(angry)
        return np.stack([1 - angry, zero, angry, zero], 1)


def test_keep_each_takes_the_best_of_each_pieces_own_candidates_not_the_best_of_all():
    pool = [[0], [1], [2], [3], [4], [5]]  # 3 pieces x 2 candidates
    job = SimpleNamespace(judges=FixedProbe([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]))
    assert keep_best(job, pool, mood=0, n=3) == [[0], [1], [4]]
    assert keep_best(job, pool, mood=0, n=3, keep="each") == [[0], [3], [4]]
    with pytest.raises(MoodgenError, match=r"^steering\.keep=best \(use pool or each\)$"):
        keep_best(job, pool, mood=0, n=3, keep="best")


def test_candidates_nearest_their_asked_bins_are_kept_first_and_the_ranking_breaks_ties():
    pool = [[0], [1], [2], [3], [4], [5]]  # 3 pieces x 2 candidates
    job = SimpleNamespace(judges=FixedProbe([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]))
    off = np.array([1, 0, 0, 0, 2, 1])  # bins from what each asked for
    assert keep_best(job, pool, mood=0, n=3, keep="each", bins_off=off) == [[1], [3], [5]]
    assert keep_best(job, pool, mood=0, n=3, bins_off=off) == [[1], [3], [2]]  # 0 off, by the probe
    sure = SimpleNamespace(judges=FixedProbe([1.0, 0.0]))  # one bin nearer outweighs any probability
    assert keep_best(sure, [[0], [1]], mood=0, n=1, bins_off=np.array([1, 0])) == [[1]]


def test_rank_by_descriptors_keeps_the_pieces_the_descriptor_model_rates_highest_at_their_tempo():
    from omegaconf import OmegaConf

    from moodgen.config import TokenizerConfig
    from moodgen.errors import MoodgenError
    from moodgen.tokenizers import build_tokenizer

    tokenizer = build_tokenizer(OmegaConf.merge(OmegaConf.structured(TokenizerConfig), {"name": "remi"}))

    def piece(notes_per_beat: int) -> list[int]:
        score = symusic.Score(480)
        track = symusic.Track(name="piano", program=0, is_drum=False)
        for i in range(16 * notes_per_beat):
            track.notes.append(symusic.Note(i * 480 // notes_per_beat, 480 // notes_per_beat, 60 + i % 5, 80))
        score.tracks.append(track)
        return tokenizer.encode(score)[0].ids

    pool = [piece(k) for k in (1, 4, 2, 5)]  # at 120 qpm 2, 8, 4, 10 notes a second; at 240 twice that
    job = SimpleNamespace(judges=Judges(ranker=DensityRanker()), tokenizer=tokenizer, duration=4.0)
    assert keep_best(job, pool, mood=2, n=2, by="descriptors", qpm=120.0) == [pool[2], pool[0]]
    assert keep_best(job, pool, mood=2, n=1, by="descriptors", qpm=240.0) == [pool[0]]  # the piece as written
    assert keep_best(job, pool, mood=0, n=1, by="descriptors", qpm=120.0) == [pool[3]]  # furthest from 4
    with pytest.raises(MoodgenError, match="rank_by=descriptors needs the model run's hand-crafted mood model"):
        keep_best(SimpleNamespace(judges=Judges()), pool, mood=2, n=2, by="descriptors", qpm=120.0)


def test_an_unknown_rank_by_is_one_line_naming_the_choices():
    from moodgen.errors import MoodgenError

    job = SimpleNamespace(judges=FixedProbe([0.1, 0.9]))
    with pytest.raises(MoodgenError, match=r"^steering\.rank_by=judge \(use probe or descriptors\)$"):
        keep_best(job, [[0], [1]], mood=1, n=1, by="judge")


def test_ga_returns_the_best_individual_ever_found_not_the_last_lucky_score():
    """Fitness = closeness to 1.0, except one evaluation where the worst individual gets lucky."""
    calls, seen = [], []

    def fitness(genes: np.ndarray) -> np.ndarray:
        calls.append(len(genes))
        seen.extend(genes)
        true = -np.abs(genes - 1.0).mean(1)
        if len(calls) == GA.generations + 1:  # the last generation's scores: the worst one is lucky
            true = true.copy()
            true[np.argmin(true)] += 100.0
        return true

    result = genetic_search(fitness, 3, GA, np.random.default_rng(0))
    best_seen = max(seen, key=lambda g: -np.abs(g - 1.0).mean())
    assert result["genes"] == best_seen.tolist()
    assert result["fitness"] == pytest.approx(-np.abs(best_seen - 1.0).mean())  # not the lucky score
    assert len(calls) == GA.generations + 2  # the finalists were evaluated again


def test_distinct_best_averages_an_elite_over_its_evaluations():
    genes = np.array([[1.0], [2.0], [1.0], [3.0]])
    scores = np.array([0.9, 0.5, 0.1, 0.6])  # [1.0] scored 0.9 once by luck, 0.1 later: mean 0.5
    best, means = distinct_best(genes, scores, 2)
    assert best.tolist() == [[3.0], [1.0]] and means.tolist() == pytest.approx([0.6, 0.5])


def test_a_silent_piece_is_judged_no_mood_and_counts_as_a_miss(tmp_path):
    rng = np.random.default_rng(0)
    judge = LogisticRegression().fit(rng.normal(size=(40, len(NAMES))), np.arange(40) % 4)
    proba = Judges(judge=judge).judge_proba([symusic.Score(480)])
    assert predicted_moods(proba).tolist() == [-1]  # a flat row's argmax would be 0, "depressed"
    pieces = [{"mood": "depressed", "judged_mood": "silent", "alive": False, "probe_proba": None}]
    metrics = steering_report(pieces, "none", tmp_path)
    assert metrics["steer/none/accuracy"] == 0.0 and metrics["steer/none/silent"] == 1.0


def test_a_judge_reads_the_descriptors_it_is_given(tmp_path):
    """The benchmark's judge reads pitch classes from the tonic: C major moved a semitone keeps its verdict,
    where the same model fed absolute shares hears another mood (C has no share in C# major)."""

    class TonicShare:  # depressed where column 5 (C's share, or the tonic's) is over a fifth, else happy
        def predict_proba(self, x):
            low = x[:, 5] > 0.2
            return np.stack([low, 0 * low, 0 * low, ~low], axis=1).astype(float)

    piece = symusic.Score(str(make_midi(tmp_path / "c.mid", [60, 64, 67, 60, 62, 65, 60, 67] * 4)))
    pieces = [piece, transpose_by(piece, 1)]
    assert predicted_moods(Judges(judge=TonicShare()).judge_proba(pieces)).tolist() == [0, 3]
    relative = Judges(judge=TonicShare(), judge_features=RELATIVE)
    assert predicted_moods(relative.judge_proba(pieces)).tolist() == [0, 0]
    ranked = Judges(ranker=TonicShare(), judge_features=RELATIVE).ranker_proba(pieces)
    assert predicted_moods(ranked).tolist() == [0, 3]  # the ranker reads what the run's judge reads


def test_samples_rank_by_what_the_model_run_has():
    """classifier=quick keeps no hand-crafted judge: the samples then rank by the probe, not crash."""
    from omegaconf import OmegaConf

    from moodgen.pipeline import runnable_steering

    steering = OmegaConf.create({"name": "attributes", "candidates": 16, "rank_by": "descriptors"})

    def run(**judges):
        return runnable_steering(steering, SimpleNamespace(conditioning=object(), judges=Judges(**judges)))

    assert run(probe="p", ranker="r") == steering
    assert run(probe="p").rank_by == "probe" and run(probe="p").candidates == 16
    assert run().candidates == 1
    assert run(ranker="r") == steering  # ranks by descriptors; no verdict without a probe, but no crash


def test_every_seed_and_mood_has_its_own_stream():
    def draws(*keys):
        return torch.rand(4, generator=sampling_stream(*keys)).tolist()

    assert draws(0, 1) == draws(0, 1)
    assert len({tuple(draws(s, m)) for s in range(3) for m in range(4)}) == 12


@pytest.mark.parametrize("text", ["{half a fi", "[1, 2]"])
def test_a_damaged_genes_file_is_a_cache_miss_with_one_line(tmp_path, caplog, text):
    from moodgen.steering.neurons import _saved_genes

    path = tmp_path / "neurons_calm.json"
    path.write_text(text)
    assert _saved_genes(path) is None
    assert "is not readable genes" in caplog.text and "evolving anew" in caplog.text
    path.write_text('{"key": "k", "values": [0.5]}')
    assert _saved_genes(path) == {"key": "k", "values": [0.5]}


@dataclasses.dataclass
class DrawnPieces(GenerationJob):
    """A job whose 'pieces' are one token drawn from its generator: what the GA sampled is what it was given."""

    drawn: list = dataclasses.field(default_factory=list)  # the same list in every copy `dataclasses.replace` makes

    def sample(self, n, state_hook=None, seconds=None, max_tokens=None, prefix=None, net=None):
        self.drawn.append(torch.randint(4, (n,), generator=self.generator).tolist())
        return [[t] for t in self.drawn[-1]]


def test_each_ga_seed_and_mood_evolves_from_streams_of_its_own():
    """With seed + mood, seed 1's depressed GA drew the very samples of seed 0's calm one (the benchmark's fits)."""
    from moodgen.steering.neurons import EvolvedNeurons

    def evolve(seed: int, mood: int) -> list[list[int]]:
        cfg = SimpleNamespace(**vars(GA), fitness_pieces=2, fitness_seconds=1.0, seed=seed)
        judges = SimpleNamespace(probe="fixed", probe_proba=lambda pieces: np.eye(4)[[p[0] for p in pieces]])
        job = DrawnPieces(None, None, judges, 4.0, 1.0, 0.95, 8, torch.Generator().manual_seed(99))
        EvolvedNeurons(cfg).evolve(job, mood, np.arange(2), np.zeros(2), np.ones(2))
        return job.drawn

    assert evolve(0, 1) == evolve(0, 1)  # one setting, one result: the genes can be cached
    assert evolve(1, 0) != evolve(0, 1)
    assert evolve(0, 0) != evolve(0, 1) and evolve(0, 0) != evolve(1, 0)
