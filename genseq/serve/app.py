"""HTTP for the studio: the page, JSON endpoints, a Server-Sent Events stream per generation.

Every endpoint is a thin layer over `Studio` (itself over the Python API). Errors a user can cause
are a 4xx with {"error": one line}; nothing a request names is used as a path.
"""

from __future__ import annotations

import asyncio
import json
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
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from genseq import render
from genseq.config import STEP_PRECISIONS
from genseq.errors import GenseqError
from genseq.serve.studio import MAX_LENGTH, MAX_SAMPLES, MAX_UPLOAD_BYTES, Job, Studio

MAX_JSON_BYTES = 256 * 1024
"""A generation request: settings and a typed primer."""
ASSETS = {"studio.js": "text/javascript", "studio.css": "text/css"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SHUTDOWN = "the studio was stopped; start genseq serve again"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await _body(request, MAX_JSON_BYTES) or b"{}")
    except ValueError:
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return data


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def create_app(runs: Path | str = "checkpoints") -> Starlette:
    """The studio as an ASGI app, keeping its history under `runs/studio/`."""
    studio = Studio(Path(runs))
    static = resources.files("genseq.serve") / "static"

    async def page(request: Request) -> Response:
        return Response((static / "index.html").read_text(encoding="utf-8"), media_type="text/html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        return Response((static / name).read_text(encoding="utf-8"), media_type=ASSETS[name])

    async def models(request: Request) -> Response:
        rows = await to_thread.run_sync(studio.models)
        return JSONResponse({"models": rows, "audio": render.audio_renderer(),
                             "busy": studio.running is not None, "waiting": len(studio.waiting),
                             "precisions": ["auto", *STEP_PRECISIONS],
                             "limits": {"length": MAX_LENGTH, "num_samples": MAX_SAMPLES}})

    async def upload(request: Request) -> Response:
        data = await _body(request, MAX_UPLOAD_BYTES + 1)  # one byte over: the studio names the cap
        model, name = request.query_params.get("model", ""), request.query_params.get("name", "")
        return JSONResponse(await to_thread.run_sync(studio.read_upload, model, name, data))

    async def generate(request: Request) -> Response:
        job = await to_thread.run_sync(studio.prepare, await _json(request))
        return StreamingResponse(_stream(request, job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _stream(request: Request, job: Job) -> AsyncIterator[str]:
        """queued (position) ... tokens ... rendering, then result, or error; a client that leaves stops it."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        studio.enqueue(job)
        try:
            primer = job.primer if isinstance(job.primer, str) else ""
            yield _event("job", {"id": job.id, "position": studio.position(job), "settings": job.settings,
                                 "primer": primer})
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
        return JSONResponse({"results": studio.history()})

    async def result(request: Request) -> Response:
        found = studio.results.get(request.path_params["result"])
        if found is None:
            raise HTTPException(404, f"no result {request.path_params['result']!r}")
        return JSONResponse(found)

    async def download(request: Request) -> Response:
        try:
            path, media, name = studio.download(request.path_params["result"], request.path_params["index"] - 1,
                                                request.path_params["kind"])
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
        disposition = "inline" if request.query_params.get("inline") else "attachment"
        return FileResponse(path, media_type=media, filename=name, content_disposition_type=disposition)

    async def user_error(request: Request, err: Exception) -> Response:
        return _error(400, str(err))

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
        Route("/api/jobs/{job}/stop", stop, methods=["POST"]), Route("/api/history", history),
        Route("/api/results/{result}", result),
        Route("/api/results/{result}/{index:int}/{kind}", download),
    ]
    app = Starlette(routes=routes,
                    exception_handlers={GenseqError: user_error, HTTPException: http_error, Exception: server_error})
    app.state.studio = studio
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
    app = create_app(runs)
    shown = f"[{host}]" if ":" in host else host
    print(f"genseq studio: http://{shown}:{port}/  (history in {Path(runs) / 'studio'}; Ctrl-C stops it)", flush=True)
    if host not in LOCAL_HOSTS:
        print(f"warning: listening on {host}: anyone who can reach port {port} can use this studio and its models",
              file=sys.stderr, flush=True)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.studio.close()  # open streams end now, so that uvicorn need not cut them off
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)).run()
