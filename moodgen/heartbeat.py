"""A running run's heartbeat: a tag its process refreshes, so a run of another host can be judged.

A run's process can be checked for life only on its own host (moodgen.tracking.process_died). A
run whose host is elsewhere (a SLURM node, a colleague's machine on the team server) is judged by
its heartbeat instead: no refresh for `grace_seconds()` means its process is gone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

HEARTBEAT_TAG = "moodgen.heartbeat"  # unix seconds of the run process's latest beat
INTERVAL_ENV = "MOODGEN_HEARTBEAT_SECONDS"  # between beats (60)
GRACE_ENV = "MOODGEN_HEARTBEAT_GRACE_SECONDS"  # silence after which a run counts as dead (900)


def interval_seconds() -> float:
    return float(os.environ.get(INTERVAL_ENV, 60))


def grace_seconds() -> float:
    return float(os.environ.get(GRACE_ENV, 900))


def beat_value() -> str:
    return str(int(time.time()))


def stale(value: str | None, now: float | None = None) -> bool:
    """True when a run's last beat is older than the grace period; a run without beats is not judged."""
    try:
        last = float(value)
    except (TypeError, ValueError):
        return False
    return (time.time() if now is None else now) - last > grace_seconds()


class Heartbeat:
    """Calls `beat()` every `interval` seconds (first at once with `now=True`) until stop(), on a
    daemon thread: a run's tag here, an Optuna trial's heartbeat in moodgen.study. A failed beat is
    skipped (a busy store, a blip of the server): the next one comes an interval later."""

    def __init__(self, beat: Callable[[], object], interval: float, name: str = "heartbeat", now: bool = False):
        self.beat, self.interval, self.now = beat, interval, now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @classmethod
    def of_run(cls, client, run_id: str) -> Heartbeat:
        """`HEARTBEAT_TAG` on an MLflow run, every interval_seconds() (the run was created with one)."""
        return cls(lambda: client.set_tag(run_id, HEARTBEAT_TAG, beat_value()), interval_seconds(), f"run-{run_id[:8]}")

    def _run(self) -> None:
        if self.now:
            self._once()
        while not self._stop.wait(self.interval):
            self._once()

    def _once(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # never the run's failure: one missed beat is within the grace
            log.debug("%s skipped: %s", self._thread.name, exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
