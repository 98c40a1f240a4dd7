"""Registry routes: subjects, devices, zones (and GeoJSON import), location history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import DbConn, LocationReader, Principal, RegistryReader, RegistryWriter, may_see_victims
from api.errors import responses
from api.privacy import audit_read, subject_view, zone_view
from api.schemas import (
    BIGINT_MAX,
    ID_PATTERN,
    AbsenceCreate,
    AbsencePublic,
    DeviceCreate,
    DeviceImport,
    DevicePublic,
    FeatureCollection,
    Instant,
    PositionPublic,
    SubjectCreate,
    SubjectImport,
    SubjectPublic,
    VictimLinkCreate,
    VictimLinkPublic,
    ZoneCreate,
    ZonePublic,
)
from telemetry.errors import InvalidInputError
from telemetry.store import accounts as account_store
from telemetry.store import registry

subjects = APIRouter(prefix="/subjects", tags=["subjects"])
devices = APIRouter(prefix="/devices", tags=["devices"])
zones = APIRouter(prefix="/zones", tags=["zones"])

SubjectId = Annotated[str, Path(pattern=ID_PATTERN, description="a subject's id")]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
_READ = (401, 403, 422, 503)
_ONE = (401, 403, 404, 422, 503)
_WRITE = (401, 403, 404, 409, 413, 422, 503)


@subjects.post("", status_code=201, response_model=SubjectPublic, responses=responses(401, 403, 409, 413, 422, 503))
async def create_subject(body: SubjectCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """A supervisor's new subject joins the supervisor's unit (assign an officer with
    ``PUT /subjects/{id}/assignment``). ``term_start``/``term_end`` become the subject's
    first supervision term (``GET /subjects/{id}/terms``). A PINFL must be valid and agree
    with ``date_of_birth`` and ``sex`` when they are given (422 with the reason)."""
    row = await registry.create_subject(db, body.model_dump(), by=user.name)
    if user.role != "admin" and user.unit_id:
        await account_store.assign_subject(db, subject_id=body.id, officer_id=None, unit_id=user.unit_id, by=user.name,
                                           reason="created")
    await registry.audit(db, actor=user.name, action="subject.create", subject_id=body.id,
                         remote_addr=user.remote_addr, details={"before": None, "after": audited(row)})
    return subject_view(row, user)


@subjects.post("/import", status_code=201, response_model=list[SubjectPublic],
               responses=responses(401, 403, 409, 413, 422, 503))
async def import_subjects(body: SubjectImport, db: DbConn, user: RegistryWriter) -> list[dict[str, Any]]:
    """Up to 5,000 subjects at once (a fleet moving onto the system, a load test),
    each checked and created as by ``POST /subjects``; all or none (409 names the first
    id that exists). One audit record for the import."""
    items = [s.model_dump() for s in body.subjects]
    rows = await registry.create_subjects(db, items, by=user.name)
    if user.role != "admin" and user.unit_id:
        for s in body.subjects:
            await account_store.assign_subject(db, subject_id=s.id, officer_id=None, unit_id=user.unit_id,
                                               by=user.name, reason="created")
    await registry.audit(db, actor=user.name, action="subject.import", remote_addr=user.remote_addr,
                         details={"count": len(rows), "before": None, "after": [audited(r) for r in rows]})
    return [subject_view(r, user) for r in rows]


def audited(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A registry row for an audit record's before/after (JSON; a photo is only named)."""
    if row is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


@subjects.get("", response_model=list[SubjectPublic], responses=responses(*_READ))
async def list_subjects(db: DbConn, user: RegistryReader, limit: int = Query(100, ge=1, le=1000),
                        offset: Offset = 0) -> list[dict[str, Any]]:
    return [subject_view(r, user) for r in await registry.list_subjects(db, limit, offset, scope=user.scope)]


