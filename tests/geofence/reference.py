"""The slow, obviously correct twin of the evaluator, built on shapely/GEOS and zoneinfo.

It shares nothing with the kernels but the zone specifications: geometry is projected
with pyproj, located with shapely's ``contains_xy`` / ``intersects_xy``, measured with
``shapely.distance`` to the zone boundary, and schedules are read with zoneinfo.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyproj
import shapely

from geofence import DEFAULT_TIMEZONE, SubjectRules, ZoneSpec
from geofence.projection import PROJ_STRING, transformer

OUTSIDE, INSIDE, UNCERTAIN, INACTIVE = 0, 1, 2, 3
_PROJ = pyproj.Proj(PROJ_STRING)
_GEOD = pyproj.Geod(ellps="WGS84")
_INVERSE = pyproj.Transformer.from_crs(pyproj.CRS.from_proj4(PROJ_STRING), "EPSG:4326", always_xy=True)


def circle_distance(zone: ZoneSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Geodesic distance (WGS84, pyproj.Geod) from the circle's centre to frame points."""
    lon, lat = _INVERSE.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    clon, clat = zone.geometry["coordinates"][:2]
    n = np.asarray(lon).shape[0]
    _, _, d = _GEOD.inv(np.full(n, float(clon)), np.full(n, float(clat)), lon, lat)
    return np.asarray(d, dtype=np.float64)


def zone_geometry(zone: ZoneSpec) -> tuple[shapely.Geometry, float]:
    """(projected geometry, scale factor k at the zone's reference latitude)."""
    if zone.geometry["type"] == "Point":
        lon, lat = zone.geometry["coordinates"][:2]
        k = float(_PROJ.get_factors(lon, lat).meridional_scale)
        x, y = transformer().transform(lon, lat)
        return shapely.Point(x, y), k
    geom = shapely.geometry.shape(zone.geometry)
    lats = shapely.get_coordinates(geom)[:, 1]
    k = float(_PROJ.get_factors(0.0 + 64.5, (lats.min() + lats.max()) / 2.0).meridional_scale)
    return shapely.transform(geom, lambda c: np.column_stack(transformer().transform(c[:, 0], c[:, 1]))), k


def classify(zone: ZoneSpec, x: np.ndarray, y: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """States of points against one zone, ignoring schedules. Circles in ground metres
    (geodesic distance to the centre), polygons in the frame (margin times k)."""
    geom, k = zone_geometry(zone)
    margin = (acc + zone.buffer_m) * k
    pts = shapely.points(x, y)
    if zone.geometry["type"] == "Point":
        r = float(zone.radius_m or 0.0)
        dc = circle_distance(zone, x, y)
        d = np.abs(dc - r)
        inside = dc < r
        outside = dc > r
        margin = acc + zone.buffer_m
    else:
        shapely.prepare(geom)
        inside = shapely.contains_xy(geom, x, y)
        outside = ~shapely.intersects_xy(geom, x, y)
        d = shapely.distance(geom.boundary, pts)
    state = np.full(x.shape[0], UNCERTAIN, dtype=np.int8)
    state[inside & (d > margin)] = INSIDE
    state[outside & (d > margin)] = OUTSIDE
    return state


def locate(geom: shapely.Geometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0 exterior / 1 interior / 2 boundary, by shapely."""
    shapely.prepare(geom)
    inside = shapely.contains_xy(geom, x, y)
    touches = shapely.intersects_xy(geom, x, y) & ~inside
    return np.where(inside, 1, np.where(touches, 2, 0)).astype(np.int8)


def active(zone: ZoneSpec, rules: SubjectRules, t: int) -> bool:
    if not (rules.term_start <= t < rules.term_end):
        return False
    for e in rules.exceptions:
        if e.start <= t < e.end and (e.zone_id is None or e.zone_id == zone.zone_id):
            return False
    if not zone.windows:
        return True
    tz = zone.timezone or (rules.timezone if zone.subject_id is not None else DEFAULT_TIMEZONE)
    local = datetime.fromtimestamp(t, ZoneInfo(tz))
    sow = local.weekday() * 86400 + local.hour * 3600 + local.minute * 60 + local.second
    return any(w.start_s <= sow < w.end_s for w in zone.windows)
