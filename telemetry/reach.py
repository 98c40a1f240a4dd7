"""Whether fixes were within R metres of a point, accuracy-aware (the location query).

A fix is a disc: its reported position and its horizontal accuracy radius ``a``. With
``d`` the WGS84 geodesic distance from the query point P to the position:

- **certain**: the whole accuracy disc lies inside the query disc, ``d + a <= R``;
- **possible**: the accuracy disc reaches the query disc but is not inside it,
  ``d - a <= R`` and not certain;
- otherwise the fix says nothing about P (``OUTSIDE``).

Both tests are closed (a disc touching the boundary counts). Distances are geodesic
(``geofence.ground_distance_m``: Karney's algorithm, 15 nm), so the answer holds at any
latitude and radius, with no projection error.

:func:`search_box` gives the latitude/longitude ranges that contain every point within
a ground distance of P, for a SQL prefilter that plain column comparisons (and so any
index or chunk exclusion on those columns) can answer; the exact test runs afterwards.

Pure: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geofence import ground_distance_m

OUTSIDE, POSSIBLE, CERTAIN = 0, 1, 2
LABELS = {CERTAIN: "certain", POSSIBLE: "possible"}

# the smallest length of a degree of latitude on WGS84 (at the equator: a(1 - e^2) pi/180)
_MIN_M_PER_DEG_LAT = 110_574.27
_A = 6_378_137.0  # WGS84 semi-major axis: a parallel's radius is N cos(lat) >= a cos(lat)
_MARGIN = 1.001  # widen every range by 0.1 % (and a micro-degree) against rounding


@dataclass(frozen=True, slots=True)
class SearchBox:
    """Latitude range and one or two longitude ranges (two when the box crosses the
    antimeridian), all closed, in degrees."""

    lat_min: float
    lat_max: float
    lon_ranges: tuple[tuple[float, float], ...]


def search_box(lat: float, lon: float, reach_m: float) -> SearchBox:
    """Ranges that hold every point whose geodesic distance from (lat, lon) is at most
    ``reach_m``. A path of length <= D from P never changes latitude by more than
    D / (the shortest degree of latitude), and on the parallels it crosses a degree of
    longitude is at least ``a cos(lat_max) pi/180`` long; so the box is conservative,
    never exact, and near a pole it spans all longitudes."""
    if not (math.isfinite(lat) and math.isfinite(lon) and math.isfinite(reach_m)) or reach_m < 0:
        raise ValueError("lat, lon and reach_m must be finite, reach_m >= 0")
    dlat = reach_m / _MIN_M_PER_DEG_LAT * _MARGIN + 1e-6
    lat_min, lat_max = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    extreme = max(abs(lat_min), abs(lat_max))
    cos_lat = math.cos(math.radians(extreme))
    if extreme >= 89.9 or cos_lat <= 0:
        return SearchBox(lat_min, lat_max, ((-180.0, 180.0),))
    dlon = math.degrees(reach_m / (_A * cos_lat)) * _MARGIN + 1e-6
    if dlon >= 180.0:
        return SearchBox(lat_min, lat_max, ((-180.0, 180.0),))
    west, east = lon - dlon, lon + dlon
    if west < -180.0:
        return SearchBox(lat_min, lat_max, ((west + 360.0, 180.0), (-180.0, east)))
    if east > 180.0:
        return SearchBox(lat_min, lat_max, ((west, 180.0), (-180.0, east - 360.0)))
    return SearchBox(lat_min, lat_max, ((west, east),))


def classify_reach(lat: np.ndarray, lon: np.ndarray, accuracy_m: np.ndarray, *, center_lat: float,
                   center_lon: float, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(geodesic distance in metres from the centre, class: CERTAIN / POSSIBLE / OUTSIDE)
    for each fix. Arrays of float64, the same length."""
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    lon = np.ascontiguousarray(lon, dtype=np.float64)
    acc = np.ascontiguousarray(accuracy_m, dtype=np.float64)
    if not (lat.shape == lon.shape == acc.shape) or lat.ndim != 1:
        raise ValueError("lat, lon and accuracy_m must be 1-d arrays of the same length")
    if lat.size == 0:
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int8)
    d = ground_distance_m(np.full_like(lon, center_lon), np.full_like(lat, center_lat), lon, lat)
    cls = np.where(d + acc <= radius_m, CERTAIN, np.where(d - acc <= radius_m, POSSIBLE, OUTSIDE)).astype(np.int8)
    return d, cls


__all__ = ["CERTAIN", "LABELS", "OUTSIDE", "POSSIBLE", "SearchBox", "classify_reach", "search_box"]
