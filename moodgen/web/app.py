"""The mood picker's HTTP side: the page, a small JSON API, and the pieces' files.

    GET  /                          the page (moodgen/web/static/, no external assets)
    GET  /api/status                model, moods, length limits, audio, the running piece, history
    POST /api/pieces                {"mood": "calm", "duration": 30} -> 202 the new piece, running;
                                    409 while another is composed, 503 without a model, 4xx bad input
    GET  /api/jobs/<id>             a piece's state: running | done | failed
    GET  /api/pieces/<id>/<kind>    its midi, wav or png

Every error answer is JSON: {"error": "<one line naming the fix>"}.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import MoodgenError
from ..generation import render
from ..moods import ALIASES, MOODS, mood_index
from .studio import TRAIN_COMMAND, Busy, Job, NoModel, Studio

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 4096  # a piece request is two short fields: anything bigger is a mistake
MEDIA_TYPES = {"midi": "audio/midi", "wav": "audio/wav", "png": "image/png"}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def allowed_hosts(host: str) -> list[str]:
    """Host headers to answer: loopback names and the configured host, so another site that
    rebinds its DNS name to 127.0.0.1 cannot read the API; any host when listening on all addresses."""
    return ["*"] if host in ("0.0.0.0", "::", "") else list(dict.fromkeys([*LOOPBACK_NAMES, host]))


class PieceRequest(BaseModel):
    """The body of POST /api/pieces."""

    model_config = ConfigDict(extra="forbid")
    mood: str | int  # a name, an alias or 0-3, as `moodgen.generate mood=` takes
    duration: float | None = Field(default=None, allow_inf_nan=False)  # seconds; None: the configured default

    @field_validator("mood", mode="before")
    @classmethod
    def not_a_bool(cls, mood):
        """JSON true would pass as the number 1 (calm): a mood is a name or a number, never a switch."""
        if isinstance(mood, bool):
            raise ValueError(f"use a mood name or a number 0-{len(MOODS) - 1}, not {str(mood).lower()}")
        return mood


def error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def validation_line(exc: ValidationError) -> str:
    """Pydantic's problems as one line, the first per field: 'duration: Input should be a valid number'."""
    problems: dict[str, str] = {}
    for problem in exc.errors():
        message = problem["msg"].removeprefix("Value error, ")  # our own validators' messages
        problems.setdefault(str(problem["loc"][0]) if problem["loc"] else "body", message)
    return "; ".join(f"{field}: {message}" for field, message in problems.items())


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 past MAX_BODY_BYTES whether its length is announced or streamed."""
    too_big = HTTPException(413, f'request body over {MAX_BODY_BYTES} bytes; send {{"mood": ..., "duration": ...}}')
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_big
    return body


def checked_duration(cfg, duration: float | None) -> float:
    if duration is None:
        return float(cfg.default_duration)
    if not cfg.min_duration <= duration <= cfg.max_duration:
        raise MoodgenError(f"duration must be {cfg.min_duration:g} to {cfg.max_duration:g} seconds, not {duration:g}")
    return duration


def job_json(job: Job) -> dict:
    """A piece as the page sees it: URLs for its files instead of paths on the server."""
    piece = None
    if job.piece is not None:
        piece = {
            "seconds": job.piece["seconds"],
            "notes": job.piece["notes"],
            "judged_mood": job.piece["judged_mood"],
            "judged_by": job.piece.get("judged_by"),
            "files": {kind: f"/api/pieces/{job.id}/{kind}" for kind in job.piece["files"]},
        }
    return {
        "id": job.id,
        "mood": job.mood,
        "duration": job.duration,
        "seed": job.seed,
        "state": job.state,
        "elapsed": round(time.time() - job.started, 1) if job.state == "running" else job.seconds,
        "error": job.error,
        "run_id": job.run_id,
        "name": f"moodgen-{job.mood}-{job.seed}",  # download file name, without extension
        "piece": piece,
    }


def create_app(studio: Studio) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        studio.close()

    # no /docs: FastAPI's docs page loads its scripts from a CDN, and the page must work offline
    app = FastAPI(title="moodgen mood picker", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    cfg = studio.cfg
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(cfg.host))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/status")
    def status() -> dict:
        bundle = studio.model()  # retried while there is none: a model may have been trained meanwhile
        running = studio.running()
        return {
            "model": None if bundle is None else {"run_id": bundle.run_id, "run_name": bundle.run_name},
            "problem": studio.problem,
            "train_command": TRAIN_COMMAND,
            "moods": list(MOODS),
            "aliases": ALIASES,
            "duration": {"default": cfg.default_duration, "min": cfg.min_duration, "max": cfg.max_duration},
            "steering": cfg.steering.name,
            "audio_missing": render.missing_audio_tool(),  # None: pieces come with a WAV
            "job": None if running is None else job_json(running),
            "history": [job_json(job) for job in studio.history()],
        }

    @app.post("/api/pieces", status_code=202)
    async def start_piece(request: Request) -> JSONResponse:
        # JSON only: a form or text/plain POST from another site's page would need no CORS preflight
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, 'send the piece request as JSON (Content-Type: application/json): {"mood": "calm"}')
        try:
            order = PieceRequest.model_validate_json(await read_body(request))
            mood, duration = mood_index(order.mood), checked_duration(cfg, order.duration)
        except ValidationError as exc:
            return error(422, validation_line(exc))
        except MoodgenError as exc:
            return error(422, str(exc))
        try:
            job = await run_in_threadpool(studio.start, mood, duration)  # the first piece may load the model
        except NoModel as exc:
            return error(503, str(exc), train_command=TRAIN_COMMAND)
        except Busy as exc:
            return error(409, str(exc), job=job_json(exc.job))
        return JSONResponse(job_json(job), status_code=202)

    @app.get("/api/jobs/{job_id}")
    def job_state(job_id: str) -> dict:
        job = studio.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no piece {job_id!r} in this session")
        return job_json(job)

    @app.get("/api/pieces/{job_id}/{kind}")
    def piece_file(job_id: str, kind: str) -> FileResponse:
        path = studio.file(job_id, kind) if kind in MEDIA_TYPES else None
        if path is None or not path.is_file():
            raise HTTPException(404, f"no {kind} file for piece {job_id!r}")
        return FileResponse(path, media_type=MEDIA_TYPES[kind])

    return app
