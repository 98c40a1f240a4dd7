"""Accounts, units and API keys (admin), and caseload assignment (supervisors)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from api.auth import hash_password, make_api_key
from api.deps import Admin, CurrentUser, DbConn, Principal, RegistryReader, RegistryWriter, require
from api.errors import responses
from api.schemas_accounts import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    AssignmentCreate,
    AssignmentPublic,
    PasswordReset,
    UnitCreate,
    UnitOfficer,
    UnitPublic,
)
from telemetry.errors import NotFoundError
from telemetry.store import accounts as account_store
from telemetry.store import audit as audit_store
from telemetry.store import registry

_ERRORS = responses(401, 403, 404, 409, 422, 503)
accounts = APIRouter(prefix="/accounts", tags=["accounts"], responses=_ERRORS)
units = APIRouter(prefix="/units", tags=["accounts"], responses=_ERRORS)
api_keys = APIRouter(prefix="/api-keys", tags=["accounts"], responses=_ERRORS)
caseload = APIRouter(prefix="/subjects", tags=["subjects"], responses=_ERRORS)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@units.post("", status_code=201, response_model=UnitPublic)
async def create_unit(body: UnitCreate, db: DbConn, user: Admin) -> dict[str, Any]:
    row = await account_store.create_unit(db, body.id, body.name)
    await audit_store.append(db, actor=user.name, action="unit.create", target=body.id, remote_addr=user.remote_addr,
                             details={"after": _public(row)})
    return row


@units.get("", response_model=list[UnitPublic])
async def list_units(db: DbConn, _user: CurrentUser) -> list[dict[str, Any]]:
    return await account_store.list_units(db)


@units.get("/{unit_id}/officers", response_model=list[UnitOfficer])
async def unit_officers(unit_id: Annotated[str, Path(max_length=64, examples=["u1"])], db: DbConn,
                        user: Annotated[Principal, Depends(require("supervisor", scope="registry:read"))],
                        ) -> list[dict[str, Any]]:
    """The unit's officers and supervisors who can sign in (id and username), for choosing
    one (an alert filter, a reviewer). A supervisor reads only their own unit (403 for
    another); 404 for a unit that does not exist."""
    if user.role == "supervisor" and unit_id != user.unit_id:
        raise HTTPException(403, "a supervisor reads the officers of their own unit")
    rows = await account_store.unit_officers(db, unit_id)
    if rows is None:
        raise NotFoundError("unit", unit_id)
    return rows


@accounts.post("", status_code=201, response_model=AccountPublic)
async def create_account(body: AccountCreate, db: DbConn, user: Admin) -> dict[str, Any]:
    password_hash = await asyncio.to_thread(hash_password, body.password)
    row = await account_store.create_account(db, username=body.username, role=body.role, unit_id=body.unit_id,
                                             subject_id=body.subject_id, password_hash=password_hash)
    await audit_store.append(db, actor=user.name, action="account.create", target=str(row["id"]),
                             subject_id=body.subject_id, remote_addr=user.remote_addr,
                             details={"after": _public(row)})
    return row


@accounts.get("", response_model=list[AccountPublic])
async def list_accounts(db: DbConn, _user: Admin, unit_id: str | None = Query(None, max_length=64),
                        limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    return await account_store.list_accounts(db, unit_id=unit_id, limit=limit, offset=offset)


@accounts.get("/{account_id}", response_model=AccountPublic)
async def get_account(account_id: int, db: DbConn, _user: Admin) -> dict[str, Any]:
    return await account_store.get_account(db, account_id)


@accounts.patch("/{account_id}", response_model=AccountPublic)
async def update_account(account_id: int, body: AccountUpdate, db: DbConn, user: Admin) -> dict[str, Any]:
    before = await account_store.get_account(db, account_id)
    row = await account_store.update_account(db, account_id, body.model_dump(exclude_unset=True))
    await audit_store.append(db, actor=user.name, action="account.update", target=str(account_id),
                             remote_addr=user.remote_addr, details={"before": _public(before), "after": _public(row)})
    return row


@accounts.post("/{account_id}/unlock", status_code=204)
async def unlock(account_id: int, db: DbConn, user: Admin) -> Response:
    await account_store.get_account(db, account_id)
    await account_store.unlock(db, account_id)
    await audit_store.append(db, actor=user.name, action="account.unlock", target=str(account_id),
                             remote_addr=user.remote_addr)
    return Response(status_code=204)


@accounts.post("/{account_id}/password", status_code=204)
async def reset_password(account_id: int, body: PasswordReset, db: DbConn, user: Admin) -> Response:
    await account_store.get_account(db, account_id)
    await account_store.set_password(db, account_id, await asyncio.to_thread(hash_password, body.new_password))
    await audit_store.append(db, actor=user.name, action="account.password_reset", target=str(account_id),
                             remote_addr=user.remote_addr)
    return Response(status_code=204)


@api_keys.post("", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, db: DbConn, user: Admin) -> dict[str, Any]:
    """A key for an integration, acting as ``account_id`` narrowed to ``scopes``. The key
    is in this response only; the server keeps its hash."""
    await account_store.get_account(db, body.account_id)
    key, prefix, key_hash = make_api_key()
    row = await account_store.create_api_key(db, account_id=body.account_id, name=body.name, prefix=prefix,
                                             key_hash=key_hash, scopes=sorted(set(body.scopes)), created_by=user.name)
    await audit_store.append(db, actor=user.name, action="api_key.create", target=str(row["id"]),
                             remote_addr=user.remote_addr, details={"after": _public(row)})
    return {**row, "key": key}


@api_keys.get("", response_model=list[ApiKeyPublic])
async def list_api_keys(db: DbConn, _user: Admin, account_id: int | None = Query(None, ge=1)) -> list[dict[str, Any]]:
    return await account_store.list_api_keys(db, account_id)


@api_keys.delete("/{key_id}", response_model=ApiKeyPublic)
async def revoke_api_key(key_id: int, db: DbConn, user: Admin) -> dict[str, Any]:
    row = await account_store.revoke_api_key(db, key_id)
    await audit_store.append(db, actor=user.name, action="api_key.revoke", target=str(key_id),
                             remote_addr=user.remote_addr)
    return row


async def _visible_subject(db: DbConn, user: Any, subject_id: str) -> None:
    """404 unless the subject exists and is in the caller's scope."""
    await registry.get_subject(db, subject_id, scope=user.scope)


