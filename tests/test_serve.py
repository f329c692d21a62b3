"""The mood picker: its JSON API through FastAPI's TestClient, and the page in a real headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from moodgen.generation.render import missing_audio_tool
from moodgen.moods import MOODS
from moodgen.serve import listening_socket
from moodgen.train import train
from moodgen.web import studio as studio_module
from moodgen.web.app import STATIC, create_app
from moodgen.web.studio import Studio

from .conftest import TINY_MODEL, TINY_TRAINER, compose_entry, compose_train, error_line

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: the test never downloads a browser
SERVE = ["steering=none", "min_duration=1", "default_duration=3", "max_duration=20"]


@pytest.fixture(scope="module")
def model_store(tmp_path_factory, midi_folder) -> Path:
    """The smallest model whose pieces hold notes: a tiny LM on a dozen scale pieces, no classifier."""
    root = tmp_path_factory.mktemp("serve")
    cfg = compose_train(
        root,
        [
            "data=folder",
            f"data.root={midi_folder}",
            "data.val_fraction=0.25",
            *TINY_MODEL,
            *TINY_TRAINER,
            "trainer.limit_train_batches=1.0",
            "trainer.max_epochs=8",
            "model.lr=0.01",
            "classifier=none",
            "samples.n=1",
        ],
    )
    train(cfg)
    return root


def compose_serve(root: Path, pieces: Path, overrides: list[str] | None = None):
    return compose_entry("serve", root, [*SERVE, f"out_dir={pieces}", *(overrides or [])], output="serve")


@pytest.fixture
def client(model_store, tmp_path):
    with TestClient(create_app(Studio(compose_serve(model_store, tmp_path / "pieces"))), base_url=LOCAL) as client:
        yield client


def finished(client: TestClient, job: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while job["state"] == "running":
        assert time.monotonic() < deadline, f"piece {job['id']} still running after {timeout} s"
        time.sleep(0.1)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


def compose(client: TestClient, body: dict) -> dict:
    response = client.post("/api/pieces", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "running"
    return finished(client, response.json())


def test_a_click_composes_a_piece_recorded_like_a_generation_run(client, model_store):
    job = compose(client, {"mood": "calm", "duration": 3})
    assert job["state"] == "done", job["error"]
    piece = job["piece"]
    assert piece["notes"] > 0 and 0 < piece["seconds"] <= 3.0 + 1e-6
    assert client.get(piece["files"]["midi"]).content.startswith(b"MThd")
    png = client.get(piece["files"]["png"])
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    if missing_audio_tool() is None:
        wav = client.get(piece["files"]["wav"])
        assert wav.headers["content-type"] == "audio/wav" and wav.content.startswith(b"RIFF")
    status = client.get("/api/status").json()
    assert [(j["id"], j["mood"]) for j in status["history"]] == [(job["id"], "calm")]
    assert status["job"] is None

    store = MlflowClient(tracking_uri=f"sqlite:///{model_store / 'mlruns' / 'mlflow.db'}")
    run = store.get_run(job["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["moodgen.entry_point"] == "serve"
    assert run.data.tags["moodgen.mood"] == "calm"
    assert run.data.tags["moodgen.model_run"] == status["model"]["run_id"]
    assert run.data.params["mood"] == "calm" and run.data.params["duration"] == "3.0"
    assert run.data.params["seed"] == str(job["seed"]) and run.data.params["steering.name"] == "none"
    assert "pieces/calm/calm_0.mid" in {a.path for a in store.list_artifacts(job["run_id"], "pieces/calm")}
    again = compose(client, {"mood": "calm", "duration": 3})  # the same click: a fresh seed, a new piece
    assert again["seed"] != job["seed"]
    assert client.get(again["piece"]["files"]["midi"]).content != client.get(piece["files"]["midi"]).content


@pytest.mark.parametrize(("mood", "expected"), [("sad", "depressed"), (3, "happy"), ("2", "angry")])
def test_aliases_and_numbers_pick_the_mood(client, mood, expected):
    job = compose(client, {"mood": mood})
    assert job["state"] == "done" and job["mood"] == expected
    assert job["duration"] == 3.0  # the configured default length


def test_a_second_click_while_composing_is_refused_with_the_running_piece(client, monkeypatch):
    release = threading.Event()
    compose_for_real = studio_module.generate_recorded

    def held(*args):
        assert release.wait(60)
        return compose_for_real(*args)

    monkeypatch.setattr(studio_module, "generate_recorded", held)
    first = client.post("/api/pieces", json={"mood": "angry"}).json()
    for mood in ("happy", "calm"):
        refused = client.post("/api/pieces", json={"mood": mood})
        assert refused.status_code == 409
        assert refused.json()["job"]["id"] == first["id"]
        assert refused.json()["error"].startswith("an angry piece is being composed")  # not "a angry"
    assert client.get("/api/status").json()["job"]["id"] == first["id"]
    release.set()
    assert finished(client, first)["state"] == "done"
    assert [j["mood"] for j in client.get("/api/status").json()["history"]] == ["angry"]  # no pile of jobs
    assert compose(client, {"mood": "happy"})["state"] == "done"  # free again


def chunked(body: bytes):
    yield from (body[i : i + 1000] for i in range(0, len(body), 1000))


LOCAL = "http://127.0.0.1"
JSON = {"content-type": "application/json"}
BAD_REQUESTS = {
    "unknown mood": ({"json": {"mood": "joyful"}}, 422, "unknown mood 'joyful'"),
    "absurd length": ({"json": {"mood": "calm", "duration": 1e9}}, 422, "duration must be 1 to 20 seconds"),
    "no length": ({"json": {"mood": "calm", "duration": 0}}, 422, "duration must be 1 to 20 seconds"),
    "length not a number": ({"json": {"mood": "calm", "duration": "long"}}, 422, "duration: Input should be"),
    "no mood": ({"json": {"duration": 3}}, 422, "mood: Field required"),
    "unknown field": ({"json": {"mood": "calm", "colour": "red"}}, 422, "colour: Extra inputs"),
    "not json": ({"content": b"mood=calm", "headers": JSON}, 422, "body: Invalid JSON"),
    "a form, as another site could post": ({"data": {"mood": "calm"}}, 415, "Content-Type: application/json"),
    "oversized body": ({"json": {"mood": "calm", "padding": "x" * 100_000}}, 413, "request body over 4096 bytes"),
    "oversized stream": ({"content": chunked(b"{" * 100_000), "headers": JSON}, 413, "request body over 4096 bytes"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_get_one_line_json_errors(client, case):
    request, status, fragment = case
    response = client.post("/api/pieces", **request)
    assert response.status_code == status
    (line,) = response.json()["error"].splitlines()
    assert fragment in line


def test_the_progress_line_says_an_angry_piece():
    """The page once said "Composing a angry piece": its article follows the mood's first letter."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the page's script")
    source = (STATIC / "app.js").read_text()
    (helper,) = re.findall(r"^const withArticle = .*$", source, re.M)
    assert "`Composing ${withArticle(job.mood)} piece" in source
    script = f"{helper}\nconsole.log(['angry', 'calm', 'excited', 'happy'].map(withArticle).join('|'));"
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "an angry|a calm|an excited|a happy", result.stderr


