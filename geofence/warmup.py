"""Load (or, on a fresh checkout, compile and cache) every evaluator kernel before the
first real fix arrives, so that the first batch does not pay for compilation."""

from __future__ import annotations

import numpy as np

from geofence.compile import compile_zones
from geofence.evaluate import SERIAL_BELOW, evaluate, evaluate_xy, locate, path_candidates, path_crosses
from geofence.zones import SubjectRules, WeeklyWindow, ZoneSpec

_HOME = [[69.24, 41.29], [69.25, 41.29], [69.25, 41.30], [69.24, 41.30], [69.24, 41.29]]


def warm_up() -> None:
    """Run a tiny zone set through every path: compile, serial and batch evaluation (lon/lat
    and projected, with and without exact distances), point location, path candidates and crossing.
    Takes about a second with cached kernels, 20 s to a minute on a fresh checkout
    (by the machine's phase)."""
    zones = [
        ZoneSpec("home", "inclusion", {"type": "Polygon", "coordinates": [_HOME]}, subject_id="s",
                 windows=(WeeklyWindow(0, 6 * 3600),)),
        ZoneSpec("school", "exclusion", {"type": "Point", "coordinates": [69.26, 41.30]}, radius_m=200.0,
                 category="c"),
    ]
    zs = compile_zones(zones, [SubjectRules("s", category="c")])
    for n in (1, SERIAL_BELOW):
        lon = np.full(n, 69.245)
        lat = np.full(n, 41.295)
        acc = np.full(n, 5.0)
        subj = np.zeros(n, np.int32)
        t = np.zeros(n, np.int64)
        for exact in (False, True):
            evaluate(zs, lon, lat, acc, subj, t, exact_distance=exact)
            evaluate_xy(zs, lon * 1000.0, lat * 1000.0, acc, subj, t, exact_distance=exact)
    locate(zs, 0, np.zeros(1), np.zeros(1))
    path_crosses(zs, np.array([69.2]), np.array([41.2]), np.array([69.3]), np.array([41.3]), np.array([0]))
    path_candidates(zs, np.zeros(1, np.int32), np.array([69.2]), np.array([41.2]), np.array([69.3]), np.array([41.3]))


__all__ = ["warm_up"]
