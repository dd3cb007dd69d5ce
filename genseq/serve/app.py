"""HTTP for the studio: the page, JSON endpoints, a Server-Sent Events stream per generation (or refill of a span) and
one per training.

Every endpoint is a thin layer over `Studio` (itself over the Python API) or, for the Train tab, `Trainings`.
Errors a user can cause are a 4xx with {"error": one line}; nothing a request names is used as a path. `Guard`
admits only the user's own browser: the Host the server was started for, no other site's Origin on a POST, JSON (or
the raw bytes of an uploaded file) as every POST body, and beyond this machine the token printed at start."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import socket
import sys
import traceback
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from genseq.errors import GenseqError
from genseq.limits import MAX_JSON_DEPTH, json_depth
from genseq.lm.config import STEP_PRECISIONS
from genseq.output import audio
from genseq.serve.studio import INFILL_UNITS, MAX_LENGTH, MAX_SAMPLES, MAX_UPLOAD_BYTES, Job, Studio
from genseq.serve.training import MAX_ZIP_BYTES, Refusal, Trainings

MAX_JSON_BYTES = 256 * 1024
"""A generation request: settings and a typed primer."""
MAX_UPLOADS = 2
"""Primer files read at once; one more waits for none and gets 429 (a hostile file costs up to 10 s of CPU)."""
ASSETS = {"studio.js": "text/javascript", "studio.css": "text/css"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
EVERY_INTERFACE = ("0.0.0.0", "::", "")
SHUTDOWN = "the studio was stopped; start genseq serve again"
UPLOAD_TYPE = "application/octet-stream"
"""The body type of a file upload: like JSON, a type another site's page cannot send without asking first."""
UPLOAD_PATHS = ("/api/primer", "/api/train/files")
"""Where a POST sends a file's raw bytes (every other POST sends JSON)."""
TRAINING_POLL = 0.5
"""Seconds between looks at a training's run folder for its stream."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def allowed_hosts(host: str) -> set[str]:
    """Host names a request may give: this machine's loopback names, and the address the server listens on (for
    every interface: this machine's name and addresses)."""
    names = {*LOCAL_HOSTS, host}
    if host in EVERY_INTERFACE:
        names |= {socket.gethostname(), socket.getfqdn()}
        try:
            names |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    return {name.lower() for name in names if name}


