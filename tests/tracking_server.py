"""The team tracking server for tests: PostgreSQL + `mlflow server` on free loopback ports, started
by the same script a lab uses (scripts/tracking_server.sh) and stopped at the end of the session.

It starts where the script can: as root with apt-get (PostgreSQL is installed when missing) or
wherever PostgreSQL's pg_ctl is installed; elsewhere the tests that need it skip with the reason.
With CI=true a server that cannot start fails those tests instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from moodgen.serve import listening_socket

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "tracking_server.sh"


@dataclass
class TrackingServer:
    folder: Path  # the script's --dir
    uri: str  # MLFLOW_TRACKING_URI: http://127.0.0.1:<port>
    optuna: str  # postgresql://... of the Optuna database
    artifacts: Path  # --artifacts-destination: where every run's files land

    def env(self, **extra: str) -> dict[str, str]:
        """This environment with jobs pointed at the server (and one thread per process, 2 cores)."""
        return {**os.environ, "MLFLOW_TRACKING_URI": self.uri, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def free_port() -> int:
    with listening_socket("127.0.0.1", 0) as sock:
        return sock.getsockname()[1]


def why_not() -> str | None:
    """None when the script can start the services here, else the reason."""
    if os.name != "posix":
        return "the tracking server script needs a POSIX shell"
    root_with_apt = os.geteuid() == 0 and shutil.which("apt-get")
    installed = shutil.which("pg_ctl") or glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not (root_with_apt or installed):
        return "PostgreSQL is not installed and this is not root with apt-get (apt-get install postgresql)"
    return None


def give_up(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: the tracking server must start here: {reason}")
    pytest.skip(reason)


def run_script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def parse_exports(stdout: str) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in stdout.splitlines() if line.startswith("export "))
    return dict(pairs)


@pytest.fixture(scope="session")
def tracking_server():
    reason = why_not()
    if reason:
        give_up(reason)
    # under /tmp: the cluster runs as `postgres` when root, which pytest's own (0700) folders shut out
    folder = Path(tempfile.mkdtemp(prefix="moodgen-server-", dir="/tmp"))
    ports = ["--port", str(free_port()), "--pg-port", str(free_port())]
    started = run_script("start", "--dir", str(folder), *ports, "--workers", "1")  # 2 cores: one server process
    try:
        if started.returncode != 0:
            give_up(f"tracking_server.sh start failed: {started.stderr.strip()[-1500:]}")
        exports = parse_exports(started.stdout)
        yield TrackingServer(
            folder, exports["MLFLOW_TRACKING_URI"], exports["MOODGEN_OPTUNA_STORAGE"], folder / "artifacts"
        )
    finally:
        run_script("stop", "--dir", str(folder), timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
