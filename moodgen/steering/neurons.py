"""`steering=neurons`: the report's method done right — evolve the sentiment neurons' values.

A genetic algorithm searches, per mood, values for the LM units that the L1 probe kept for that
mood. Genes are floats in the probe's standardised units, written (as mean + gene * scale) into
the top layer's cell state after every sampled token. Fitness is the probe's mean probability of
the mood over a batch of pieces, read from the LM's own states on the generated tokens with no
clamp applied, so a gene only scores by changing the music. Unlike the released GA code, genes
stay floats, elitism copies whole individuals, and the probe's C was chosen on training rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..data.cache import write_atomic
from ..errors import MoodgenError
from ..moods import MOODS
from .base import GenerationJob, Steering, sampling_stream, settings_home, settings_key

log = logging.getLogger("moodgen")
SETTINGS = (
    "population",
    "generations",
    "elite",
    "mutation_rate",
    "mutation_std",
    "crossover_rate",
    "fitness_pieces",
    "fitness_seconds",
    "gene_range",
    "seed",
)
DESIGN = "GA streams per (seed, mood)"  # what the settings cannot say; changed: genes evolved before are evolved again


def neuron_set(neurons: dict | None, mood: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit indices, mean, scale) of the mood's sentiment neurons; all of them if the mood has none."""
    if not neurons:
        raise MoodgenError("steering=neurons needs the model run's L1 steering probe (classifier.steering_neurons)")
    if not neurons.get("neurons"):
        raise MoodgenError(
            "the model run's L1 steering probe kept no neurons (its C is too small); "
            "use steering=rerank, or retrain with a higher classifier.log2_c_min"
        )
    entries = [e for e in neurons["neurons"] if e["class"] == MOODS[mood]] or neurons["neurons"]
    unique = {e["neuron"]: e for e in entries}
    idx = np.array(sorted(unique))
    return idx, np.array([unique[i]["mean"] for i in idx]), np.array([unique[i]["scale"] for i in idx])


def clamp_hook(units: np.ndarray, values: np.ndarray):
    """Write values [rows, k] into the top layer's cell state at `units`, after every step."""
    index = torch.as_tensor(units, dtype=torch.long)
    fixed = torch.as_tensor(values, dtype=torch.float32)

    def hook(state):
        h, c = state[-1]
        c = c.clone()
        c[:, index] = fixed.to(c.dtype)
        return [*state[:-1], (h, c)]

    return hook


class EvolvedNeurons(Steering):
    def settings_key(self, units: np.ndarray, job: GenerationJob) -> str:
        """Genes fit the GA settings, the units and the sampling they were evolved under."""
        return settings_key(
            self.cfg, SETTINGS, design=DESIGN, units=units.tolist(), temperature=job.temperature, top_p=job.top_p
        )

    def genes(self, job: GenerationJob, mood: int) -> np.ndarray:
        """The evolved values for this mood: from the model run's cache, else evolved now (and cached).

        The cache file keeps the first genes evolved there (a run's: the train stage's); genes of other settings go
        beside it (`settings_home`), so trying a GA setting never replaces a run's genes, and the benchmark's fits
        (another `steering.seed` each) keep one file each instead of evolving over one another.
        """
        units, mean, scale = neuron_set(job.neurons, mood)
        key = self.settings_key(units, job)
        if job.cache_dir is None:
            return np.array(self.evolve(job, mood, units, mean, scale)["values"])
        path = job.cache_dir / f"neurons_{MOODS[mood]}.json"
        first = _saved_genes(path)
        where = settings_home(path, key, first)
        saved = first if where == path else _saved_genes(where)
        if saved is not None and saved.get("key") == key:
            return np.array(saved["values"])
        result = self.evolve(job, mood, units, mean, scale)
        record = {"key": key, "mood": MOODS[mood], "units": units.tolist(), **result}
        write_atomic(where, lambda handle: handle.write(json.dumps(record, indent=2).encode()))
        return np.array(result["values"])

    def evolve(self, job: GenerationJob, mood: int, units, mean, scale) -> dict:
        cfg = self.cfg
        if job.judges.probe is None:
            raise MoodgenError("steering=neurons needs the model run's mood classifier; use steering=none")
        # fixed, not the pieces' seed: one cached result per setting. Streams of their own per (seed, mood): with
        # seed + mood, seed 1's depressed GA drew seed 0's calm one's samples (the benchmark's fits use seed, seed + 1).
        # The GA draws its own samples, so generation after it matches generation from cached genes.
        job = dataclasses.replace(job, generator=sampling_stream(cfg.seed, mood))

        def fitness(genes: np.ndarray) -> np.ndarray:  # [P, k] -> [P]
            values = np.repeat(mean + genes * scale, cfg.fitness_pieces, axis=0)  # [P*B, k]
            pieces = job.sample(len(values), clamp_hook(units, values), seconds=cfg.fitness_seconds)
            proba = np.nan_to_num(job.judges.probe_proba(pieces)[:, mood], nan=0.0)  # silent: no mood
            return proba.reshape(len(genes), cfg.fitness_pieces).mean(1)

        start = time.perf_counter()
        result = genetic_search(fitness, len(units), cfg, np.random.default_rng([cfg.seed, mood]), MOODS[mood])
        best = np.array(result["genes"])
        return {**result, "values": (mean + best * scale).tolist(), "seconds": time.perf_counter() - start}

    def generate(self, job: GenerationJob, mood: int, n: int) -> list[list[int]]:
        units, _, _ = neuron_set(job.neurons, mood)
        values = np.repeat(self.genes(job, mood)[None], n, axis=0)
        return job.sample(n, clamp_hook(units, values))


