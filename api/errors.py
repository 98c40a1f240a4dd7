"""The only place where domain errors become HTTP responses. Error bodies are uniform:
``{"error": {"code": ..., "message": ..., "details": ...}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from telemetry.errors import ConflictError, InvalidInputError, NotFoundError, StorageError


def _body(status: int, code: str, message: str, details: Any = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details}}, status_code=status,
                        headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def _not_found(_r: Request, exc: NotFoundError) -> JSONResponse:
        return _body(404, "not_found", str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(_r: Request, exc: ConflictError) -> JSONResponse:
        return _body(409, "conflict", str(exc))

    @app.exception_handler(InvalidInputError)
    async def _invalid(_r: Request, exc: InvalidInputError) -> JSONResponse:
        return _body(422, "invalid", str(exc), {"field": exc.field})

    @app.exception_handler(StorageError)
    async def _storage(_r: Request, exc: StorageError) -> JSONResponse:
        return _body(503, "storage_unavailable", "the database is unavailable, retry later")

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return _body(422, "invalid", "request body or parameters are invalid", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error")
        return _body(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))