def test_a_foreign_host_name_is_refused(client):
    """DNS rebinding: another site's name pointed at 127.0.0.1 must not reach the API."""
    assert client.get("/api/status", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/status", headers={"host": "localhost:8765"}).status_code == 200


def test_unknown_pieces_and_files_are_404(client):
    assert client.get("/api/jobs/nope").json() == {"error": "no piece 'nope' in this session"}
    job = compose(client, {"mood": "calm"})
    for url in ("/api/pieces/nope/midi", f"/api/pieces/{job['id']}/exe", f"/api/pieces/{job['id']}/..%2Fmidi"):
        response = client.get(url)
        assert response.status_code == 404 and "error" in response.json()


def test_a_failed_piece_is_reported_and_the_server_keeps_composing(client, monkeypatch):
    def broken(*args):
        raise RuntimeError("the sampler fell over")

    monkeypatch.setattr(studio_module, "generate_recorded", broken)
    failed = finished(client, client.post("/api/pieces", json={"mood": "calm"}).json())
    assert failed["state"] == "failed" and "the sampler fell over" in failed["error"]
    monkeypatch.undo()
    assert compose(client, {"mood": "calm"})["state"] == "done"


def test_without_fluidsynth_the_page_still_offers_the_midi(client, monkeypatch):
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "fluidsynth" else which(name, *a, **k))
    assert client.get("/api/status").json()["audio_missing"] == "fluidsynth"
    job = compose(client, {"mood": "happy"})
    assert job["state"] == "done" and set(job["piece"]["files"]) == {"midi", "png"}
    assert client.get(job["piece"]["files"]["midi"]).content.startswith(b"MThd")
    assert client.get(f"/api/pieces/{job['id']}/wav").status_code == 404
    assert "Audio is unavailable" in (STATIC / "app.js").read_text()


