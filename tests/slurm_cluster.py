"""A real one-node SLURM cluster for the tests: `.ci/services/slurm.sh` installs (apt) and starts
munge, slurmctld and slurmd on this machine. It needs root; elsewhere the SLURM tests skip with
the reason, except in CI (CI=true), where they must run and fail instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / ".ci" / "services" / "slurm.sh"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def cannot_start(reason: str):
    if in_ci():
        pytest.fail(f"CI=true, so the SLURM tests must run, but the cluster cannot start: {reason}", pytrace=False)
    pytest.skip(f"no SLURM cluster: {reason}")


@dataclass(frozen=True)
class SlurmCluster:
    node: str

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (finished jobs stay visible for MinJobAge, 15 min); {} if unknown."""
        out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            return {}
        line = out.stdout.splitlines()[0] if out.stdout.strip() else ""
        return dict(field.split("=", 1) for field in line.split() if "=" in field)

    def queue(self) -> list[str]:
        """'<job id> <state>' of each job squeue still lists (pending, running, completing)."""
        out = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, timeout=30, check=True)
        return [line for line in out.stdout.splitlines() if line.strip()]

    def drained(self, timeout: float = 60) -> list[str]:
        """The queue once it is empty, or as it is after `timeout` s: a sweep returns when its jobs'
        results are written, while SLURM may still be ending their steps (COMPLETING) for a moment."""
        deadline = time.monotonic() + timeout
        while (queue := self.queue()) and time.monotonic() < deadline:
            time.sleep(1)
        return queue


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    if os.geteuid() != 0:
        cannot_start("the tests start munged, slurmctld and slurmd, which needs root (run pytest as root)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        cannot_start("slurm-wlm is not installed and there is no apt-get to install it")
    try:
        result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        cannot_start(f"{SCRIPT.relative_to(REPO)} did not finish within 10 minutes")
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        cannot_start(lines[-1] if lines else f"{SCRIPT.relative_to(REPO)} exited {result.returncode}")
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    return SlurmCluster(node)
