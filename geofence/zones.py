"""Zone and rule specifications as the evaluator receives them, and their validation.

A zone is a GeoJSON geometry in WGS84 (Polygon with holes, MultiPolygon, or a Point
with ``radius_m`` for a circle), a kind (inclusion: must be inside while active;
exclusion: must stay out), a buffer margin in metres, an optional weekly schedule in
local time, and a scope: one subject, or global for a subject category (``None``
category = every subject).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely
from shapely.validation import explain_validity

from geofence.errors import ZoneGeometryError

ZoneKind = Literal["inclusion", "exclusion"]
# Where the evaluation frame serves zones exactly (lat_lo, lat_hi, lon_lo, lon_hi: degrees):
# Uzbekistan and its neighbours, the band the frame's fast projection covers and where
# the circle estimates' error bounds are tested. A zone with any part outside it is
# refused at the door (ZoneGeometryError naming it) instead of being answered with the
# frame's distortion. That includes any zone that crosses or touches the antimeridian:
# an RFC 7946 antimeridian split (a MultiPolygon whose parts meet at +-180) is refused
# whichever side its raw coordinates read.
SUPPORTED_REGION = (30.0, 50.0, 50.0, 80.0)
MAX_VERTICES_PER_ZONE = 20_000
MAX_RADIUS_M = 100_000.0
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class WeeklyWindow:
    """Active from ``start`` to ``end`` (seconds after Monday 00:00 local), end exclusive."""

    start_s: int
    end_s: int


@dataclass(frozen=True)
class ZoneSpec:
    zone_id: str
    kind: ZoneKind
    geometry: Mapping[str, Any]
    radius_m: float | None = None
    buffer_m: float = 0.0
    subject_id: str | None = None
    category: str | None = None
    windows: tuple[WeeklyWindow, ...] = ()
    timezone: str | None = None  # None: the subject's (per-subject zones) or the default

    @property
    def is_global(self) -> bool:
        return self.subject_id is None


@dataclass(frozen=True)
class AuthorisedAbsence:
    """An authorised absence: rules off between start and end (epoch s) for one zone or all."""

    start: int
    end: int
    zone_id: str | None = None


@dataclass(frozen=True)
class SubjectRules:
    subject_id: str
    category: str | None = None
    timezone: str = "Asia/Tashkent"
    term_start: int = -(2**62)
    term_end: int = 2**62
    exceptions: tuple[AuthorisedAbsence, ...] = field(default_factory=tuple)


def _ring_positions(zone_id: str, ring: Any) -> list[tuple[float, float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ZoneGeometryError(zone_id, "a linear ring needs at least 4 positions")
    out: list[tuple[float, float]] = []
    for pos in ring:
        if not isinstance(pos, list | tuple) or len(pos) < 2:
            raise ZoneGeometryError(zone_id, f"bad position {pos!r}")
        lon, lat = pos[0], pos[1]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (lon, lat)):
            raise ZoneGeometryError(zone_id, f"non-numeric or non-finite position {pos!r}")
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise ZoneGeometryError(zone_id, f"position out of range {pos!r}")
        out.append((float(lon), float(lat)))
    if out[0] != out[-1]:
        raise ZoneGeometryError(zone_id, "unclosed ring: first and last positions differ")
    return out


def polygon_rings(zone: ZoneSpec) -> list[list[list[tuple[float, float]]]]:
    """Validated rings of a Polygon / MultiPolygon zone: a list of polygons, each a list
    of rings (shell first), positions as (lon, lat). Raises ZoneGeometryError."""
    g = zone.geometry
    gtype = g.get("type")
    coords = g.get("coordinates")
    polys: list[Any] | None
    if gtype == "Polygon":
        polys = [coords]
    elif gtype == "MultiPolygon":
        polys = coords if isinstance(coords, list) else None
    else:
        raise ZoneGeometryError(zone.zone_id, f"unsupported geometry type {gtype!r}")
    if not polys or not all(isinstance(p, list) and p for p in polys):
        raise ZoneGeometryError(zone.zone_id, "missing or empty coordinates")
    rings = [[_ring_positions(zone.zone_id, r) for r in poly] for poly in polys]
    n_vertices = sum(len(r) for poly in rings for r in poly)
    if n_vertices > MAX_VERTICES_PER_ZONE:
        raise ZoneGeometryError(zone.zone_id, f"too many vertices ({n_vertices} > {MAX_VERTICES_PER_ZONE})")
    geom = shapely.geometry.shape({"type": gtype, "coordinates": [[list(r) for r in p] for p in rings]
                                   if gtype == "MultiPolygon" else [list(r) for r in rings[0]]})
    if not geom.is_valid:
        raise ZoneGeometryError(zone.zone_id, f"invalid geometry: {explain_validity(geom)}")
    return rings


def circle_centre(zone: ZoneSpec) -> tuple[float, float, float]:
    """(lon, lat, radius_m) of a circle zone. Raises ZoneGeometryError."""
    coords = zone.geometry.get("coordinates")
    if not isinstance(coords, list | tuple) or len(coords) < 2:
        raise ZoneGeometryError(zone.zone_id, "a circle needs a Point centre")
    lon, lat = coords[0], coords[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (lon, lat)):
        raise ZoneGeometryError(zone.zone_id, "non-numeric circle centre")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ZoneGeometryError(zone.zone_id, "circle centre out of range")
    r = zone.radius_m
    if r is None or not math.isfinite(r) or not (0.0 < r <= MAX_RADIUS_M):
        raise ZoneGeometryError(zone.zone_id, f"circle radius_m must be in (0, {MAX_RADIUS_M:g}]")
    return float(lon), float(lat), float(r)


def circle_extent(lon: float, lat: float, r: float) -> tuple[float, float, float, float]:
    """(lon_lo, lon_hi, lat_lo, lat_hi) holding the circle, with a margin: a degree of
    latitude is at least 110.5 km, one of longitude at least 111.2 km * cos(latitude)."""
    dlat = 1.01 * r / 110_500.0
    far = min(89.0, abs(lat) + dlat)
    dlon = 1.01 * r / (111_200.0 * math.cos(math.radians(far)))
    return lon - dlon, lon + dlon, lat - dlat, lat + dlat


def check_region(zone_id: str, lon_lo: float, lon_hi: float, lat_lo: float, lat_hi: float) -> None:
    """Raise ZoneGeometryError unless the extent lies in SUPPORTED_REGION (NaN: refused)."""
    la0, la1, lo0, lo1 = SUPPORTED_REGION
    if not (la0 <= lat_lo and lat_hi <= la1 and lo0 <= lon_lo and lon_hi <= lo1):
        raise ZoneGeometryError(zone_id, f"outside the region the evaluator serves exactly (latitude {la0:g}..{la1:g}, "
                                         f"longitude {lo0:g}..{lo1:g}); zone extent: latitude {lat_lo:g}..{lat_hi:g}, "
                                         f"longitude {lon_lo:g}..{lon_hi:g}")


def check_zone_fields(zone: ZoneSpec) -> None:
    """The non-geometric checks: kind and buffer."""
    if zone.kind not in ("inclusion", "exclusion"):
        raise ZoneGeometryError(zone.zone_id, f"unknown kind {zone.kind!r}")
    if not math.isfinite(zone.buffer_m) or not (0.0 <= zone.buffer_m <= 10_000.0):
        raise ZoneGeometryError(zone.zone_id, "buffer_m must be within 0..10000")


def raw_polygon_rings(zone: ZoneSpec) -> list[list[np.ndarray]]:
    """Rings of an already validated Polygon / MultiPolygon zone as (n, 2) float arrays,
    without per-position checks (the registry validated them on the way in)."""
    coords = zone.geometry["coordinates"]
    polys = [coords] if zone.geometry["type"] == "Polygon" else coords
    return [[np.asarray(ring, dtype=np.float64) for ring in poly] for poly in polys]


def validate_zone(zone: ZoneSpec) -> None:
    """Raise ZoneGeometryError unless the zone can be compiled."""
    check_zone_fields(zone)
    if zone.geometry.get("type") == "Point":
        check_region(zone.zone_id, *circle_extent(*circle_centre(zone)))
    else:
        pts = [p for poly in polygon_rings(zone) for ring in poly for p in ring]
        lons = [p[0] for p in pts]
        lats = [p[1] for p in pts]
        check_region(zone.zone_id, min(lons), max(lons), min(lats), max(lats))


def _time_of_day(zone_id: str, text: str) -> int:
    m = _HHMM.match(text)
    if not m or int(m.group(2)) >= 60 or int(m.group(1)) > 24 or (int(m.group(1)) == 24 and m.group(2) != "00"):
        raise ZoneGeometryError(zone_id, f"bad time of day {text!r} (HH:MM, 00:00..24:00)")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


def parse_schedule(zone_id: str, items: Sequence[Mapping[str, Any]]) -> tuple[WeeklyWindow, ...]:
    """Windows like ``{"days": ["mon", "tue"], "start": "22:00", "end": "06:00"}``.

    A window whose end is not after its start runs past midnight into the next day; the
    week wraps from Sunday to Monday.
    """
    week = 7 * 86400
    out: list[WeeklyWindow] = []
    for item in items:
        days = item.get("days", list(_DAYS))
        start = _time_of_day(zone_id, str(item.get("start", "")))
        end = _time_of_day(zone_id, str(item.get("end", "")))
        length = end - start if end > start else end + 86400 - start
        for day in days:
            if day not in _DAYS:
                raise ZoneGeometryError(zone_id, f"unknown day {day!r}")
            a = _DAYS[day] * 86400 + start
            b = a + length
            if b <= week:
                out.append(WeeklyWindow(a, b))
            else:
                out.append(WeeklyWindow(a, week))
                out.append(WeeklyWindow(0, b - week))
    return tuple(out)


__all__ = [
    "MAX_VERTICES_PER_ZONE",
    "SUPPORTED_REGION",
    "AuthorisedAbsence",
    "SubjectRules",
    "WeeklyWindow",
    "ZoneKind",
    "ZoneSpec",
    "check_region",
    "check_zone_fields",
    "circle_centre",
    "circle_extent",
    "parse_schedule",
    "polygon_rings",
    "raw_polygon_rings",
    "validate_zone",
]