def test_without_a_model_the_page_says_how_to_train_one(tmp_path):
    with TestClient(create_app(Studio(compose_serve(tmp_path, tmp_path / "pieces"))), base_url=LOCAL) as client:
        status = client.get("/api/status").json()
        assert status["model"] is None and "python -m moodgen.train" in status["problem"]
        refused = client.post("/api/pieces", json={"mood": "calm"})
        assert refused.status_code == 503
        assert refused.json()["train_command"] == "python -m moodgen.train"
        assert 'id="train-command"' in client.get("/").text


def test_a_bool_is_not_a_mood(tmp_path):
    """JSON true would pass for the number 1 (calm)."""
    with TestClient(create_app(Studio(compose_serve(tmp_path, tmp_path / "pieces"))), base_url=LOCAL) as client:
        response = client.post("/api/pieces", json={"mood": True})
    assert response.status_code == 422
    assert response.json() == {"error": "mood: use a mood name or a number 0-3, not true"}


def test_ctrl_c_stops_the_server_with_one_line(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "moodgen.serve", f"port={port}", f"paths.root_dir={tmp_path}", *SERVE]
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, not a background job
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", server)
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "moodgen: stopped (Ctrl-C)"


def test_the_page_needs_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in STATIC.iterdir():  # no CDN, no web fonts: it works offline
        assert "://" not in path.read_text(), path.name
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load scripts from a CDN


def test_a_port_in_use_is_one_line(tmp_path):
    with listening_socket("127.0.0.1", 0) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line("moodgen.serve", [f"port={port}", f"paths.root_dir={tmp_path}"], tmp_path)
    assert line.startswith(f"moodgen: error: cannot listen on 127.0.0.1:{port}") and "port=" in line


def free_port() -> int:
    with listening_socket("127.0.0.1", 0) as sock:
        return sock.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "python -m moodgen.serve exited early"
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"python -m moodgen.serve did not answer at {url} within {timeout} s")


@pytest.fixture
def served_url(model_store, tmp_path):
    """`python -m moodgen.serve` on loopback, as a person starts it, with the tiny model."""
    port = free_port()
    command = [sys.executable, "-m", "moodgen.serve", f"port={port}", f"paths.root_dir={model_store}"]
    command += [*SERVE, f"out_dir={tmp_path / 'pieces'}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, server)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()


def test_every_mood_plays_in_a_real_browser(tmp_path, request, artifacts_dir):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (Debian's; never `playwright install`)")
    url = request.getfixturevalue("served_url")  # the server starts only when the browser is there
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(url)
            for mood in MOODS:
                page.click(f"button[data-mood={mood}]")
                expect(page.locator("#moods button").first).to_be_disabled()  # no second job meanwhile
                expect(page.locator("#player")).to_have_attribute("data-mood", mood, timeout=120_000)
                expect(page.locator("#moods button").first).to_be_enabled()
                check_playable(page, sync_api, tmp_path / mood)
            expect(page.locator("#history li")).to_have_count(len(MOODS))
            page.screenshot(path=str(artifacts_dir / "mood_picker.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts_dir / "mood_picker.png").stat().st_size > 0


def check_playable(page, sync_api, folder: Path) -> None:
    """The piece plays in the page (or the page says why not) and its MIDI downloads."""
    if missing_audio_tool() is None:
        page.wait_for_function("() => document.getElementById('audio').readyState >= 1", timeout=30_000)
        assert page.evaluate("() => document.getElementById('audio').duration") > 0
        sync_api.expect(page.locator("#download-wav")).to_be_visible()
    else:
        sync_api.expect(page.locator("#no-audio")).to_contain_text("Audio is unavailable")
    with page.expect_download() as download:
        page.click("#download-midi")
    saved = folder / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".mid" and saved.read_bytes().startswith(b"MThd")
    sync_api.expect(page.locator("#roll")).to_have_js_property("complete", True)