@caseload.put("/{subject_id}/assignment", response_model=AssignmentPublic)
async def assign(subject_id: str, body: AssignmentCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Put a subject on an officer's caseload (a registry action, kept in history). A
    supervisor assigns only within their unit."""
    await _visible_subject(db, user, subject_id)
    if user.role != "admin":
        if body.unit_id is not None and body.unit_id != user.unit_id:
            raise HTTPException(403, "a supervisor assigns within their own unit")
        if body.officer_id is not None:
            try:
                officer = await account_store.get_account(db, body.officer_id)
            except NotFoundError:
                officer = None
            if officer is None or officer["unit_id"] != user.unit_id:
                raise NotFoundError("account", str(body.officer_id))
    row = await account_store.assign_subject(db, subject_id=subject_id, officer_id=body.officer_id,
                                             unit_id=body.unit_id or (user.unit_id if user.role != "admin" else None),
                                             by=user.name, reason=body.reason)
    before = row.pop("before")
    await audit_store.append(db, actor=user.name, action="subject.assign", subject_id=subject_id,
                             target=str(body.officer_id), remote_addr=user.remote_addr,
                             details={"before": before, "after": {"officer_id": row["officer_id"],
                                                                  "unit_id": row["unit_id"]},
                                      "reason": body.reason})
    return row


@caseload.get("/{subject_id}/assignments", response_model=list[AssignmentPublic])
async def assignments(subject_id: str, db: DbConn, user: RegistryReader) -> list[dict[str, Any]]:
    await _visible_subject(db, user, subject_id)
    return await account_store.assignment_history(db, subject_id)
