"""Mood-steered generation: every steering method end to end, genes that matter, duration, errors."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import symusic
import torch
from omegaconf import OmegaConf

from moodgen.attributes import ATTRIBUTES, measure
from moodgen.errors import MoodgenError
from moodgen.evaluation.yang_lerch import FEATURES
from moodgen.generate import generate
from moodgen.generation.bundle import from_run
from moodgen.generation.render import note_count
from moodgen.generation.session import open_command
from moodgen.moods import MOODS
from moodgen.steering import STEERING
from moodgen.steering.attributes import UNMEASURED_OFF, AttributeSteering
from moodgen.steering.base import GenerationJob, cached_finetune, sequences_fingerprint, settings_file
from moodgen.steering.conditioned import MoodConditioned, MoodConditionedLM, SequenceBatches, chunk_starts, chunks
from moodgen.steering.neurons import clamp_hook, neuron_set
from moodgen.tokenizers import bos_id
from moodgen.train import train

from .conftest import TINY_MODEL, TINY_TRAINER, compose_entry, compose_train, error_line

TINY_GA = [
    "steering.population=4",
    "steering.generations=1",
    "steering.elite=1",
    "steering.fitness_pieces=2",
    "steering.fitness_seconds=2",
]
TINY_CONDITIONED = [
    "steering.steps=4",
    "steering.batch_size=4",
    "steering.chunk_tokens=64",
    "steering.max_chunks=24",
    "steering.threshold=0.0",  # every chunk gets a pseudo-label: all four moods have sequences
]


@pytest.fixture(scope="module")
def model_store(tmp_path_factory, vgmidi_root) -> Path:
    """A tiny LM with its mood probe, hand-crafted judge and L1 neurons, in a temporary MLflow store."""
    root = tmp_path_factory.mktemp("gen")
    cfg = compose_train(
        root,
        [
            f"data.root={vgmidi_root}",
            "data.max_files=6",
            *TINY_MODEL,
            *TINY_TRAINER,
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=60",  # enough steps that the pieces hold notes
            "model.hidden_size=64",
            "model.batch_size=16",
            "classifier.n_trials=2",
            "classifier.targets=[mood4]",
            "classifier.compare=[handcrafted]",
            "classifier.log2_c_min=0",
            "classifier.nested=[]",  # nested CV has its own tests (test_classifier): half this fixture's time
            "steering=conditioned",  # the pipeline's samples stage with the costliest method
            *TINY_CONDITIONED,
            "steering.steps=3",  # other settings than the tests below: generate fine-tunes anew
            "samples.n=3",  # enough sounding pieces for the evaluation stage
        ],
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        train(cfg)
    (root / "train_stdout.txt").write_text(printed.getvalue())  # what the user saw at the end
    return root


def test_training_ends_with_steered_samples_and_their_accuracy(model_store):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    (run,) = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'train'")
    assert 0.0 <= run.data.metrics["steer/conditioned/accuracy"] <= 1.0
    assert {"steering/conditioned.pt", "steering/conditioned.json"} <= {
        a.path for a in client.list_artifacts(run.info.run_id, "steering")
    }
    # ... and evaluates them against the labelled test phrases
    assert 0.0 <= run.data.metrics["eval/mean_oa"] <= 1.0 and "eval/mood/judge/accuracy" in run.data.metrics
    assert "evaluation/report.html" in {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    # ... and says where the samples and the report are, with a command to open the samples
    printed = (model_store / "train_stdout.txt").read_text()
    samples = model_store / "out" / "samples"
    assert f"samples (per mood: .wav, .mid, piano-roll .png): {samples}" in printed
    assert f"listen: {open_command(samples)}" in printed and sorted(samples.glob("*/*.mid"))
    report = model_store / "out" / "evaluation" / "report.html"
    assert f"evaluation report: {report}" in printed and report.is_file()
    # ... against the test phrases cut to the samples' length (whole phrases run ~100 s)
    assert re.search(r"vs vgmidi_test, first \d+ s", report.read_text())


def compose_generate(root: Path, overrides: list[str]):
    """generate's config; seed=0 unless given (the default, null, draws a fresh seed: tests stay repeatable)."""
    seed = [] if any(o.startswith("seed=") for o in overrides) else ["seed=0"]
    return compose_entry("generate", root, [*seed, *overrides], output="gen")


@pytest.mark.parametrize("steering", sorted(STEERING))
def test_every_steering_method_end_to_end(model_store, steering, tmp_path):
    out = tmp_path / steering
    cfg = compose_generate(
        model_store,
        ["mood=calm", "n=2", "duration=6", f"steering={steering}", *TINY_GA, *TINY_CONDITIONED, f"out_dir={out}"],
    )
    generate(cfg)
    sidecars = sorted((out / "calm").glob("calm_*.json"))
    assert len(sidecars) == 2
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["mood"] == "calm" and meta["method"] == steering
        assert set(meta["judge_proba"]) == {"depressed", "calm", "angry", "happy"}
        score = symusic.Score(str(path.with_suffix(".mid")))
        assert note_count(score) > 0  # re-loads, with notes
        assert path.with_suffix(".png").exists()
        assert 0 < meta["seconds"] <= 6.0 + 1e-6  # cut at the requested length


