"""A trained model ready to generate: LM, tokenizer, mood judges and sentiment neurons.

Built from a pipeline's memory right after training, or from a training run in MLflow.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..steering.rerank import ranks_by_descriptors
from ..tracking import RunNeed
from .pieces import Judges

log = logging.getLogger("moodgen")
REGISTERED_MODEL = "moodgen"  # `champion` is an alias on a version of this registered model


@dataclass
class ModelBundle:
    net: torch.nn.Module
    tokenizer: object
    judges: Judges
    neurons: dict | None
    steering_dir: Path  # evolved genes and the mood-conditioned LM, cached per model run
    run_id: str | None = None
    run_name: str = ""
    conditioning: Callable[[], object] | None = None  # steering=conditioned's training data, on demand
    data: Callable[[], tuple[object, Path]] | None = None  # (data config, VGMIDI root) of the run, on demand
    picked: str = ""  # why this run: "newest with a mood classifier; 1 newer run has no mood classifier: ..."


def frame(tokenizer) -> tuple[int, int]:
    from ..tokenizers import bos_id, eos_id

    return bos_id(tokenizer), eos_id(tokenizer)


def from_context(ctx) -> ModelBundle:
    from ..steering.conditioned import conditioning_source

    features = ctx.cfg.classifier.features
    judge = ctx.classifiers.get("mood4/handcrafted")
    judges = Judges(
        net=ctx.module.net.cpu(),
        probe=ctx.classifiers.get(f"mood4/{features}"),
        features=features,
        judge=judge,
        ranker=judge,
        frame=frame(ctx.tokenizer),
        tokenizer=ctx.tokenizer,
    )

    def data():
        return ctx.cfg.data, ctx.files.root

    vgmidi = ctx.files.summary.get("source") == "vgmidi"
    conditioning = None
    if vgmidi:
        conditioning = conditioning_source(ctx.cfg.data, ctx.files.root, ctx.tokenizer, Path(ctx.cfg.paths.cache_dir))
    return ModelBundle(
        ctx.module.net.cpu(),
        ctx.tokenizer,
        judges,
        ctx.neurons,
        ctx.output_dir / "steering",
        ctx.tracker.run_id,
        conditioning=conditioning,
        data=data if vgmidi else None,
    )


def artifact_exists(client, run_id: str, path: str) -> bool:
    folder = path.rpartition("/")[0] or None
    return any(a.path == path for a in client.list_artifacts(run_id, folder))


def probe_path(run) -> str:
    """Where a training run keeps its mood probe (the LM-state classifier that from_run loads)."""
    return f"classifier/mood4/{run.data.params.get('classifier.features', 'final_cell')}/model"


def classifier_setting(run) -> str:
    """The run's option that left its mood classifier out: 'classifier=none', 'data=folder', ..."""
    params, tags = run.data.params, run.data.tags
    if params.get("classifier.name") == "none":
        return "classifier=none"
    if tags.get("data.source", "vgmidi") != "vgmidi":
        return f"data={params.get('data.name', tags.get('data.source'))}"
    targets = params.get("classifier.targets")
    if targets is not None and "mood4" not in targets:
        return f"classifier.targets={targets}"
    return ""


def neurons_setting(run) -> str:
    if run.data.params.get("classifier.steering_neurons") in ("False", "false"):
        return "classifier.steering_neurons=false"
    if run.data.metrics.get("clf/steering/neurons") == 0:
        return "its L1 probe kept none"
    return classifier_setting(run)


def has_neurons(client, run) -> bool:
    if run.data.metrics.get("clf/steering/neurons", 1) <= 0:  # the L1 probe kept none: nothing to evolve
        return False
    return artifact_exists(client, run.info.run_id, "classifier/steering/neurons.json")


def data_setting(run) -> str:
    return f"data={run.data.params.get('data.name', run.data.tags.get('data.source', '?'))}"


