"""Dependencies: the database connection and the authenticated principal.

Authentication is one configured bearer token for now (role ``admin``); the full role
model (officer, supervisor, appellant) replaces ``require_role`` later without touching
the routes, which already declare the role they need.

Victim-sensitive data (a victim's phone's positions, zones around a victim, victims'
coordinates in alert details and dead letters) is shown only to the roles in
``VICTIM_ROLES``; ``may_see_victims`` is the one check the routes ask.
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


# Until the officers' role model arrives only admin; a caseload officer will need its own
# subjects' victims (scope), never an appellant or an auditor.
VICTIM_ROLES = frozenset({"admin"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    remote_addr: str | None


def may_see_victims(principal: Principal) -> bool:
    """Whether this caller may see victim-sensitive locations."""
    return principal.role in VICTIM_ROLES


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

__all__ = ["VICTIM_ROLES", "CurrentUser", "DbConn", "Officer", "Principal", "Supervisor", "get_db", "get_principal",
           "may_see_victims", "require_role"]
