"""``GET /statistics/alerts``: the alert-burden numbers a supervisor needs to tune rules
(per officer, unit, alert type, zone or device profile: time to acknowledge and to
resolve p50/p90, outcomes, false-alarm rate). Auditors see every unit (no location
data here), supervisors their unit, officers their caseload. The same burden is on
``/metrics`` as histograms and counters of the lifecycle transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import DbConn, Principal, require
from api.errors import responses
from telemetry.store import alert_stats
from telemetry.store.scope import ALL

router = APIRouter(prefix="/statistics", tags=["statistics"], responses=responses(401, 403, 404, 409, 422, 503))
StatsReader = Annotated[Principal, Depends(require("auditor", "supervisor", "officer", scope="alerts:read"))]


class AlertStatistics(BaseModel):
    key: str
    total: int
    acknowledged: int
    resolved: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    confirmed_violation: int
    false_alarm: int
    technical: int
    excused: int
    contested_upheld: int = Field(0, description="excused by an upheld contest; counted in false_alarm too")
    escalated: int
    false_alarm_rate: float | None


@router.get("/alerts", response_model=list[AlertStatistics])
async def alert_statistics(
    db: DbConn, user: StatsReader,
    group_by: Literal["officer", "unit", "kind", "zone", "device_profile"] = "kind",
    since: Annotated[datetime | None, Query(description="alerts created at or after (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="alerts created before (RFC 3339)")] = None,
) -> list[dict[str, Any]]:
    scope = ALL if user.role == "auditor" else user.scope
    return await alert_stats.alert_statistics(db, group_by=group_by, since=since, until=until, scope=scope)
