"""Numba kernels of the evaluator: flat arrays in, flat arrays out, no I/O.

Input checks live in ``geofence.evaluate``; these functions trust their arguments.

Point location mirrors GEOS's ``RayCrossingCounter`` (used by shapely's
``contains_xy`` through a prepared geometry) with an exact orientation predicate, so
interior / boundary / exterior agree with GEOS bit for bit. Distance to a segment uses
the textbook projection formula that GEOS uses as well.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from geofence._config import NJIT, NJIT_PARALLEL
from geofence._exact import orient_sign
from geofence.projection import lcc_forward

# point location
LOC_EXTERIOR = 0
LOC_INTERIOR = 1
LOC_BOUNDARY = 2

# evaluation states (also the public codes, see geofence.states)
OUTSIDE = 0
INSIDE = 1
UNCERTAIN = 2
INACTIVE = 3

SHAPE_POLYGON = 0
SHAPE_CIRCLE = 1

# A bounding-box rejection must never decide a pair that the exact path would call
# uncertain; keep this slack (metres) far above rounding at ~1e6 m coordinates (~1e-10).
_BBOX_SLACK = 1e-6
_SECONDS_PER_WEEK = 7 * 86400
_MONDAY_OFFSET_S = 3 * 86400  # 1970-01-01 was a Thursday


@njit(**NJIT)
def segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Euclidean distance from p to segment a-b (GEOS ``Distance::pointToSegment``)."""
    if ax == bx and ay == by:
        dx = px - ax
        dy = py - ay
        return math.sqrt(dx * dx + dy * dy)
    len2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay)
    r = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len2
    if r <= 0.0:
        dx = px - ax
        dy = py - ay
        return math.sqrt(dx * dx + dy * dy)
    if r >= 1.0:
        dx = px - bx
        dy = py - by
        return math.sqrt(dx * dx + dy * dy)
    s = ((ay - py) * (bx - ax) - (ax - px) * (by - ay)) / len2
    return abs(s) * math.sqrt(len2)


@njit(**NJIT)
def locate_in_rings(
    px: float, py: float, vx: np.ndarray, vy: np.ndarray, ring_off: np.ndarray, r0: int, r1: int
) -> int:
    """Location of p in the area bounded by rings r0..r1-1 (closed rings, even-odd rule)."""
    crossings = 0
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            x1 = vx[i]
            y1 = vy[i]
            x2 = vx[i + 1]
            y2 = vy[i + 1]
            if x1 < px and x2 < px:
                continue
            if px == x2 and py == y2:
                return LOC_BOUNDARY
            if y1 == py and y2 == py:
                lo = min(x1, x2)
                hi = max(x1, x2)
                if lo <= px <= hi:
                    return LOC_BOUNDARY
                continue
            if (y1 > py and y2 <= py) or (y2 > py and y1 <= py):
                sign = orient_sign(x1, y1, x2, y2, px, py)
                if sign == 0:
                    return LOC_BOUNDARY
                if y2 < y1:
                    sign = -sign
                if sign > 0:
                    crossings += 1
    return LOC_INTERIOR if crossings % 2 == 1 else LOC_EXTERIOR


@njit(**NJIT)
def boundary_distance_within(
    px: float,
    py: float,
    vx: np.ndarray,
    vy: np.ndarray,
    ring_off: np.ndarray,
    r0: int,
    r1: int,
    limit: float,
    exact: bool,
) -> float:
    """Distance from p to the rings' boundary.

    With ``exact`` False the scan may stop early: the result is then some value
    <= ``limit`` as soon as one segment is that close, or +inf when every segment is
    farther than ``limit`` (segments whose box, grown by ``limit``, misses p are skipped).
    """
    best = np.inf
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            ax = vx[i]
            ay = vy[i]
            bx = vx[i + 1]
            by = vy[i + 1]
            if not exact:
                g = limit + _BBOX_SLACK
                if (px < min(ax, bx) - g) or (px > max(ax, bx) + g) or (py < min(ay, by) - g) or (py > max(ay, by) + g):
                    continue
            d = segment_distance(px, py, ax, ay, bx, by)
            if d < best:
                best = d
                if not exact and best <= limit:
                    return best
    return best


