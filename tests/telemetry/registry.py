"""In-memory registry snapshots for pure rule-engine tests (no database).

Positions are given in metres east/north of ``ORIGIN`` (Tashkent); the conversion is a
local flat-earth one, which is far more exact than any margin a test relies on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from geofence import AuthorisedAbsence, SubjectRules, WeeklyWindow, ZoneSpec, compile_zones
from telemetry.model import Fix
from telemetry.rules import Dwell
from telemetry.snapshot import DeviceInfo, RegistrySnapshot, VictimLink

ORIGIN = (69.2401, 41.2995)
T0 = 1_764_151_200_000  # 2025-11-26 10:00 UTC, a Wednesday
_M_LAT = 111_195.0


def lonlat(east_m: float, north_m: float) -> tuple[float, float]:
    return (ORIGIN[0] + east_m / (_M_LAT * math.cos(math.radians(ORIGIN[1]))), ORIGIN[1] + north_m / _M_LAT)


def square(zone_id: str, kind: str, east_m: float, north_m: float, side_m: float, *, subject: str | None = "s1",
           category: str | None = None, buffer_m: float = 0.0, windows: tuple[WeeklyWindow, ...] = (),
           timezone: str | None = None) -> ZoneSpec:
    """A square zone of ``side_m`` centred ``(east_m, north_m)`` from the origin."""
    h = side_m / 2
    ring = [list(lonlat(east_m + dx, north_m + dy)) for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h), (-h, -h))]
    return ZoneSpec(zone_id, kind, {"type": "Polygon", "coordinates": [ring]}, None, buffer_m,  # type: ignore[arg-type]
                    subject, category, windows, timezone)


def circle(zone_id: str, kind: str, east_m: float, north_m: float, radius_m: float, *,
           subject: str | None = "s1", windows: tuple[WeeklyWindow, ...] = ()) -> ZoneSpec:
    lon, lat = lonlat(east_m, north_m)
    return ZoneSpec(zone_id, kind, {"type": "Point", "coordinates": [lon, lat]}, radius_m, 0.0,  # type: ignore[arg-type]
                    subject, None, windows)


def snapshot(zones: Sequence[ZoneSpec], *, subjects: Sequence[SubjectRules] | None = None,
             devices: dict[str, DeviceInfo] | None = None, dwell: dict[str, Dwell] | None = None,
             links: Sequence[VictimLink] = ()) -> RegistrySnapshot:
    """Subject ``s1`` wearing ``d1`` unless told otherwise."""
    subjects = list(subjects) if subjects is not None else [SubjectRules("s1")]
    devices = devices if devices is not None else {"d1": DeviceInfo("s1", "ankle_monitor")}
    by_victim: dict[str, list[VictimLink]] = {}
    by_subject: dict[str, list[VictimLink]] = {}
    for link in links:
        by_victim.setdefault(link.victim_device_id, []).append(link)
        by_subject.setdefault(link.subject_id, []).append(link)
    return RegistrySnapshot(compile_zones(list(zones), subjects), devices, {z.zone_id: z.zone_id for z in zones},
                            dwell or {}, by_victim, by_subject)


def fix(t_s: float, east_m: float, north_m: float, *, acc: float = 5.0, device: str = "d1", src: str = "gps",
        t0: int = T0) -> Fix:
    """A fix ``t_s`` seconds after ``t0`` at ``(east_m, north_m)``."""
    lon, lat = lonlat(east_m, north_m)
    return Fix(device, t0 + round(t_s * 1000), lat, lon, acc, source=src)


def absence(start_s: int, end_s: int, zone_id: str | None = None, t0: int = T0) -> AuthorisedAbsence:
    return AuthorisedAbsence(t0 // 1000 + start_s, t0 // 1000 + end_s, zone_id)


def state_of(engine: Any) -> tuple[Any, ...]:
    """Every piece of the engine's committed state, as comparable copies."""
    return (dict(engine.open), dict(engine.pending), dict(engine.last), dict(engine.pair_distance),
            dict(getattr(engine, "pair_rate", {})))


__all__ = ["ORIGIN", "T0", "absence", "circle", "fix", "lonlat", "snapshot", "square", "state_of"]