PROBE = RunNeed(
    "a mood classifier",
    lambda client, run: artifact_exists(client, run.info.run_id, probe_path(run)),
    classifier_setting,
)
JUDGE = RunNeed(
    "a mood judge",
    lambda client, run: artifact_exists(client, run.info.run_id, "classifier/mood4/handcrafted/model"),
    classifier_setting,
)
NEURONS = RunNeed("sentiment neurons", has_neurons, neurons_setting)
VGMIDI = RunNeed(
    "VGMIDI's labelled phrases", lambda client, run: run.data.tags.get("data.source") == "vgmidi", data_setting
)


def steering_needs(steering) -> list[RunNeed]:
    """What a model run must hold for this steering (as the steering methods raise when it lacks it):
    none only the checkpoint; rerank (candidates > 1) the mood classifier; neurons the sentiment
    neurons and the classifier; conditioned VGMIDI's phrases and the classifier; attributes VGMIDI's
    phrases, and the classifier when it reranks candidates (candidates > 1; the hand-crafted judge with
    rank_by=descriptors)."""
    name, candidates = steering.name, steering.get("candidates", 1) or 1
    needs = []
    if name in ("conditioned", "attributes"):
        needs.append(VGMIDI)
    if name == "neurons":
        needs.append(NEURONS)
    ranks, by_descriptors = name != "none" and candidates > 1, ranks_by_descriptors(steering)
    if name in ("conditioned", "neurons") or (ranks and not by_descriptors):
        needs.append(PROBE)
    if by_descriptors:
        needs.append(JUDGE)
    return needs


def run_needs(cfg) -> tuple[list[RunNeed], str]:
    """(needs, what needs them) of a command's config: its steering's, else (evaluate) the mood judge."""
    steering = cfg.get("steering")
    if steering is None:
        return [JUDGE], "the mood columns"
    return steering_needs(steering), f"steering={steering.name}"


def needs_fix(purpose: str) -> str:
    """What to do when no run has what `purpose` needs (tracking.newest_train_run's last words)."""
    other = "use steering=none, " if purpose.startswith("steering=") else ""
    return f"{other}train a run with it (python -m moodgen.train), or pick one with model_run=<run id>"