def test_evolved_genes_are_cached_with_the_model_run_and_other_settings_beside_them(model_store, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from moodgen.steering.neurons import EvolvedNeurons

    def run(*overrides):
        cfg = compose_generate(
            model_store, ["mood=angry", "n=1", "duration=4", "steering=neurons", *TINY_GA, *overrides]
        )
        generate(OmegaConf.merge(cfg, {"out_dir": str(tmp_path / str(len(list(tmp_path.iterdir()))))}))
        return from_run(cfg, "latest")

    bundle = run()
    genes = bundle.steering_dir / "neurons_angry.json"
    first = genes.read_bytes()
    other = run("steering.seed=1")  # other GA settings: evolved anew, kept beside the run's genes, never over them
    assert genes.read_bytes() == first
    (beside,) = other.steering_dir.glob("neurons_angry-*.json")
    assert json.loads(beside.read_text())["key"] != json.loads(first)["key"]
    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    logged = {a.path for a in client.list_artifacts(bundle.run_id, "steering")}
    assert {"steering/neurons_angry.json", f"steering/{beside.name}"} <= logged  # both logged to the model run
    monkeypatch.setattr(EvolvedNeurons, "evolve", lambda *args: pytest.fail("evolved again"))
    job = job_of(other, cache_dir=other.steering_dir, neurons=other.neurons)
    for overrides, kept in (([], genes), (["steering.seed=1"], beside)):  # each setting's genes where they were kept
        steering_cfg = compose_generate(model_store, ["steering=neurons", *TINY_GA, *overrides]).steering
        assert EvolvedNeurons(steering_cfg).genes(job, 2).tolist() == json.loads(kept.read_text())["values"]


def job_of(bundle, **changes) -> GenerationJob:
    job = GenerationJob(
        bundle.net, bundle.tokenizer, bundle.judges, 4.0, 1.0, 0.95, 256, torch.Generator().manual_seed(0)
    )
    return dataclasses.replace(job, **changes)


def test_conditioned_lm_is_cached_with_the_model_run(model_store, tmp_path):
    cfg = compose_generate(
        model_store,
        ["mood=happy", "n=1", "duration=4", "steering=conditioned", *TINY_CONDITIONED, f"out_dir={tmp_path}"],
    )
    generate(cfg)
    bundle = from_run(cfg, "latest")
    steering = MoodConditioned(cfg.steering)
    own = bundle.steering_dir / "conditioned.pt"  # the train stage's (steering.steps=3), kept as trained
    trained = torch.load(own, weights_only=True)["key"]
    assert trained != steering.settings_key()
    cached = settings_file(own, steering.settings_key())  # these settings', logged back to the model run beside it
    summary = json.loads(cached.with_suffix(".json").read_text())
    assert summary["sequences"]["happy"]["labelled"] > 0
    # kept with what it learned from: the labelled phrases, their moods and the chunks the probe labels
    phrases, moods, candidates = steering.sources(job_of(bundle, conditioning=bundle.conditioning))
    made_from = torch.load(cached, weights_only=True)["made_from"]
    assert made_from.startswith(sequences_fingerprint(phrases + candidates, moods) + "-")  # and the probe's hash
    # used as trained by the model run; a derived cache (refit_stale) of other sequences is fine-tuned anew
    saved = torch.load(cached, weights_only=True)
    torch.save({**saved, "made_from": "other sequences"}, cached)
    for refit_stale, kept in ((False, "other sequences"), (True, made_from)):
        job = job_of(bundle, cache_dir=bundle.steering_dir, conditioning=bundle.conditioning, refit_stale=refit_stale)
        MoodConditioned(cfg.steering).conditioned_net(job)
        assert torch.load(cached, weights_only=True)["made_from"] == kept
    assert torch.load(own, weights_only=True)["key"] == trained  # never fine-tuned over
    # no training data given: only the cached checkpoint can answer
    job = job_of(bundle, cache_dir=bundle.steering_dir, conditioning=None)
    assert len(MoodConditioned(cfg.steering).generate(job, 3, 1)) == 1


def test_a_fine_tuned_cache_follows_its_sequences_where_derived_and_a_runs_is_used_as_trained(tmp_path, caplog):
    path = tmp_path / "lm.pt"

    def load(key: str, made_from: str | None, refit_stale: bool, value: float) -> float:
        """The cached weight (value where fine-tuned now); made_from None: the data is not at hand."""
        net = torch.nn.Linear(1, 1, bias=False)

        def fingerprint() -> str:
            assert made_from is not None, "the data was asked for where the cache should answer alone"
            return made_from

        def finetune() -> dict:
            torch.nn.init.constant_(net.weight, value)
            return {}

        return cached_finetune(net, path, key, finetune, fingerprint, refit_stale).weight.item()

    assert load("k", "a", True, 1.0) == 1.0  # nothing cached: fine-tuned, saved with what it learned from
    assert load("k", "a", True, 2.0) == 1.0  # the same settings and sequences: the cache
    assert load("k", None, False, 3.0) == 1.0  # a model run's own: as trained, no data needed
    assert load("k", "b", False, 4.0) == 1.0  # ... even where the data now gives other sequences
    with caplog.at_level("WARNING", logger="moodgen"):
        assert load("k", "b", True, 5.0) == 5.0  # derived, other sequences: fine-tuned anew
    assert "fine-tuned on other sequences than the data gives now: fine-tuning anew" in caplog.text
    assert torch.load(path, weights_only=True)["made_from"] == "b"
    assert load("k", "b", True, 6.0) == 5.0
    assert load("other", "b", False, 7.0) == 7.0  # other settings: fine-tuned anew, derived or not
    assert load("k", "b", True, 7.5) == 5.0  # ... and kept beside the first, never over it
    assert load("other", "b", True, 7.5) == 7.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm-other.json", "lm-other.pt", "lm.json", "lm.pt"]
    torch.save({"key": "k", "state_dict": {"weight": torch.full((1, 1), 0.5)}}, path)  # cached before fingerprints
    assert load("k", "b", False, 8.0) == 0.5  # a run's own: as trained
    with caplog.at_level("WARNING", logger="moodgen"):
        assert load("k", "b", True, 9.0) == 9.0  # a derived one is fine-tuned anew, once
    assert "fine-tuned on sequences it did not record: fine-tuning anew" in caplog.text
    assert load("k", "b", True, 10.0) == 9.0


def test_the_sequences_fingerprint_sees_order_cuts_and_labels():
    a, b, c = np.array([1, 2]), np.array([3]), np.array([1, 2, 3])
    print_of = sequences_fingerprint
    assert print_of([a, b]) == print_of([a.copy(), b.copy()]) == print_of([a.tolist(), b.tolist()])
    assert len({print_of([a, b]), print_of([b, a]), print_of([c]), print_of([a[:1], np.array([2, 3])])}) == 4
    assert len({print_of([a, b], [0, 1]), print_of([a, b], [1, 0]), print_of([a, b])}) == 3
    assert print_of([a.astype(np.int32)]) == print_of([a])  # the ids, not their dtype


def test_the_mood_token_changes_the_music(model_store):
    bundle = from_run(compose_generate(model_store, ["mood=calm"]), "latest")
    net = MoodConditionedLM(bundle.net, 4)
    with torch.no_grad():
        net.moods.weight.copy_(torch.randn(net.moods.weight.shape, generator=torch.Generator().manual_seed(1)) * 3)

    def pieces(mood: int) -> list[list[int]]:
        return job_of(bundle).sample(2, prefix=[net.vocab_size + mood, bos_id(bundle.tokenizer)], net=net)

    assert pieces(0) == pieces(0)  # same seed, same mood: same music
    assert pieces(0) != pieces(3)  # same seed, other mood: other music


def test_fine_tuning_batches_predict_from_bos_on():
    batches = SequenceBatches(vocab_size=10, bos=1, eos=2)
    inputs, targets = batches([batches.sequence(np.array([5, 6, 7]), 3), batches.sequence(np.array([8]), 0)])
    assert inputs.tolist() == [[13, 1, 5, 6, 7], [10, 1, 8, 0, 0]]  # mood token, BOS, tokens (padded)
    assert targets.tolist() == [[5, 6, 7, 2], [8, 2, -100, -100]]  # after BOS: tokens then EOS


def test_chunks_start_at_bar_lines():
    bar = 4
    piece = np.array([9, 4, 1, 1, 4, 1, 1, 1, 4, 1, 4, 1, 1, 1, 1, 1])
    assert chunk_starts(piece, 4, bar) == [1, 8]  # the first bar line, then the next one >= 4 tokens on
    assert chunk_starts(piece, 4, None) == [0, 4, 8, 12]
    rng = np.random.default_rng(0)
    assert all(c[0] == bar for c in chunks([piece, piece], 4, 10, rng, bar))


def test_zero_mood_vectors_leave_the_lm_unchanged(model_store):
    bundle = from_run(compose_generate(model_store, ["mood=calm"]), "latest")
    conditioned = MoodConditionedLM(bundle.net, 4).eval()
    tokens = torch.randint(3, 20, (2, 12))
    moods = torch.full((2, 1), conditioned.vocab_size + 2)
    with torch.no_grad():
        expected, _ = bundle.net.eval()(tokens)
        logits, (_, mood) = conditioned(torch.cat([moods, tokens], 1))
    assert torch.allclose(logits, expected, atol=1e-6) and mood.tolist() == [2, 2]


def test_genes_change_the_generated_tokens(model_store):
    bundle = from_run(compose_generate(model_store, ["mood=calm"]), "latest")
    units, mean, scale = neuron_set(bundle.neurons, 1)

    def pieces(z: float) -> list[list[int]]:
        job = GenerationJob(
            bundle.net,
            bundle.tokenizer,
            bundle.judges,
            4.0,
            1.0,
            0.95,
            256,
            torch.Generator().manual_seed(0),
            bundle.neurons,
        )
        values = np.repeat((mean + z * scale)[None], 2, axis=0)
        return job.sample(2, clamp_hook(units, values))

    assert pieces(-3.0) == pieces(-3.0)  # same seed, same genes: same music
    assert pieces(-3.0) != pieces(3.0)  # same seed, other genes: other music


def test_duration_is_tracked_on_decoded_time(tmp_path):
    from moodgen import tokenizers as tk
    from moodgen.generation.pieces import Judges, to_score

    from .conftest import make_midi, scale_piece
    from .test_sampling import ScriptedNet

    tokenizer = tk.build_tokenizer(compose_train(tmp_path, []).tokenizer)
    bar = tk.encode_file(tokenizer, make_midi(tmp_path / "bar.mid", scale_piece(0, 8)))[1:-1]  # 2 s at 120 qpm
    net = ScriptedNet(bar * 50, len(tokenizer))
    for seconds in (6.0, 15.0):
        job = GenerationJob(net, tokenizer, Judges(), seconds, 1.0, 0.95, 4096, torch.Generator().manual_seed(0))
        (ids,) = job.sample(1)
        length = float(to_score(tokenizer, ids, seconds).to("second").end())
        assert 0.8 * seconds <= length <= 1.2 * seconds
        assert len(ids) < len(bar) * (seconds / 2 + 4)  # stopped by time, not by the token cap


def test_unknown_mood_is_one_line_listing_the_moods(tmp_path):
    line = error_line("moodgen.generate", ["mood=joyful", f"paths.root_dir={tmp_path}"], tmp_path)
    assert line.startswith("moodgen: error: unknown mood 'joyful'") and "1=calm" in line


def test_a_mistyped_mood_suggests_the_closest(tmp_path):
    from moodgen.moods import mood_index, with_article

    with pytest.raises(MoodgenError, match=r"^unknown mood 'sadd': did you mean sad\? use one of 0=depressed"):
        mood_index("sadd")
    with pytest.raises(MoodgenError, match=r"^unknown mood 'hapy': did you mean happy\? "):
        mood_index("hapy")
    assert [with_article(m) for m in ("angry", "calm", "excited")] == ["an angry", "a calm", "an excited"]


def test_no_trained_model_says_how_to_train_one(tmp_path):
    cfg = compose_generate(tmp_path, ["mood=happy"])
    with pytest.raises(MoodgenError, match=r"train one with: python -m moodgen.train"):
        generate(cfg)


def test_champion_alias_wins_over_latest(model_store):
    import mlflow
    from mlflow.tracking import MlflowClient

    from moodgen.generation.bundle import REGISTERED_MODEL, resolve_model_run

    cfg = compose_generate(model_store, ["mood=calm", "steering=none"])  # needs only a checkpoint
    uri = f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    runs = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'train'")
    trained = runs[0].info.run_id
    newer = client.create_run(experiment, tags={"moodgen.entry_point": "train", "moodgen.checkpoint": "x"})
    client.set_terminated(newer.info.run_id, "FINISHED")
    assert resolve_model_run(cfg, "latest")[1].info.run_id == newer.info.run_id  # no alias yet: newest run
    mlflow.set_tracking_uri(uri)
    try:
        probe = runs[0].data.params["classifier.features"]  # the run's mood probe
        version = mlflow.register_model(f"runs:/{trained}/classifier/mood4/{probe}/model", REGISTERED_MODEL)
        client.set_registered_model_alias(REGISTERED_MODEL, "champion", version.version)
    finally:
        mlflow.set_tracking_uri("")
    assert resolve_model_run(cfg, "latest")[1].info.run_id == trained
    assert resolve_model_run(cfg, "champion")[1].info.run_id == trained
    assert "champion" in resolve_model_run(cfg, "latest")[2]  # the alias comes first, and says so
    client.delete_run(newer.info.run_id)


def test_no_two_moods_share_a_piece(model_store, tmp_path):
    """steering=none once drew every mood from one seed: the same pieces for all four moods."""
    from moodgen.generation.run import generate_pieces

    cfg = compose_generate(model_store, ["mood=calm", "n=2", "duration=3", "steering=none"])
    bundle = from_run(cfg, "latest")
    pieces = generate_pieces(bundle, cfg.steering, cfg, [0, 1, 2, 3], 2, 0, tmp_path, wav=False)
    by_mood = {}
    for piece in pieces:
        by_mood.setdefault(piece["mood"], []).append(Path(piece["files"]["midi"]).read_bytes())
    assert len({tuple(files) for files in by_mood.values()}) == 4  # each mood its own draws


def test_pieces_ranked_by_the_judge_get_their_verdict_from_the_probe(model_store, tmp_path):
    """rank_by=descriptors keeps what the run's hand-crafted judge likes: its verdict would be the ranking's."""
    from moodgen.generation.pieces import PROBE
    from moodgen.generation.run import generate_pieces, steering_report

    cfg = compose_generate(model_store, ["mood=calm", "duration=3", "steering=rerank", "steering.candidates=4"])
    bundle = from_run(cfg, "latest")
    for rank_by, judged_by in (("descriptors", PROBE), ("probe", "hand-crafted judge")):
        steering = OmegaConf.merge(cfg.steering, {"rank_by": rank_by})
        pieces = generate_pieces(bundle, steering, cfg, [1, 2], 3, 0, tmp_path / rank_by, wav=False)
        verdict = "probe_proba" if judged_by == PROBE else "judge_proba"

        heard = [max(p[verdict], key=p[verdict].get) if p[verdict] else "silent" for p in pieces]
        assert all(p["judged_by"] == judged_by and p["judged_mood"] == h for p, h in zip(pieces, heard, strict=True))
        wanted = [p["mood"] == h for p, h in zip(pieces, heard, strict=True)]
        assert steering_report(pieces, "rerank", tmp_path)["steer/rerank/accuracy"] == pytest.approx(np.mean(wanted))


def test_scorers_see_the_music_the_file_holds(model_store):
    """The probe once scored up to 63 tokens sampled past the duration cut."""
    from moodgen.generation.pieces import decoded_seconds

    bundle = from_run(compose_generate(model_store, ["mood=calm"]), "latest")
    pieces = job_of(bundle).sample(4, seconds=2.0)
    assert all(decoded_seconds(bundle.tokenizer, ids) <= 2.0 + 1e-6 for ids in pieces)
    assert any(decoded_seconds(bundle.tokenizer, ids) > 1.0 for ids in pieces)  # cut, not emptied


def test_attribute_lm_is_cached_and_pieces_carry_the_moods_tempo(model_store, tmp_path):
    overrides = ["mood=angry", "n=2", "duration=4", "steering=attributes", *TINY_CONDITIONED, f"out_dir={tmp_path}"]
    cfg = compose_generate(model_store, [*overrides, "steering.moods.angry.tempo=133"])
    generate(cfg)
    bundle = from_run(cfg, "latest")
    assert (bundle.steering_dir / "attributes.pt").exists()  # logged back to the model run
    for path in sorted((tmp_path / "angry").glob("angry_*.mid")):
        score = symusic.Score(str(path))
        assert score.tempos[0].qpm == pytest.approx(133.0)
        assert float(score.to("second").end()) <= 4.0 + 1e-6  # the length is in the mood's tempo
        assert json.loads(path.with_suffix(".json").read_text())["tempo_qpm"] == pytest.approx(133.0)
    # no training data given: the cached LM and the kept phrase summary answer
    assert (bundle.steering_dir / "attributes_phrases.json").exists()
    job = job_of(bundle, cache_dir=bundle.steering_dir, conditioning=None)
    assert len(AttributeSteering(cfg.steering).generate(job, 2, 1)) == 1


def test_attribute_steering_ranks_as_its_keep_says(model_store, monkeypatch):
    from moodgen.steering import attributes

    kept, real = [], attributes.keep_best
    monkeypatch.setattr(attributes, "keep_best", lambda *args: kept.append(args) or real(*args))
    cfg = compose_generate(model_store, ["mood=angry", "steering=attributes", *TINY_CONDITIONED])
    bundle = from_run(cfg, "latest")
    for keep in ("each", "pool"):
        steering = AttributeSteering(OmegaConf.merge(cfg.steering, {"keep": keep, "candidates": 3}))
        job = job_of(bundle, cache_dir=bundle.steering_dir, conditioning=bundle.conditioning)
        assert len(steering.generate(job, 2, 2)) == 2
        *_, by, _, passed, bins_off = kept[-1]
        assert (passed, by, bins_off) == (keep, "descriptors", None) and len(kept[-1][1]) == 6  # 2 pieces x 3 each
    cases = [
        ({"moods": {"angry": {"hold": ["density"]}}}, True),  # the mood's own hold
        ({"moods": {"calm": {"hold": ["density"]}}}, False),  # another mood's
        ({"hold": ["density"]}, True),  # steering's, the mood's file silent (null)
        ({"hold": ["density"], "moods": {"angry": {"hold": []}}}, False),  # the mood's [] turns it off
    ]
    for options, held in cases:
        steering = AttributeSteering(OmegaConf.merge(cfg.steering, {"candidates": 3, **options}))
        steering.generate(job, 2, 2)  # angry
        _, pool, *_, bins_off = kept[-1]
        assert (bins_off is not None) == held, options
        if held:  # each candidate's density bin as measured, against angry's (target=median: one for every piece)
            asked = steering.mood_targets(job).bins[2, steering.names.index("density")]
            got = [ATTRIBUTES["density"].bin(measure(job.tokenizer.decode([ids]), ["density"])[0]) for ids in pool]
            assert asked >= 0 and bins_off.tolist() == [UNMEASURED_OFF if g < 0 else abs(g - asked) for g in got]


def test_the_degrees_a_tonic_bias_leans_on_are_the_moods_own_else_the_steerings(model_store, monkeypatch):
    from moodgen.steering.constraints import Constraints

    started, real = [], Constraints.start
    monkeypatch.setattr(Constraints, "start", lambda self, *args: started.append(args) or real(self, *args))
    cfg = compose_generate(model_store, ["mood=angry", "steering=attributes", *TINY_CONDITIONED])
    bundle = from_run(cfg, "latest")
    job = job_of(bundle, cache_dir=bundle.steering_dir, conditioning=bundle.conditioning)
    cases = [
        ({"moods": {"angry": {"lean_on": "third_fifth"}}}, "third_fifth"),  # the mood's own
        ({"moods": {"calm": {"lean_on": "third_fifth"}}}, "triad"),  # another mood's
        ({"lean_on": "third_fifth"}, "third_fifth"),  # steering's, the mood's file silent (null)
        ({"lean_on": "third_fifth", "moods": {"angry": {"lean_on": "triad"}}}, "triad"),
    ]
    for options, leaned in cases:
        AttributeSteering(OmegaConf.merge(cfg.steering, {"candidates": 1, **options})).generate(job, 2, 1)  # angry
        assert started[-1][-1] == leaned, options


def test_benchmark_judges_every_unit_and_pairs_the_methods(model_store, tmp_path):
    import csv

    from mlflow.tracking import MlflowClient

    from moodgen.bench.folds import fit_fold, piece_folds
    from moodgen.bench.run import fold_features, fold_job, judge_kinds, labelled_phrases, yardsticks
    from moodgen.benchmark import benchmark
    from moodgen.classifier.augment import configured_copies
    from moodgen.classifier.features import HANDCRAFTED, RELATIVE, phrase_features
    from moodgen.generation.bundle import VGMIDI
    from moodgen.generation.pieces import descriptor_proba, mood_name, predicted_moods, score_ids

    out = tmp_path / "bench"
    cfg = compose_entry(
        "benchmark",
        model_store,
        [
            "steering=attributes",  # the configured method, beside the shipped rerank and none
            *TINY_CONDITIONED,
            "compare=[none,rerank]",
            "seeds=2",
            "n=2",
            "duration=3",
            "classifier.n_trials=2",
            f"out_dir={out}",
        ],
        output="bench",
    )
    accuracy = benchmark(cfg)
    units = (out / "units.csv").read_text().splitlines()
    assert len(units) == 1 + 3 * 2 * 2 * 4 * 2  # header + methods x folds x seeds x moods x pieces
    summary = (out / "summary.md").read_text()
    # 3 judges, their agreement, and the two judges a semitone away
    assert summary.count("| *real phrases, first 3 s (judged out of fold)* |") == 6
    assert "| attributes | rerank |" in summary
    assert "| *real phrases* |" in summary  # the musicality yardstick
    assert "Second judge, of another family" in summary and "state_hit" in units[0]
    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    (run,) = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'benchmark'")
    metrics = run.data.metrics
    assert metrics["bench/attributes/accuracy"] == accuracy
    assert metrics["bench/attributes/accuracy_low"] <= accuracy <= metrics["bench/attributes/accuracy_high"]
    assert {"bench/diff/rerank_vs_none/accuracy", "bench/judge/accuracy", "bench/none/copied"} <= metrics.keys()
    second = {
        "bench/attributes/calm/state_accuracy",
        "bench/judge/state_accuracy",
        "bench/diff/rerank_vs_none/state_low",
    }
    assert second <= metrics.keys() and 0 <= metrics["bench/attributes/state_accuracy"] <= 1
    with open(out / "real.csv") as f:  # the yardstick: real excerpts of the pieces' length, each judged once
        real = [
            {**r, **{k: int(r[k]) for k in ("fold", "hit", "state_hit", "panel_hit", "judges_agree", "notes")}}
            | {k: int(r[k]) for k in ("key_stable", "state_key_stable")}
            for r in csv.DictReader(f)
        ]
    bundle = from_run(cfg, cfg.model_run, needs=[VGMIDI])
    phrases = labelled_phrases(bundle, Path(cfg.paths.cache_dir), cfg.duration).phrases
    folds = piece_folds(phrases, cfg.folds, cfg.split_seed)  # each fold's excerpts judged by the other's judges
    assert [sum(r["fold"] == f for r in real) for f in (0, 1)] == [int((folds == f).sum()) for f in (0, 1)]
    assert all(float(r["seconds"]) <= 3.0 + 1e-6 for r in real) and {r["fold"] for r in real} == {0, 1}
    assert metrics["bench/judge/accuracy"] == pytest.approx(yardsticks(real)["accuracy"]["all"])
    assert metrics["bench/judge/calm/state_accuracy"] == pytest.approx(yardsticks(real)["state_accuracy"]["calm"])
    assert metrics["bench/judge/judges_agree"] == pytest.approx(yardsticks(real)["judges_agree"]["all"])
    assert metrics["bench/judge/happy/panel_accuracy"] == pytest.approx(yardsticks(real)["panel_accuracy"]["happy"])
    assert {"bench/attributes/calm/panel_accuracy", "bench/diff/rerank_vs_none/panel_low"} <= metrics.keys()
    with open(out / "units.csv") as f:  # the judges agree where both heard one mood (silence is no mood)
        mine = [r for r in csv.DictReader(f) if r["method"] == "attributes"]
    same = [r["judged"] == r["state_judged"] != "silent" for r in mine]
    assert metrics["bench/attributes/judges_agree"] == pytest.approx(np.mean(same))
    assert all(r["panel_judged"] == r["judged"] for r, agree in zip(mine, same, strict=True) if agree)  # a mean
    assert "The two judges agree" in summary
    # a semitone down and up: on the real excerpts as on the pieces, the share recomputed from the rows
    assert metrics["bench/judge/key_stable"] == pytest.approx(yardsticks(real)["key_stable"]["all"])
    stable = [int(r["state_key_stable"]) for r in mine]
    assert metrics["bench/attributes/state_key_stable"] == pytest.approx(np.mean(stable))
    assert all(r["key_stable"] == "0" for r in mine if r["judged"] == "silent")  # no mood to keep
    assert "A semitone down and up" in summary and "from each piece's estimated tonic (`key_blind`)" in summary
    # key_blind: the judges read pitch classes from the tonic, the ranker and the probe what the run's judge
    # and probe read. Refitted on those features, each fold's judges give real.csv's verdicts; judges fed the
    # absolute shares they did not learn from would not
    assert cfg.key_blind and judge_kinds(cfg) == (RELATIVE, "fused_relative_mean_hidden")
    labelled = labelled_phrases(bundle, Path(cfg.paths.cache_dir), cfg.duration)

    def of(kind):
        return phrase_features(kind, bundle.net, bundle.tokenizer, labelled.corpus, Path(cfg.paths.cache_dir))

    features = fold_features(cfg, bundle, labelled, Path(cfg.paths.cache_dir), neurons=False)
    kinds = {"probe": cfg.classifier.features, "ranker": HANDCRAFTED}
    kinds |= dict(zip(("judge", "state_judge"), judge_kinds(cfg), strict=True))
    for model, kind in kinds.items():
        assert np.array_equal(getattr(features, model), of(kind)), model
    # the probe and the ranker learn from the phrases' classifier.augment copies too, as the stage trains the run's
    copies, source = configured_copies(bundle.tokenizer, [p.path for p in labelled.phrases], cfg.classifier)
    assert cfg.classifier.augment and len(source) > len(labelled.phrases)
    for model in ("probe", "ranker"):
        copied = phrase_features(kinds[model], bundle.net, bundle.tokenizer, copies, Path(cfg.paths.cache_dir))
        assert np.array_equal(getattr(features, f"{model}_copies").x, copied), model
        assert np.array_equal(getattr(features, f"{model}_copies").source, source), model
    for fold in (0, 1):
        models = fit_fold(fold, folds, features, labelled.moods, cfg.classifier, cfg.seed)
        excerpts = [labelled.scores[i] for i in np.flatnonzero(folds == fold)]
        second = dataclasses.replace(bundle.judges, probe=models.state_judge, features=judge_kinds(cfg)[1])
        heard = descriptor_proba(models.judge, excerpts, RELATIVE)
        state_heard = second.probe_proba([score_ids(bundle.tokenizer, s) for s in excerpts])
        mine = [r for r in real if r["fold"] == fold]
        assert [mood_name(m) for m in predicted_moods(heard)] == [r["judged"] for r in mine]
        assert [mood_name(m) for m in predicted_moods(state_heard)] == [r["state_judged"] for r in mine]
        # the fold's attribute LM is kept with the sequences it learned from, the fold's phrases among them, and
        # fine-tuned anew once they are not what the data gives now (a change no setting names)
        job = fold_job(cfg, bundle, models, labelled, bundle.conditioning)
        steering = AttributeSteering(cfg.steering)
        cached = job.cache_dir / "attributes.pt"
        saved = torch.load(cached, weights_only=True)
        assert saved["made_from"] == sequences_fingerprint(steering.training_sequences(job))
        torch.save({**saved, "made_from": "other sequences"}, cached)
        steering.load_or_finetune(job)
        assert torch.load(cached, weights_only=True)["made_from"] == saved["made_from"]
    assert "Both judges as one panel" in summary and "panel_hit" in units[0]
    assert {"bench/attributes/overlap", "bench/attributes/calm/diversity", "bench/real/unique_4bar"} <= metrics.keys()
    assert 0 < metrics["bench/attributes/overlap"] <= 1 and metrics["bench/attributes/alive"] >= 0
    areas = [metrics[f"bench/attributes/overlap/{feature}"] for feature in FEATURES]  # each feature's, too
    assert np.isclose(np.mean(areas), metrics["bench/attributes/overlap"])  # the overlap is their mean
    none_pieces = [sorted((out / "pieces" / "none" / "fold0" / "seed0").glob(f"{m}_*.mid")) for m in MOODS]
    assert len({tuple(p.read_bytes() for p in files) for files in none_pieces}) == 4  # no mood shares a stream


def test_benchmark_fits_each_methods_fold_lms_again_and_carries_the_fits_spread(model_store, tmp_path):
    """`fits=2`: each fold's attribute LM fine-tuned with steering.seed 0 and 1, both kept; every fit draws pieces
    of its own (a method that fits nothing too); units, per-fit levels and the interval over fits from the rows."""
    import csv

    from mlflow.tracking import MlflowClient

    from moodgen.bench.run import fit_settings, fold_cache
    from moodgen.bench.stats import paired_difference
    from moodgen.benchmark import benchmark

    out = tmp_path / "bench"
    cfg = compose_entry(
        "benchmark",
        model_store,
        [
            "steering=attributes",
            *TINY_CONDITIONED,
            "compare=[none]",
            "fits=2",
            "seeds=1",
            "n=2",
            "duration=3",
            "classifier.n_trials=2",
            f"out_dir={out}",
        ],
        output="bench",
    )
    benchmark(cfg)
    with open(out / "units.csv") as f:
        units = list(csv.DictReader(f))
    assert len(units) == 2 * 2 * 2 * 1 * 4 * 2  # methods x folds x fits x seeds x moods x pieces
    assert {(r["fold"], r["fit"]) for r in units} == {(f, r) for f in "01" for r in "01"}
    bundle = from_run(cfg, cfg.model_run)
    for fold in (0, 1):  # the fold's LM of each fit's settings, kept side by side
        kept = {torch.load(f, weights_only=True)["key"] for f in fold_cache(cfg, bundle, fold).glob("attributes*.pt")}
        asked = {AttributeSteering(fit_settings(cfg.steering, fit)).settings_key() for fit in (0, 1)}
        assert len(asked) == 2 and asked <= kept
    for method in ("none", "attributes"):  # a fit's pieces are new music, not fit 0's again
        fits = [
            (out / "pieces" / method / "fold0" / f"fit{fit}" / "seed0" / "calm_0.mid").read_bytes() for fit in (0, 1)
        ]
        assert fits[0] != fits[1], method
    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    runs = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'benchmark'")
    metrics = next(r for r in runs if "bench/attributes/fit1/accuracy" in r.data.metrics).data.metrics
    for fit in (0, 1):  # each fit's level, from its rows
        mine = [r for r in units if r["method"] == "attributes" and r["fit"] == str(fit)]
        for mood in MOODS:
            hits = [int(r["state_hit"]) for r in mine if r["mood"] == mood]
            assert metrics[f"bench/attributes/fit{fit}/{mood}/state_accuracy"] == pytest.approx(np.mean(hits))
    # the interval over fits: each (fold, fit)'s mean unit difference one value, 4 clusters
    diff: dict[tuple, list[float]] = {}
    for unit in {(r["fold"], r["fit"], r["mood"]) for r in units}:
        share = {
            m: np.mean([int(r["hit"]) for r in units if (r["fold"], r["fit"], r["mood"]) == unit and r["method"] == m])
            for m in ("attributes", "none")
        }
        diff.setdefault(unit[:2], []).append(share["attributes"] - share["none"])
    means = np.array([np.mean(d) for d in diff.values()])
    by_hand = paired_difference(means, np.zeros(4))
    assert metrics["bench/diff/attributes_vs_none/fit_low"] == pytest.approx(by_hand["low"])
    assert metrics["bench/diff/attributes_vs_none/fit_high"] == pytest.approx(by_hand["high"])
    summary = (out / "summary.md").read_text()
    assert "2 folds x 2 fits x 1 seeds" in summary and "## Each fit's levels" in summary
    assert "| attributes | 1 (1) |" in summary and "| none | *spread (max − min)* |" in summary


def test_the_benchmark_compares_pieces_with_real_phrases_of_their_length(model_store, tmp_path):
    """Whole phrases run ~100 s against the pieces' `duration`: note counts and repeats would differ by length."""
    from pathlib import Path

    from moodgen.bench.run import labelled_phrases
    from moodgen.generation.bundle import VGMIDI, from_run

    cfg = compose_entry("benchmark", model_store, ["duration=3"], output="bench")
    bundle = from_run(cfg, cfg.model_run, needs=[VGMIDI])
    whole = labelled_phrases(bundle, Path(cfg.paths.cache_dir), None).scores
    cut = labelled_phrases(bundle, Path(cfg.paths.cache_dir), cfg.duration).scores
    assert max(s.to("second").end() for s in whole) > 3.5  # the fixture's phrases are longer than that
    assert all(s.to("second").end() <= 3.0 + 1e-6 for s in cut)

    def notes(score, by=np.inf):  # (onset in seconds, pitch) of the notes that have ended by `by`
        seconds = score.to("second")
        return sorted((round(n.time, 3), n.pitch) for t in seconds.tracks for n in t.notes if n.end <= by + 1e-3)

    assert [notes(s) for s in cut] == [notes(s, 3.0) for s in whole]  # each phrase's own first 3 s


def test_concurrent_generations_into_one_out_dir_keep_every_piece(model_store, tmp_path):
    """Two `generate` processes at once, same out_dir and seed: both recorded, no piece overwritten."""
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment], max_results=1000)}
    out = tmp_path / "shared"
    args = ["mood=calm", "n=2", "duration=3", "steering=none", "seed=0", f"out_dir={out}"]
    args.append(f"paths.root_dir={model_store}")
    procs = [
        subprocess.Popen([sys.executable, "-m", "moodgen.generate", *args], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    sidecars = list((out / "calm").glob("*.json"))
    assert sorted(p.stem for p in sidecars) == ["calm_0", "calm_0-2", "calm_1", "calm_1-2"]
    for sidecar in sidecars:  # each name's files are one piece's: its sidecar names its own midi
        piece = json.loads(sidecar.read_text())
        assert piece["name"] == sidecar.stem and piece["files"]["midi"] == str(sidecar.with_suffix(".mid"))
    new = [r for r in client.search_runs([experiment], max_results=1000) if r.info.run_id not in before]
    assert len(new) == 2 and {r.info.status for r in new} == {"FINISHED"}
    logged = [sorted(a.path for a in client.list_artifacts(r.info.run_id, "pieces/calm")) for r in new]
    names = [Path(path).stem for paths in logged for path in paths if path.endswith(".mid")]
    assert sorted(names) == ["calm_0", "calm_0-2", "calm_1", "calm_1-2"]  # each run logged its own two


def sidecars_of(out: Path, mood: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / mood).glob(f"{mood}_*.json"))]


