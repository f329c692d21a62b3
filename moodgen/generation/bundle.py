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


def frame(tokenizer) -> tuple[int, int]:
    from ..tokenizers import bos_id, eos_id

    return bos_id(tokenizer), eos_id(tokenizer)


def from_context(ctx) -> ModelBundle:
    from ..steering.conditioned import conditioning_source

    features = ctx.cfg.classifier.features
    judges = Judges(
        net=ctx.module.net.cpu(),
        probe=ctx.classifiers.get(f"mood4/{features}"),
        features=features,
        judge=ctx.classifiers.get("mood4/handcrafted"),
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


def resolve_model_run(cfg, ref: str):
    """`champion` (the registered alias), an explicit run id, or `latest` (champion when it is set)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..errors import MoodgenError
    from ..tracking import find_train_run, tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(cfg))
    if ref in ("champion", "latest"):
        try:
            version = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
            return find_train_run(cfg, version.run_id, option="model_run")  # the same checks as a run id
        except MlflowException:
            if ref == "champion":
                raise MoodgenError(
                    f"no registered model {REGISTERED_MODEL!r} with alias 'champion'; use model_run=latest or a run id"
                ) from None
    return find_train_run(cfg, ref, option="model_run")


def from_run(cfg, ref: str) -> ModelBundle:
    """The run's LM and classifiers, loaded so that no file of the run can run code (moodgen.artifacts)."""
    from mlflow.exceptions import MlflowException

    from ..artifacts import CLASSIFIER_FIX, load_classifier, load_lm_checkpoint
    from ..errors import MoodgenError
    from ..tokenizers import load_tokenizer
    from ..tracking import CHECKPOINT_TAG

    client, run = resolve_model_run(cfg, ref)
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

    judges = Judges(
        net=net,
        probe=model(f"classifier/mood4/{features}/model"),
        features=features,
        judge=model("classifier/mood4/handcrafted/model"),
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
