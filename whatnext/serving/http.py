"""The HTTP app: FastAPI over one :class:`~whatnext.serving.recommender.Recommender`.

Endpoints (version-prefixed; JSON in and out):

* ``GET /v1/users/{user_id}/recommendations?k=10&include_seen=false&diversity=0``
* ``POST /v1/recommendations`` with ``{"history": [...], "k": 10}`` (a history not in the data)
* ``POST /v1/users/{user_id}/plays`` with ``{"items": [...]}``: durable before the answer; with a
  token, only with ``Authorization: Bearer TOKEN``
* ``GET /v1/items/{item_id}``, ``GET /health``, ``GET /metrics`` (Prometheus text format)

Every error is a JSON body ``{"error": "...", "status": N}`` with a 4xx status: unknown user or
item 404, an invalid value 422, a body over ``max_body`` bytes 413, a missing or wrong token 401.
No traceback ever reaches a client. The checkpoint is hot-reloaded in a background thread when
the run's ``best`` marker changes (polled every ``watch`` seconds) or on SIGHUP.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from whatnext.errors import CheckpointError, ConfigError, NotFoundError, WhatnextError
from whatnext.serving.recommender import MAX_HISTORY, Recommender

log = logging.getLogger(__name__)

#: largest request body accepted (bytes); a longer one gets 413 before the app reads it
MAX_BODY = 1 << 20
#: most items one request may ask for
MAX_K = 1000
Scope = dict[str, Any]


class HistoryRequest(BaseModel):
    """Body of ``POST /v1/recommendations``."""

    model_config = ConfigDict(extra="forbid")
    history: list[str] = Field(min_length=1, max_length=MAX_HISTORY)
    k: int = Field(10, ge=1, le=MAX_K)
    include_seen: bool = False
    diversity: float | None = Field(None, ge=0)


class PlaysRequest(BaseModel):
    """Body of ``POST /v1/users/{user_id}/plays``: item ids, oldest first."""

    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(min_length=1, max_length=MAX_HISTORY)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _parsed(model: type[BaseModel], raw: bytes) -> Any:
    """The JSON body checked against ``model`` (whatever the Content-Type says); a ConfigError (422) naming the field."""
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as e:
        first: dict[str, Any] = dict(e.errors()[0]) if e.errors() else {}
        if first.get("type") == "json_invalid":
            raise ConfigError("the body is not valid JSON") from None
        where = ".".join(str(x) for x in first.get("loc", ())) or "body"
        raise ConfigError(f"{where}: {first.get('msg', 'invalid value')}") from None


def _status_of(e: WhatnextError) -> int:
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, ConfigError):
        return 422
    if isinstance(e, CheckpointError):
        return 503
    return 400


class _Metrics:
    """Request counts and latency histograms per endpoint, in a registry of the app's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("whatnext_requests", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("whatnext_request_seconds", "HTTP request latency by endpoint", ["endpoint"],
                                 buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
                                 registry=self.registry)
        self.reloads = Counter("whatnext_reloads", "checkpoint reloads by result", ["result"], registry=self.registry)


