"""A sweep's SLURM jobs that can never start: cancelled and said in one line, instead of a command waiting forever.

hydra-submitit-launcher waits for every job's result. A job the scheduler keeps pending for a reason only a new
request clears (more time than the partition allows, a feature no node has, an account or QOS it may not use)
would hold the command, silently, until someone looks at `squeue`. The watcher runs beside the launcher in the
sweep's own process (started and stopped by `moodgen.sweeps.MlflowSweepCallback`), asks `squeue` about the jobs
whose folders submitit made, and on such a reason cancels the sweep's jobs and interrupts the wait; the callback
then ends the parent run as FAILED and the command with that one line. A job pending for any other reason
(Resources, Priority, a partition down) is left to wait, and said once a reason once it has waited `SAY_AFTER_S`.
"""

from __future__ import annotations

import _thread
import logging
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("moodgen")

POLL_S = 5.0
SAY_AFTER_S = 60.0  # a pending job says why only once it has waited this long (a busy queue is normal)
# pending reasons a job never leaves without a new request (Slurm's job_reason_codes), each with what to change.
# Not PartitionNodeLimit: Slurm also gives it while the nodes a job needs are down or drained, which passes.
NEVER_STARTS = {
    "PartitionTimeLimit": "its time limit is over the partition's: lower hydra.launcher.timeout_min",
    "PartitionConfig": (
        "the partition cannot give what it asks: lower hydra.launcher.cpus_per_task, mem_gb or gpus_per_node, "
        "or pick another hydra.launcher.partition"
    ),
    "BadConstraints": "no node has what it asks: change hydra.launcher.constraint or the request",
    "AccountNotAllowed": "its account may not use the partition: set hydra.launcher.account",
    "InvalidAccount": "its account is not known to the cluster: set hydra.launcher.account",
    "InvalidQOS": "its QOS is not known to the cluster: set hydra.launcher.qos",
    "QOSNotAllowed": "its QOS may not use the partition: set hydra.launcher.qos",
}
JOB_FOLDER = re.compile(r"^(\d+)(?:_\d+)?$")  # submitit's %j: <job> or <array job>_<task>


class SlurmWatch:
    """Follows the jobs submitted under `folder` (submitit's folder for this sweep) until stopped."""

    def __init__(self, folder: Path, poll_s: float = POLL_S):
        self.folder, self.poll_s = Path(folder), poll_s
        self.cancelled: str | None = None  # the one line, once the sweep's jobs were cancelled
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a stopped watcher never cancels: stop() and the decision to cancel take turns
        self._said: set[tuple[str, str]] = set()
        self._first_seen: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="moodgen-slurm-watch", daemon=True)
        self._sigint: signal.Handlers | None = None  # SIGINT's disposition before start(), when start() changed it

    def start(self) -> SlurmWatch:
        """Start watching; call from the main thread (signal handlers can only be set there)."""
        main = threading.current_thread() is threading.main_thread()
        if main and not callable(signal.getsignal(signal.SIGINT)):
            # a sweep started in the background (`nohup ... &`) ignores SIGINT, and interrupt_main() then does
            # nothing: Python's own Ctrl-C handler while the watcher may need it, the old disposition after
            self._sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
        self._thread.start()
        return self

    def stop(self) -> str | None:
        """Stop watching; the line to end the command with, if the watcher cancelled the sweep."""
        with self._lock:
            self._stop.set()
        if self._sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        return self.cancelled

    def job_ids(self) -> list[str]:
        """The (array) job ids of the jobs submitted so far: the folders submitit made for them."""
        if not self.folder.is_dir():
            return []
        found = (JOB_FOLDER.match(p.name) for p in self.folder.iterdir() if p.is_dir())
        return sorted({m.group(1) for m in found if m}, key=int)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            ids = self.job_ids()
            pending = pending_reasons(ids) if ids else []
            with self._lock:
                if self._stop.is_set():  # the sweep ended while squeue answered: its jobs are done, not stuck
                    return
                if self.check(pending, ids):
                    _thread.interrupt_main()  # submitit's wait ends; the sweep callback says why
                    return

    def check(self, pending: list[tuple[str, str, str]], ids: list[str]) -> bool:
        """True once a job can never start (the sweep's jobs then cancelled); other waits said once."""
        now = time.monotonic()
        for job, partition, reason in pending:
            if reason in NEVER_STARTS:
                cancel(ids)
                self.cancelled = (
                    f"SLURM job {job} can never start on partition {partition} ({reason}): {NEVER_STARTS[reason]}; "
                    f"the sweep's SLURM job(s) {', '.join(ids)} were cancelled"
                )
                return True
            waited = now - self._first_seen.setdefault(job, now)
            if waited >= SAY_AFTER_S and (job, reason) not in self._said:
                self._said.add((job, reason))
                log.info("SLURM job %s waits on partition %s (%s); `scancel %s` stops it", job, partition, reason, job)
        return False


def pending_reasons(ids: list[str]) -> list[tuple[str, str, str]]:
    """(job, partition, reason) of each pending job among `ids`; [] when squeue cannot say."""
    command = ["squeue", "-h", "-t", "PENDING", "-o", "%i|%P|%r", "-j", ",".join(ids)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("squeue failed: %s", exc)
        return []
    rows = [line.split("|") for line in result.stdout.splitlines()]
    return [(job, partition, reason) for job, partition, reason in (r for r in rows if len(r) == 3)]


def cancel(ids: list[str]) -> None:
    try:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("scancel %s failed (%s): cancel them by hand", " ".join(ids), exc)
