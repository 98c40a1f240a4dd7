"""``GET /alerts/{id}/evidence``: the evidence behind an alert as GeoJSON (RFC 7946).

A FeatureCollection of: the device's fixes in a window around the alert (Points, with
accuracy, source and plausibility flags; the alert's own fix marked ``role: "alert_fix"``),
the zone (its geometry, or a Point with ``radius_m`` for a circle; ``version`` is its
current row hash beside the alert's ``zone_version``: they differ when the zone changed
since) with the rule parameters (buffer, dwell, schedule), and the device's status
reports (``geometry: null``). Every read is audited; a victim-sensitive zone's geometry
is null for roles that may not see victims.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import AlertActor, DbConn, may_see_victims
from api.errors import responses
from api.privacy import audit_read
from api.schemas import BIGINT_MAX
from telemetry.store import alert_evidence as evidence_store
from telemetry.store import alerts as alert_store

router = APIRouter(prefix="/alerts", tags=["alerts"])


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


async def evidence_bundle(db: DbConn, alert: dict[str, Any], window_s: int, *,
                          victims: bool) -> tuple[dict[str, Any], int, int]:
    """The FeatureCollection behind ``alert`` (``victims``: whether a victim-sensitive
    zone's geometry may be shown), with how many fixes it holds and how many parts were
    masked. Also the snapshot a contest of the alert keeps (``api.routes.appeals``)."""
    alert_id = alert["id"]
    at = alert["fix_time"] or alert["status_time"] or alert["created_at"]
    window = timedelta(seconds=window_s)
    features: list[dict[str, Any]] = []
    fixes = await evidence_store.fixes_around(db, alert["device_id"], at, window)
    for f in fixes:
        props = {k: f[k] for k in ("device_id", "accuracy_m", "speed_mps", "heading_deg", "source", "seq", "late",
                                   "flags")}
        props |= {"kind": "fix", "device_time": f["device_time"].isoformat(), "received_at": f["received_at"].isoformat(),
                  "role": "alert_fix" if f["device_time"] == alert["fix_time"] else "context"}
        features.append({"type": "Feature", "geometry": _point(f["lon"], f["lat"]), "properties": props})
    masked = 0
    if alert["zone_id"] is not None:
        z = await evidence_store.zone(db, alert["zone_id"])
        if z is not None:
            geometry = z["geometry"]
            if z["victim_sensitive"] and not victims:
                geometry, masked = None, 1
            props = {k: z[k] for k in ("id", "name", "kind", "subject_id", "category", "radius_m", "buffer_m",
                                       "schedule", "active", "dwell_open_fixes", "dwell_open_s", "dwell_close_fixes",
                                       "dwell_close_s", "version")}
            props |= {"kind": "zone", "zone_kind": z["kind"], "version_at_alert": alert["zone_version"],
                      "changed_since_alert": alert["zone_version"] not in (None, z["version"])}
            features.append({"type": "Feature", "geometry": geometry, "properties": props})
    for s in await evidence_store.status_around(db, alert["device_id"], at, window):
        features.append({"type": "Feature", "geometry": None,
                         "properties": {**{k: v for k, v in s.items() if k != "device_time"}, "kind": "status",
                                        "device_time": s["device_time"].isoformat()}})
    bundle = {"type": "FeatureCollection", "features": features,
              "properties": {"alert_id": alert_id, "kind": alert["kind"], "rule": alert["kind"],
                             "severity": alert["severity"], "at": at.isoformat(), "window_s": window_s}}
    return bundle, len(fixes), masked


@router.get("/{alert_id}/evidence", responses=responses(401, 403, 404, 422, 503),
            response_description="a GeoJSON FeatureCollection (RFC 7946)")
async def alert_evidence(
    alert_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)], db: DbConn, user: AlertActor,
    window_s: Annotated[int, Query(ge=0, le=6 * 3600, description="seconds either side of the alert")] = 600,
) -> dict[str, Any]:
    alert = await alert_store.get_alert(db, alert_id, scope=user.scope)
    bundle, fixes, masked = await evidence_bundle(db, alert, window_s, victims=may_see_victims(user))
    await audit_read(db, user, "alert.evidence_read", rows=fixes, masked=masked, subject_id=alert["subject_id"],
                     target=str(alert_id), window_s=window_s)
    return bundle