@njit(**NJIT)
def classify_point(
    px: float,
    py: float,
    margin: float,
    z: int,
    shape: np.ndarray,
    bbox: np.ndarray,
    circle: np.ndarray,
    zone_ring_off: np.ndarray,
    ring_off: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    exact: bool,
) -> tuple[int, float]:
    """State of p against zone z with an uncertainty margin (projected metres).

    INSIDE when p is in the interior and farther than ``margin`` from the boundary,
    OUTSIDE when in the exterior and farther than ``margin``, else UNCERTAIN.
    The second value is the signed distance to the boundary (negative inside) when
    ``exact`` is set, else NaN where it was not needed.
    """
    if shape[z] == SHAPE_CIRCLE:
        dx = px - circle[z, 0]
        dy = py - circle[z, 1]
        dc = math.sqrt(dx * dx + dy * dy)
        rad = circle[z, 2]
        d = abs(dc - rad)
        if dc < rad:
            state = INSIDE if d > margin else UNCERTAIN
            return state, -d
        if dc > rad:
            state = OUTSIDE if d > margin else UNCERTAIN
            return state, d
        return UNCERTAIN, 0.0
    g = margin + _BBOX_SLACK
    if not exact and (
        px < bbox[z, 0] - g or px > bbox[z, 2] + g or py < bbox[z, 1] - g or py > bbox[z, 3] + g
    ):
        return OUTSIDE, np.nan
    r0 = zone_ring_off[z]
    r1 = zone_ring_off[z + 1]
    loc = locate_in_rings(px, py, vx, vy, ring_off, r0, r1)
    if loc == LOC_BOUNDARY:
        return UNCERTAIN, 0.0
    d = boundary_distance_within(px, py, vx, vy, ring_off, r0, r1, margin, exact)
    sd = -d if loc == LOC_INTERIOR else d
    if d <= margin:
        return UNCERTAIN, (sd if exact else np.nan)
    if not exact:
        sd = np.nan
    return (INSIDE if loc == LOC_INTERIOR else OUTSIDE), sd


@njit(**NJIT)
def utc_offset(tz_off: np.ndarray, tz_at: np.ndarray, tz_val: np.ndarray, tz: int, t: int) -> int:
    """UTC offset (seconds) of time zone ``tz`` at epoch second ``t`` from its transition table."""
    a = tz_off[tz]
    b = tz_off[tz + 1]
    j = int(np.searchsorted(tz_at[a:b], t, side="right")) - 1
    if j < 0:  # noqa: PLR1730 - keeps numba's integer type
        j = 0
    return tz_val[a + j]


@njit(**NJIT)
def zone_active(
    z: int,
    s: int,
    t: int,
    zone_tz: np.ndarray,
    win_off: np.ndarray,
    win: np.ndarray,
    tz_off: np.ndarray,
    tz_at: np.ndarray,
    tz_val: np.ndarray,
    subj_term: np.ndarray,
    exc_off: np.ndarray,
    exc: np.ndarray,
) -> bool:
    """Whether zone z's rule applies to subject s at epoch second t.

    All must agree: inside the subject's term, no authorised exception covers t (for
    this zone or for all zones), and t falls in one of the zone's weekly windows in the
    zone's local time (no windows = always).
    """
    if t < subj_term[s, 0] or t >= subj_term[s, 1]:
        return False
    for e in range(exc_off[s], exc_off[s + 1]):
        if exc[e, 0] <= t < exc[e, 1] and (exc[e, 2] < 0 or exc[e, 2] == z):
            return False
    a = win_off[z]
    b = win_off[z + 1]
    if a == b:
        return True
    local = t + utc_offset(tz_off, tz_at, tz_val, zone_tz[z], t)
    sow = (local + _MONDAY_OFFSET_S) % _SECONDS_PER_WEEK
    for w in range(a, b):  # noqa: SIM110 - numba compiles loops, not generator any()
        if win[w, 0] <= sow < win[w, 1]:
            return True
    return False


