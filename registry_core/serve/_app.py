"""The HTTP app every served model shares (FastAPI): ``/health``, ``/metrics``, ``/v1/models``, the API key, body
limits, request counting and OpenAI's error JSON; a plugin adds its model's routes (:class:`Served`).

Needs the ``serve`` extra (fastapi, uvicorn, prometheus-client); only ``serve`` imports this module.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the endpoints' annotations from here

from registry_core.serve._errors import APIError, error_body

__all__ = ["ServeContext", "ServeLimits", "Served", "create_app", "read_body", "read_json"]


@dataclass(frozen=True)
class ServeLimits:
    """What every route enforces: the largest request body, and the API key (None: no authentication)."""

    max_body_bytes: int = 1 << 20
    api_key: str | None = None


@dataclass
class ServeContext:
    """What a plugin's routes get from the app: its limits and the Prometheus registry to add metrics to."""

    limits: ServeLimits
    metrics: Any

    async def json(self, request: Request) -> dict[str, Any]:
        """The request's JSON object (415 not JSON, 413 too large, 400 malformed)."""
        return await read_json(request, self.limits.max_body_bytes)

    async def body(self, request: Request, types: Collection[str]) -> bytes:
        """The request's raw body of one of the media ``types`` (415 another, 413 too large)."""
        return await read_body(request, self.limits.max_body_bytes, types)


@dataclass
class Served:
    """A model a plugin serves: its name, the routes it adds, and how its workers start and stop."""

    name: str
    #: Adds the model's routes to the app (``install(app, context)``).
    install: Callable[[Any, ServeContext], None]
    start: Callable[[], None] = lambda: None
    #: Stops the workers, letting running work end for at most the given seconds.
    stop: Callable[[float], None] = lambda timeout: None
    #: Seconds since the epoch of the model (``/v1/models``' ``created``).
    created: int = 0
    #: Fields ``/health`` adds (queue depth, ...).
    health: Callable[[], dict[str, Any]] = field(default=dict)
    #: What the start-up line says of the model (``chat: yes; 8 slots``).
    about: str = ""
    #: The largest request body when ``--max-body-bytes`` is not given (None: 1 MiB).
    body_limit: int | None = None


async def read_body(request: Any, limit: int, types: Collection[str]) -> bytes:
    """The request's body, read at most ``limit`` bytes far (413 past it; 415 for a media type not in ``types``)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in types:
        raise APIError(415, f"expected Content-Type {' or '.join(sorted(types))}, got {kind or 'none'!r}",
                       code="unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the request body is {declared} bytes; at most {limit} are accepted", code="body_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise APIError(413, f"the request body is more than {limit} bytes", code="body_too_large")
    return bytes(body)


async def read_json(request: Any, limit: int) -> dict[str, Any]:
    """The request's JSON object, read at most ``limit`` bytes far (413 past it, 415 not JSON, 400 malformed)."""
    body = await read_body(request, limit, ("application/json",))
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"could not parse the JSON body: {exc}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise APIError(400, "the JSON body must be an object", code="invalid_json")
    return value


class _Guard:
    """ASGI middleware: the API key check (every route but /health) and the request counter by route and status.

    Plain ASGI, not ``BaseHTTPMiddleware``: that one wraps ``receive`` and hides a client's disconnect from the
    endpoints, which must see it to cancel their work.
    """

    def __init__(self, app: Any, api_key: str | None, count: Callable[[str, int], None],
                 reject: Callable[[], Any]) -> None:
        self.app, self.api_key, self.count, self.reject = app, api_key, count, reject

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"]
        if self.api_key is not None and route != "/health":
            given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
                self.count(route, 401)
                await self.reject()(scope, receive, send)
                return
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.count(route, status[0])


def create_app(served: Served, limits: ServeLimits) -> Any:
    """The FastAPI app serving ``served`` (its workers are started by the caller)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
    from starlette.exceptions import HTTPException

    app = FastAPI(title="registry-core serve", docs_url=None, redoc_url=None, openapi_url=None)
    metrics = CollectorRegistry()
    requests_total = Counter("registry_core_requests", "HTTP requests by route and status", ["route", "status"],
                             registry=metrics)

    def fail(error: APIError) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return fail(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
        return fail(APIError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code=code))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:  # a route's declared params
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return fail(APIError(400, f"{where or 'request'}: {first.get('msg', 'invalid')}", param=where or None,
                             code="invalid_value"))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return fail(APIError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error"))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": served.name, **served.health()}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": served.name, "object": "model", "created": served.created,
                                            "owned_by": "registry-core"}]}

    served.install(app, ServeContext(limits, metrics))
    routes = frozenset(getattr(r, "path", "") for r in app.routes)

    def count(route: str, status: int) -> None:  # unknown paths share one label: clients cannot grow the series
        requests_total.labels(route if route in routes else "other", str(status)).inc()

    app.add_middleware(_Guard, api_key=limits.api_key, count=count,
                       reject=lambda: fail(APIError(401, "missing or wrong API key: send Authorization: Bearer <key>",
                                                    type="authentication_error", code="invalid_api_key")))
    return app
