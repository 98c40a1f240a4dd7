"""Location queries for investigations, a subject's track as GeoJSON, and the subject
data export (a lawful access request). Every call is audited.

- ``GET /locations/within``: who was within R metres of a point between two instants
  (supervisors, in their unit; admins). Semantics in docs/location-queries.md.
- ``GET /subjects/{id}/track``: a subject's fixes as a FeatureCollection with gaps marked
  (scoped as ``GET /subjects/{id}/positions``).
- ``GET /subjects/{id}/export``: everything stored about a subject, one JSON archive
  (supervisors, in their unit; admins).

Victims' phones are left out (and the answer says so) unless the role may see victims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from api.deps import DbConn, LocationReader, Principal, may_see_victims, require
from api.errors import responses
from api.privacy import audit_read
from api.schemas import ID_PATTERN, Instant
from api.schemas_locations import EXPORT_EXAMPLE, LocationQueryPublic, SubjectExportPublic, TrackPublic
from telemetry.errors import InvalidInputError
from telemetry.location_query import Circle, answer
from telemetry.reach import search_box
from telemetry.store import location_queries, registry, subject_export
from telemetry.track import DEFAULT_GAP_FACTOR, track_collection

locations = APIRouter(prefix="/locations", tags=["locations"])
subject_tracks = APIRouter(prefix="/subjects", tags=["locations"])

#: supervisors (their unit) and admins; an API key needs ``positions:read``
Investigator = Annotated[Principal, Depends(require("supervisor", scope="positions:read"))]
SubjectId = Annotated[str, Path(pattern=ID_PATTERN, description="a subject's id")]

MAX_RADIUS_M = 10_000.0
MAX_QUERY_SPAN = timedelta(days=7)
MAX_CANDIDATES = 100_000  # prefiltered fixes one query may examine (~5 s of Python at most, measured loaded)
MAX_TRACK_SPAN = timedelta(days=31)
_ERRORS = (401, 403, 422, 503)
_ONE = (401, 403, 404, 422, 503)


def _check_range(since: datetime, until: datetime, longest: timedelta) -> None:
    if until <= since:
        raise InvalidInputError("until", "must be after since")
    if until - since > longest:
        raise InvalidInputError("until", f"the time range may span at most {longest.days} days")


def _victims(user: Principal) -> str:
    return "included" if may_see_victims(user) else "excluded"


@locations.get("/within", response_model=LocationQueryPublic, responses=responses(*_ERRORS))
async def who_was_within(
    db: DbConn, user: Investigator,
    lat: Annotated[float, Query(ge=-90, le=90, description="the point's latitude, WGS84 degrees",
                                openapi_examples={"tashkent": {"value": 41.3111}})],
    lon: Annotated[float, Query(ge=-180, le=180, description="the point's longitude, WGS84 degrees",
                                openapi_examples={"tashkent": {"value": 69.2797}})],
    radius_m: Annotated[float, Query(gt=0, le=MAX_RADIUS_M, description="R: the query circle's radius in metres",
                                     openapi_examples={"street": {"value": 150}})],
    since: Annotated[Instant, Query(description="RFC 3339 with offset; fixes at or after it",
                                    openapi_examples={"evening": {"value": "2026-11-20T20:00:00Z"}})],
    until: Annotated[Instant, Query(description="RFC 3339 with offset; fixes before it (at most 7 days after since)",
                                    openapi_examples={"night": {"value": "2026-11-20T23:00:00Z"}})],
    max_accuracy_m: Annotated[float, Query(ge=0, le=MAX_RADIUS_M,
                                           description="fixes with a larger accuracy radius are not considered")] = 1000,
    include_flagged: Annotated[bool, Query(description="also fixes the plausibility filter flagged")] = False,
    fixes_limit: Annotated[int, Query(ge=1, le=1000, description="fixes listed per device (counts are complete)")] = 100,
) -> dict[str, Any]:
    """Who was within ``radius_m`` metres of (``lat``, ``lon``) with ``since <= device
    time < until``, accuracy-aware: a fix is **certain** when its whole accuracy circle
    lies inside the query circle (geodesic distance + accuracy <= R), **possible** when
    its accuracy circle reaches it (distance - accuracy <= R). Subjects of the caller's
    unit only; victims' phones only for roles that may see victims (``victim_phones``).
    Every call writes an audit record with the parameters and the number of results."""
    _check_range(since, until, MAX_QUERY_SPAN)
    box = search_box(lat, lon, radius_m + max_accuracy_m)
    rows = await location_queries.fixes_in_box(
        db, box, since=since, until=until, max_accuracy_m=max_accuracy_m, include_victims=may_see_victims(user),
        include_flagged=include_flagged, scope=user.scope, limit=MAX_CANDIDATES + 1)
    if len(rows) > MAX_CANDIDATES:
        raise InvalidInputError("radius_m", f"more than {MAX_CANDIDATES} fixes lie near the point in the time range:"
                                            " narrow the radius, the accuracy limit or the time range")
    subjects = answer(rows, Circle(lat, lon, radius_m), fixes_limit=fixes_limit)
    devices = [d for s in subjects for d in s["devices"]]
    counts = {"subjects": len(subjects), "certain_subjects": sum(s["class"] == "certain" for s in subjects),
              "devices": len(devices), "fixes": sum(d["certain_fixes"] + d["possible_fixes"] for d in devices)}
    query = {"lat": lat, "lon": lon, "radius_m": radius_m, "since": since, "until": until,
             "max_accuracy_m": max_accuracy_m, "include_flagged": include_flagged}
    await audit_read(db, user, "locations.within", rows=counts["fixes"], lat=lat, lon=lon, radius_m=radius_m,
                     since=since.isoformat(), until=until.isoformat(), max_accuracy_m=max_accuracy_m,
                     include_flagged=include_flagged, results=counts, victim_phones=_victims(user),
                     subjects=[s["subject_id"] for s in subjects if s["subject_id"] is not None])
    return {"query": query, "subjects": subjects, "counts": counts, "victim_phones": _victims(user)}


@subject_tracks.get("/{subject_id}/track", response_model=TrackPublic, responses=responses(*_ONE))
async def subject_track(
    subject_id: SubjectId, db: DbConn, user: LocationReader,
    since: Annotated[Instant, Query(description="RFC 3339 with offset; fixes at or after it",
                                    openapi_examples={"morning": {"value": "2026-11-20T08:00:00Z"}})],
    until: Annotated[Instant, Query(description="RFC 3339 with offset; fixes before it (at most 31 days after since)",
                                    openapi_examples={"morning": {"value": "2026-11-20T09:00:00Z"}})],
    gap_factor: Annotated[float, Query(ge=1, le=100, description="a gap: consecutive fixes further apart than this"
                                                                 " many reporting intervals")] = DEFAULT_GAP_FACTOR,
    limit: Annotated[int, Query(ge=1, le=50_000, description="at most this many fixes (the earliest)")] = 10_000,
) -> dict[str, Any]:
    """The subject's fixes in ``since <= device time < until`` as a GeoJSON
    FeatureCollection: a Point per fix (accuracy, device time, source), a LineString per
    continuous stretch, and a ``gap`` LineString where consecutive fixes are further
    apart than ``gap_factor`` times the device profile's reporting interval. Scoped like
    ``/positions`` (outside the caller's scope: 404); every read is audited."""
    _check_range(since, until, MAX_TRACK_SPAN)
    await registry.get_subject(db, subject_id, scope=user.scope)
    rows = await location_queries.subject_track(db, subject_id, since=since, until=until,
                                                include_victims=may_see_victims(user), limit=limit + 1)
    truncated = len(rows) > limit
    features, devices = track_collection(rows[:limit], gap_factor=gap_factor)
    await audit_read(db, user, "track.read", rows=min(len(rows), limit), subject_id=subject_id,
                     since=since.isoformat(), until=until.isoformat(), gap_factor=gap_factor, limit=limit)
    return {"type": "FeatureCollection", "features": features, "subject_id": subject_id, "since": since,
            "until": until, "devices": devices, "truncated": truncated, "victim_phones": _victims(user)}


@subject_tracks.get(
    "/{subject_id}/export", response_model=None, response_class=Response,
    responses={200: {"model": SubjectExportPublic, "description": "The archive (a JSON attachment)",
                     "content": {"application/json": {"example": EXPORT_EXAMPLE}}},
               **responses(*_ONE)})
async def export_subject(
    subject_id: SubjectId, db: DbConn, user: Investigator,
    include_victim_sensitive: Annotated[bool, Query(description="include victim-sensitive data (only roles that"
                                                                " may see victims)")] = False,
) -> Response:
    """Everything stored about one subject as one JSON archive, for a lawful access
    request: registry row, assignments, devices, zones, absences, victim links,
    positions, device status, violations, alerts with their history and evidence,
    appellant accounts, audit records about the subject (and appeals where stored).
    Victim-sensitive data is redacted unless asked for by a role that may see victims.
    Audited."""
    if include_victim_sensitive and not may_see_victims(user):
        raise HTTPException(403, "this role may not see victim-sensitive data")
    await registry.get_subject(db, subject_id, scope=user.scope)
    await db.commit()  # the archive is read in a snapshot of its own; the audit record follows it
    archive = await subject_export.export_subject(db, subject_id, include_victims=include_victim_sensitive,
                                                  generated_at=datetime.now(UTC), generated_by=user.name)
    await audit_read(db, user, "subject.export", rows=sum(archive.counts.values()), subject_id=subject_id,
                     counts=archive.counts, skipped=archive.skipped,
                     victim_sensitive="included" if include_victim_sensitive else "redacted")
    filename = f"subject-{subject_id}-export.json"
    return Response(archive.text, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


__all__ = ["locations", "subject_tracks"]
