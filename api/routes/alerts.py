"""Alert routes: the officers' feed and lifecycle actions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from api.deps import AlertActor, AlertReader, DbConn, Principal
from api.schemas import AlertPublic, AlertResolve
from telemetry.errors import NotFoundError
from telemetry.store import alerts as alert_store
from telemetry.store import registry

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=list[AlertPublic])
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
        return {**row, "details": {}, "distance_m": None}
    return row


@router.get("/{alert_id}", response_model=AlertPublic)
async def get_alert(alert_id: int, db: DbConn, user: AlertReader) -> dict[str, Any]:
    row = await alert_store.get_alert(db, alert_id, scope=user.scope)
    if not _visible(user, row):
        raise NotFoundError("alert", str(alert_id))
    return _for(user, row)


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic)
async def acknowledge(alert_id: int, db: DbConn, user: AlertActor) -> dict[str, Any]:
    await alert_store.get_alert(db, alert_id, scope=user.scope)
    row = await alert_store.acknowledge(db, alert_id, user.name)
    await registry.audit(db, actor=user.name, action="alert.acknowledge", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr)
    return row


@router.post("/{alert_id}/resolve", response_model=AlertPublic)
async def resolve(alert_id: int, body: AlertResolve, db: DbConn, user: AlertActor) -> dict[str, Any]:
    await alert_store.get_alert(db, alert_id, scope=user.scope)
    row = await alert_store.resolve(db, alert_id, user.name, body.resolution)
    await registry.audit(db, actor=user.name, action="alert.resolve", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"resolution": body.resolution})
    return row
