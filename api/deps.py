"""Dependencies: the database connection and the authenticated principal.

A caller authenticates with a bearer token that is one of:

- an access token (HS256 JWT, ``POST /auth/token``), acting with its account's role;
- an API key (``nzk_...``, ``POST /api-keys``), acting as its account narrowed to the
  key's scopes;
- the configured bootstrap token (``NAZORAT_API_TOKEN``): an admin key with every scope,
  for the first set-up and for integrations that predate accounts.

A browser ``EventSource`` cannot send headers: the live feed also takes a short-lived
stream token (``POST /auth/stream-token``) in the ``nazorat_stream`` cookie.

Routes declare what they need with the aliases below: roles (``admin`` passes every
role check) and, for API keys, a scope. What the principal may *see* is its
:class:`~telemetry.store.scope.Scope`: all (admin), its unit (supervisor), its caseload
(officer), its linked subject (appellant), no subject data (auditor).

Victim-sensitive data (a victim's phone's positions, zones around a victim, victims'
coordinates in alert details and dead letters) is shown only to the roles in
``VICTIM_ROLES`` (within their scope); ``may_see_victims`` is the one check the routes ask.
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

from api.auth import AuthConfig, TokenError, parse_api_key, read_access, secret_hash
from telemetry.errors import StorageError
from telemetry.store import accounts as account_store
from telemetry.store import audit as audit_store
from telemetry.store.scope import ALL, NONE, Scope

_bearer = HTTPBearer(auto_error=False)
STREAM_COOKIE = "nazorat_stream"
#: what an API key may be narrowed to; "*" is everything
KEY_SCOPES = ("alerts:read", "alerts:write", "registry:read", "registry:write", "positions:read", "audit:read",
              "accounts:admin", "*")


# Only admin for now. A caseload officer may need its own subjects' victims (bilateral
# monitoring; the scope already limits it to its subjects): a decision for the lead.
# Never an appellant or an auditor.
VICTIM_ROLES = frozenset({"admin"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    remote_addr: str | None
    account_id: int | None = None
    unit_id: str | None = None
    subject_id: str | None = None
    scopes: frozenset[str] | None = None  # None: a signed-in person (role decides); else an API key's scopes
    via: str = "token"  # token, key, bootstrap, stream
    key_id: int | None = None
    explicit_scope: Scope | None = None  # set by internal callers (and tests); else derived from the role

    @property
    def scope(self) -> Scope:
        """What this principal may see."""
        if self.explicit_scope is not None:
            return self.explicit_scope
        if self.role == "admin":
            return ALL
        if self.role == "supervisor":
            return Scope("unit", self.unit_id)
        if self.role == "officer":
            return Scope("caseload", str(self.account_id) if self.account_id is not None else None)
        if self.role == "appellant":
            return Scope("subject", self.subject_id)
        return NONE

    def allows(self, key_scope: str | None) -> bool:
        if self.scopes is None or "*" in self.scopes:
            return True
        return key_scope is not None and key_scope in self.scopes


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


# "function" scope: the transaction commits (or rolls back) before the response is sent,
# so a client never acts on a response whose writes are not yet visible
DbConn = Annotated[psycopg.AsyncConnection[Any], Depends(get_db, scope="function")]


def _unauthenticated(message: str = "missing or invalid bearer token") -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _from_claims(request: Request, token: str, typ: str, via: str) -> Principal:
    auth: AuthConfig = request.app.state.auth
    try:
        c = read_access(auth.jwt_secret, token, typ=typ)
    except TokenError as exc:
        raise _unauthenticated("invalid or expired token") from exc
    return Principal(name=c.username, role=c.role, remote_addr=_client(request), account_id=c.account_id,
                     unit_id=c.unit_id, subject_id=c.subject_id, via=via)


async def authenticate(request: Request, db: psycopg.AsyncConnection[Any], token: str) -> Principal:
    """The principal behind a bearer token (any of the three kinds)."""
    expected: str | None = request.app.state.api_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return Principal(name="admin", role="admin", remote_addr=_client(request), scopes=frozenset({"*"}),
                         via="bootstrap")
    prefix = parse_api_key(token)
    if prefix is not None:
        row = await account_store.find_api_key(db, prefix)
        if row is None or not hmac.compare_digest(bytes(row["key_hash"]), secret_hash(token)):
            raise _unauthenticated()
        await account_store.touch_api_key(db, row["id"])
        return Principal(name=row["username"], role=row["role"], remote_addr=_client(request),
                         account_id=row["account_id"], unit_id=row["unit_id"], subject_id=row["subject_id"],
                         scopes=frozenset(row["scopes"]), via="key", key_id=row["id"])
    return _from_claims(request, token, "access", "token")


def _bind(principal: Principal) -> Principal:
    scope = str(principal.scope)
    if principal.via == "key":
        scope += f" key:{principal.key_id}"
    audit_store.bind_caller(principal.role, scope)
    return principal


async def get_principal(
    request: Request, db: DbConn,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise _unauthenticated()
    return _bind(await authenticate(request, db, creds.credentials))


async def get_stream_principal(
    request: Request, db: DbConn,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """For the live feed: a bearer token, or a stream token in the ``nazorat_stream`` cookie."""
    if creds is not None and creds.scheme.lower() == "bearer" and creds.credentials:
        return _bind(await authenticate(request, db, creds.credentials))
    cookie = request.cookies.get(STREAM_COOKIE)
    if cookie:
        return _bind(_from_claims(request, cookie, "stream", "stream"))
    raise _unauthenticated()


def require(*roles: str, scope: str | None = None) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that passes principals of these roles (admin always) whose API-key
    scopes, if any, include ``scope``."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role == "appellant" and "appellant" not in roles:
            # an appellant learns nothing of what else exists: positions, registry, anything
            # but their own appeals and their subject's contestable alerts is "not found"
            raise HTTPException(404, "not found")
        if principal.role != "admin" and principal.role not in roles:
            raise HTTPException(403, f"requires role {' or '.join(roles) or 'admin'}")
        if not principal.allows(scope):
            raise HTTPException(403, f"this API key lacks the scope {scope or '*'}")
        return principal

    return check


def require_role(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Kept for callers of the single-token era: roles only (API keys need ``*``)."""
    return require(*roles)


