"""Alert routes: reads in the caller's scope and the lifecycle actions.

Alert details can hold coordinates (a crossing's previous fix, a victim's distance): every
read is audited, and a victim-sensitive alert's location members are removed for roles
that may not see victims (``masked: true``). An appellant sees only their subject's
contestable alerts (resolved as a confirmed violation), without victim fields.

Lifecycle (``telemetry.store.alert_lifecycle``): acknowledge (note), resolve (outcome
and a required note), assign, reopen (reason); each transition is a row of the alert's
history, an event of the live feed and an audit record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import Field

from api.deps import AlertActor, AlertReader, DbConn, Principal
from api.errors import responses
from api.privacy import alert_view, audit_read
from api.schemas import BIGINT_MAX, ID_PATTERN, AlertPublic, Instant
from api.schemas_accounts import AlertAcknowledge, AlertAssign, AlertHistoryPublic, AlertReopen, AlertResolveBody
from telemetry.errors import InvalidInputError, NotFoundError
from telemetry.store import accounts as account_store
from telemetry.store import alert_lifecycle as lifecycle
from telemetry.store import alerts as alert_store
from telemetry.store import registry

router = APIRouter(prefix="/alerts", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="an alert's id")]
_ACTION = responses(401, 403, 404, 409, 413, 422, 503)


class AlertDetail(AlertPublic):
    """An alert with its lifecycle fields."""

    assigned_to: int | None = None
    acknowledged_note: str | None = None
    resolution_note: str | None = None
    escalation_level: int = 0
    escalated_at: datetime | None = None
    escalated_to: int | None = None
    zone_version: str | None = Field(None, description="the zone row's hash when the alert was raised")
    zone_revision: int | None = Field(None, description="the zone's version number in force when the alert was "
                                                        "raised: GET /zones/{zone_id}/versions/{zone_revision}")


def _visible(user: Principal, row: dict[str, Any]) -> bool:
    """An appellant sees only alerts that can be contested: resolved as a confirmed violation."""
    return user.role != "appellant" or row["resolution"] in alert_store.CONTESTABLE


def _view(user: Principal, row: dict[str, Any]) -> dict[str, Any]:
    row = alert_view(row, user)
    if user.role == "appellant":  # never a victim's distance, nor the officers' working notes
        return {**row, "details": {}, "distance_m": None, "acknowledged_note": None}
    return row


@router.get("", response_model=list[AlertDetail], responses=responses(401, 403, 422, 503))
async def list_alerts(
    db: DbConn, user: AlertReader, status: Literal["open", "acknowledged", "resolved"] | None = None,
    subject_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$", description="the alert type")] = None,
    severity: Literal["critical", "high", "medium", "low"] | None = None,
    assigned_to: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="an officer's account id")] = None,
    since: Annotated[Instant | None, Query(description="created at or after (RFC 3339 with offset)")] = None,
    until: Annotated[Instant | None, Query(description="created before (RFC 3339 with offset)")] = None,
    after_id: Annotated[int | None, Query(ge=0, le=BIGINT_MAX)] = None,
    before_id: Annotated[int | None, Query(ge=0, le=BIGINT_MAX)] = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Alerts within the caller's scope, newest first, paged by id (keyset):
    ``before_id`` = the smallest id of a page gives the next page back through history;
    ``after_id`` = the largest id seen gives the ``limit`` alerts that follow it (for
    polling: repeat until a page is short and none is missed, however many arrived; the
    live feed is ``GET /feed``)."""
    if user.role == "appellant":
        status = "resolved"
    if since is not None and until is not None and until <= since:
        raise InvalidInputError("until", "must be after since")
    where = alert_store.AlertFilter(status=status, subject_id=subject_id, kind=kind, severity=severity,
                                    assigned_to=assigned_to, since=since, until=until)
    rows = [_view(user, r) for r in
            await alert_store.list_alerts(db, limit=limit, after_id=after_id, before_id=before_id, where=where,
                                          scope=user.scope) if _visible(user, r)]
    await audit_read(db, user, "alerts.read", rows=len(rows), masked=sum(r["masked"] for r in rows),
                     subject_id=subject_id, status=status, after_id=after_id, before_id=before_id)
    return rows


@router.get("/{alert_id}", response_model=AlertDetail, responses=responses(401, 403, 404, 422, 503))
async def get_alert(alert_id: AlertId, db: DbConn, user: AlertReader) -> dict[str, Any]:
    row = await alert_store.get_alert(db, alert_id, scope=user.scope)
    if not _visible(user, row):
        raise NotFoundError("alert", str(alert_id))
    row = _view(user, row)
    await audit_read(db, user, "alert.read", rows=1, masked=int(row["masked"]), subject_id=row["subject_id"],
                     target=str(alert_id))
    return row


@router.post("/{alert_id}/acknowledge", response_model=AlertDetail, responses=_ACTION)
async def acknowledge(alert_id: AlertId, db: DbConn, user: AlertActor,
                      body: AlertAcknowledge | None = None) -> dict[str, Any]:
    note = body.note if body else None
    row = await lifecycle.transition(db, alert_id, "acknowledge", user.name, scope=user.scope, note=note)
    await registry.audit(db, actor=user.name, action="alert.acknowledge", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"note": note})
    return alert_view(row, user)


@router.post("/{alert_id}/resolve", response_model=AlertDetail, responses=_ACTION)
async def resolve(alert_id: AlertId, body: AlertResolveBody, db: DbConn, user: AlertActor) -> dict[str, Any]:
    """Resolve with an outcome and a note (both required)."""
    row = await lifecycle.transition(db, alert_id, "resolve", user.name, scope=user.scope, note=body.note,
                                     outcome=body.outcome)
    await registry.audit(db, actor=user.name, action="alert.resolve", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr,
                         details={"outcome": body.outcome, "note": body.note})
    return alert_view(row, user)


@router.post("/{alert_id}/reopen", response_model=AlertDetail, responses=_ACTION)
async def reopen(alert_id: AlertId, body: AlertReopen, db: DbConn, user: AlertActor) -> dict[str, Any]:
    row = await lifecycle.transition(db, alert_id, "reopen", user.name, scope=user.scope, note=body.reason)
    await registry.audit(db, actor=user.name, action="alert.reopen", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"reason": body.reason})
    return alert_view(row, user)


@router.post("/{alert_id}/assign", response_model=AlertDetail, responses=_ACTION)
async def assign(alert_id: AlertId, body: AlertAssign, db: DbConn, user: AlertActor) -> dict[str, Any]:
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
    return alert_view(row, user)


@router.get("/{alert_id}/history", response_model=list[AlertHistoryPublic], responses=responses(401, 403, 404, 422, 503))
async def alert_history(alert_id: AlertId, db: DbConn, user: AlertActor) -> list[dict[str, Any]]:
    """Every transition of the alert, oldest first."""
    return await lifecycle.history(db, alert_id, scope=user.scope)
