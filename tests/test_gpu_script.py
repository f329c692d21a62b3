"""The GPU run's script is valid bash, and its throughput benchmark runs on a CPU (issue 17)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_run_script_parses():
    result = subprocess.run(["bash", "-n", str(REPO / "benchmarks" / "gpu_run.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_gpu_throughput_runs_on_cpu(tmp_path):
    out = tmp_path / "throughput.json"
    tiny = ["--steps", "1", "--cpu-steps", "1", "--tokens", "4", "--batch-size", "2", "--seq-len", "8", "--no-cuda"]
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_throughput.py"), *tiny, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["note"] == "no CUDA"
    assert [(r["device"], r["precision"]) for r in data["train"]] == [("cpu", "32-true")]
    assert all(r["tokens_per_s"] > 0 for r in data["train"] + data["sampling"])
    assert [r["batch"] for r in data["sampling"]] == [1, 64]
    assert "| cpu 32-true |" in result.stdout
