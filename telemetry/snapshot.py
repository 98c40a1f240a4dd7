"""A compiled snapshot of the registry for the evaluator: zones, subjects, devices.

Ingest workers build one at start and again whenever the API announces a registry
change (PostgreSQL NOTIFY on ``nazorat_registry``); the pipeline swaps the reference
between batches, so a batch is evaluated against one consistent snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from geofence import (
    AuthorisedAbsence,
    SubjectRules,
    ZoneGeometryError,
    ZoneSet,
    ZoneSpec,
    compile_zones,
    parse_schedule,
)
from telemetry.conditions import Profile
from telemetry.rules import Dwell

log = logging.getLogger(__name__)
REGISTRY_CHANNEL = "nazorat_registry"
_FAR = 2**62


@dataclass(frozen=True)
class DeviceInfo:
    subject_id: str | None
    kind: str


@dataclass(frozen=True)
class VictimLink:
    victim_device_id: str
    subject_id: str
    radius_m: float


@dataclass(frozen=True)
class RegistrySnapshot:
    zone_set: ZoneSet
    devices: dict[str, DeviceInfo]
    zone_names: dict[str, str]
    zone_dwell: dict[str, Dwell] = field(default_factory=dict)
    links_by_victim: dict[str, list[VictimLink]] = field(default_factory=dict)
    links_by_subject: dict[str, list[VictimLink]] = field(default_factory=dict)
    device_profile: dict[str, Profile] = field(default_factory=dict)


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
            "SELECT id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, dwell_open_fixes,"
            " dwell_open_s, dwell_close_fixes, dwell_close_s FROM zones WHERE active ORDER BY id"
        ).fetchall()
        devices = cur.execute(
            "SELECT d.id, d.kind, d.subject_id, p.battery_low, p.battery_critical, p.report_interval_s, p.grace_s,"
            " p.gps_loss_s, p.clock_skew_s FROM devices d JOIN device_profiles p ON p.name = d.profile").fetchall()
        absences = cur.execute(
            "SELECT subject_id, zone_id, starts_at, ends_at FROM absences"  # all: late fixes are judged by their time
        ).fetchall()
        links = cur.execute("SELECT victim_device_id, subject_id, radius_m FROM victim_links").fetchall()
    by_subject: dict[str, list[AuthorisedAbsence]] = {}
    for a in absences:
        by_subject.setdefault(a["subject_id"], []).append(
            AuthorisedAbsence(_epoch(a["starts_at"], 0), _epoch(a["ends_at"], 0), a["zone_id"]))
    rules = [
        SubjectRules(
            subject_id=s["id"], category=s["category"], timezone=s["timezone"],
            term_start=_epoch(s["term_start"], -_FAR), term_end=_epoch(s["term_end"], _FAR),
            exceptions=tuple(by_subject.get(s["id"], ())),
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
    victim_links = [VictimLink(v["victim_device_id"], v["subject_id"], float(v["radius_m"])) for v in links]
    links_by_victim: dict[str, list[VictimLink]] = {}
    links_by_subject: dict[str, list[VictimLink]] = {}
    for link in victim_links:
        links_by_victim.setdefault(link.victim_device_id, []).append(link)
        links_by_subject.setdefault(link.subject_id, []).append(link)
    return RegistrySnapshot(
        zone_set=zone_set,
        devices={d["id"]: DeviceInfo(d["subject_id"], d["kind"]) for d in devices},
        zone_names={z["id"]: z["name"] for z in zones},
        zone_dwell={z["id"]: Dwell(z["dwell_open_fixes"], z["dwell_open_s"], z["dwell_close_fixes"], z["dwell_close_s"])
                    for z in zones},
        links_by_victim=links_by_victim,
        links_by_subject=links_by_subject,
        device_profile={d["id"]: Profile(d["battery_low"], d["battery_critical"], d["report_interval_s"], d["grace_s"],
                                         d["gps_loss_s"], d["clock_skew_s"]) for d in devices},
    )


__all__ = ["REGISTRY_CHANNEL", "DeviceInfo", "RegistrySnapshot", "VictimLink", "load_snapshot", "zone_spec_from_row"]
