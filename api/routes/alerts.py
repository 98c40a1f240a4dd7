"""Alert routes: the officers' feed and lifecycle actions.

Alert details can hold coordinates (a crossing's previous fix, a victim's distance): every
read is audited, and a victim-sensitive alert's location members are removed for roles
that may not see victims (``masked: true``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from api.deps import DbConn, Officer
from api.errors import responses
from api.privacy import alert_view, audit_read
from api.schemas import BIGINT_MAX, ID_PATTERN, AlertPublic, AlertResolve
from telemetry.store import alerts as alert_store
from telemetry.store import registry

router = APIRouter(prefix="/alerts", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="an alert's id")]


@router.get("", response_model=list[AlertPublic], responses=responses(401, 403, 422, 503))
async def list_alerts(
    db: DbConn, user: Officer, status: Literal["open", "acknowledged", "resolved"] | None = None,
    subject_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    after_id: Annotated[int | None, Query(ge=0, le=BIGINT_MAX)] = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Alerts, newest first. ``after_id`` returns only newer ones (for polling feeds)."""
    rows = [alert_view(r, user) for r in
            await alert_store.list_alerts(db, status=status, subject_id=subject_id, limit=limit, after_id=after_id)]
    await audit_read(db, user, "alerts.read", rows=len(rows), masked=sum(r["masked"] for r in rows),
                     subject_id=subject_id, status=status, after_id=after_id)
    return rows


@router.get("/{alert_id}", response_model=AlertPublic, responses=responses(401, 403, 404, 422, 503))
async def get_alert(alert_id: AlertId, db: DbConn, user: Officer) -> dict[str, Any]:
    row = alert_view(await alert_store.get_alert(db, alert_id), user)
    await audit_read(db, user, "alert.read", rows=1, masked=int(row["masked"]), subject_id=row["subject_id"],
                     target=str(alert_id))
    return row


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic, responses=responses(401, 403, 404, 409, 422, 503))
async def acknowledge(alert_id: AlertId, db: DbConn, user: Officer) -> dict[str, Any]:
    row = alert_view(await alert_store.acknowledge(db, alert_id, user.name), user)
    await registry.audit(db, actor=user.name, action="alert.acknowledge", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr)
    return row


@router.post("/{alert_id}/resolve", response_model=AlertPublic,
             responses=responses(401, 403, 404, 409, 413, 422, 503))
async def resolve(alert_id: AlertId, body: AlertResolve, db: DbConn, user: Officer) -> dict[str, Any]:
    row = alert_view(await alert_store.resolve(db, alert_id, user.name, body.resolution), user)
    await registry.audit(db, actor=user.name, action="alert.resolve", subject_id=row["subject_id"],
                         target=str(alert_id), remote_addr=user.remote_addr, details={"resolution": body.resolution})
    return row
