"""The MLflow UI as a user opens it, in headless Chromium: moodgen's link shows the runs table with the
key metrics (not MLflow's GenAI "Traces" view) and charts them first; screenshots go to the artefacts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from moodgen.cli import quiet_console
from moodgen.serve import listening_socket
from moodgen.tracking import KEY_METRICS, get_or_create_experiment, runs_view_url

from .conftest import require_tool

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: the test never downloads a browser
RUNS = {
    "lstm_small-remi": {"lm/best_val_loss": 2.31, "lm/best_val_ppl": 10.1, "clf/mood4/final_cell/cv_acc": 0.41},
    "lstm-remi": {"lm/best_val_loss": 2.02, "lm/best_val_ppl": 7.5, "clf/mood4/final_cell/cv_acc": 0.47},
}
COUNTS = {"clf/train_phrases": 160.0, "clf/test_phrases": 40.0}  # what MLflow's own layout charts first


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory):
    """`mlflow ui` on loopback over a store with two training runs in the `moodgen` experiment."""
    root = tmp_path_factory.mktemp("mlflow_ui")
    uri = f"sqlite:///{root / 'mlflow.db'}"  # the server creates it: one migration, not two
    with listening_socket("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    with open(root / "server.log", "w") as log:
        # its own process group: the server's workers and job runners are stopped with it
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, (root / "server.log").read_text()[-2000:]
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5):
                        break
                except OSError:
                    assert time.monotonic() < deadline, "mlflow ui did not answer within 120 s"
                    time.sleep(0.5)
            print(f"mlflow ui answered after {time.monotonic() - deadline + 120:.0f} s")
            client = MlflowClient(tracking_uri=url)
            experiment_id = get_or_create_experiment(client, "moodgen", None)  # as a command on that server
            for name, metrics in RUNS.items():
                run_id = client.create_run(experiment_id, run_name=name).info.run_id
                client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in {**metrics, **COUNTS}.items()])
                client.set_terminated(run_id)
            yield url, experiment_id
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):  # uvicorn waits for idle connections to close
                server.wait(5)
            with contextlib.suppress(ProcessLookupError):  # its job runner's consumers outlive a SIGTERM
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def test_the_mlflow_ui_opens_on_the_runs_table_with_the_key_metrics(mlflow_ui, artifacts_dir):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
    require_tool(CHROMIUM.exists(), f"no browser at {CHROMIUM}: apt-get install chromium (never `playwright install`)")
    url, experiment_id = mlflow_ui
    started = time.monotonic()
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(runs_view_url(url, experiment_id))
            expect(page.get_by_text(f"{len(RUNS)} matching runs")).to_be_visible(timeout=60_000)
            for key in ("lm/best_val_loss", "clf/mood4/final_cell/cv_acc"):
                expect(page.locator(f'[data-testid="sort-header-{key}"]')).to_be_visible()
            for name in RUNS:
                expect(page.get_by_role("link", name=name)).to_be_visible()
            assert page.get_by_text("Detect Issues").count() == 0  # the GenAI overview's button
            assistant = page.locator('button[aria-label="Close"]')  # MLflow's assistant panel: room for the table
            if assistant.count():
                assistant.first.click()
            assert "/traces" not in page.url and "workflowType=genai" not in page.url
            page.screenshot(path=str(artifacts_dir / "mlflow_runs_table.png"))
            # the chart view: the key metrics' section comes first, before the phrase counts
            page.locator("input[value=CHART]").evaluate("radio => radio.closest('label').click()")
            expect(page.get_by_text("Key metrics")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("lm/best_val_loss", exact=True).first).to_be_visible()
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)  # drawn, not spinning
            charts = page.inner_text("body").split("Key metrics", 1)[1]
            assert charts.index("lm/best_val_loss") < charts.index("\nclf\n")  # the counts' section comes later
            page.screenshot(path=str(artifacts_dir / "mlflow_charts.png"))
        finally:
            browser.close()
    assert {p.name for p in artifacts_dir.iterdir()} >= {"mlflow_runs_table.png", "mlflow_charts.png"}
    assert KEY_METRICS[0] == "lm/best_val_loss"
    print(f"browser checks took {time.monotonic() - started:.0f} s")


def test_mlflows_run_links_print_only_with_verbose(mlflow_ui, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    url, experiment_id = mlflow_ui
    client = MlflowClient(tracking_uri=url)
    try:
        for verbose in (False, True):
            quiet_console(verbose)
            client.set_terminated(client.create_run(experiment_id, run_name=f"verbose={verbose}").info.run_id)
            printed = capsys.readouterr().out
            assert ("🏃 View run" in printed and "🧪 View experiment at" in printed) == verbose, printed
    finally:
        quiet_console(verbose=True)
        os.environ.pop("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", None)
