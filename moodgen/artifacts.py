"""Loading what a run stored (LM checkpoints, sklearn classifiers) without letting the files run code.

Anyone who can write to an MLflow store can plant a run, and pickle runs code on load. So a
checkpoint is read only with torch's weights-only unpickler, and a classifier only from its skops
file with this package's own list of trusted types: never the format, file or trust list that the
artifact's `MLmodel` names. Weights that are all zero or not finite are refused as well: they would
load silently and generate noise. Every refusal is one MoodgenError line naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import MoodgenError


class ArtifactError(MoodgenError):
    """A run's checkpoint or classifier refused as untrusted or damaged: never passed over quietly."""


SKOPS_FILE = "model.skops"  # what mlflow.sklearn.save_model(serialization_format="skops") writes
CHECKPOINT_FIX = "retrain with python -m moodgen.train, or use another run's checkpoint"
CLASSIFIER_FIX = "retrain with python -m moodgen.train, or use a run you trust (model_run=<run id>)"
_CONTROL = re.compile(r"\x1b\[[0-9;]*m|[\x00-\x1f\x7f]")  # ANSI colours, newlines: a message stays one line


def classifier_types() -> list[str]:
    """The types our probes are made of, as skops names them: the scaler + logistic regression
    pipeline of classifier/search.py, and the valence × arousal heads around two of them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .classifier.heads import ValenceArousalClassifier

    kinds = (Pipeline, StandardScaler, LogisticRegression, ValenceArousalClassifier)
    return [f"{kind.__module__}.{kind.__qualname__}" for kind in kinds]


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception, with its type: short, one line, no control characters."""
    lines = [_CONTROL.sub("", line).strip() for line in str(exc).splitlines()]
    text = next((line for line in lines if line), "").split(". ")[0]
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _refused_global(exc: BaseException) -> str | None:
    """What torch's weights-only unpickler would not load ("Unsupported global: GLOBAL exec ..."), if that failed."""
    import pickle

    if not isinstance(exc, pickle.UnpicklingError):
        return None
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
    return _CONTROL.sub("", found.group(1)).split(". ")[0].strip() if found else _reason(exc)


@contextmanager
def _reading_checkpoint(name: str, fix: str) -> Iterator[None]:
    """Turn what torch and Lightning raise for a bad checkpoint into one line naming it."""
    import warnings

    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": a foreign file, said by the error below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            yield
    except MoodgenError:
        raise
    except FileNotFoundError:
        raise MoodgenError(f"checkpoint {name} does not exist; {fix}") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError ... for a damaged file
        refused = _refused_global(exc)
        if refused is not None:
            raise ArtifactError(
                f"checkpoint {name} is refused: it holds more than weights ({refused}), and loading it "
                f"could run code; {fix}"
            ) from None
        raise ArtifactError(
            f"checkpoint {name} is damaged (truncated or not a checkpoint: {_reason(exc)}); {fix}"
        ) from None


def check_weights(state_dict: Mapping, name: str, fix: str = CHECKPOINT_FIX, zero_matrices: bool = False) -> None:
    """Refuse weights no training leaves: NaN/inf anywhere, only zeros, or (unless `zero_matrices`:
    steering's mood and attribute tables start at zero) a weight matrix of zeros."""
    import torch

    floats = {key: t for key, t in state_dict.items() if isinstance(t, torch.Tensor) and t.is_floating_point()}
    if not floats:
        raise ArtifactError(f"checkpoint {name} is damaged (it holds no weights); {fix}")
    for key, tensor in floats.items():
        if not bool(torch.isfinite(tensor).all()):
            raise ArtifactError(f"checkpoint {name} is damaged (weights {key} hold NaN or inf); {fix}")
    zero = [key for key, tensor in floats.items() if tensor.numel() and not bool(tensor.any())]
    if len(zero) == len(floats):
        raise ArtifactError(f"checkpoint {name} is damaged (every weight is zero); {fix}")
    matrices = [key for key in zero if floats[key].dim() >= 2]
    if matrices and not zero_matrices:
        raise ArtifactError(f"checkpoint {name} is damaged (weight matrix {matrices[0]} is all zero); {fix}")


