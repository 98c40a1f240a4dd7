"""The audit log for oversight (auditors and admins): records and the chain check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from api.deps import AuditReader, DbConn
from api.errors import responses
from api.schemas_accounts import AuditRecordPublic, ChainPublic
from telemetry.store import audit as audit_store

_ERRORS = responses(401, 403, 404, 409, 422, 429, 503)
router = APIRouter(prefix="/audit", tags=["audit"], responses=_ERRORS)


@router.get("", response_model=list[AuditRecordPublic])
async def list_audit(
    db: DbConn, _user: AuditReader, actor: str | None = Query(None, max_length=64),
    action: str | None = Query(None, max_length=64), subject_id: str | None = Query(None, max_length=64),
    since: datetime | None = None, after_id: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Audit records, newest first (they hold no coordinates)."""
    return await audit_store.list_records(db, actor=actor, action=action, subject_id=subject_id, since=since,
                                          after_id=after_id, limit=limit)


@router.get("/verify", response_model=ChainPublic)
async def verify(db: DbConn, _user: AuditReader) -> ChainPublic:
    """Recompute the hash chain; names the first record that does not match."""
    report = await audit_store.verify_async(db)
    return ChainPublic(ok=report.ok, checked=report.checked, first_broken_id=report.first_broken_id,
                       reason=report.reason)
