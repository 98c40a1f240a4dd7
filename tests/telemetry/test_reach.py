"""Issue 12: the location query's accuracy-aware classification (telemetry.reach)
agrees exactly with a pyproj.Geod + shapely reference on a seeded workload with many
fixes on the boundaries, and the SQL prefilter's box never leaves out a fix in reach."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest

from telemetry.reach import CERTAIN, OUTSIDE, POSSIBLE, classify_reach, search_box
from tests.telemetry.reach_reference import reference_class, shapely_check, workload

_NAMES = {CERTAIN: "certain", POSSIBLE: "possible", OUTSIDE: None}


@pytest.mark.parametrize(("seed", "lat", "lon", "radius_m"), [
    (1, 41.3111, 69.2797, 150.0), (2, 41.3111, 69.2797, 1.0), (3, -33.9, 18.4, 2500.0), (4, 0.0, 179.9995, 400.0),
    (5, 64.1, -21.9, 10_000.0),
])
def test_classification_matches_reference(seed: int, lat: float, lon: float, radius_m: float) -> None:
    fixes = workload(seed, lat, lon, radius_m, n=3000, devices=["d"])
    _, cls = classify_reach(np.array([f.lat for f in fixes]), np.array([f.lon for f in fixes]),
                            np.array([f.accuracy_m for f in fixes]), center_lat=lat, center_lon=lon, radius_m=radius_m)
    got = [_NAMES[int(c)] for c in cls]
    want = [reference_class(f, lat, lon, radius_m) for f in fixes]
    assert got == want
    assert {"certain", "possible", None} <= set(want)
    assert shapely_check(fixes, lat, lon, radius_m) > len(fixes) // 3


@pytest.mark.parametrize(("lat", "lon"), [(41.3, 69.2), (0.0, 179.99), (0.0, -179.99), (-70.0, 10.0), (89.5, 0.0),
                                          (-89.99, 120.0), (60.0, 180.0)])
@pytest.mark.parametrize("reach_m", [0.0, 1.0, 500.0, 12_000.0, 200_000.0])
def test_search_box_holds_every_point_in_reach(lat: float, lon: float, reach_m: float) -> None:
    geod = pyproj.Geod(ellps="WGS84")
    box = search_box(lat, lon, reach_m)
    az = np.linspace(-180, 180, 721)
    for frac in (1.0, 0.5, 0.999):
        plon, plat, _ = geod.fwd(np.full_like(az, lon), np.full_like(az, lat), az, np.full_like(az, reach_m * frac))
        for x, y in zip(plon, plat, strict=True):
            assert box.lat_min <= y <= box.lat_max, (x, y, box)
            assert any(lo <= x <= hi for lo, hi in box.lon_ranges), (x, y, box)
    assert all(-180 <= lo <= hi <= 180 for lo, hi in box.lon_ranges)
    if abs(lat) < 80 and reach_m <= 12_000:  # and the box is not silly: at most ~1 % wider than needed
        assert box.lat_max - box.lat_min <= 2 * reach_m / 110_574 * 1.011 + 1e-5


def test_search_box_rejects_nonsense() -> None:
    for bad in ((math.nan, 0, 1), (0, math.inf, 1), (0, 0, -1)):
        with pytest.raises(ValueError):
            search_box(*bad)