def read_checkpoint(
    path: str | Path, name: str | None = None, fix: str = CHECKPOINT_FIX, zero_matrices: bool = False
) -> dict:
    """torch.load(path, weights_only=True) of a checkpoint holding a `state_dict` of sound weights.

    `name` says which file in messages (default: the path); `fix` what to do about a bad one;
    `zero_matrices`: see check_weights.
    """
    import torch

    name = name or str(path)
    with _reading_checkpoint(name, fix):
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), Mapping):
        raise ArtifactError(f"checkpoint {name} is damaged (not a checkpoint: it has no state_dict); {fix}")
    check_weights(state["state_dict"], name, fix, zero_matrices)
    return state


def load_lm_checkpoint(path: str | Path, name: str | None = None, fix: str = CHECKPOINT_FIX):
    """The LanguageModelModule of a Lightning checkpoint, on the CPU, read weights-only and checked."""
    from .models.module import LanguageModelModule

    name = name or str(path)
    with _reading_checkpoint(name, fix):
        module = LanguageModelModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    check_weights(module.state_dict(), name, fix)
    return module


def _sklearn_flavor(model_dir: Path, name: str) -> dict:
    import yaml

    try:
        flavors = yaml.safe_load((model_dir / "MLmodel").read_text()).get("flavors") or {}
    except FileNotFoundError:
        raise ArtifactError(f"classifier {name} is damaged (it has no MLmodel file); {CLASSIFIER_FIX}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError) as exc:
        raise ArtifactError(f"classifier {name} is damaged (its MLmodel: {_reason(exc)}); {CLASSIFIER_FIX}") from None
    flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if not isinstance(flavor, dict):
        raise ArtifactError(f"classifier {name} is damaged (its MLmodel has no sklearn flavor); {CLASSIFIER_FIX}")
    return flavor


def load_classifier(model_dir: str | Path, name: str | None = None):
    """An sklearn classifier saved by classifier/stage.py's save_sklearn: MLflow's sklearn flavor in
    the skops format. Only `model.skops` is read, with classifier_types() trusted; a model in another
    format (pickle, cloudpickle), or one holding other types, is refused: loading it could run code."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    model_dir = Path(model_dir)
    name = name or str(model_dir)

    def refused(why: str) -> MoodgenError:
        return ArtifactError(f"classifier {name} is refused: {why}, and loading it could run code; {CLASSIFIER_FIX}")

    flavor = _sklearn_flavor(model_dir, name)
    form, stored = flavor.get("serialization_format"), flavor.get("pickled_model")
    if form != "skops":
        raise refused(f"its MLmodel says serialization_format: {form} (moodgen loads only skops)")
    if stored != SKOPS_FILE:
        raise refused(f"its MLmodel points at {stored!r} (moodgen loads only {SKOPS_FILE})")
    path = model_dir / SKOPS_FILE
    trusted = classifier_types()
    try:
        model = skops.io.load(path, trusted=trusted)
    except UntrustedTypesFoundException:
        untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(trusted))
        raise refused(f"it holds types moodgen does not trust ({', '.join(untrusted)})") from None
    except FileNotFoundError:
        raise ArtifactError(f"classifier {name} is damaged (it has no {SKOPS_FILE}); {CLASSIFIER_FIX}") from None
    except Exception as exc:  # not a zip, truncated, a schema skops cannot read
        raise ArtifactError(f"classifier {name} is damaged ({SKOPS_FILE}: {_reason(exc)}); {CLASSIFIER_FIX}") from None
    if not callable(getattr(model, "predict_proba", None)):
        raise ArtifactError(
            f"classifier {name} is damaged (it holds a {type(model).__name__}, not a classifier); {CLASSIFIER_FIX}"
        )
    return model
