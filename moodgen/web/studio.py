"""One piece at a time: the model, the single worker that composes, and this session's pieces."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import GenerateConfig
from ..errors import MoodgenError
from ..generation.bundle import ModelBundle, from_run
from ..generation.session import generate_recorded, output_folder
from ..moods import MOODS, with_article

log = logging.getLogger("moodgen")
TRAIN_COMMAND = "python -m moodgen.train"
# what a web request shares with `moodgen.generate`'s config; the rest comes from the request
SHARED_SETTINGS = ("model_run", "temperature", "top_p", "max_tokens", "data_root", "steering", "logger", "paths")


class NoModel(MoodgenError):
    """Nothing trained yet (or model_run names no usable run): the message says how to fix it."""


class Busy(Exception):
    """A piece is being composed; `job` is that piece."""

    def __init__(self, job: Job):
        super().__init__(f"{with_article(job.mood)} piece is being composed; wait until it is ready")
        self.job = job


@dataclass
class Job:
    """One click: a piece in a mood, composed in the background."""

    id: str
    mood: str
    duration: float
    seed: int
    started: float = field(default_factory=time.time)
    state: str = "running"  # running | done | failed
    seconds: float | None = None  # how long composing took
    piece: dict | None = None  # the piece's sidecar: notes, length, judged mood, files on disk
    error: str | None = None
    run_id: str | None = None  # the MLflow run that recorded it


class Studio:
    """Loads the model once, composes one piece at a time, and remembers this session's pieces."""

    def __init__(self, cfg: DictConfig):
        if not 0 < cfg.min_duration <= cfg.default_duration <= cfg.max_duration:
            raise MoodgenError(
                "the length settings need 0 < min_duration <= default_duration <= max_duration; got "
                f"{cfg.min_duration:g}, {cfg.default_duration:g}, {cfg.max_duration:g}"
            )
        # resolved once: `${hydra:...}` and `${now:...}` mean the server's start, not each request's
        self.cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        self.pieces_dir = output_folder(self.cfg)
        self.problem: str | None = None  # why there is no model, when there is none
        self._bundle: ModelBundle | None = None
        self._loading = threading.Lock()
        self._starting = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moodgen-compose")
        self.jobs: dict[str, Job] = {}

    def model(self) -> ModelBundle | None:
        """The model, loaded on first need; None until one is trained (then `problem` says why)."""
        with self._loading:
            if self._bundle is None:
                try:
                    self._bundle = from_run(self.cfg, self.cfg.model_run)
                    self.problem = None
                except MoodgenError as exc:
                    self.problem = str(exc)
                except Exception as exc:  # a broken store: the page says so, the server keeps running
                    log.exception("loading the model failed")
                    self.problem = f"the model could not be loaded ({type(exc).__name__}: {exc})".splitlines()[0]
            return self._bundle

    def _jobs(self) -> list[Job]:
        return list(self.jobs.values())  # a copy: other requests may add jobs meanwhile

    def running(self) -> Job | None:
        return next((job for job in self._jobs() if job.state == "running"), None)

    def history(self) -> list[Job]:
        """This session's finished pieces, newest first."""
        return [job for job in reversed(self._jobs()) if job.state == "done"]

    def start(self, mood: int, duration: float) -> Job:
        """Queue one piece; refuses (Busy) while another is composed, so clicks cannot pile up jobs."""
        bundle = self.model()
        if bundle is None:
            raise NoModel(self.problem)
        with self._starting:
            current = self.running()
            if current is not None:
                raise Busy(current)
            job = Job(uuid.uuid4().hex[:12], MOODS[mood], float(duration), secrets.randbelow(2**31))
            self.jobs[job.id] = job
        self._worker.submit(self._compose, job, bundle)
        return job

    def request_config(self, job: Job) -> DictConfig:
        """The job as a `moodgen.generate` config, so its MLflow run records what generate's would."""
        shared = {key: self.cfg[key] for key in SHARED_SETTINGS}
        request = {
            "task_name": "serve",
            "mood": job.mood,
            "n": 1,
            "duration": job.duration,
            "seed": job.seed,
            "out_dir": str(self.pieces_dir / job.id),
        }
        return OmegaConf.merge(OmegaConf.structured(GenerateConfig), shared, request)

    def _compose(self, job: Job, bundle: ModelBundle) -> None:
        began = time.perf_counter()
        try:
            result = generate_recorded(self.request_config(job), bundle, MOODS.index(job.mood))
            job.piece, job.run_id = result.pieces[0], result.run_id
        except MoodgenError as exc:
            job.error = str(exc)
        except Exception as exc:  # the server keeps serving; the traceback goes to its log
            log.exception("composing piece %s failed", job.id)
            job.error = f"composing failed ({type(exc).__name__}: {exc})"
        job.seconds = round(time.perf_counter() - began, 2)
        job.state = "failed" if job.error else "done"  # last: whoever sees the state sees the rest

    def file(self, job_id: str, kind: str) -> Path | None:
        """A finished piece's file (`midi`, `wav`, `png`), None when there is no such piece or file."""
        job = self.jobs.get(job_id)
        if job is None or job.piece is None or kind not in job.piece["files"]:
            return None
        return Path(job.piece["files"][kind])

    def close(self) -> None:
        """Stop taking work; a piece being composed is finished and recorded before the process exits."""
        self._worker.shutdown(wait=False, cancel_futures=True)
