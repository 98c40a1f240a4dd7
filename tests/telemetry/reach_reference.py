"""The slow, obviously correct twin of :mod:`telemetry.reach` and a seeded workload of
fixes around a point with many on the boundaries (distance +- accuracy within a
micrometre to a metre of R), shared by the pure test and the API test.

The reference decides each fix with its own ``pyproj.Geod`` (one scalar call per fix) and
the two closed inequalities; where the decision is not within a millimetre of a
boundary it is cross-checked with shapely in an azimuthal equidistant frame centred on
the point (PROJ's ellipsoidal ``aeqd`` keeps geodesic distances from its centre), so the
reference is not the fast code's formula restated alone."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyproj
import shapely

CERTAIN, POSSIBLE, OUTSIDE = "certain", "possible", None
_GEOD = pyproj.Geod(ellps="WGS84")


@dataclass(frozen=True)
class Fix:
    device_id: str
    device_time: datetime
    lat: float
    lon: float
    accuracy_m: float


def reference_class(fix: Fix, lat: float, lon: float, radius_m: float) -> str | None:
    _, _, d = _GEOD.inv(lon, lat, fix.lon, fix.lat)
    a = fix.accuracy_m
    return CERTAIN if d + a <= radius_m else POSSIBLE if d - a <= radius_m else OUTSIDE


def shapely_check(fixes: list[Fix], lat: float, lon: float, radius_m: float) -> int:
    """Assert that shapely (aeqd frame) agrees with :func:`reference_class` for every fix
    further than a millimetre from both boundaries; returns how many were checked."""
    crs = pyproj.CRS.from_dict({"proj": "aeqd", "lat_0": lat, "lon_0": lon, "ellps": "WGS84", "units": "m"})
    to_plane = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    centre = shapely.Point(0.0, 0.0)
    checked = 0
    for f in fixes:
        _, _, d = _GEOD.inv(lon, lat, f.lon, f.lat)
        a = f.accuracy_m
        if abs(d + a - radius_m) < 1e-3 or abs(d - a - radius_m) < 1e-3:
            continue
        pt = shapely.Point(*to_plane.transform(f.lon, f.lat))
        # the accuracy disc lies inside the query disc iff its centre is within R - a of P's,
        # and reaches it iff within R + a (GEOS's point distance is exact Euclidean)
        inside = radius_m - a >= 0 and bool(shapely.dwithin(pt, centre, radius_m - a))
        reaches = bool(shapely.dwithin(pt, centre, radius_m + a))
        want = CERTAIN if inside else POSSIBLE if reaches else OUTSIDE
        assert want == reference_class(f, lat, lon, radius_m), (f, d, a)
        checked += 1
    return checked


def workload(seed: int, lat: float, lon: float, radius_m: float, *, n: int, devices: list[str],
             start: datetime = datetime(2026, 11, 20, 20, tzinfo=UTC)) -> list[Fix]:
    """``n`` fixes within a few kilometres of the point, about two thirds of them on a
    boundary (certain/possible, inside/outside by 0 .. 1 m), accuracies 0 .. 1500 m;
    device times unique per device, in [start, start + 3 h)."""
    rng = random.Random(seed)
    out: list[Fix] = []
    used: set[tuple[str, int]] = set()
    eps = (0.0, 1e-6, -1e-6, 1e-4, -1e-4, 1e-3, -1e-3, 0.05, -0.05, 1.0, -1.0)
    while len(out) < n:
        kind = rng.random()
        if kind < 0.15:
            a = 0.0 if rng.random() < 0.3 else rng.choice([3.0, 5.0, 10.0, 25.0, 800.0, 1500.0])
        else:
            a = rng.choice([0.0, 1.0, 4.5, 8.0, 15.0, 60.0, 149.0, 150.0, 151.0, 400.0, 999.0, 1000.0, 1001.0])
            a = a if rng.random() < 0.5 else rng.uniform(0, 1200)
        if kind < 0.33:
            d = rng.uniform(0, radius_m + 3000)
        elif kind < 0.66:
            d = radius_m - a + rng.choice(eps)  # the certain boundary
        else:
            d = radius_m + a + rng.choice(eps)  # the possible boundary
        if d < 0:
            continue
        az = rng.uniform(-180, 180)
        flon, flat, _ = _GEOD.fwd(lon, lat, az, d)
        device = rng.choice(devices)
        second = rng.randrange(3 * 3600)
        if (device, second) in used:
            continue
        used.add((device, second))
        out.append(Fix(device, start + timedelta(seconds=second), float(flat), float(flon), a))
    return out


__all__ = ["CERTAIN", "OUTSIDE", "POSSIBLE", "Fix", "reference_class", "shapely_check", "workload"]
