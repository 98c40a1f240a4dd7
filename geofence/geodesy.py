"""Ground distances on the WGS84 ellipsoid, for callers outside the evaluator.

``ground_distance_m`` is the geodesic distance (Karney's algorithm, "Algorithms for
geodesics", J. Geodesy 2013, through ``pyproj.Geod``): accurate to 15 nanometres for
any two points on Earth, antipodes included. It needs no evaluation frame, so it
holds anywhere the evaluator's projection does not.
"""

from __future__ import annotations

from functools import lru_cache
from typing import overload

import numpy as np
import pyproj


@lru_cache(maxsize=1)
def geod() -> pyproj.Geod:
    return pyproj.Geod(ellps="WGS84")


@overload
def ground_distance_m(lon0: float, lat0: float, lon1: float, lat1: float) -> float: ...


@overload
def ground_distance_m(lon0: np.ndarray, lat0: np.ndarray, lon1: np.ndarray, lat1: np.ndarray) -> np.ndarray: ...


def ground_distance_m(lon0: float | np.ndarray, lat0: float | np.ndarray, lon1: float | np.ndarray,
                      lat1: float | np.ndarray) -> float | np.ndarray:
    """Geodesic distance in metres between (lon0, lat0) and (lon1, lat1), WGS84 degrees:
    floats in, a float out; arrays (broadcast together) in, an array out."""
    if all(isinstance(v, int | float) for v in (lon0, lat0, lon1, lat1)):
        _, _, d = geod().inv(float(lon0), float(lat0), float(lon1), float(lat1))
        return float(d)
    a = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lon0, lat0, lon1, lat1)))
    shape = a[0].shape
    flat = [np.ascontiguousarray(v).ravel() for v in a]
    _, _, d = geod().inv(flat[0], flat[1], flat[2], flat[3])
    return np.asarray(d, dtype=np.float64).reshape(shape)


__all__ = ["geod", "ground_distance_m"]