def midi_bytes(pieces: list[dict]) -> list[bytes]:
    return [Path(p["files"]["midi"]).read_bytes() for p in pieces]


def test_fresh_seed_by_default_printed_recorded_and_repeatable(model_store, tmp_path, capsys):
    """`generate mood=calm` twice once gave byte-identical pieces: seed=null (the default) draws a
    fresh seed per call, prints it and records it; seed=<it> makes the same pieces again."""
    from mlflow.tracking import MlflowClient

    assert compose_entry("generate", model_store, ["mood=calm"]).seed is None  # conf/generate.yaml
    base = ["mood=calm", "n=3", "duration=6", "steering=none", "seed=null"]
    for name in ("first", "second"):
        generate(compose_generate(model_store, [*base, f"out_dir={tmp_path / name}"]))
    printed = capsys.readouterr().out
    first, second = sidecars_of(tmp_path / "first", "calm"), sidecars_of(tmp_path / "second", "calm")
    seeds = [first[0]["seed"], second[0]["seed"]]
    assert all(isinstance(s, int) for s in seeds) and seeds[0] != seeds[1]
    assert {p["seed"] for p in first} == {seeds[0]} and {p["seed"] for p in second} == {seeds[1]}
    # new pieces each call; the tiny model samples a silent piece now and then (notes: 0), and empty files
    # are alike whatever the seed, so only the sounding ones are compared (6 s: about 1 in 25 is silent)
    sounding = [[m for m, p in zip(midi_bytes(call), call, strict=True) if p["notes"]] for call in (first, second)]
    assert all(sounding) and set(sounding[0]).isdisjoint(sounding[1])
    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    for seed in seeds:
        assert f"seed {seed}: make these again with seed={seed} model_run=" in printed
        (run,) = client.search_runs([experiment], filter_string=f"tags.`moodgen.seed` = '{seed}'")
        assert run.data.params["seed"] == str(seed)  # the run's param holds the drawn seed, not None
    # what the user plays, where it is, and how to open it
    for piece in first:
        played = piece["files"].get("wav") or piece["files"]["midi"]
        assert f"\n{played}  (" in f"\n{printed}" and Path(played).is_file()
    folder = (tmp_path / "first" / "calm").resolve()
    assert f"moodgen: 3 calm piece(s) in {folder}\n" in printed
    assert f"moodgen: listen: {open_command(folder)}\n" in printed
    # the same seed: byte-identical pieces
    generate(compose_generate(model_store, [*base[:-1], f"seed={seeds[0]}", f"out_dir={tmp_path / 'again'}"]))
    again = sidecars_of(tmp_path / "again", "calm")
    assert midi_bytes(again) == midi_bytes(first)
    assert [p.get("judge_proba") for p in again] == [p.get("judge_proba") for p in first]


