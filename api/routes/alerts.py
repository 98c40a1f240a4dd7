"""Alert routes: the officers' feed and lifecycle actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import AlertActor, AlertReader, DbConn, Principal
from api.schemas import AlertPublic
from api.schemas_accounts import AlertAcknowledge, AlertAssign, AlertHistoryPublic, AlertReopen, AlertResolveBody
from telemetry.errors import InvalidInputError, NotFoundError
from telemetry.store import accounts as account_store
from telemetry.store import alert_lifecycle as lifecycle
from telemetry.store import alerts as alert_store
from telemetry.store import registry

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertDetail(AlertPublic):
    """An alert with its lifecycle fields."""

    assigned_to: int | None = None
    acknowledged_note: str | None = None
    resolution_note: str | None = None
    escalation_level: int = 0
    escalated_at: datetime | None = None
    escalated_to: int | None = None
    zone_version: str | None = None


@router.get("", response_model=list[AlertDetail])
async def list_alerts(
    db: DbConn, user: AlertReader, status: Literal["open", "acknowledged", "resolved"] | None = None,
    subject_id: str | None = None, after_id: int | None = Query(None, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Alerts within the caller's scope, newest first. ``after_id`` returns only newer
    ones (for polling feeds). An appellant sees only their subject's contestable alerts."""
    if user.role == "appellant":
        status = "resolved"
    rows = await alert_store.list_alerts(db, status=status, subject_id=subject_id, limit=limit, after_id=after_id,
                                         scope=user.scope)
    return [_for(user, r) for r in rows if _visible(user, r)]


def _visible(user: Principal, row: dict[str, Any]) -> bool:
    """An appellant sees only alerts that can be contested: resolved as a confirmed violation."""
    return user.role != "appellant" or row["resolution"] in alert_store.CONTESTABLE


def _for(user: Principal, row: dict[str, Any]) -> dict[str, Any]:
    """Victim-sensitive fields are not shown to an appellant."""
    if user.role == "appellant":
        return {**row, "details": {}, "distance_m": None, "acknowledged_note": None}
    return row


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(alert_id: int, db: DbConn, user: AlertReader) -> dict[str, Any]:
    row = await alert_store.get_alert(db, alert_id, scope=user.scope)
    if not _visible(user, row):
        raise NotFoundError("alert", str(alert_id))
    return _for(user, row)


@router.post("/{alert_id}/acknowledge", response_model=AlertDetail)
async def acknowledge(alert_id: int, db: DbConn, user: AlertActor,
                      body: AlertAcknowledge | None = None) -> dict[str, Any]:
    note = body.note if body else None
    row = await lifecycle.transition(db, alert_id, "acknowledge", user.name, scope=user.scope, note=note)
    await registry.audit(db, actor=user.name, action="alert.acknowledge", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"note": note})
    return row


@router.post("/{alert_id}/resolve", response_model=AlertDetail)
async def resolve(alert_id: int, body: AlertResolveBody, db: DbConn, user: AlertActor) -> dict[str, Any]:
    """Resolve with an outcome and a note (both required)."""
    row = await lifecycle.transition(db, alert_id, "resolve", user.name, scope=user.scope, note=body.note,
                                     outcome=body.outcome)
    await registry.audit(db, actor=user.name, action="alert.resolve", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr,
                         details={"outcome": body.outcome, "note": body.note})
    return row


@router.post("/{alert_id}/reopen", response_model=AlertDetail)
async def reopen(alert_id: int, body: AlertReopen, db: DbConn, user: AlertActor) -> dict[str, Any]:
    row = await lifecycle.transition(db, alert_id, "reopen", user.name, scope=user.scope, note=body.reason)
    await registry.audit(db, actor=user.name, action="alert.reopen", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"reason": body.reason})
    return row


@router.post("/{alert_id}/assign", response_model=AlertDetail)
async def assign(alert_id: int, body: AlertAssign, db: DbConn, user: AlertActor) -> dict[str, Any]:
    """Assign to an officer: an officer takes an alert for themself; a supervisor assigns
    within their unit."""
    await alert_store.get_alert(db, alert_id, scope=user.scope)
    try:
        officer = await account_store.get_account(db, body.officer_id)
    except NotFoundError:
        officer = None
    if user.role == "officer" and body.officer_id != user.account_id:
        raise HTTPException(403, "an officer can assign an alert only to themself")
    if officer is None or (user.role == "supervisor" and officer["unit_id"] != user.unit_id):
        raise NotFoundError("account", str(body.officer_id))
    if officer["role"] not in ("officer", "supervisor"):
        raise InvalidInputError("officer_id", "must be an officer's or a supervisor's account")
    row = await lifecycle.transition(db, alert_id, "assign", user.name, scope=user.scope, assigned_to=body.officer_id)
    await registry.audit(db, actor=user.name, action="alert.assign", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"officer_id": body.officer_id})
    return row


@router.get("/{alert_id}/history", response_model=list[AlertHistoryPublic])
async def alert_history(alert_id: int, db: DbConn, user: AlertActor) -> list[dict[str, Any]]:
    """Every transition of the alert, oldest first."""
    return await lifecycle.history(db, alert_id, scope=user.scope)