def _saved_genes(path: Path) -> dict | None:
    """The genes cached at `path`; None where there are none, or the file is damaged (a cache miss, one line)."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s is not readable genes (%s): evolving anew", path, exc)
        return None
    if not isinstance(saved, dict):
        log.warning("%s is not readable genes (not a JSON object): evolving anew", path)
        return None
    return saved


def genetic_search(fitness, n_genes: int, cfg, rng: np.random.Generator, label: str = "") -> dict:
    """Evolve genes in [-gene_range, gene_range]^n_genes; return the best individual ever found.

    Fitness is noisy (sampled pieces), so the last generation's top score is partly luck: every
    evaluated individual is remembered, the `elite + 1` best by their mean recorded score are
    evaluated once more on fresh pieces, and the best of that fresh evaluation wins (its score is
    the one reported).
    """
    population = rng.uniform(-cfg.gene_range, cfg.gene_range, (cfg.population, n_genes))
    seen_genes, seen_scores, history = [], [], []

    def evaluate(genes: np.ndarray) -> np.ndarray:
        scores = fitness(genes)
        seen_genes.extend(genes)
        seen_scores.extend(scores)
        return scores

    def tournament(scores: np.ndarray) -> np.ndarray:
        picks = rng.choice(len(scores), size=min(3, len(scores)), replace=False)
        return population[picks[np.argmax(scores[picks])]]

    scores = evaluate(population)
    for generation in range(cfg.generations):
        order = np.argsort(-scores)
        history.append({"generation": generation, "best": float(scores[order[0]]), "mean": float(scores.mean())})
        log.info(
            "GA %s generation %d: best fitness %.3f, mean %.3f", label, generation, scores[order[0]], scores.mean()
        )
        children = [population[i].copy() for i in order[: cfg.elite]]  # elitism copies individuals
        while len(children) < cfg.population:
            a, b = tournament(scores), tournament(scores)
            child = np.where(rng.random(n_genes) < cfg.crossover_rate, b, a)
            mutate = rng.random(n_genes) < cfg.mutation_rate
            child = child + mutate * rng.normal(0.0, cfg.mutation_std, n_genes)
            children.append(np.clip(child, -cfg.gene_range, cfg.gene_range))
        population = np.stack(children)
        scores = evaluate(population)
    history.append({"generation": cfg.generations, "best": float(scores.max()), "mean": float(scores.mean())})
    finalists, recorded = distinct_best(np.stack(seen_genes), np.array(seen_scores), cfg.elite + 1)
    again = fitness(finalists)  # fresh pieces: the luck that made a finalist does not pick the winner
    winner = int(np.argmax(again))
    log.info("GA %s: best of %d finalists re-evaluated, fitness %.3f", label, len(finalists), again[winner])
    return {
        "genes": finalists[winner].tolist(),
        "fitness": float(again[winner]),
        "fitness_recorded": float(recorded[winner]),
        "history": history,
    }


def distinct_best(genes: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best distinct individuals by their mean score (an elite scored in several generations counts once)."""
    groups: dict[bytes, list[int]] = {}
    for i, row in enumerate(genes):
        groups.setdefault(row.tobytes(), []).append(i)
    firsts = np.array([rows[0] for rows in groups.values()])
    means = np.array([scores[rows].mean() for rows in groups.values()])
    top = np.argsort(-means, kind="stable")[:k]
    return genes[firsts[top]], means[top]