def test_open_command_per_platform(tmp_path):
    folder = tmp_path / "my pieces"
    assert open_command(folder, "linux") == f"xdg-open '{folder}'"
    assert open_command(folder, "darwin") == f"open '{folder}'"
    assert open_command(folder, "win32") == f'explorer "{folder}"'


@pytest.mark.parametrize("steering", ["attributes", "none"])  # the default; the one where only the streams differ
def test_one_seed_makes_sixteen_distinct_pieces_over_the_four_moods(model_store, tmp_path, steering):
    """16 pieces over the four moods with one seed were once only 10 distinct files (calm_2 = depressed_1)."""
    for mood in MOODS:  # one command per mood, as a user runs them
        overrides = [f"mood={mood}", "n=4", "duration=3", "seed=5", f"steering={steering}", *TINY_CONDITIONED]
        generate(compose_generate(model_store, [*overrides, f"out_dir={tmp_path}"]))
    files = sorted(tmp_path.glob("*/*.mid"))
    assert len(files) == 16
    # the tiny model samples a silent piece now and then (its sidecar says notes: 0): empty files are alike
    sounding = [f for f in files if json.loads(f.with_suffix(".json").read_text())["notes"]]
    assert len(sounding) >= 12
    assert len({f.read_bytes() for f in sounding}) == len(sounding)