@njit(**NJIT)
def counting_sort(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable O(N + K) permutation ordering ``keys`` (values -1..n_keys-1; -1 first)."""
    counts = np.zeros(n_keys + 2, dtype=np.int64)
    for i in range(keys.shape[0]):
        counts[keys[i] + 2] += 1
    for k in range(1, n_keys + 2):
        counts[k] += counts[k - 1]
    order = np.empty(keys.shape[0], dtype=np.int64)
    for i in range(keys.shape[0]):
        k = keys[i] + 1
        order[counts[k]] = i
        counts[k] += 1
    return order


@njit(**NJIT)
def _global_cell(grid: np.ndarray, px: float, py: float) -> int:
    """Index of the grid cell holding p (grid = x0, y0, cell size, nx, ny), or -1 outside."""
    cell = grid[2]
    ix = int(math.floor((px - grid[0]) / cell))
    iy = int(math.floor((py - grid[1]) / cell))
    nx = int(grid[3])
    ny = int(grid[4])
    if ix < 0 or iy < 0 or ix >= nx or iy >= ny:
        return -1
    return iy * nx + ix


@njit(**NJIT)
def _global_range(zs, px: float, py: float, acc: float) -> tuple[np.ndarray, int, int]:  # type: ignore[no-untyped-def]
    """The list of global zone ids to try for a fix: its grid cell, or all of them when the
    fix's accuracy exceeds the margin the grid was built with."""
    if acc > zs.grid_margin_m:
        return zs.global_ids, 0, zs.global_ids.shape[0]
    cell = _global_cell(zs.grid, px, py)
    if cell < 0:
        return zs.cell_zones, 0, 0
    return zs.cell_zones, zs.cell_off[cell], zs.cell_off[cell + 1]


@njit(**NJIT)
def _global_candidate(zs, z: int, s: int, px: float, py: float, acc: float) -> bool:  # type: ignore[no-untyped-def]
    if zs.zone_cat[z] >= 0 and zs.zone_cat[z] != zs.subj_cat[s]:
        return False
    g = (acc + zs.zone_buffer[z]) * zs.zone_k[z] + _BBOX_SLACK
    b = zs.bbox
    return not (px < b[z, 0] - g or px > b[z, 2] + g or py < b[z, 1] - g or py > b[z, 3] + g)


@njit(**NJIT)
def _pair(zs, z: int, s: int, px: float, py: float, acc: float, t: int, exact: bool) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    if not zone_active(
        z, s, t, zs.zone_tz, zs.win_off, zs.win, zs.tz_off, zs.tz_at, zs.tz_val, zs.subj_term, zs.exc_off, zs.exc
    ):
        return INACTIVE, np.nan
    margin = (acc + zs.zone_buffer[z]) * zs.zone_k[z]
    return classify_point(
        px, py, margin, z, zs.shape, zs.bbox, zs.circle, zs.zone_ring_off, zs.ring_off, zs.vx, zs.vy, exact
    )


@njit(**NJIT)
def _count_fix(zs, s: int, px: float, py: float, acc: float) -> int:  # type: ignore[no-untyped-def]
    if s < 0:
        return 0
    c = zs.subj_zone_off[s + 1] - zs.subj_zone_off[s]
    ids, lo, hi = _global_range(zs, px, py, acc)
    for q in range(lo, hi):
        if _global_candidate(zs, ids[q], s, px, py, acc):
            c += 1
    return c


@njit(**NJIT)
def _fill_fix(zs, s: int, px: float, py: float, acc: float, t: int, exact: bool, o: int,  # type: ignore[no-untyped-def]
              pz: np.ndarray, pst: np.ndarray, pd: np.ndarray) -> None:
    if s < 0:
        return
    for q in range(zs.subj_zone_off[s], zs.subj_zone_off[s + 1]):
        z = zs.subj_zone_ids[q]
        pz[o] = z
        pst[o], pd[o] = _pair(zs, z, s, px, py, acc, t, exact)
        o += 1
    ids, lo, hi = _global_range(zs, px, py, acc)
    for q in range(lo, hi):
        z = ids[q]
        if _global_candidate(zs, z, s, px, py, acc):
            pz[o] = z
            pst[o], pd[o] = _pair(zs, z, s, px, py, acc, t, exact)
            o += 1


@njit(**NJIT_PARALLEL)
def project_parallel(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = lon.shape[0]
    x = np.empty(n)
    y = np.empty(n)
    for i in prange(n):
        x[i], y[i] = lcc_forward(lon[i], lat[i])
    return x, y


@njit(**NJIT_PARALLEL)
def evaluate_parallel(x, y, acc, subj, t, exact, zs):  # type: ignore[no-untyped-def]
    """Evaluate every fix (projected x, y) against its subject's zones and the global
    zones near it.

    Returns (pair_off, pair_zone, pair_state, pair_dist): per fix i, the pairs
    pair_off[i]..pair_off[i+1]-1. Every subject zone appears for its fixes; a global
    zone appears only where it is a candidate (category matches and the fix lies within
    margin of its box); a global zone not listed for a fix is OUTSIDE. Fixes are
    processed grouped by subject (O(N) counting sort) for cache locality, and results
    are scattered back to input order.
    """
    n = x.shape[0]
    order = counting_sort(subj, zs.subj_zone_off.shape[0] - 1)
    counts = np.zeros(n + 1, dtype=np.int64)
    for j in prange(n):
        i = order[j]
        counts[i + 1] = _count_fix(zs, subj[i], x[i], y[i], acc[i])
    for i in range(n):
        counts[i + 1] += counts[i]
    total = counts[n]
    pz = np.empty(total, dtype=np.int32)
    pst = np.empty(total, dtype=np.int8)
    pd = np.empty(total, dtype=np.float64)
    for j in prange(n):
        i = order[j]
        _fill_fix(zs, subj[i], x[i], y[i], acc[i], t[i], exact, counts[i], pz, pst, pd)
    return counts, pz, pst, pd


@njit(**NJIT)
def evaluate_serial(x, y, acc, subj, t, exact, zs):  # type: ignore[no-untyped-def]
    """Same contract as ``evaluate_parallel``, on one thread and without the sort: the
    path for a handful of fixes, where starting threads would cost more than the work."""
    n = x.shape[0]
    counts = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        counts[i + 1] = counts[i] + _count_fix(zs, subj[i], x[i], y[i], acc[i])
    total = counts[n]
    pz = np.empty(total, dtype=np.int32)
    pst = np.empty(total, dtype=np.int8)
    pd = np.empty(total, dtype=np.float64)
    for i in range(n):
        _fill_fix(zs, subj[i], x[i], y[i], acc[i], t[i], exact, counts[i], pz, pst, pd)
    return counts, pz, pst, pd


@njit(**NJIT)
def locate_points(x: np.ndarray, y: np.ndarray, z: int, zs) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Plain point-in-zone location (exterior 0 / interior 1 / boundary 2) of each point."""
    out = np.empty(x.shape[0], dtype=np.int8)
    for i in range(x.shape[0]):
        if zs.shape[z] == SHAPE_CIRCLE:
            dx = x[i] - zs.circle[z, 0]
            dy = y[i] - zs.circle[z, 1]
            dc = math.sqrt(dx * dx + dy * dy)
            r = zs.circle[z, 2]
            out[i] = LOC_INTERIOR if dc < r else (LOC_EXTERIOR if dc > r else LOC_BOUNDARY)
        else:
            out[i] = locate_in_rings(x[i], y[i], zs.vx, zs.vy, zs.ring_off, zs.zone_ring_off[z], zs.zone_ring_off[z + 1])
    return out
