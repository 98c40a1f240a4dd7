"""Geofence evaluation: zones compiled into flat arrays, fixes evaluated in numba batches.

Pure: numpy arrays in, numpy arrays out; no I/O, no asyncio, no SQL.
"""

from geofence._cache import stamp_kernel_caches
from geofence.compile import DEFAULT_TIMEZONE, ZoneSet, compile_zones
from geofence.errors import EvaluationInputError, GeofenceError, ZoneGeometryError
from geofence.evaluate import (
    Evaluation,
    ZoneState,
    evaluate,
    evaluate_xy,
    locate,
    path_candidates,
    path_crosses,
    zone_is_exclusion,
)
from geofence.geodesy import ground_distance_m
from geofence.projection import project, project_with_pyproj, scale_factor
from geofence.warmup import warm_up
from geofence.zones import (
    AuthorisedAbsence,
    SubjectRules,
    WeeklyWindow,
    ZoneSpec,
    parse_schedule,
    validate_zone,
)

stamp_kernel_caches()  # before any kernel loads from numba's cache (see geofence._cache)

__all__ = [
    "DEFAULT_TIMEZONE",
    "AuthorisedAbsence",
    "Evaluation",
    "EvaluationInputError",
    "GeofenceError",
    "SubjectRules",
    "WeeklyWindow",
    "ZoneGeometryError",
    "ZoneSet",
    "ZoneSpec",
    "ZoneState",
    "compile_zones",
    "evaluate",
    "evaluate_xy",
    "ground_distance_m",
    "locate",
    "parse_schedule",
    "path_candidates",
    "path_crosses",
    "project",
    "project_with_pyproj",
    "scale_factor",
    "validate_zone",
    "warm_up",
    "zone_is_exclusion",
]
