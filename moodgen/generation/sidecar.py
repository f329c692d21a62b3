"""The JSON sidecar beside a generated piece (`<piece>.json`): requested mood, method, model run, ..."""

from __future__ import annotations

import json
from pathlib import Path


def read_sidecar(midi: Path) -> dict | None:
    """The sidecar of `midi` (None when there is none); ValueError says why one cannot be used."""
    sidecar = Path(midi).with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:  # ValueError covers bad JSON and bad UTF-8
        raise ValueError(f"{sidecar.name} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{sidecar.name} is not a JSON object")
    return data