CurrentUser = Annotated[Principal, Depends(get_principal)]
StreamUser = Annotated[Principal, Depends(get_stream_principal)]
Officer = Annotated[Principal, Depends(require("officer", "supervisor"))]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Admin = Annotated[Principal, Depends(require(scope="accounts:admin"))]
AlertReader = Annotated[Principal, Depends(require("officer", "supervisor", "appellant", scope="alerts:read"))]
AlertActor = Annotated[Principal, Depends(require("officer", "supervisor", scope="alerts:write"))]
RegistryReader = Annotated[Principal, Depends(require("officer", "supervisor", scope="registry:read"))]
RegistryWriter = Annotated[Principal, Depends(require("supervisor", scope="registry:write"))]
LocationReader = Annotated[Principal, Depends(require("officer", "supervisor", scope="positions:read"))]
AuditReader = Annotated[Principal, Depends(require("auditor", scope="audit:read"))]
Overseer = Annotated[Principal, Depends(require("auditor", "supervisor", scope="audit:read"))]

__all__ = [
    "KEY_SCOPES",
    "STREAM_COOKIE",
    "VICTIM_ROLES",
    "Admin",
    "AlertActor",
    "AlertReader",
    "AuditReader",
    "CurrentUser",
    "DbConn",
    "LocationReader",
    "Officer",
    "Overseer",
    "Principal",
    "RegistryReader",
    "RegistryWriter",
    "StreamUser",
    "Supervisor",
    "authenticate",
    "get_db",
    "get_principal",
    "get_stream_principal",
    "may_see_victims",
    "require",
    "require_role",
]
