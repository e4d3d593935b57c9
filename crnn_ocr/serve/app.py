"""The HTTP application of `ocr serve` (FastAPI): `POST /v1/read`, `GET /healthz`, the web page at `/`.

Each worker process loads its models once, at start-up (the lifespan), and reads one upload at a time in one
thread of its own, so the event loop keeps answering (health checks, 503s) while it reads. A request holds one
of `queue` slots from its arrival until it is answered, or, past its timeout, until its reading really ends:
however many time out, a worker never holds more than `queue` uploads. Every error is JSON `{"error": "..."}`
on one line, never a traceback.

Run by `ocr serve`; in a program: `uvicorn.run(create_app(ServeConfig(...)))`, or with several workers
`uvicorn crnn_ocr.serve.app:app_from_env --factory` and the config in `CRNN_OCR_SERVE_CONFIG`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from crnn_ocr import __version__
from crnn_ocr.serve.config import ServeConfig
from crnn_ocr.serve.engine import Engine, ReadOptions, ServeError, Slots, one_line
from crnn_ocr.serve.upload import read_upload

log = logging.getLogger("crnn_ocr.serve")

STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
# The page loads nothing from elsewhere: its script, style and the chosen image (a blob: URL) are all local.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


class _Worker:
    """What one worker process holds: its engine (models), the reading thread and the slots."""

    def __init__(self, config: ServeConfig, engine: Engine | None):
        self.config, self.engine = config, engine
        self.slots = Slots(config.queue)
        self.executor: ThreadPoolExecutor | None = None

    def retry_after(self) -> str:
        """Seconds until a slot is likely free: the uploads held times how long one reading takes."""
        seconds = self.engine.seconds if self.engine is not None else 1.0
        return str(min(60, max(1, math.ceil(seconds * self.slots.used))))


class _Guard:
    """Plain ASGI middleware around every route: answers say nosniff (an upload's name echoed in an error is never
    run as HTML), and an unexpected exception is logged here and answered 500 JSON, never a traceback (and not
    raised on to uvicorn, which would drop the connection)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_guarded(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, receive, send_guarded)
        except Exception:
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await error(500, "internal error (logged by the server)")(scope, receive, send_guarded)


def create_app(config: ServeConfig | None = None, *, engine: Engine | None = None) -> FastAPI:
    """The application. `engine`: models already loaded (tests, or `ocr serve` with one worker); None loads them
    at start-up from `config` (each worker process its own)."""
    config = config or ServeConfig()
    worker = _Worker(config, engine)
    package = resources.files("crnn_ocr.serve") / "static"
    static = {name: (package / name).read_bytes() for name in STATIC}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if worker.engine is None:
            worker.engine = Engine.load(config)
            log.info("crnn_ocr %s: worker %d loaded %s", __version__, os.getpid(), worker.engine.model_name)
        worker.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crnn-ocr-read")
        try:
            yield
        finally:
            worker.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="crnn_ocr", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Read the text in images and PDFs. See docs/serve.md.")
    app.state.worker = worker
    app.add_middleware(_Guard)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error(400, "bad request")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(static["index.html"], media_type=STATIC["index.html"],
                        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name == "index.html" or name not in static:
            return error(404, "not found")
        return Response(static[name], media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Whether this worker's models are loaded, and how full it is."""
        engine = worker.engine
        if engine is None:
            return error(503, "models not loaded yet")
        return JSONResponse({"status": "ok", "version": __version__, "model": engine.model_name,
                             "detector": engine.detector is not None, "verifier": engine.text_filter is not None,
                             "in_flight": worker.slots.used, "queue": worker.slots.size, "pid": os.getpid()})

    @app.post("/v1/read", responses={200: {"description": "the reading, as `ocr recognize --json` prints it"}})
    async def read(request: Request) -> Response:
        """Read an image or a PDF: the body (Content-Type image/* or application/pdf) or the multipart field
        `file`; options (layout, dictionary, pages, pdf_text, dpi, format, decoder, beam_width) as query or
        form parameters."""
        if worker.engine is None or worker.executor is None:
            return error(503, "models not loaded yet", {"Retry-After": "5"})
        if not worker.slots.try_acquire():
            return error(503, f"busy: {worker.slots.size} requests in flight on this worker; retry later",
                         {"Retry-After": worker.retry_after()})
        handed_over = False
        loop = asyncio.get_running_loop()
        try:
            params = dict(request.query_params)
            ReadOptions.parse(params, config)  # a bad option is refused before the upload is read
            try:
                upload = await asyncio.wait_for(
                    read_upload(request.headers, request.stream(), config.max_upload_bytes), config.timeout)
            except asyncio.TimeoutError:
                return error(408, f"the upload did not arrive within {config.timeout:g} s")
            except ClientDisconnect:
                return error(400, "the client went away during the upload")
            for name, value in upload.fields.items():
                if name in params and params[name] != value:
                    raise ServeError(400, f"parameter {name!r} given twice, with different values")
                params[name] = value
            options = ReadOptions.parse(params, config)
            future = worker.executor.submit(worker.engine.read, upload.data, upload.name, options, upload.pdf)
            # the slot is given back when the reading ends, not when the client stops waiting for it
            future.add_done_callback(lambda _: worker.slots.release())
            handed_over = True
            started = loop.time()
            try:
                reply = await asyncio.wait_for(asyncio.wrap_future(future), config.timeout)
            except asyncio.TimeoutError:  # a reading that has not started is cancelled, a running one finishes
                return error(504, f"reading took longer than {config.timeout:g} s")
            headers = {**reply.headers, "Server-Timing": f"ocr;dur={1000 * (loop.time() - started):.0f}"}
            return Response(reply.body, media_type=reply.media_type, headers=headers)
        except ServeError as e:
            return error(e.status, e.message, e.headers)
        finally:
            if not handed_over:
                worker.slots.release()

    return app


def app_from_env() -> FastAPI:
    """The app factory each uvicorn worker process calls (`ocr serve --workers N`)."""
    return create_app(ServeConfig.from_env())
