"""Registry routes: subjects, devices, zones (and GeoJSON import), location history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from api.deps import DbConn, LocationReader, Principal, RegistryReader, RegistryWriter
from api.schemas import (
    AbsenceCreate,
    AbsencePublic,
    DeviceCreate,
    DevicePublic,
    FeatureCollection,
    PositionPublic,
    SubjectCreate,
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


@subjects.post("", status_code=201, response_model=SubjectPublic)
async def create_subject(body: SubjectCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """A supervisor's new subject joins the supervisor's unit (assign an officer with
    ``PUT /subjects/{id}/assignment``)."""
    row = await registry.create_subject(db, body.model_dump())
    if user.role != "admin" and user.unit_id:
        await account_store.assign_subject(db, subject_id=body.id, officer_id=None, unit_id=user.unit_id, by=user.name,
                                           reason="created")
    await registry.audit(db, actor=user.name, action="subject.create", subject_id=body.id,
                         remote_addr=user.remote_addr)
    return row


@subjects.get("", response_model=list[SubjectPublic])
async def list_subjects(db: DbConn, user: RegistryReader, limit: int = Query(100, ge=1, le=1000),
                        offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    return await registry.list_subjects(db, limit, offset, scope=user.scope)


@subjects.get("/{subject_id}", response_model=SubjectPublic)
async def get_subject(subject_id: str, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    return await registry.get_subject(db, subject_id, scope=user.scope)


@subjects.get("/{subject_id}/positions", response_model=list[PositionPublic])
async def subject_positions(
    subject_id: str, db: DbConn, user: LocationReader, since: datetime | None = None,
    limit: int = Query(500, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """A subject's location history, newest first. Every read is audited."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    rows = await registry.subject_positions(db, subject_id, since, limit)
    await registry.audit(db, actor=user.name, action="positions.read", subject_id=subject_id,
                         remote_addr=user.remote_addr,
                         details={"since": since.isoformat() if since else None, "limit": limit, "rows": len(rows)})
    return rows


@subjects.post("/{subject_id}/absences", status_code=201, response_model=AbsencePublic)
async def create_absence(subject_id: str, body: AbsenceCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """An authorised absence: the subject's rules (one zone's, or all) are off in the window."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    row = await registry.create_absence(db, {**body.model_dump(), "subject_id": subject_id, "created_by": user.name})
    await registry.audit(db, actor=user.name, action="absence.create", subject_id=subject_id,
                         remote_addr=user.remote_addr, details={"reason": body.reason})
    return row


@subjects.post("/{subject_id}/victims", status_code=201, response_model=VictimLinkPublic)
async def link_victim(subject_id: str, body: VictimLinkCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Bilateral monitoring: the victim's phone becomes a moving exclusion circle."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    row = await registry.create_victim_link(db, {**body.model_dump(), "subject_id": subject_id})
    await registry.audit(db, actor=user.name, action="victim.link", subject_id=subject_id,
                         target=body.victim_device_id, remote_addr=user.remote_addr)
    return row


@devices.post("", status_code=201, response_model=DevicePublic)
async def create_device(body: DeviceCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    await _check_subject(db, user, body.subject_id)
    row = await registry.create_device(db, body.model_dump())
    await registry.audit(db, actor=user.name, action="device.create", subject_id=body.subject_id, target=body.id,
                         remote_addr=user.remote_addr)
    return row


@devices.get("", response_model=list[DevicePublic])
async def list_devices(db: DbConn, user: RegistryReader, limit: int = Query(100, ge=1, le=10_000),
                       offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    return await registry.list_devices(db, limit, offset, scope=user.scope)


async def _check_subject(db: DbConn, user: Principal, subject_id: str | None) -> None:
    """A write that names a subject needs the subject in the caller's scope (else 404)."""
    if subject_id is not None and not user.scope.everything:
        await registry.get_subject(db, subject_id, scope=user.scope)


def _zone_row(body: ZoneCreate) -> dict[str, Any]:
    data = body.model_dump()
    data["schedule"] = [w.model_dump() for w in body.schedule]
    return data


@zones.post("", status_code=201, response_model=ZonePublic)
async def create_zone(body: ZoneCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    await _check_subject(db, user, body.subject_id)
    (row,) = await registry.create_zones(db, [_zone_row(body)])
    await registry.audit(db, actor=user.name, action="zone.create", subject_id=body.subject_id, target=body.id,
                         remote_addr=user.remote_addr)
    return row


@zones.post("/import", status_code=201, response_model=list[ZonePublic])
async def import_zones(body: FeatureCollection, db: DbConn, user: RegistryWriter) -> list[dict[str, Any]]:
    """Create zones from a GeoJSON FeatureCollection. Each feature's ``properties`` carry
    ``id``, ``name``, ``kind`` and optionally ``subject_id``, ``category``, ``radius_m``
    (Point features are circles), ``buffer_m`` and ``schedule``. All or none are stored."""
    items = []
    for i, feature in enumerate(body.features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InvalidInputError(f"features[{i}]", "not a GeoJSON Feature")
        props = feature.get("properties") or {}
        try:
            zone = ZoneCreate.model_validate({**props, "geometry": feature.get("geometry") or {}})
        except ValueError as exc:
            raise InvalidInputError(f"features[{i}]", str(exc).splitlines()[0]) from exc
        await _check_subject(db, user, zone.subject_id)
        items.append(_zone_row(zone))
    rows = await registry.create_zones(db, items)
    await registry.audit(db, actor=user.name, action="zone.import", remote_addr=user.remote_addr,
                         details={"count": len(rows)})
    return rows


@zones.get("", response_model=list[ZonePublic])
async def list_zones(db: DbConn, user: RegistryReader, subject_id: str | None = None,
                     limit: int = Query(1000, ge=1, le=10_000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    return await registry.list_zones(db, subject_id, limit, offset, scope=user.scope)
