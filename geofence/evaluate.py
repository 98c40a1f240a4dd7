"""Public evaluator: checks its input at the door, then calls the numba kernels."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

from geofence import _kernels as K
from geofence._dispatch import direct_call
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


class Evaluation(NamedTuple):
    """(fix, zone) result pairs, grouped by fix.

    The pairs of input fix i are ``fix_start[i] : fix_start[i] + fix_count[i]`` (see
    ``pairs_of``). A batch evaluated in parallel keeps its pairs in evaluation order
    (fixes grouped by subject), so consecutive fixes' blocks need not be adjacent; a
    small batch keeps input order. Every zone of the fix's subject is listed, in the
    subject's zone order; global zones are listed where they are candidates, and a
    global zone that is not listed is OUTSIDE. ``pair_distance``, only when
    ``exact_distance`` was asked for (else None), is the signed distance to the zone
    boundary in ground metres, negative inside: for a polygon the frame distance divided
    by the zone's scale factor, for a circle the geodesic distance to its centre minus
    its radius (within K.E2_COEF * D**3 + 1e-6 m, D the distance to the centre: 1 um at
    1 km, 4 cm at 100 km; exact where the estimate could not decide the state).
    """

    fix_start: np.ndarray
    fix_count: np.ndarray
    pair_zone: np.ndarray
    pair_state: np.ndarray
    pair_distance: np.ndarray | None

    def pairs_of(self, i: int) -> range:
        """Pair positions of input fix i."""
        start = int(self.fix_start[i])
        return range(start, start + int(self.fix_count[i]))

    def pair_fix(self) -> np.ndarray:
        """Input fix index of every pair (computed on demand: the batch path does not
        spend memory bandwidth on it)."""
        order = np.argsort(self.fix_start, kind="stable")  # blocks by position; empty blocks sort anywhere
        return np.repeat(order, self.fix_count[order])

    def by_fix(self, values: np.ndarray, per_fix: int) -> np.ndarray:
        """``values`` (one per pair) as an (n_fixes, per_fix) table in input order, for
        batches where every fix has exactly ``per_fix`` pairs (no global candidates)."""
        if not (self.fix_count == per_fix).all():
            raise ValueError(f"not every fix has {per_fix} pairs")
        return np.asarray(values[self.fix_start[:, None] + np.arange(per_fix)])


def _as_array(name: str, value: np.ndarray, dtype: type, n: int | None) -> np.ndarray:
    arr: np.ndarray = np.ascontiguousarray(value, dtype=dtype)
    if arr.ndim != 1:
        raise EvaluationInputError(name, f"expected a 1-d array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise EvaluationInputError(name, f"expected length {n}, got {arr.shape[0]}")
    return arr


_CHECK_ENTRY: dict[Hashable, Callable[..., Any]] = {}

_INPUT_ERRORS = {
    K.INPUT_NONFINITE: ("x/y", "non-finite coordinate"),
    K.INPUT_OUT_OF_RANGE: ("lon/lat", "coordinate out of range"),
    K.INPUT_BAD_ACCURACY: ("accuracy_m", "must be finite and >= 0"),
    K.INPUT_BAD_SUBJECT: ("subject", "index out of range"),
}


class _Scratch(threading.local):
    """Per-thread scratch arrays of the batch path, kept between calls and grown on
    demand: fresh arrays of this size cost more in page faults (measured ~0.8 ms per MB
    for arrays allocated inside numba) than the pass that fills them. Allocated by
    numpy, which asks the kernel for transparent huge pages."""

    def __init__(self) -> None:
        self.fixes = 0
        self.keys = 0
        self.rank = np.empty(0, np.int64)
        self.xs = np.empty(0)
        self.ys = np.empty(0)
        self.fix_f = np.empty((0, 4))
        self.fix_i = np.empty((0, 4), np.int32)
        self.off = np.empty(1, np.int64)
        self.key_count = np.empty(0, np.int64)

    def take(self, n: int, n_keys: int) -> tuple[np.ndarray, ...]:
        if n > self.fixes:
            cap = max(n, 2 * self.fixes)
            self.rank = np.empty(cap, np.int64)
            self.xs = np.empty(cap)
            self.ys = np.empty(cap)
            self.fix_f = np.empty((cap, 4))
            self.fix_i = np.empty((cap, 4), np.int32)
            self.off = np.empty(cap + 1, np.int64)
            self.fixes = cap
        if n_keys > self.keys:
            self.key_count = np.empty(n_keys, np.int64)
            self.keys = n_keys
        return (self.key_count[:n_keys], self.rank[:n], self.xs[:n], self.ys[:n], self.fix_f[:n], self.fix_i[:n],
                self.off[:n + 1])


_scratch = _Scratch()


def _run_batch(zone_set: ZoneSet, x: np.ndarray, y: np.ndarray, acc: np.ndarray, subj: np.ndarray, t: np.ndarray,
               exact: bool, lonlat: bool) -> tuple[np.ndarray, ...]:
    """The parallel path: group by subject (pass 1), allocate the output, evaluate (pass 2)."""
    n = x.shape[0]
    key_count, rank, xs, ys, fix_f, fix_i, off = _scratch.take(n, zone_set.n_subjects + 2)
    fix_count = np.empty(n, np.int32)
    total = direct_call(K.group_fixes, zone_set.entries, "group", x, y, acc, subj, t, lonlat, zone_set.arrays, key_count,
                        rank, xs, ys, fix_f, fix_i, fix_count, off)
    fix_start = np.empty(n, np.int64)
    pz = np.empty(total, np.int32)
    pst = np.empty(total, np.int8)
    pd = np.empty(total if exact else 0, np.float64)
    direct_call(K.fill_groups, zone_set.entries, "fill", zone_set.arrays, exact, fix_f, fix_i, off, fix_start, pz, pst,
                pd)
    return fix_start, fix_count, pz, pst, pd


def _raise_for(code: int, lonlat: bool) -> None:
    if code != K.INPUT_OK:
        argument, reason = _INPUT_ERRORS[code]
        raise EvaluationInputError("lon/lat" if lonlat and argument == "x/y" else argument, reason)


def _run(zone_set: ZoneSet, x: np.ndarray, y: np.ndarray, accuracy_m: np.ndarray, subject: np.ndarray,
         time_s: np.ndarray, exact_distance: bool, lonlat: bool) -> Evaluation:
    """Check the inputs at the door (dtype, shape, values), then run the kernel."""
    x_a = _as_array("lon" if lonlat else "x", x, np.float64, None)
    n = x_a.shape[0]
    y_a = _as_array("lat" if lonlat else "y", y, np.float64, n)
    acc_a = _as_array("accuracy_m", accuracy_m, np.float64, n)
    if n >= 2**31:
        raise EvaluationInputError("x/y", "at most 2**31 - 1 fixes per call")
    subj_a = _as_array("subject", subject, np.int32, n)
    t_a = _as_array("time_s", time_s, np.int64, n)
    if n < SERIAL_BELOW:  # one kernel call checks and evaluates
        code, start, count, pz, pst, pd = direct_call(K.evaluate_serial, zone_set.entries, "serial", x_a, y_a, acc_a,
                                                      subj_a, t_a, exact_distance, lonlat, zone_set.n_subjects,
                                                      zone_set.arrays)
        _raise_for(code, lonlat)
    else:
        _raise_for(direct_call(K.check_inputs_parallel, _CHECK_ENTRY, None, x_a, y_a, acc_a, subj_a, zone_set.n_subjects,
                               lonlat),
                   lonlat)
        start, count, pz, pst, pd = _run_batch(zone_set, x_a, y_a, acc_a, subj_a, t_a, exact_distance, lonlat)
    if not exact_distance:
        return Evaluation(start, count, pz, pst, None)
    return Evaluation(start, count, pz, pst, pd / zone_set.arrays.zone_k[pz])  # projected -> ground metres


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
    included): the test for a drive through an exclusion zone between sparse fixes. The
    path is straight in the evaluation frame; a circle is met when a point of it is within
    the radius of the centre by the geodesic (see ``K._path_meets_circle``; paths longer
    than K.CIRCLE_FRAME_M from the centre use the frame's circle of radius r * k)."""
    lon0_a = _as_array("lon0", lon0, np.float64, None)
    n = lon0_a.shape[0]
    zone_a = _as_array("zone", zone, np.int64, n)
    if n and (zone_a.min() < 0 or zone_a.max() >= zone_set.n_zones):
        raise EvaluationInputError("zone", "index out of range")
    x0, y0 = project(lon0_a, _as_array("lat0", lat0, np.float64, n))
    x1, y1 = project(_as_array("lon1", lon1, np.float64, n), _as_array("lat1", lat1, np.float64, n))
    return np.asarray(K.path_hits(x0, y0, x1, y1, zone_a, zone_set.arrays))


