"""Helpers shared by the benchmark scripts (not a test module)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def vgmidi_root(argument: str | None) -> Path:
    """--data, else $MOODGEN_DATA_DIR, else the shared copy beside the checkout."""
    root = argument or os.environ.get("MOODGEN_DATA_DIR") or REPO.parent / "shared" / "data" / "vgmidi"
    root = Path(root)
    if not (root / "unlabelled" / "train").is_dir():
        raise SystemExit(f"benchmark: no VGMIDI at {root}; pass --data /path/to/vgmidi")
    return root


def train_config(model: str):
    """The training config with `model=<model>`, composed as `python -m moodgen.train` would."""
    from hydra import compose, initialize_config_dir

    from moodgen.cli import CONF_DIR, quiet_third_party
    from moodgen.config import register_configs

    register_configs()
    quiet_third_party()
    with initialize_config_dir(str(CONF_DIR)):
        return compose("train", overrides=[f"model={model}"])