class _Guard:
    """Pure ASGI middleware: bodies over ``max_body`` get 413 before the app runs; every request is
    counted and timed under its route's path template (``unmatched`` for unknown paths)."""

    def __init__(self, app: Any, metrics: _Metrics, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            body = await self._body(scope, receive)
            if body is None:
                await _error(413, f"request body over {self.max_body} bytes")(scope, receive, sending)  # type: ignore[arg-type]
                return
            done = False

            async def replay() -> dict[str, Any]:
                nonlocal done
                if not done:
                    done = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: wait for the disconnect, as the server would

            await self.app(scope, replay, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

    async def _body(self, scope: Scope, receive: Any) -> bytes | None:
        """The whole body, or None when it is (or says it is) longer than the limit."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return None
                except ValueError:
                    return None
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)


class _Batcher:
    """Ranks the requests that arrive while a batch is being ranked together, in one worker thread.

    At concurrency 1 a request is ranked at once, alone; under load the networks and the index
    run once for many histories (a matrix product instead of one matrix-vector product each),
    which is where throughput comes from. Requests with different k, include_seen or diversity
    are ranked in separate batches.
    """

    def __init__(self, rec: Recommender, max_batch: int = 64) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.rec, self.max_batch = rec, max_batch
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="whatnext-rank")
        self.queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self.running = False

    async def rank(self, req: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.queue.append((req, fut))
        if not self.running:
            self.running = True
            loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.queue:
                batch, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch :]
                groups: dict[Any, list[tuple[Any, asyncio.Future[Any]]]] = {}
                for item in batch:
                    groups.setdefault(item[0].key, []).append(item)
                for group in groups.values():
                    try:
                        out = await loop.run_in_executor(self.pool, self.rec.rank_requests, [r for r, _ in group])
                    except Exception as e:  # noqa: BLE001 - every waiting request gets the error
                        for _, fut in group:
                            if not fut.done():
                                fut.set_exception(e)
                        continue
                    for (_, fut), result in zip(group, out):
                        if not fut.done():
                            fut.set_result(result)
        finally:
            self.running = False


class _Reloader:
    """Watches the run's ``best`` marker (and waits for SIGHUP) in a thread; reloads in the background."""

    def __init__(self, rec: Recommender, metrics: _Metrics, watch: float) -> None:
        self.rec, self.metrics, self.watch = rec, metrics, watch
        self.wake, self.stop = threading.Event(), threading.Event()
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._loop, name="whatnext-reload", daemon=True)
        self._seen = self._marker()

    def _marker(self) -> tuple[str, int] | None:
        """Which checkpoint the run's best (else latest) marker names now, with the marker's modification time."""
        from whatnext import checkpoints

        if self.rec._checkpoint_arg is not None:
            return None  # an explicit --checkpoint file: reloaded on SIGHUP only
        run_dir = checkpoints.run_folder(self.rec.cfg.resolve(self.rec.cfg.paths.models_dir), self.rec.run)
        for name in ("best", "latest"):
            pt = checkpoints.marker(run_dir, name)
            if pt is not None:
                try:
                    return f"{name}:{pt.name}", (run_dir / name).stat().st_mtime_ns
                except OSError:
                    continue
        return None

    def _loop(self) -> None:
        while not self.stop.is_set():
            hup = self.wake.wait(self.watch)
            if self.stop.is_set():
                return
            self.wake.clear()
            now = self._marker()
            if not hup and (now is None or now == self._seen):
                continue
            self._seen = now
            try:
                changed = self.rec.reload()
                self.last_error = None
                self.metrics.reloads.labels("switched" if changed else "unchanged").inc()
            except WhatnextError as e:
                self.last_error = str(e)
                self.metrics.reloads.labels("failed").inc()
                log.warning("reload failed, still serving %s: %s", self.rec.model.checkpoint, e)


def create_app(rec: Recommender, *, token: str | None = None, watch: float = 3.0, max_body: int = MAX_BODY,
               sighup: bool = True) -> Any:
    """The ASGI app serving ``rec``. ``token``: the bearer token the write endpoint requires (None = none);
    ``watch``: seconds between looks at the run's best marker (0 = no polling); ``sighup``: reload on SIGHUP."""
    metrics = _Metrics()
    reloader = _Reloader(rec, metrics, watch if watch > 0 else 1e9)
    batcher = _Batcher(rec)

    async def recommend(**request: Any) -> JSONResponse:
        req = rec.request(**request)
        return JSONResponse(rec.answer(req, *await batcher.rank(req)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        reloader.thread.start()
        if sighup and threading.current_thread() is threading.main_thread():
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.wake.set)
            except (NotImplementedError, RuntimeError, ValueError):
                log.warning("SIGHUP cannot be handled here; reload by updating the best marker")
        yield
        reloader.stop.set()
        reloader.wake.set()
        batcher.pool.shutdown(wait=False)

    app = FastAPI(title="whatnext", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/v1/openapi.json")
    app.state.recommender, app.state.reloader, app.state.metrics = rec, reloader, metrics

    @app.exception_handler(WhatnextError)
    async def _whatnext_error(request: Request, e: WhatnextError) -> JSONResponse:
        return _error(_status_of(e), str(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or "request"
        if first.get("type") == "json_invalid":
            return _error(422, "the body is not valid JSON")
        return _error(422, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        message = "no such endpoint; see /v1/openapi.json" if e.status_code == 404 else str(e.detail)
        return _error(e.status_code, message, getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return _error(500, f"internal error: {type(e).__name__} (a bug: please report it)")

    def _authorised(request: Request) -> bool:
        if token is None:
            return True
        got = request.headers.get("authorization", "")
        scheme, _, value = got.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    @app.get("/v1/users/{user_id}/recommendations")
    async def user_recommendations(user_id: str, k: int = Query(10, ge=1, le=MAX_K), include_seen: bool = False,
                                   diversity: float | None = Query(None, ge=0)) -> Response:
        return await recommend(user=user_id, k=k, include_seen=include_seen, diversity=diversity)

    @app.post("/v1/recommendations")
    async def history_recommendations(request: Request) -> Response:
        body = _parsed(HistoryRequest, await request.body())
        return await recommend(history=body.history, k=body.k, include_seen=body.include_seen, diversity=body.diversity)

    @app.post("/v1/users/{user_id}/plays")
    async def plays(user_id: str, request: Request) -> Response:
        if not _authorised(request):
            return _error(401, "this endpoint needs 'Authorization: Bearer TOKEN' with the server's token",
                          {"WWW-Authenticate": "Bearer"})
        body = _parsed(PlaysRequest, await request.body())
        return JSONResponse(await run_in_threadpool(rec.observe, user_id, body.items))  # fsync off the event loop

    @app.get("/v1/items/{item_id}")
    async def item(item_id: str) -> Response:
        return JSONResponse(rec.item(item_id))

    @app.get("/health")
    async def health() -> Response:
        out = rec.health()
        out["reload_error"] = reloader.last_error
        out["pid"] = os.getpid()  # which process answered: with --workers N, one of N
        return JSONResponse(out)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return _Guard(app, metrics, max_body)

