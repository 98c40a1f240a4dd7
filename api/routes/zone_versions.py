"""One zone: read, replace (a new version), retire; its versions; and a subject's whole
zone set as GeoJSON (export and import)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import ValidationError

from api.deps import DbConn, RegistryReader, RegistryWriter
from api.errors import responses
from api.privacy import audit_read, zone_view
from api.routes.registry import SubjectId, audited, feature_errors
from api.schemas import ID_PATTERN, FeatureCollection, ZoneCreate, ZonePublic
from api.schemas_registry import ZoneImportResult, ZoneVersionPublic
from telemetry.errors import InvalidInputError
from telemetry.store import registry

router = APIRouter(prefix="/zones", tags=["zones"])
subject_zones = APIRouter(prefix="/subjects", tags=["zones"])
ZoneId = Annotated[str, Path(pattern=ID_PATTERN, description="a zone's id")]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="a version number (1 is the first)")]
_ONE = (401, 403, 404, 422, 503)
_WRITE = (401, 403, 404, 409, 413, 422, 503)
_PROPERTIES = ("id", "name", "kind", "subject_id", "category", "radius_m", "buffer_m", "schedule", "dwell_open_fixes",
               "dwell_open_s", "dwell_close_fixes", "dwell_close_s", "victim_sensitive", "active", "version")


@router.get("/{zone_id}", response_model=ZonePublic, responses=responses(*_ONE))
async def get_zone(zone_id: ZoneId, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    row = zone_view(await registry.get_zone(db, zone_id, scope=user.scope), user)
    await audit_read(db, user, "zone.read", rows=1, masked=int(row["masked"]), subject_id=row["subject_id"],
                     target=zone_id)
    return row


@router.put("/{zone_id}", response_model=ZonePublic, responses=responses(*_WRITE))
async def replace_zone(zone_id: ZoneId, body: ZoneCreate, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Replace the zone's definition (the body's ``id`` must be the path's): a new version;
    the old ones stay readable at ``/zones/{id}/versions/{n}``, and alerts raised under
    them keep pointing to them (``zone_revision``). Running evaluators pick the change
    up within a batch, without a restart."""
    if body.id != zone_id:
        raise InvalidInputError("id", "must be the zone id of the path")
    if body.subject_id is not None:
        await registry.get_subject(db, body.subject_id, scope=user.scope)
    before, after = await registry.update_zone(db, zone_id, body.model_dump(mode="json"), by=user.name,
                                               scope=user.scope)
    await registry.audit(db, actor=user.name, action="zone.update", subject_id=after["subject_id"], target=zone_id,
                         remote_addr=user.remote_addr, details={"before": audited(before), "after": audited(after)})
    return zone_view(after, user)


@router.delete("/{zone_id}", response_model=ZonePublic, responses=responses(*_WRITE))
async def retire_zone(zone_id: ZoneId, db: DbConn, user: RegistryWriter) -> dict[str, Any]:
    """Retire the zone (``active`` false, as a new version): no longer evaluated, its
    history kept."""
    before, after = await registry.set_zone_active(db, zone_id, False, by=user.name, scope=user.scope)
    await registry.audit(db, actor=user.name, action="zone.retire", subject_id=after["subject_id"], target=zone_id,
                         remote_addr=user.remote_addr, details={"before": audited(before), "after": audited(after)})
    return zone_view(after, user)


@router.get("/{zone_id}/versions", response_model=list[ZoneVersionPublic], responses=responses(*_ONE))
async def zone_versions(zone_id: ZoneId, db: DbConn, user: RegistryReader) -> list[dict[str, Any]]:
    """Every version of the zone, oldest first, each with when it came into force and
    when the next replaced it."""
    rows = [zone_view(r, user) for r in await registry.zone_versions(db, zone_id, scope=user.scope)]
    await audit_read(db, user, "zone.versions_read", rows=len(rows), masked=sum(r["masked"] for r in rows),
                     target=zone_id)
    return rows


@router.get("/{zone_id}/versions/{version}", response_model=ZoneVersionPublic, responses=responses(*_ONE))
async def zone_version(zone_id: ZoneId, version: Version, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    row = zone_view(await registry.zone_version(db, zone_id, version, scope=user.scope), user)
    await audit_read(db, user, "zone.version_read", rows=1, masked=int(row["masked"]), target=zone_id,
                     version=version)
    return row


def to_feature(row: dict[str, Any]) -> dict[str, Any]:
    """A zone as a GeoJSON Feature whose properties are its fields (importable again)."""
    return {"type": "Feature", "id": row["id"], "geometry": row["geometry"],
            "properties": {k: row[k] for k in _PROPERTIES if k in row}}


@subject_zones.get("/{subject_id}/zones/export", response_model=FeatureCollection, responses=responses(*_ONE))
async def export_zones(subject_id: SubjectId, db: DbConn, user: RegistryReader) -> dict[str, Any]:
    """The subject's whole zone set (active and retired) as a GeoJSON FeatureCollection:
    POST it to ``/subjects/{id}/zones/import`` to restore it."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    rows = [zone_view(r, user) for r in await registry.subject_zones(db, subject_id)]
    await audit_read(db, user, "zones.export", rows=len(rows), masked=sum(r["masked"] for r in rows),
                     subject_id=subject_id)
    features = []
    for r in rows:
        if r["masked"]:
            continue  # a geometry withheld cannot be exported
        feature = to_feature(r)
        feature["properties"].pop("version", None)
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


@subject_zones.post("/{subject_id}/zones/import", response_model=ZoneImportResult, responses=responses(*_WRITE))
async def import_subject_zones(subject_id: SubjectId, body: FeatureCollection, db: DbConn,
                               user: RegistryWriter) -> dict[str, Any]:
    """Create or replace the subject's zones from a FeatureCollection (each feature's
    ``properties`` as for ``POST /zones/import``; ``subject_id`` is this subject). An
    existing zone gets a new version when its definition differs; all or none are stored."""
    await registry.get_subject(db, subject_id, scope=user.scope)
    items = []
    for i, feature in enumerate(body.features):
        props = {k: v for k, v in (feature.properties or {}).items() if k not in ("version", "active")}
        if props.get("subject_id") not in (None, subject_id):
            raise InvalidInputError(f"body.features[{i}].properties.subject_id", "must be this subject")
        try:
            zone = ZoneCreate.model_validate({**props, "subject_id": subject_id, "geometry": feature.geometry})
        except ValidationError as exc:
            raise feature_errors(i, exc) from exc
        items.append(zone.model_dump(mode="json"))
    created, updated, unchanged = await registry.import_subject_zones(db, subject_id, items, by=user.name)
    await registry.audit(db, actor=user.name, action="zones.import", subject_id=subject_id,
                         remote_addr=user.remote_addr,
                         details={"created": [r["id"] for r in created], "updated": [r["id"] for r in updated],
                                  "after": [audited(r) for r in created + updated]})
    return {"created": [r["id"] for r in created], "updated": [r["id"] for r in updated],
            "unchanged": [r["id"] for r in unchanged]}
