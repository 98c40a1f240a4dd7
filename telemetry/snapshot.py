"""A compiled snapshot of the registry for the evaluator: zones, subjects, devices.

Ingest workers build one at start and again whenever the API announces a registry
change (PostgreSQL NOTIFY on ``nazorat_registry``); the pipeline swaps the reference
between batches, so a batch is evaluated against one consistent snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from geofence import SubjectRules, ZoneGeometryError, ZoneSet, ZoneSpec, compile_zones, parse_schedule

log = logging.getLogger(__name__)
REGISTRY_CHANNEL = "nazorat_registry"
_FAR = 2**62


@dataclass(frozen=True)
class DeviceInfo:
    subject_id: str | None
    kind: str


@dataclass(frozen=True)
class RegistrySnapshot:
    zone_set: ZoneSet
    devices: dict[str, DeviceInfo]
    zone_names: dict[str, str]


def _epoch(value: datetime | None, default: int) -> int:
    return default if value is None else int(value.timestamp())


def zone_spec_from_row(row: dict[str, Any]) -> ZoneSpec:
    return ZoneSpec(
        zone_id=row["id"],
        kind=row["kind"],
        geometry=row["geometry"],
        radius_m=row["radius_m"],
        buffer_m=float(row["buffer_m"]),
        subject_id=row["subject_id"],
        category=row["category"],
        windows=parse_schedule(row["id"], row["schedule"] or []),
    )


def load_snapshot(conn: psycopg.Connection[Any]) -> RegistrySnapshot:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        subjects = cur.execute(
            "SELECT id, category, timezone, term_start, term_end FROM subjects ORDER BY id"
        ).fetchall()
        zones = cur.execute(
            "SELECT id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule"
            " FROM zones WHERE active ORDER BY id"
        ).fetchall()
        devices = cur.execute("SELECT id, kind, subject_id FROM devices").fetchall()
    rules = [
        SubjectRules(
            subject_id=s["id"], category=s["category"], timezone=s["timezone"],
            term_start=_epoch(s["term_start"], -_FAR), term_end=_epoch(s["term_end"], _FAR),
        )
        for s in subjects
    ]
    specs = []
    for z in zones:
        try:
            specs.append(zone_spec_from_row(z))
        except ZoneGeometryError:
            log.exception("skipping zone %s: it no longer compiles", z["id"])
    zone_set = compile_zones(specs, rules, validate=False)
    return RegistrySnapshot(
        zone_set=zone_set,
        devices={d["id"]: DeviceInfo(d["subject_id"], d["kind"]) for d in devices},
        zone_names={z["id"]: z["name"] for z in zones},
    )


__all__ = ["REGISTRY_CHANNEL", "DeviceInfo", "RegistrySnapshot", "load_snapshot", "zone_spec_from_row"]