@pytest.mark.parametrize(
    ("overrides", "needs"),
    [
        (["steering=none"], []),
        (["steering=rerank"], ["a mood classifier"]),
        (["steering=rerank", "steering.candidates=1"], []),
        (["steering=neurons"], ["sentiment neurons", "a mood classifier"]),
        (["steering=conditioned"], ["VGMIDI's labelled phrases", "a mood classifier"]),
        (["steering=attributes"], ["VGMIDI's labelled phrases", "a mood judge"]),  # ranks by descriptors
        (
            ["steering=conditioned", "steering.candidates=4", "steering.rank_by=descriptors"],
            ["VGMIDI's labelled phrases", "a mood classifier", "a mood judge"],  # the probe pseudo-labels
        ),
        (["steering=attributes", "steering.candidates=1"], ["VGMIDI's labelled phrases"]),
        (["steering=attributes", "steering.rank_by=probe"], ["VGMIDI's labelled phrases", "a mood classifier"]),
    ],
)
def test_what_each_steering_needs_of_a_model_run(tmp_path, overrides, needs):
    from moodgen.generation.bundle import steering_needs

    steering = compose_generate(tmp_path, ["mood=calm", *overrides]).steering
    assert [need.what for need in steering_needs(steering)] == needs


def test_latest_passes_over_newer_runs_without_what_the_steering_needs(model_store, tmp_path, capsys):
    """A quick classifier=none run after a good model once took `latest`, and steering=conditioned
    failed: now it is passed over (and said so) for steerings that need a classifier, taken for none."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from moodgen.generation.bundle import REGISTERED_MODEL
    from moodgen.tracking import CHECKPOINT_TAG, RunNeed

    client = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("moodgen").experiment_id
    runs = client.search_runs([experiment], filter_string="tags.`moodgen.entry_point` = 'train'")
    trained = next(r for r in runs if r.data.params.get("classifier.name") != "none")
    checkpoint = trained.data.tags[CHECKPOINT_TAG]
    # a newer finished run with the same LM and no classifier stage, as `train classifier=none` leaves
    tags = {"moodgen.entry_point": "train", CHECKPOINT_TAG: checkpoint, "data.source": "vgmidi"}
    newer = client.create_run(experiment, tags=tags, run_name="quick classifier=none").info.run_id
    client.log_param(newer, "classifier.name", "none")
    client.log_artifact(newer, client.download_artifacts(trained.info.run_id, checkpoint, str(tmp_path)), "checkpoints")
    client.log_artifacts(newer, client.download_artifacts(trained.info.run_id, "tokenizer", str(tmp_path)), "tokenizer")
    client.set_terminated(newer, "FINISHED")
    try:  # the champion alias (another test may set it) would win over both
        champion = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
        client.delete_registered_model_alias(REGISTERED_MODEL, "champion")
    except MlflowException:
        champion = None
    try:
        for steering, need in (("conditioned", "mood classifier"), ("attributes", "mood judge")):
            bundle = from_run(compose_generate(model_store, ["mood=calm", f"steering={steering}"]), "latest")
            assert bundle.run_id == trained.info.run_id
            skipped = f"1 newer run has no {need}: classifier=none"
            assert bundle.picked == f"newest with VGMIDI's labelled phrases and a {need}; {skipped}"
        bundle = from_run(compose_generate(model_store, ["mood=calm", "steering=none"]), "latest")
        assert bundle.run_id == newer and bundle.judges.probe is None  # a checkpoint is all it needs
        assert bundle.picked == "the newest finished training run"
        # generate says which run it took and why
        small = ["mood=calm", "n=1", "duration=2", f"out_dir={tmp_path / 'pieces'}"]
        generate(compose_generate(model_store, [*small, "steering=none"]))
        generate(compose_generate(model_store, [*small, "steering=rerank", "steering.candidates=2"]))
        printed = capsys.readouterr().out
        assert f"moodgen: model run {newer} (the newest finished training run)" in printed
        skipped = "1 newer run has no mood classifier: classifier=none"  # rerank ranks by the probe
        assert f"moodgen: model run {trained.info.run_id} (newest with a mood classifier; {skipped})" in printed
        # no run has it: one line naming what is needed and the newest run's setting
        unicorn = RunNeed("a unicorn", lambda client, run: False, lambda run: "unicorns=0")
        line = r"has a unicorn, which steering=magic needs \(the newest, \w{8}, has none: unicorns=0\); use steering="
        with pytest.raises(MoodgenError, match=line):
            from_run(compose_generate(model_store, ["mood=calm"]), "latest", needs=[unicorn], purpose="steering=magic")
    finally:
        client.delete_run(newer)
        if champion is not None:
            client.set_registered_model_alias(REGISTERED_MODEL, "champion", champion.version)