@subjects.get("/{subject_id}", response_model=SubjectPublic, responses=responses(*_ONE))
async def get_subject(subject_id: SubjectId, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    """Personal fields (PINFL, address, phone, photo) are null for roles that do not need
    them (``masked`` lists them; docs/registry.md has the table)."""
    return subject_view(await registry.get_subject(db, subject_id, scope=user.scope), user)


@subjects.get("/{subject_id}/positions", response_model=list[PositionPublic], responses=responses(*_ONE))
async def subject_positions(
    subject_id: SubjectId, db: DbConn, user: LocationReader,
    since: Annotated[Instant | None, Query(description="RFC 3339 with offset; fixes at or after it")] = None,
    until: Annotated[Instant | None, Query(description="RFC 3339 with offset; fixes before it")] = None,
    limit: int = Query(500, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """A subject's location history, newest first, ``since <= device_time < until``.
    Every read is audited. A victim's phone is never part of it for roles that may not
    see victims."""
    if since is not None and until is not None and until <= since:
        raise InvalidInputError("until", "must be after since")
    await registry.get_subject(db, subject_id, scope=user.scope)
    rows = await registry.subject_positions(db, subject_id, since, until, limit, include_victims=may_see_victims(user))
    await audit_read(db, user, "positions.read", rows=len(rows), subject_id=subject_id,
                     since=since.isoformat() if since else None, until=until.isoformat() if until else None,
                     limit=limit)
    return rows


@subjects.post("/{subject_id}/absences", status_code=201, response_model=AbsencePublic,
               responses=responses(401, 403, 404, 413, 422, 503))
async def create_absence(subject_id: SubjectId, body: AbsenceCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """An authorised absence: the subject's rules (one zone's, or all) are off in the
    window. ``zone_id`` must be the subject's own zone or a global zone of its category."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    row = await registry.create_absence(db, {**body.model_dump(), "subject_id": subject_id, "created_by": user.name})
    await registry.audit(db, actor=user.name, action="absence.create", subject_id=subject_id,
                         remote_addr=user.remote_addr, details={"reason": body.reason})
    return row


@subjects.post("/{subject_id}/victims", status_code=201, response_model=VictimLinkPublic, responses=responses(*_WRITE))
async def link_victim(subject_id: SubjectId, body: VictimLinkCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Bilateral monitoring: the victim's phone becomes a moving exclusion circle."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    row = await registry.create_victim_link(db, {**body.model_dump(), "subject_id": subject_id})
    await registry.audit(db, actor=user.name, action="victim.link", subject_id=subject_id,
                         target=body.victim_device_id, remote_addr=user.remote_addr)
    return row


@devices.post("", status_code=201, response_model=DevicePublic, responses=responses(*_WRITE))
async def create_device(body: DeviceCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """A device id is also its broker login: ``nazorat-...`` (service accounts), ``.``,
    ``..`` and ``:`` are refused."""
    await _check_subject(db, user, body.subject_id)
    row = await registry.create_device(db, body.model_dump(), by=user.name)
    await registry.audit(db, actor=user.name, action="device.create", subject_id=body.subject_id, target=body.id,
                         remote_addr=user.remote_addr, details={"before": None, "after": audited(row)})
    return row


@devices.post("/import", status_code=201, response_model=list[DevicePublic], responses=responses(*_WRITE))
async def import_devices(body: DeviceImport, db: DbConn, user: RegistryWriter) -> list[dict[str, Any]]:
    """Up to 5,000 devices at once, each checked as by ``POST /devices``; all or none.
    One audit record for the import."""
    for subject_id in sorted({d.subject_id for d in body.devices if d.subject_id is not None}):
        await _check_subject(db, user, subject_id)
    rows = await registry.create_devices(db, [d.model_dump() for d in body.devices], by=user.name)
    await registry.audit(db, actor=user.name, action="device.import", remote_addr=user.remote_addr,
                         details={"count": len(rows), "before": None, "after": [audited(r) for r in rows]})
    return rows


@devices.get("", response_model=list[DevicePublic], responses=responses(*_READ))
async def list_devices(db: DbConn, user: RegistryReader, limit: int = Query(100, ge=1, le=10_000),
                       offset: Offset = 0) -> list[dict[str, Any]]:
    return await registry.list_devices(db, limit, offset, scope=user.scope)


async def _check_subject(db: DbConn, user: Principal, subject_id: str | None) -> None:
    """A write that names a subject needs the subject in the caller's scope (else 404)."""
    if subject_id is not None and not user.scope.everything:
        await registry.get_subject(db, subject_id, scope=user.scope)


def _zone_row(body: ZoneCreate) -> dict[str, Any]:
    return body.model_dump(mode="json")


@zones.post("", status_code=201, response_model=ZonePublic, responses=responses(*_WRITE))
async def create_zone(body: ZoneCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    await _check_subject(db, user, body.subject_id)
    (row,) = await registry.create_zones(db, [_zone_row(body)], by=user.name)
    await registry.audit(db, actor=user.name, action="zone.create", subject_id=body.subject_id, target=body.id,
                         remote_addr=user.remote_addr, details={"before": None, "after": audited(row)})
    return zone_view(row, user)


def feature_errors(i: int, exc: ValidationError) -> RequestValidationError:
    out = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        where = ("geometry", *loc[1:]) if loc[:1] == ("geometry",) else ("properties", *loc)
        out.append({**e, "loc": ("body", "features", i, *where)})
    return RequestValidationError(out)


@zones.post("/import", status_code=201, response_model=list[ZonePublic], responses=responses(*_WRITE))
async def import_zones(body: FeatureCollection, db: DbConn, user: RegistryWriter) -> list[dict[str, Any]]:
    """Create zones from a GeoJSON FeatureCollection. Each feature's ``properties`` carry
    ``id``, ``name``, ``kind`` and optionally ``subject_id``, ``category``, ``radius_m``
    (Point features are circles), ``buffer_m``, ``schedule``, the dwell fields and
    ``victim_sensitive``. All or none are stored."""
    items = []
    for i, feature in enumerate(body.features):
        try:
            zone = ZoneCreate.model_validate({**(feature.properties or {}), "geometry": feature.geometry})
        except ValidationError as exc:
            raise feature_errors(i, exc) from exc
        item = _zone_row(zone)
        try:
            registry.check_zone(item)
        except InvalidInputError as exc:
            raise InvalidInputError(f"body.features[{i}].{exc.field}", exc.reason) from exc
        await _check_subject(db, user, zone.subject_id)
        items.append(item)
    rows = await registry.create_zones(db, items, by=user.name)
    await registry.audit(db, actor=user.name, action="zone.import", remote_addr=user.remote_addr,
                         details={"count": len(rows), "before": None, "after": [audited(r) for r in rows]})
    return [zone_view(r, user) for r in rows]


@zones.get("", response_model=list[ZonePublic], responses=responses(*_READ))
async def list_zones(db: DbConn, user: RegistryReader,
                     subject_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                     limit: int = Query(1000, ge=1, le=10_000), offset: Offset = 0) -> list[dict[str, Any]]:
    """Zones (a subject's and the global ones). Geometries are coordinates: every read is
    audited, and a victim-sensitive zone's geometry is null for roles that may not see
    victims."""
    rows = [zone_view(r, user) for r in await registry.list_zones(db, subject_id, limit, offset, scope=user.scope)]
    await audit_read(db, user, "zones.read", rows=len(rows), masked=sum(r["masked"] for r in rows),
                     subject_id=subject_id)
    return rows
