"""Operational records: zones left out of evaluation because they do not compile, and
fixes whose rule evaluation raised (stored, not evaluated). They hold no coordinates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import DbConn, Officer
from api.errors import responses
from telemetry.store import operations

router = APIRouter(prefix="/operational-errors", tags=["operations"])


class OperationalErrorPublic(BaseModel):
    id: int
    kind: Literal["zone_compile", "rule_error"]
    entity: str  # the zone id (zone_compile) or the device id (rule_error)
    fix_time: datetime | None
    reason: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    resolved_at: datetime | None


@router.get("", response_model=list[OperationalErrorPublic], responses=responses(401, 403, 422))
async def list_operational_errors(
    db: DbConn, _user: Officer, kind: Literal["zone_compile", "rule_error"] | None = None,
    open_only: bool = True, limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Newest first; by default only the open ones (a zone that compiles again resolves
    its record)."""
    return await operations.list_operational_errors(db, kind=kind, open_only=open_only, limit=limit)