def resolve_model_run(cfg, ref: str, needs: list[RunNeed] | None = None, purpose: str = ""):
    """(client, run, why): `champion` (the registered alias), an explicit run id, or `latest` (champion
    when it is set, else the newest finished training run holding what `needs` name; by default
    what the config's steering needs)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..errors import MoodgenError
    from ..tracking import find_train_run, newest_train_run, tracking_uri

    if needs is None:
        needs, purpose = run_needs(cfg)
    client = MlflowClient(tracking_uri=tracking_uri(cfg))
    if ref in ("champion", "latest"):
        try:
            version = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
            found = find_train_run(cfg, version.run_id, option="model_run")  # the same checks as a run id
            why = f"the registered {REGISTERED_MODEL!r} champion, version {version.version}"
            log.debug("model run %s (%s)", version.run_id, why)  # the entry points print it
            return (*found, why)
        except MlflowException:
            if ref == "champion":
                raise MoodgenError(
                    f"no registered model {REGISTERED_MODEL!r} with alias 'champion'; use model_run=latest or a run id"
                ) from None
        return newest_train_run(cfg, needs, purpose, needs_fix(purpose))
    return (*find_train_run(cfg, ref, option="model_run"), f"model_run={ref}")


def from_run(cfg, ref: str, needs: list[RunNeed] | None = None, purpose: str = "") -> ModelBundle:
    """The run's LM and classifiers, loaded so that no file of the run can run code (moodgen.artifacts).

    `latest` is the newest finished training run with what `needs` name (default: what the config's
    steering needs, see steering_needs); the bundle's `picked` says why it is that run."""
    from mlflow.exceptions import MlflowException

    from ..artifacts import CLASSIFIER_FIX, load_classifier, load_lm_checkpoint
    from ..errors import MoodgenError
    from ..tokenizers import load_tokenizer
    from ..tracking import CHECKPOINT_TAG

    client, run, picked = resolve_model_run(cfg, ref, needs, purpose)
    run_id = run.info.run_id
    folder = Path(tempfile.mkdtemp(prefix=f"moodgen-model-{run_id[:8]}-"))
    stored = run.data.tags[CHECKPOINT_TAG]
    checkpoint = client.download_artifacts(run_id, stored, str(folder))
    fix = "retrain with python -m moodgen.train, or use another run (model_run=<run id>)"
    net = load_lm_checkpoint(checkpoint, name=f"{stored} of run {run_id}", fix=fix).net.eval()
    tokenizer = load_tokenizer(Path(client.download_artifacts(run_id, "tokenizer", str(folder))))
    logged = {a.path for a in client.list_artifacts(run_id, "classifier")}
    settings = {}
    if "classifier/settings.json" in logged:
        settings = json.loads(
            Path(client.download_artifacts(run_id, "classifier/settings.json", str(folder))).read_text()
        )
    features = settings.get("features", "final_cell")

    def model(path: str):  # downloaded through this store's client: runs:/ URIs follow the global store
        if path not in logged_models:  # absent: generation goes on without it
            return None
        name = f"{path} of run {run_id}"
        try:
            local = client.download_artifacts(run_id, path, str(folder))
        except (MlflowException, OSError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MoodgenError(f"classifier {name} cannot be read ({reason}); {CLASSIFIER_FIX}") from None
        return load_classifier(local, name=name)  # refused or damaged: one line, never a silent None

    logged_models = {
        f"classifier/mood4/{kind}/model"
        for kind in (features, "handcrafted")
        if any(
            a.path == f"classifier/mood4/{kind}/model"
            for a in client.list_artifacts(run_id, f"classifier/mood4/{kind}")
        )
    }

    judge = model("classifier/mood4/handcrafted/model")
    judges = Judges(
        net=net,
        probe=model(f"classifier/mood4/{features}/model"),
        features=features,
        judge=judge,
        ranker=judge,
        frame=frame(tokenizer),
        tokenizer=tokenizer,
    )
    neurons = None
    if "classifier/steering" in logged:
        neurons = json.loads(
            Path(client.download_artifacts(run_id, "classifier/steering/neurons.json", str(folder))).read_text()
        )
    steering_dir = folder / "steering"
    if any(a.path == "steering" for a in client.list_artifacts(run_id)):
        client.download_artifacts(run_id, "steering", str(folder))
    if judges.probe is None:
        log.warning("model run %s has no mood classifier: only steering=none works with it", run_id)
    data = run_data(cfg, client, run, folder)
    return ModelBundle(
        net,
        tokenizer,
        judges,
        neurons,
        steering_dir,
        run_id,
        run.info.run_name,
        conditioning_of(cfg, data, tokenizer),
        data,
        picked,
    )


def run_data(cfg, client, run, folder: Path) -> Callable[[], tuple[object, Path]] | None:
    """(the model run's data config, its VGMIDI root on this machine), resolved on first use.

    The root: `data_root=`, else $MOODGEN_DATA_DIR, else the run's own copy if this machine has it,
    else the user cache (downloaded when the run allowed downloads). None for other data sources.
    """
    if run.data.tags.get("data.source") != "vgmidi":
        return None

    @functools.cache  # the run's config is downloaded once, however often the data is asked for
    def load():
        from omegaconf import OmegaConf

        from ..config import DataConfig
        from ..data import vgmidi

        lm_cfg = OmegaConf.load(client.download_artifacts(run.info.run_id, "config/config.yaml", str(folder)))
        recorded = run.data.tags.get("data.root")  # resolved, absolute, on the training machine
        here = recorded if recorded and Path(recorded).is_dir() else None
        root = vgmidi.resolve_root(
            cfg.get("data_root") or os.environ.get(vgmidi.ENV_VAR) or here, download=bool(lm_cfg.data.download)
        )
        # on today's schema: a run recorded before an option existed gets its default
        return OmegaConf.merge(OmegaConf.structured(DataConfig), lm_cfg.data), root

    return load


def conditioning_of(cfg, data: Callable[[], tuple[object, Path]] | None, tokenizer) -> Callable[[], object] | None:
    """steering=conditioned's training data from the model run's VGMIDI set, resolved only when used."""
    if data is None:
        return None

    def load():
        from ..steering.conditioned import conditioning_source

        data_cfg, root = data()
        return conditioning_source(data_cfg, root, tokenizer, Path(cfg.paths.cache_dir))()

    return load
