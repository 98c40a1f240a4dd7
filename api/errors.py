"""The only place where errors become HTTP responses: RFC 9457 problem details.

Every error body is ``application/problem+json``::

    {"type": "urn:nazorat:problem:invalid", "title": "Invalid input", "status": 422,
     "detail": "...", "code": "invalid", "errors": [{"field": "timezone", "reason": "..."}]}

``code`` is the stable machine-readable name (the last part of ``type``); ``errors``
lists field errors (422 only). Anything unexpected becomes a 500 problem document with a
``correlation_id`` that is logged with the traceback and counted in
``nazorat_api_unhandled_errors_total``: the client never sees a traceback or plain text.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import Problem
from telemetry.errors import ConflictError, InvalidInputError, NotFoundError, StorageError

log = logging.getLogger("nazorat.api")
PROBLEM_MEDIA_TYPE = "application/problem+json"
UNHANDLED_ERRORS = Counter("nazorat_api_unhandled_errors_total",
                           "Requests that ended in an unexpected error (500 with a correlation id)")

_TITLES = {
    400: "Bad request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Payload too large",
    415: "Unsupported media type", 422: "Invalid input", 500: "Internal server error",
    503: "Service unavailable",
}
_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid", 500: "internal_error", 503: "storage_unavailable",
}
_DESCRIPTIONS = {
    401: "Missing or invalid bearer token",
    403: "The caller's role may not do this",
    404: "A resource named in the path or the body does not exist",
    409: "Conflicts with the current state (duplicate id, alert already resolved)",
    413: "The request body is too large",
    422: "Invalid path, query or body: `errors` names each field",
    503: "The database is unavailable, retry later",
}


def problem(status: int, detail: str, *, code: str | None = None, title: str | None = None,
            headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
    """A problem-details response; ``extensions`` become extra members (``errors``, ...)."""
    code = code or _CODES.get(status, "error")
    body: dict[str, Any] = {"type": f"urn:nazorat:problem:{code}", "title": title or _TITLES.get(status, "Error"),
                            "status": status, "detail": detail, "code": code}
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that can answer these error statuses."""
    schema = Problem.model_json_schema()
    return {s: {"description": _DESCRIPTIONS.get(s, _TITLES.get(s, "Error")),
                "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}} for s in statuses}


def _loc(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def field_errors(errors: Iterable[dict[str, Any]], limit: int = 50) -> list[dict[str, str]]:
    """pydantic errors as ``{"field": "body.geometry.coordinates[0]", "reason": ...}``; the
    rejected input is never echoed (it may hold NUL characters or be huge), reasons are
    cut at 300 characters and at most ``limit`` errors are listed."""
    out: list[dict[str, str]] = []
    for e in errors:
        if len(out) == limit:
            break
        reason = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": _loc(e.get("loc", ()))[:300], "reason": reason[:300]})
    return out


MAX_BODY_BYTES = 16 * 1024 * 1024


class BodyLimit:
    """Pure ASGI middleware: a request body over ``MAX_BODY_BYTES`` is refused with 413
    before it is parsed (by its Content-Length, or while a chunked body streams in)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"the request body is over {self.max_bytes} bytes"
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await problem(413, too_large)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, too_large)  # FastAPI re-raises it from the body read
            return message

        await self.app(scope, counting_receive, send)


class CatchAll:
    """Pure ASGI middleware: an exception no handler turned into a response becomes a 500
    problem document with a correlation id, logged with its traceback and counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            correlation_id = uuid.uuid4().hex
            UNHANDLED_ERRORS.inc()
            log.error("unhandled error %s in %s %r", correlation_id, scope.get("method"), scope.get("path"),
                      exc_info=exc)
            if started:
                raise
            response = problem(500, "an unexpected error occurred; quote the correlation id when reporting it",
                               correlation_id=correlation_id, headers={"X-Correlation-ID": correlation_id})
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def _not_found(_r: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, str(exc), entity=exc.entity, key=exc.key)

    @app.exception_handler(ConflictError)
    async def _conflict(_r: Request, exc: ConflictError) -> JSONResponse:
        return problem(409, str(exc), entity=exc.entity, key=exc.key)

    @app.exception_handler(InvalidInputError)
    async def _invalid(_r: Request, exc: InvalidInputError) -> JSONResponse:
        return problem(422, str(exc), errors=[{"field": exc.field, "reason": exc.reason}])

    @app.exception_handler(StorageError)
    async def _storage(_r: Request, exc: StorageError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return problem(503, "the database is unavailable, retry later", headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:3]) or "invalid request"
        return problem(422, detail, errors=errors)

    @app.exception_handler(ResponseValidationError)
    async def _response_invalid(request: Request, exc: ResponseValidationError) -> JSONResponse:
        # our bug, not the client's: handled like any unexpected error
        correlation_id = uuid.uuid4().hex
        UNHANDLED_ERRORS.inc()
        log.error("response validation failed %s in %s %r: %s", correlation_id, request.method, request.url.path,
                  exc.errors())
        return problem(500, "an unexpected error occurred; quote the correlation id when reporting it",
                       correlation_id=correlation_id, headers={"X-Correlation-ID": correlation_id})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not text (bad UTF-8): invalid input like bad JSON
            return problem(422, f"body: {exc.detail}", errors=[{"field": "body", "reason": str(exc.detail)}])
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit)


__all__ = [
    "MAX_BODY_BYTES",
    "PROBLEM_MEDIA_TYPE",
    "UNHANDLED_ERRORS",
    "BodyLimit",
    "CatchAll",
    "field_errors",
    "install",
    "problem",
    "responses",
]
