"""A compiled snapshot of the registry for the evaluator: zones, subjects, devices.

Ingest workers build one at start and again whenever the API announces a registry
change (PostgreSQL NOTIFY on ``nazorat_registry``); the pipeline swaps the reference
between batches, so a batch is evaluated against one consistent snapshot. Building is
pure: the rows come from ``telemetry.store.ingest.registry_rows``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geofence import (
    DEFAULT_TIMEZONE,
    AuthorisedAbsence,
    SubjectRules,
    ZoneGeometryError,
    ZoneSet,
    ZoneSpec,
    compile_zones,
    parse_schedule,
)
from telemetry import metrics
from telemetry.conditions import Profile
from telemetry.rules import Dwell
from telemetry.store.ingest import RegistryRows
from telemetry.store.sql import REGISTRY_CHANNEL

log = logging.getLogger(__name__)
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
    compile_errors: dict[str, str] = field(default_factory=dict)  # zone id -> why it is not evaluated


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


def build_snapshot(rows: RegistryRows) -> RegistrySnapshot:
    """Compile the registry rows into a snapshot. Poison isolation: a subject or zone that
    does not compile is left out (with its reason in ``compile_errors``) and everything
    else is evaluated; one bad record never stops the fleet."""
    errors: dict[str, str] = {}
    by_subject: dict[str, list[AuthorisedAbsence]] = {}
    for a in rows.absences:
        by_subject.setdefault(a["subject_id"], []).append(
            AuthorisedAbsence(_epoch(a["starts_at"], 0), _epoch(a["ends_at"], 0), a["zone_id"]))
    bad_subjects: dict[str, str] = {}
    rules = []
    for s in rows.subjects:
        reason = _timezone_problem(s["timezone"])
        if reason is not None:
            bad_subjects[s["id"]] = reason
        rules.append(SubjectRules(
            subject_id=s["id"], category=s["category"], timezone=DEFAULT_TIMEZONE if reason else s["timezone"],
            term_start=_epoch(s["term_start"], -_FAR), term_end=_epoch(s["term_end"], _FAR),
            exceptions=tuple(by_subject.get(s["id"], ()))))
    specs: list[ZoneSpec] = []
    for z in rows.zones:
        if z["subject_id"] in bad_subjects:
            errors[z["id"]] = f"subject {z['subject_id']}: {bad_subjects[z['subject_id']]}"
            continue
        try:
            specs.append(zone_spec_from_row(z))
        except ZoneGeometryError as exc:
            errors[z["id"]] = exc.reason
    zone_set, left_out = _compile_isolated(specs, rules)
    errors.update(left_out)
    for zone_id, reason in errors.items():
        log.error("zone %s left out of evaluation: %s", zone_id, reason)
    metrics.ZONE_COMPILE_ERRORS.set(len(errors))
    kept = {spec.zone_id for spec in specs} - set(left_out)
    zones = [z for z in rows.zones if z["id"] in kept]
    victim_links = [VictimLink(v["victim_device_id"], v["subject_id"], float(v["radius_m"])) for v in rows.victim_links]
    links_by_victim: dict[str, list[VictimLink]] = {}
    links_by_subject: dict[str, list[VictimLink]] = {}
    for link in victim_links:
        links_by_victim.setdefault(link.victim_device_id, []).append(link)
        links_by_subject.setdefault(link.subject_id, []).append(link)
    devices = rows.devices
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
        compile_errors=errors,
    )


def _timezone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError) as exc:  # zoneinfo raises either for a bad key
        return f"unknown time zone {name!r} ({type(exc).__name__})"
    return None


def _compile_isolated(specs: list[ZoneSpec], rules: list[SubjectRules]) -> tuple[ZoneSet, dict[str, str]]:
    """Compile everything at once (the normal case: one pass). When that fails, compile
    each zone alone with its subject to find the ones that fail, and compile the rest."""
    try:
        return compile_zones(specs, rules, validate=False), {}
    except Exception:  # isolate below: any failure of one zone must not stop the others
        log.exception("zone compilation failed; compiling zone by zone to isolate the cause")
    by_id = {r.subject_id: r for r in rules}
    bad: dict[str, str] = {}
    for spec in specs:
        own = [by_id[spec.subject_id]] if spec.subject_id in by_id else []
        try:
            compile_zones([spec], own, validate=True)
        except ZoneGeometryError as exc:
            bad[spec.zone_id] = exc.reason
        except Exception as exc:  # recorded as the zone's compile error, with its type
            bad[spec.zone_id] = f"{type(exc).__name__}: {exc}"
    return compile_zones([s for s in specs if s.zone_id not in bad], rules, validate=False), bad


__all__ = ["REGISTRY_CHANNEL", "DeviceInfo", "RegistrySnapshot", "VictimLink", "build_snapshot", "zone_spec_from_row"]