def zone_is_exclusion(zone_set: ZoneSet, zone: np.ndarray) -> np.ndarray:
    """Whether each zone index names an exclusion zone (else inclusion). ``ZoneSet.zone_kind``
    (int8: 0 inclusion, 1 exclusion) is public as well and holds the same."""
    zone_a = np.asarray(zone, dtype=np.int64)
    if zone_a.size and (zone_a.min() < 0 or zone_a.max() >= zone_set.n_zones):
        raise EvaluationInputError("zone", "index out of range")
    return np.asarray(zone_set.zone_kind[zone_a] == 1)


def path_candidates(zone_set: ZoneSet, subject_index: np.ndarray, lon0: np.ndarray, lat0: np.ndarray,
                    lon1: np.ndarray, lat1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The zones a path segment (one per element, WGS84 ends) may cross, for ``path_crosses``
    to decide: ``(segment_index int64, zone_index int32)`` pairs, grouped by segment in
    input order. Per segment of subject ``subject_index[i]`` (``zone_set.subject_index``;
    -1: no subject): every exclusion zone of the subject, then the global exclusion zones
    that apply to it (no category, or the subject's) and whose bounding box meets the
    segment's, in the evaluation frame. Then
    ``path_crosses(zone_set, lon0[seg], lat0[seg], lon1[seg], lat1[seg], zone)``."""
    subj_a = _as_array("subject_index", subject_index, np.int32, None)
    n = subj_a.shape[0]
    if n and (subj_a.min() < -1 or subj_a.max() >= zone_set.n_subjects):
        raise EvaluationInputError("subject_index", "index out of range")
    ends = [_as_array(name, v, np.float64, n) for name, v in (("lon0", lon0), ("lat0", lat0), ("lon1", lon1),
                                                               ("lat1", lat1))]
    for name, v, limit in zip(("lon0", "lat0", "lon1", "lat1"), ends, (180.0, 90.0, 180.0, 90.0), strict=True):
        if n and not (np.isfinite(v).all() and np.abs(v).max() <= limit):
            raise EvaluationInputError(name, "non-finite or out of range")
    x0, y0 = project(ends[0], ends[1])
    x1, y1 = project(ends[2], ends[3])
    a = zone_set.arrays
    glob = np.ascontiguousarray(a.global_ids[zone_set.zone_kind[a.global_ids] == 1])
    seg, zone = K.path_candidate_pairs(subj_a, x0, y0, x1, y1, zone_set.zone_kind, glob, a)
    return np.asarray(seg), np.asarray(zone)


__all__ = ["SERIAL_BELOW", "Evaluation", "ZoneState", "evaluate", "evaluate_xy", "locate", "path_candidates",
           "path_crosses", "zone_is_exclusion"]
