"""Public evaluator: checks its input at the door, then calls the numba kernels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from geofence import _kernels as K
from geofence.compile import ZoneSet
from geofence.errors import EvaluationInputError
from geofence.projection import project

# Below this many fixes the serial kernel wins: starting worker threads costs more.
SERIAL_BELOW = 64


class ZoneState(IntEnum):
    OUTSIDE = K.OUTSIDE
    INSIDE = K.INSIDE
    UNCERTAIN = K.UNCERTAIN
    INACTIVE = K.INACTIVE


@dataclass(frozen=True)
class Evaluation:
    """(fix, zone) result pairs in CSR layout.

    The pairs of fix i are ``pair_offsets[i]:pair_offsets[i+1]``. Every zone of the fix's
    subject is listed; global zones are listed where they are candidates, and a global
    zone that is not listed is OUTSIDE. ``pair_distance`` is the signed distance to the
    zone boundary in ground metres (projected distance / the zone's scale factor;
    negative inside) when ``exact_distance`` was asked for, else NaN or a projected
    distance the state needed.
    """

    pair_offsets: np.ndarray
    pair_zone: np.ndarray
    pair_state: np.ndarray
    pair_distance: np.ndarray

    def pair_fix(self) -> np.ndarray:
        """Fix index of every pair."""
        counts = np.diff(self.pair_offsets)
        return np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)


def _as_array(name: str, value: np.ndarray, dtype: type, n: int | None) -> np.ndarray:
    arr: np.ndarray = np.ascontiguousarray(value, dtype=dtype)
    if arr.ndim != 1:
        raise EvaluationInputError(name, f"expected a 1-d array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise EvaluationInputError(name, f"expected length {n}, got {arr.shape[0]}")
    return arr


_INPUT_ERRORS = {
    K.INPUT_NONFINITE: ("x/y", "non-finite coordinate"),
    K.INPUT_OUT_OF_RANGE: ("lon/lat", "coordinate out of range"),
    K.INPUT_BAD_ACCURACY: ("accuracy_m", "must be finite and >= 0"),
    K.INPUT_BAD_SUBJECT: ("subject", "index out of range"),
}


def _run(zone_set: ZoneSet, x: np.ndarray, y: np.ndarray, accuracy_m: np.ndarray, subject: np.ndarray,
         time_s: np.ndarray, exact_distance: bool, lonlat: bool) -> Evaluation:
    """Check the inputs at the door (dtype, shape, values), then run the kernel."""
    x_a = _as_array("lon" if lonlat else "x", x, np.float64, None)
    n = x_a.shape[0]
    y_a = _as_array("lat" if lonlat else "y", y, np.float64, n)
    acc_a = _as_array("accuracy_m", accuracy_m, np.float64, n)
    subj_a = _as_array("subject", subject, np.int32, n)
    t_a = _as_array("time_s", time_s, np.int64, n)
    code = K.check_inputs(x_a, y_a, acc_a, subj_a, zone_set.n_subjects, lonlat)
    if code != K.INPUT_OK:
        argument, reason = _INPUT_ERRORS[code]
        raise EvaluationInputError("lon/lat" if lonlat and argument == "x/y" else argument, reason)
    kernel = K.evaluate_serial if n < SERIAL_BELOW else K.evaluate_parallel
    off, pz, pst, pd = kernel(x_a, y_a, acc_a, subj_a, t_a, exact_distance, lonlat, zone_set.arrays)
    if exact_distance:
        pd = pd / zone_set.arrays.zone_k[pz]  # projected metres -> ground metres
    return Evaluation(off, pz, pst, pd)


def evaluate_xy(
    zone_set: ZoneSet,
    x: np.ndarray,
    y: np.ndarray,
    accuracy_m: np.ndarray,
    subject: np.ndarray,
    time_s: np.ndarray,
    *,
    exact_distance: bool = False,
) -> Evaluation:
    """Evaluate fixes already projected into the evaluation frame (see ``project``)."""
    return _run(zone_set, x, y, accuracy_m, subject, time_s, exact_distance, lonlat=False)


def evaluate(
    zone_set: ZoneSet,
    lon: np.ndarray,
    lat: np.ndarray,
    accuracy_m: np.ndarray,
    subject: np.ndarray,
    time_s: np.ndarray,
    *,
    exact_distance: bool = False,
) -> Evaluation:
    """Evaluate fixes (WGS84 degrees, accuracy radius in metres, subject index from
    ``zone_set.subject_index`` or -1, epoch seconds) against the zone set. Projection
    into the evaluation frame happens inside the kernel."""
    return _run(zone_set, lon, lat, accuracy_m, subject, time_s, exact_distance, lonlat=True)


def locate(zone_set: ZoneSet, zone: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Plain point location of projected points in one zone: 0 exterior, 1 interior,
    2 boundary (shapely: ``contains_xy`` is 1, ``intersects_xy`` and not contains is 2)."""
    x_a = _as_array("x", x, np.float64, None)
    y_a = _as_array("y", y, np.float64, x_a.shape[0])
    if not 0 <= zone < zone_set.n_zones:
        raise EvaluationInputError("zone", "index out of range")
    return np.asarray(K.locate_points(x_a, y_a, zone, zone_set.arrays))


def path_crosses(zone_set: ZoneSet, lon0: np.ndarray, lat0: np.ndarray, lon1: np.ndarray, lat1: np.ndarray,
                 zone: np.ndarray) -> np.ndarray:
    """Whether the straight path between two fixes (WGS84) meets zone[i] (boundary
    included): the test for a drive through an exclusion zone between sparse fixes."""
    lon0_a = _as_array("lon0", lon0, np.float64, None)
    n = lon0_a.shape[0]
    zone_a = _as_array("zone", zone, np.int64, n)
    if n and (zone_a.min() < 0 or zone_a.max() >= zone_set.n_zones):
        raise EvaluationInputError("zone", "index out of range")
    x0, y0 = project(lon0_a, _as_array("lat0", lat0, np.float64, n))
    x1, y1 = project(_as_array("lon1", lon1, np.float64, n), _as_array("lat1", lat1, np.float64, n))
    return np.asarray(K.path_hits(x0, y0, x1, y1, zone_a, zone_set.arrays))


__all__ = ["SERIAL_BELOW", "Evaluation", "ZoneState", "evaluate", "evaluate_xy", "locate", "path_crosses"]
