"""What every `python -m moodgen.<entry>` shares: config checks and one-line errors."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from .config import register_configs
from .errors import MoodgenError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
_NOISE = ("full_key:", "object_type=", "reference_type=", "To append to your config")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_third_party() -> None:
    """Silence advertising and deprecation chatter that is not ours to fix."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*number of training batches.*logging interval")
    warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy is deprecated")


def fail(message: str) -> NoReturn:
    print(f"moodgen: error: {message}", file=sys.stderr)
    sys.exit(2)


def one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf errors span several lines and a cause chain: keep what names the fix."""
    parts: list[str] = []
    while exc is not None:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        parts += [ln for ln in lines if not ln.startswith(_NOISE)]
        exc = exc.__cause__
    text = " ".join(parts).split(" Config search path:")[0]
    return text.replace(" Available options in", "; available options in").replace("\t", " ")


def check_overrides(config_name: str, argv: list[str]) -> None:
    """Compose once before Hydra runs, so a wrong option is one line instead of a stack.

    Flags (-m, --cfg, --help, ...) are left to Hydra: sweeps are checked per job.
    """
    if any(arg.startswith("-") for arg in argv):
        return
    try:
        with initialize_config_dir(str(CONF_DIR)):
            cfg = compose(config_name, overrides=argv)
    except Exception as exc:
        fail(one_line(exc))
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        fail(f"{missing[0]} has no value; set it on the command line, e.g. {missing[0]}=...")


def overrides_label(limit: int = 120) -> str:
    """The command-line overrides of this job, for run names ('' outside a Hydra run)."""
    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return ""
    label = " ".join(o for o in overrides if not o.startswith(("data.root", "paths.", "hydra.")))
    return label[:limit]


def hydra_entry(config_name: str, task: Callable[[Any], Any]) -> Callable[[], Any]:
    """Build a `main()` that checks overrides, runs Hydra, and turns MoodgenError into one line."""
    import hydra

    register_configs()
    quiet_third_party()

    def guarded(cfg):
        try:
            return task(cfg)
        except MoodgenError as exc:
            fail(str(exc))

    def main() -> Any:
        check_overrides(config_name, sys.argv[1:])
        return hydra.main(config_path=str(CONF_DIR), config_name=config_name)(guarded)()

    return main
