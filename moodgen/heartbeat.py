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
    """Refreshes `HEARTBEAT_TAG` on `run_id` every interval until stop(); a failed beat is skipped
    (a busy store, a blip of the server): the next one comes an interval later."""

    def __init__(self, client, run_id: str):
        self.client, self.run_id = client, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(interval_seconds()):
            try:
                self.client.set_tag(self.run_id, HEARTBEAT_TAG, beat_value())
            except Exception as exc:  # never the run's failure: one missed beat is within the grace
                log.debug("heartbeat of run %s skipped: %s", self.run_id, exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
