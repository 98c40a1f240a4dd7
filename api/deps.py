"""Dependencies: the database connection and the authenticated principal.

Authentication is one configured bearer token for now (role ``admin``); the full role
model (officer, supervisor, appellant) replaces ``require_role`` later without touching
the routes, which already declare the role they need.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from telemetry.errors import StorageError

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    remote_addr: str | None


async def get_db(request: Request) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    pool: AsyncConnectionPool = request.app.state.pool
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise StorageError(str(exc)) from exc


async def get_principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    expected: str = request.app.state.api_token
    if creds is None or creds.scheme.lower() != "bearer" or not hmac.compare_digest(
        creds.credentials.encode(), expected.encode()
    ):
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return Principal(name="admin", role="admin", remote_addr=request.client.host if request.client else None)


def require_role(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role != "admin" and principal.role not in roles:
            raise HTTPException(403, f"requires role {' or '.join(roles)}")
        return principal

    return check


DbConn = Annotated[psycopg.AsyncConnection[Any], Depends(get_db)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
Officer = Annotated[Principal, Depends(require_role("officer", "supervisor"))]
Supervisor = Annotated[Principal, Depends(require_role("supervisor"))]

__all__ = ["CurrentUser", "DbConn", "Officer", "Principal", "Supervisor", "get_db", "get_principal", "require_role"]
