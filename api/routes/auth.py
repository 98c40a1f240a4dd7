"""Sign-in (OAuth2 password flow), refresh, sign-out, password change, stream tokens.

``POST /auth/token`` takes the standard form (``grant_type=password`` with username and
password, or ``grant_type=refresh_token``). Access tokens live ``ACCESS_TOKEN_TTL_S``
(15 minutes); refresh tokens are single-use (each use returns a new one; reusing a
spent one revokes every session of its account) and revocable. Failed sign-ins are
counted per account (lockout after ``LOGIN_MAX_FAILURES`` in a row) and per address
(429 past ``LOGIN_ADDR_MAX_FAILURES`` in the window). Every sign-in, failed or not, is
audited.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response

from api.auth import AuthConfig, hash_password, issue_access, make_refresh, secret_hash, verify_password
from api.deps import STREAM_COOKIE, CurrentUser, DbConn, Principal
from api.errors import responses
from api.schemas_accounts import MePublic, PasswordChange, RefreshBody, TokenPublic
from telemetry.store import accounts as account_store
from telemetry.store import audit as audit_store

_ERRORS = responses(401, 403, 404, 409, 422, 429, 503)
router = APIRouter(prefix="/auth", tags=["auth"], responses=_ERRORS)


def _auth(request: Request) -> AuthConfig:
    config: AuthConfig = request.app.state.auth
    return config


def _addr(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _tokens(db: DbConn, auth: AuthConfig, account: dict[str, Any]) -> TokenPublic:
    access = issue_access(auth.jwt_secret, account_id=account["id"], username=account["username"],
                          role=account["role"], unit_id=account["unit_id"], subject_id=account["subject_id"],
                          ttl_s=auth.access_ttl_s)
    refresh, refresh_hash = make_refresh()
    new_id = await account_store.create_refresh(db, account["id"], refresh_hash, auth.refresh_ttl_s)
    if "refresh_id" in account:
        await account_store.link_refresh(db, account["refresh_id"], new_id)
    return TokenPublic(access_token=access, expires_in=auth.access_ttl_s, refresh_token=refresh)


def _refused(status: int, message: str, retry_after: int | None = None) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return HTTPException(status, message, headers=headers)


@router.post("/token", response_model=TokenPublic)
async def token(
    request: Request, db: DbConn,
    grant_type: Annotated[str, Form(pattern="^(password|refresh_token)$")],
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    refresh_token: Annotated[str, Form(max_length=200)] = "",
) -> TokenPublic:
    auth = _auth(request)
    addr = _addr(request)
    if grant_type == "refresh_token":
        account = await account_store.consume_refresh(db, secret_hash(refresh_token)) if refresh_token else None
        if account is None:
            await audit_store.append(db, actor="-", action="auth.refresh_failed", remote_addr=addr)
            await db.commit()  # a reused token's revocation of the account's sessions stands
            raise _refused(401, "invalid, expired or revoked refresh token")
        out = await _tokens(db, auth, account)
        await audit_store.append(db, actor=account["username"], role=account["role"], action="auth.refresh",
                                 remote_addr=addr)
        return out
    if await account_store.failed_from_address(db, addr, auth.addr_window_s) >= auth.addr_max_failures:
        await audit_store.append(db, actor=username[:64] or "-", action="auth.login_refused", remote_addr=addr,
                                 details={"reason": "address rate limit"})
        await db.commit()
        raise _refused(429, "too many failed sign-ins from this address; retry later", auth.addr_window_s)
    row = await account_store.find_login(db, username)
    if row is not None and row["locked"]:
        await audit_store.append(db, actor=username, role=row["role"], action="auth.login_refused", remote_addr=addr,
                                 details={"reason": "account locked"})
        await db.commit()
        raise _refused(429, "account temporarily locked after repeated failed sign-ins", auth.lockout_s)
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else None, password)
    ok = ok and row is not None and not row["disabled"]
    locked = await account_store.record_attempt(
        db, username=username, remote_addr=addr, success=ok, account_id=row["id"] if row else None,
        max_failures=auth.max_failures, lockout_s=auth.lockout_s)
    if not ok:
        await audit_store.append(db, actor=username[:64] or "-", role=row["role"] if row else None,
                                 action="auth.login_failed", remote_addr=addr,
                                 details={"known_account": row is not None, "locked": locked is not None})
        await db.commit()
        raise _refused(401, "wrong username or password")
    assert row is not None
    out = await _tokens(db, auth, row)
    await audit_store.append(db, actor=row["username"], role=row["role"], action="auth.login", remote_addr=addr)
    return out


@router.post("/logout", status_code=204)
async def logout(body: RefreshBody, db: DbConn, user: CurrentUser) -> Response:
    """Revoke a refresh token (the access token expires by itself)."""
    revoked = await account_store.revoke_refresh(db, secret_hash(body.refresh_token))
    await audit_store.append(db, actor=user.name, action="auth.logout", remote_addr=user.remote_addr,
                             details={"revoked": revoked})
    return Response(status_code=204)


def _me(user: Principal) -> MePublic:
    return MePublic(username=user.name, role=user.role, account_id=user.account_id, unit_id=user.unit_id,
                    subject_id=user.subject_id, scope=str(user.scope), via=user.via,
                    key_scopes=sorted(user.scopes) if user.scopes is not None else None)


@router.get("/me", response_model=MePublic)
async def me(user: CurrentUser) -> MePublic:
    return _me(user)


@router.post("/password", status_code=204)
async def change_password(body: PasswordChange, db: DbConn, user: CurrentUser) -> Response:
    """Change one's own password; every refresh token of the account is revoked."""
    if user.account_id is None or user.via != "token":
        raise HTTPException(403, "only a signed-in person can change their password")
    account = await account_store.find_login(db, user.name)
    if account is None or not await asyncio.to_thread(verify_password, account["password_hash"], body.current_password):
        await audit_store.append(db, actor=user.name, action="auth.password_change_failed", remote_addr=user.remote_addr)
        await db.commit()
        raise HTTPException(403, "the current password is wrong")
    await account_store.set_password(db, user.account_id, await asyncio.to_thread(hash_password, body.new_password))
    await audit_store.append(db, actor=user.name, action="auth.password_change", target=str(user.account_id),
                             remote_addr=user.remote_addr)
    return Response(status_code=204)


@router.post("/stream-token", status_code=204)
async def stream_token(request: Request, user: CurrentUser) -> Response:
    """Set a short-lived, HttpOnly cookie that a browser ``EventSource`` sends to
    ``/feed`` (it cannot send an Authorization header; tokens never go in URLs)."""
    if user.account_id is None:
        raise HTTPException(403, "stream tokens are for signed-in accounts")
    auth = _auth(request)
    token = issue_access(auth.jwt_secret, account_id=user.account_id, username=user.name, role=user.role,
                         unit_id=user.unit_id or "hq", subject_id=user.subject_id, ttl_s=auth.stream_ttl_s,
                         typ="stream")
    response = Response(status_code=204)
    response.set_cookie(STREAM_COOKIE, token, max_age=auth.stream_ttl_s, httponly=True, samesite="strict",
                        path="/feed", secure=request.url.scheme == "https")
    return response