def _host_name(header: str) -> str:
    """The name in a Host header without its port: "[::1]:8765" -> "::1", "localhost:8765" -> "localhost"."""
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware that refuses, with a one-line 4xx, every request not from the user's own browser."""

    def __init__(self, app: Any, hosts: set[str], token: str | None):
        self.app, self.hosts, self.token = app, hosts, token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            return await _error(*refusal)(scope, receive, send)
        given = request.query_params.get("token")
        if self.token is None or given is None:
            return await self.app(scope, receive, send)

        async def with_cookie(message: dict[str, Any]) -> None:  # the page's own requests carry the token from now
            if message["type"] == "http.response.start":
                cookie = f"{self.cookie(request)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, with_cookie)

    @staticmethod
    def cookie(request: Request) -> str:
        return f"genseq-token-{request.url.port or 80}"

    def refusal(self, request: Request) -> tuple[int, str] | None:
        host = request.headers.get("host", "")
        if _host_name(host).lower() not in self.hosts:
            return 403, (f"this studio does not answer to the host {host[:80]!r}; open the address genseq serve "
                         "printed")
        if self.token is not None and not self.has_token(request):
            return 403, "this studio needs its token: open the address with ?token= that genseq serve printed"
        if request.method in ("GET", "HEAD"):
            return None
        origin = request.headers.get("origin")
        if (origin is not None and origin.lower() != f"http://{host}".lower()) or \
                request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return 403, f"a request from another site ({(origin or 'unknown')[:80]}) may not change this studio"
        wanted = UPLOAD_TYPE if request.url.path in UPLOAD_PATHS else "application/json"
        given = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if given != wanted:
            return 415, f"a POST to {request.url.path} sends {wanted}, not {given or 'no content type'}"
        return None

    def has_token(self, request: Request) -> bool:
        assert self.token is not None
        authorization = request.headers.get("authorization", "")
        offered = [request.query_params.get("token"), request.cookies.get(self.cookie(request)),
                   authorization[6:] if authorization.lower().startswith("token ") else None]
        return any(o is not None and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused past `limit` bytes (checked as it arrives, not only by Content-Length)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the request is over the {limit // 1024:,} KiB limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the request is over the {limit // 1024:,} KiB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _not_finite(text: str) -> float:
    raise HTTPException(400, f"the request holds {text}; JSON numbers must be finite")


def _finite(text: str) -> float:
    value = float(text)
    return value if value not in (float("inf"), float("-inf")) else _not_finite(text[:40])


async def _json(request: Request) -> dict[str, Any]:
    body = await _body(request, MAX_JSON_BYTES) or b"{}"
    if json_depth(body) > MAX_JSON_DEPTH:
        raise HTTPException(400, f"the request nests arrays or objects deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body, parse_constant=_not_finite, parse_float=_finite)
    except (ValueError, RecursionError):
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return data


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def create_app(runs: Path | str = "checkpoints", host: str = "127.0.0.1", token: str | None = None) -> Starlette:
    """The studio as an ASGI app, keeping its history under `runs/studio/`, answering requests for `host` (and this
    machine's loopback names), and only those that carry `token` when one is given."""
    studio = Studio(Path(runs))
    trainings = Trainings(studio)
    reading = [0]
    static = resources.files("genseq.serve") / "static"

    async def page(request: Request) -> Response:
        return Response((static / "index.html").read_text(encoding="utf-8"), media_type="text/html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        return Response((static / name).read_text(encoding="utf-8"), media_type=ASSETS[name])

    async def models(request: Request) -> Response:
        rows, skipped = await to_thread.run_sync(studio.models)
        return JSONResponse({"models": rows, "skipped": skipped, "audio": audio.audio_renderer(),
                             "busy": studio.running is not None, "waiting": len(studio.waiting),
                             "training": trainings.busy(),
                             "precisions": ["auto", *STEP_PRECISIONS],
                             "infill": INFILL_UNITS,
                             "limits": {"length": MAX_LENGTH, "num_samples": MAX_SAMPLES}})

    async def read_file(request: Request, limit: int, read: Any, *args: str) -> Response:
        """An uploaded file's bytes (at most `limit`, plus one so that the reader names the cap) handed to `read`
        in a worker thread; at most MAX_UPLOADS at once."""
        if reading[0] >= MAX_UPLOADS:
            raise HTTPException(429, f"the studio is reading {MAX_UPLOADS} files already; try again when they are "
                                "read")
        reading[0] += 1
        try:
            data = await _body(request, limit + 1)
            return JSONResponse(await to_thread.run_sync(read, *args, data))
        finally:
            reading[0] -= 1

    async def upload(request: Request) -> Response:
        return await read_file(request, MAX_UPLOAD_BYTES, studio.read_upload, request.query_params.get("model", ""),
                               request.query_params.get("name", ""))

    async def generate(request: Request) -> Response:
        return await _queued(request, studio.prepare)

    async def refill(request: Request) -> Response:
        return await _queued(request, studio.refill)

    async def _queued(request: Request, prepare: Any) -> Response:
        """A job `prepare` makes of the request's JSON, streamed as it waits its turn and runs: generations and
        refills share one line, and both are refused while a training runs."""
        trainings.check_generation()
        job = await to_thread.run_sync(prepare, await _json(request))
        return StreamingResponse(_stream(request, job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _stream(request: Request, job: Job) -> AsyncIterator[str]:
        """queued (position) ... tokens ... rendering, then result, or error; a client that leaves stops it."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        studio.enqueue(job)
        try:
            yield _event("job", {"id": job.id, "position": studio.position(job), "settings": job.settings,
                                 "primer": job.shown_primer})
            shown = None
            while not studio.try_start(job):
                if job.stop_reason is not None:
                    yield _event("error", {"error": SHUTDOWN if studio.closing else "stopped before it started"})
                    return
                if studio.position(job) != shown:
                    shown = studio.position(job)
                    yield _event("queued", {"position": shown})
                await asyncio.sleep(0.1)
            yield _event("started", {})

            def emit(name: str, data: dict[str, Any]) -> None:
                loop.call_soon_threadsafe(events.put_nowait, (name, data))

            def conclude(name: str, data: dict[str, Any]) -> None:
                studio.finish(job)  # the slot is free before the page hears the end
                events.put_nowait((name, data))

            def work() -> None:
                ending: tuple[str, dict[str, Any]] = ("error", {"error": "generation failed"})
                try:
                    result = studio.run(job, emit)
                    ending = ("result", result) if result is not None else ("error", {"error": SHUTDOWN})
                except GenseqError as err:
                    ending = ("error", {"error": str(err)})
                except Exception as err:  # a bug: the server keeps serving and says what failed
                    traceback.print_exc(file=sys.stderr)
                    ending = ("error", {"error": f"generation failed: {type(err).__name__}: {err}"})
                finally:
                    loop.call_soon_threadsafe(conclude, *ending)

            loop.run_in_executor(studio_executor, work)
            while True:
                name, data = await events.get()
                yield _event(name, data)
                if name in ("result", "error"):
                    return
        finally:
            if not job.finished.is_set():
                job.stop_reason = job.stop_reason or "disconnected"
            studio.withdraw(job)

    async def stop(request: Request) -> Response:
        job_id = request.path_params["job"]
        for job in [studio.running, *studio.waiting]:
            if job is not None and job.id == job_id:
                job.stop_reason = "stop"
                return JSONResponse({"stopping": job_id})
        raise HTTPException(404, f"no running or waiting job {job_id!r}")

    async def history(request: Request) -> Response:
        return JSONResponse({"results": studio.history(), "skipped": studio.skipped})

    async def result(request: Request) -> Response:
        try:
            return JSONResponse(await to_thread.run_sync(studio.result, request.path_params["result"]))
        except LookupError as err:
            raise HTTPException(404, str(err)) from None

    async def download(request: Request) -> Response:
        try:
            path, media, name = studio.download(request.path_params["result"], request.path_params["index"] - 1,
                                                request.path_params["kind"])
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
        disposition = "inline" if request.query_params.get("inline") else "attachment"
        return FileResponse(path, media_type=media, filename=name, content_disposition_type=disposition)

    async def train_file(request: Request) -> Response:
        return await read_file(request, MAX_ZIP_BYTES, trainings.add_file, request.query_params.get("upload", ""),
                               request.query_params.get("name", ""))

    async def train(request: Request) -> Response:
        return JSONResponse(await to_thread.run_sync(trainings.start, await _json(request)))

    async def train_stop(request: Request) -> Response:
        return JSONResponse(trainings.stop())

    async def train_status(request: Request) -> Response:
        return JSONResponse(await to_thread.run_sync(trainings.status))

    async def train_events(request: Request) -> Response:
        return StreamingResponse(_training_stream(request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _training_stream(request: Request) -> AsyncIterator[str]:
        """progress (the training's snapshot, each time it changes) ..., then ended; idle when none has run."""
        shown = None
        while trainings.current is not None:
            running = trainings.current.running
            snapshot = await to_thread.run_sync(trainings.current.snapshot)
            if snapshot != shown:
                shown = snapshot
                yield _event("progress" if running else "ended", snapshot)
            if not running or await request.is_disconnected():
                return
            await asyncio.sleep(TRAINING_POLL)
        yield _event("idle", {})

    async def user_error(request: Request, err: Exception) -> Response:
        return _error(err.status if isinstance(err, Refusal) else 400, str(err))

    async def http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, HTTPException)
        return _error(err.status_code, str(err.detail) if err.status_code != 404 or err.detail != "Not Found"
                      else f"no such page: {request.url.path}")

    async def server_error(request: Request, err: Exception) -> Response:
        traceback.print_exception(err, file=sys.stderr)
        return _error(500, f"internal error: {type(err).__name__}: {err}")

    studio_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genseq-generate")
    routes = [
        Route("/", page), Route("/static/{name}", asset), Route("/api/models", models),
        Route("/api/primer", upload, methods=["POST"]), Route("/api/generate", generate, methods=["POST"]),
        Route("/api/infill", refill, methods=["POST"]),
        Route("/api/jobs/{job}/stop", stop, methods=["POST"]), Route("/api/history", history),
        Route("/api/results/{result}", result),
        Route("/api/results/{result}/{index:int}/{kind}", download),
        Route("/api/train/files", train_file, methods=["POST"]), Route("/api/train", train, methods=["POST"]),
        Route("/api/train/stop", train_stop, methods=["POST"]), Route("/api/train/status", train_status),
        Route("/api/train/events", train_events),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        trainings.close()  # no training outlives its studio

    app = Starlette(routes=routes, middleware=[Middleware(Guard, hosts=allowed_hosts(host), token=token)],
                    lifespan=lifespan,
                    exception_handlers={GenseqError: user_error, HTTPException: http_error, Exception: server_error})
    app.state.studio, app.state.trainings = studio, trainings
    return app


def run(host: str = "127.0.0.1", port: int = 8765, runs: Path | str = "checkpoints") -> None:
    """Serve the studio until Ctrl-C, printing its address (and a warning when others can reach it)."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:  # a port in use is a one-line error, not uvicorn's log after our address
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as err:
            raise GenseqError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port "
                              "or --host") from None
    token = None if host in LOCAL_HOSTS else secrets.token_urlsafe(24)
    app = create_app(runs, host=host, token=token)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"genseq studio: {address}  (history in {Path(runs) / 'studio'}; Ctrl-C stops it)", flush=True)
    if token is not None:
        print(f"warning: listening on {host}: anyone who can reach port {port} and has the token can use this studio "
              "and its models", file=sys.stderr, flush=True)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.studio.close()  # open streams end now, so that uvicorn need not cut them off
            app.state.trainings.close()  # a training stops as Stop stops it: its best checkpoint is kept
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)).run()
