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

from geofence._config import NJIT, NJIT_NO_NRT, NJIT_PARALLEL
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

SEG_BOUNDARY = -1

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


@njit(**{**NJIT_NO_NRT, "inline": "always"})  # scalars only: inlining costs no refcounts
def ray_crossing(px: float, py: float, x1: float, y1: float, x2: float, y2: float) -> int:
    """GEOS's ``RayCrossingCounter::countSegment`` for one segment and the rightward ray
    from p: SEG_BOUNDARY when p lies on the segment, 1 when the ray crosses it, else 0.
    Exact: the only arithmetic is the exact orientation predicate."""
    if x1 < px and x2 < px:
        return 0
    if px == x2 and py == y2:
        return SEG_BOUNDARY
    if y1 == py and y2 == py:
        return SEG_BOUNDARY if min(x1, x2) <= px <= max(x1, x2) else 0
    if (y1 > py and y2 <= py) or (y2 > py and y1 <= py):
        sign = orient_sign(x1, y1, x2, y2, px, py)
        if sign == 0:
            return SEG_BOUNDARY
        if y2 < y1:
            sign = -sign
        return 1 if sign > 0 else 0
    return 0


@njit(**NJIT_NO_NRT)
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
            c = ray_crossing(px, py, x1, y1, x2, y2)
            if c == SEG_BOUNDARY:
                return LOC_BOUNDARY
            crossings += c
    return LOC_INTERIOR if crossings % 2 == 1 else LOC_EXTERIOR


@njit(**NJIT_NO_NRT)
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


@njit(**NJIT_NO_NRT)
def _slab_of(y: float, y0: float, h: float, n: int) -> int:
    """Slab index of y (monotone in y, clamped), the same formula at build and query."""
    k = int(math.floor((y - y0) / h))
    if k < 0:
        return 0
    if k >= n:
        return n - 1
    return k


@njit(**NJIT)
def build_slabs(
    shape: np.ndarray, bbox: np.ndarray, zone_ring_off: np.ndarray, ring_off: np.ndarray, vy: np.ndarray,
    per_slab: int, max_slabs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per polygon zone, horizontal slabs over its box, each listing the segments (by
    first vertex) whose y-range meets it. A query then reads the slab holding the point
    (every segment a horizontal ray from it can cross, or that can contain it) and the
    slabs within the margin (every segment that close), not the whole outline."""
    n = shape.shape[0]
    zone_slab_off = np.zeros(n + 1, dtype=np.int64)
    slab_h = np.ones(n)
    for z in range(n):
        ns = 0
        if shape[z] == SHAPE_POLYGON:
            segs = 0
            for r in range(zone_ring_off[z], zone_ring_off[z + 1]):
                segs += ring_off[r + 1] - ring_off[r] - 1
            ns = min(max_slabs, max(1, segs // per_slab))
            height = bbox[z, 3] - bbox[z, 1]
            slab_h[z] = height / ns if height > 0 else 1.0
        zone_slab_off[z + 1] = zone_slab_off[z] + ns
    counts = np.zeros(zone_slab_off[n] + 1, dtype=np.int64)
    for phase in range(2):
        if phase == 1:
            for k in range(counts.shape[0] - 1):
                counts[k + 1] += counts[k]
            entries = np.empty(counts[-1], dtype=np.int32)
            fill = counts[:-1].copy()
        for z in range(n):
            ns = zone_slab_off[z + 1] - zone_slab_off[z]
            if ns == 0:
                continue
            base = zone_slab_off[z]
            for r in range(zone_ring_off[z], zone_ring_off[z + 1]):
                for i in range(ring_off[r], ring_off[r + 1] - 1):
                    a = _slab_of(min(vy[i], vy[i + 1]), bbox[z, 1], slab_h[z], ns)
                    b = _slab_of(max(vy[i], vy[i + 1]), bbox[z, 1], slab_h[z], ns)
                    for k in range(a, b + 1):
                        if phase == 0:
                            counts[base + k + 1] += 1
                        else:
                            entries[fill[base + k]] = i
                            fill[base + k] += 1
    return zone_slab_off, slab_h, counts, entries


@njit(**NJIT_NO_NRT)
def locate_beyond_slabs(px: float, py: float, z: int, limit: float, vx: np.ndarray, vy: np.ndarray,
                        bbox: np.ndarray, zone_slab_off: np.ndarray, slab_h: np.ndarray, slab_off: np.ndarray,
                        slab_seg: np.ndarray) -> int:
    """LOC_BOUNDARY (meaning "within ``limit`` of the boundary", boundary included) as
    soon as a segment is that close, else the exact location (every segment is then
    farther than ``limit``): the decisions of ``locate_in_rings`` followed by
    ``boundary_distance_within``, in one pass and only over the zone's slabs within
    ``limit`` of py. Crossings are counted in the slab holding py alone, which lists
    every segment a horizontal ray from p can cross or that can contain p, so a segment
    listed in several slabs counts once."""
    g = limit + _BBOX_SLACK
    ns = zone_slab_off[z + 1] - zone_slab_off[z]
    base = zone_slab_off[z]
    y0 = bbox[z, 1]
    h = slab_h[z]
    home = _slab_of(py, y0, h, ns)
    crossings = 0
    for k in range(_slab_of(py - g, y0, h, ns), _slab_of(py + g, y0, h, ns) + 1):
        for e in range(slab_off[base + k], slab_off[base + k + 1]):
            i = slab_seg[e]
            x1 = vx[i]
            y1 = vy[i]
            x2 = vx[i + 1]
            y2 = vy[i + 1]
            near = not (px < min(x1, x2) - g or px > max(x1, x2) + g or py < min(y1, y2) - g or py > max(y1, y2) + g)
            if near and segment_distance(px, py, x1, y1, x2, y2) <= limit:
                return LOC_BOUNDARY
            if k != home:
                continue
            c = ray_crossing(px, py, x1, y1, x2, y2)
            if c == SEG_BOUNDARY:
                return LOC_BOUNDARY
            crossings += c
    return LOC_INTERIOR if crossings % 2 == 1 else LOC_EXTERIOR


@njit(**NJIT_NO_NRT)
def classify_point(
    px: float,
    py: float,
    margin: float,
    z: int,
    shape: np.ndarray,
    bbox: np.ndarray,
    circle: np.ndarray,
    core: np.ndarray,
    zone_ring_off: np.ndarray,
    ring_off: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    slabs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
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
    if not exact:
        # the zone's core disc lies in its interior: a point whose margin disc fits inside
        # it is INSIDE without touching a vertex (the common case: a person at home)
        dx = px - core[z, 0]
        dy = py - core[z, 1]
        if math.sqrt(dx * dx + dy * dy) + g < core[z, 2]:
            return INSIDE, np.nan
    r0 = zone_ring_off[z]
    r1 = zone_ring_off[z + 1]
    if not exact:
        loc = locate_beyond_slabs(px, py, z, margin, vx, vy, bbox, slabs[0], slabs[1], slabs[2], slabs[3])
        if loc == LOC_BOUNDARY:
            return UNCERTAIN, np.nan
        return (INSIDE if loc == LOC_INTERIOR else OUTSIDE), np.nan
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


@njit(**NJIT_NO_NRT)
def utc_offset(tz_off: np.ndarray, tz_at: np.ndarray, tz_val: np.ndarray, tz: int, t: int) -> int:
    """UTC offset (seconds) of time zone ``tz`` at epoch second ``t`` from its transition table."""
    a = tz_off[tz]
    b = tz_off[tz + 1]
    j = int(np.searchsorted(tz_at[a:b], t, side="right")) - 1
    if j < 0:  # noqa: PLR1730 - keeps numba's integer type
        j = 0
    return tz_val[a + j]


@njit(**NJIT_NO_NRT)
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


@njit(**NJIT_PARALLEL)
def zone_cores(
    shape: np.ndarray, bbox: np.ndarray, zone_ring_off: np.ndarray, ring_off: np.ndarray, vx: np.ndarray, vy: np.ndarray
) -> np.ndarray:
    """Per polygon zone, a disc (cx, cy, r) inside its interior: centred on the mean of
    the shell's vertices (else the box centre) when that point is interior, with r its
    distance to the boundary; r = 0 when neither point is interior."""
    n = shape.shape[0]
    core = np.zeros((n, 3))
    for z in prange(n):
        if shape[z] != SHAPE_POLYGON:
            continue
        r0 = zone_ring_off[z]
        r1 = zone_ring_off[z + 1]
        a = ring_off[r0]
        b = ring_off[r0 + 1] - 1
        candidates = ((vx[a:b].mean(), vy[a:b].mean()), ((bbox[z, 0] + bbox[z, 2]) / 2, (bbox[z, 1] + bbox[z, 3]) / 2))
        for cx, cy in candidates:
            if locate_in_rings(cx, cy, vx, vy, ring_off, r0, r1) == LOC_INTERIOR:
                core[z, 0] = cx
                core[z, 1] = cy
                core[z, 2] = boundary_distance_within(cx, cy, vx, vy, ring_off, r0, r1, 0.0, True)
                break
    return core


@njit(**NJIT)
def counting_rank(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable O(N + K) counting sort, as each element's position in key order (keys
    -1..n_keys-1; -1 first). Both passes read ``keys`` sequentially."""
    counts = np.zeros(n_keys + 2, dtype=np.int64)
    for i in range(keys.shape[0]):
        counts[keys[i] + 2] += 1
    for k in range(1, n_keys + 2):
        counts[k] += counts[k - 1]
    rank = np.empty(keys.shape[0], dtype=np.int64)
    for i in range(keys.shape[0]):
        k = keys[i] + 1
        rank[i] = counts[k]
        counts[k] += 1
    return rank


@njit(**NJIT_NO_NRT)
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


@njit(**NJIT_NO_NRT)
def _global_span(zs, px: float, py: float, acc: float) -> tuple[bool, int, int]:  # type: ignore[no-untyped-def]
    """Which candidate entries a fix scans: (use_all, lo, hi) over the grid cell's entries,
    or over every global zone's when the fix's accuracy exceeds the grid's margin."""
    if acc > zs.grid_margin_m:
        return True, 0, zs.global_ids.shape[0]
    cell = _global_cell(zs.grid, px, py)
    if cell < 0:
        return False, 0, 0
    return False, zs.cell_off[cell], zs.cell_off[cell + 1]


@njit(**NJIT_NO_NRT)
def _global_entry(zs, use_all: bool, q: int, subj_cat: int, px: float, py: float, acc: float) -> int:  # type: ignore[no-untyped-def]
    """The zone of candidate entry q, or -1 when it does not apply to this fix."""
    if use_all:
        ok = _candidate(zs.global_box, zs.global_k, zs.global_cat, q, subj_cat, px, py, acc)
        return zs.global_ids[q] if ok else -1
    ok = _candidate(zs.cell_box, zs.cell_k, zs.cell_cat, q, subj_cat, px, py, acc)
    return zs.cell_zones[q] if ok else -1


@njit(**NJIT_NO_NRT)
def _candidate(box: np.ndarray, k: np.ndarray, cat: np.ndarray, q: int, subj_cat: int,
               px: float, py: float, acc: float) -> bool:
    """Entry q applies to the subject's category and the fix lies within its margin of the
    zone's box (box already grown by the zone's buffer)."""
    if cat[q] >= 0 and cat[q] != subj_cat:
        return False
    g = acc * k[q] + _BBOX_SLACK
    return not (px < box[q, 0] - g or px > box[q, 2] + g or py < box[q, 1] - g or py > box[q, 3] + g)


@njit(**NJIT_NO_NRT)
def _pair(zs, z: int, s: int, px: float, py: float, acc: float, t: int, exact: bool) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    if not zone_active(
        z, s, t, zs.zone_tz, zs.win_off, zs.win, zs.tz_off, zs.tz_at, zs.tz_val, zs.subj_term, zs.exc_off, zs.exc
    ):
        return INACTIVE, np.nan
    margin = (acc + zs.zone_buffer[z]) * zs.zone_k[z]
    return classify_point(
        px, py, margin, z, zs.shape, zs.bbox, zs.circle, zs.core, zs.zone_ring_off, zs.ring_off, zs.vx, zs.vy,
        (zs.zone_slab_off, zs.slab_h, zs.slab_off, zs.slab_seg), exact
    )


@njit(**NJIT_NO_NRT)
def _count_fix(zs, s: int, px: float, py: float, acc: float) -> int:  # type: ignore[no-untyped-def]
    if s < 0:
        return 0
    c = zs.subj_zone_off[s + 1] - zs.subj_zone_off[s]
    use_all, lo, hi = _global_span(zs, px, py, acc)
    sc = zs.subj_cat[s]
    for q in range(lo, hi):
        if _global_entry(zs, use_all, q, sc, px, py, acc) >= 0:
            c += 1
    return c


@njit(**NJIT_NO_NRT)
def _fill_fix(zs, s: int, px: float, py: float, acc: float, t: int, exact: bool, o: int,  # type: ignore[no-untyped-def]
              pz: np.ndarray, pst: np.ndarray, pd: np.ndarray) -> None:
    if s < 0:
        return
    for q in range(zs.subj_zone_off[s], zs.subj_zone_off[s + 1]):
        z = zs.subj_zone_ids[q]
        pz[o] = z
        pst[o], pd[o] = _pair(zs, z, s, px, py, acc, t, exact)
        o += 1
    use_all, lo, hi = _global_span(zs, px, py, acc)
    sc = zs.subj_cat[s]
    for q in range(lo, hi):
        z = _global_entry(zs, use_all, q, sc, px, py, acc)
        if z >= 0:
            pz[o] = z
            pst[o], pd[o] = _pair(zs, z, s, px, py, acc, t, exact)
            o += 1


@njit(**NJIT_PARALLEL)
def evaluate_parallel(x, y, acc, subj, t, exact, lonlat, zs):  # type: ignore[no-untyped-def]
    """Evaluate every fix against its subject's zones and the global zones near it.
    With ``lonlat`` the coordinates are WGS84 lon/lat (x, y) and are projected on the way
    in, else they are already in the evaluation frame.

    Returns (pair_off, pair_zone, pair_state, pair_dist): per fix i, the pairs
    pair_off[i]..pair_off[i+1]-1. Every subject zone appears for its fixes; a global
    zone appears only where it is a candidate (category matches and the fix lies within
    margin of its box); a global zone not listed for a fix is OUTSIDE. Fixes are
    evaluated grouped by subject (O(N) counting sort) for cache locality, and the
    results are put back in input order.
    """
    n = x.shape[0]
    rank = counting_rank(subj, zs.subj_zone_off.shape[0] - 1)
    # 1. move the fixes into subject order: sequential reads, scattered writes
    xs = np.empty(n)
    ys = np.empty(n)
    accs = np.empty(n)
    ts = np.empty(n, dtype=np.int64)
    ss = np.empty(n, dtype=np.int32)
    for i in prange(n):
        j = rank[i]
        if lonlat:
            xs[j], ys[j] = lcc_forward(x[i], y[i])
        else:
            xs[j] = x[i]
            ys[j] = y[i]
        accs[j] = acc[i]
        ts[j] = t[i]
        ss[j] = subj[i]
    # 2. evaluate in subject order: each subject's zones are read once, output is sequential
    off_s = np.zeros(n + 1, dtype=np.int64)
    for j in prange(n):
        off_s[j + 1] = _count_fix(zs, ss[j], xs[j], ys[j], accs[j])
    for j in range(n):
        off_s[j + 1] += off_s[j]
    total = off_s[n]
    pz_s = np.empty(total, dtype=np.int32)
    pst_s = np.empty(total, dtype=np.int8)
    pd_s = np.empty(total, dtype=np.float64)
    for j in prange(n):
        _fill_fix(zs, ss[j], xs[j], ys[j], accs[j], ts[j], exact, off_s[j], pz_s, pst_s, pd_s)
    # 3. back to input order: per fix, copy its block of pairs
    counts = np.zeros(n + 1, dtype=np.int64)
    for i in prange(n):
        j = rank[i]
        counts[i + 1] = off_s[j + 1] - off_s[j]
    for i in range(n):
        counts[i + 1] += counts[i]
    pz = np.empty(total, dtype=np.int32)
    pst = np.empty(total, dtype=np.int8)
    pd = np.empty(total, dtype=np.float64)
    for i in prange(n):
        src = off_s[rank[i]]
        dst = counts[i]
        for q in range(counts[i + 1] - dst):
            pz[dst + q] = pz_s[src + q]
            pst[dst + q] = pst_s[src + q]
            pd[dst + q] = pd_s[src + q]
    return counts, pz, pst, pd


@njit(**NJIT)
def evaluate_serial(x, y, acc, subj, t, exact, lonlat, zs):  # type: ignore[no-untyped-def]
    """Same contract as ``evaluate_parallel``, on one thread and without the sort: the
    path for a handful of fixes, where starting threads would cost more than the work."""
    n = x.shape[0]
    xs = np.empty(n)
    ys = np.empty(n)
    counts = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        if lonlat:
            xs[i], ys[i] = lcc_forward(x[i], y[i])
        else:
            xs[i] = x[i]
            ys[i] = y[i]
        counts[i + 1] = counts[i] + _count_fix(zs, subj[i], xs[i], ys[i], acc[i])
    total = counts[n]
    pz = np.empty(total, dtype=np.int32)
    pst = np.empty(total, dtype=np.int8)
    pd = np.empty(total, dtype=np.float64)
    for i in range(n):
        _fill_fix(zs, subj[i], xs[i], ys[i], acc[i], t[i], exact, counts[i], pz, pst, pd)
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
            out[i] = locate_in_rings(x[i], y[i], zs.vx, zs.vy, zs.ring_off, zs.zone_ring_off[z],
                                     zs.zone_ring_off[z + 1])
    return out


@njit(**NJIT_NO_NRT)
def _on_segment(ax: float, ay: float, bx: float, by: float, px: float, py: float) -> bool:
    """For p collinear with a-b: whether p lies on the closed segment."""
    return min(ax, bx) <= px <= max(ax, bx) and min(ay, by) <= py <= max(ay, by)


@njit(**NJIT_NO_NRT)
def segments_intersect(ax: float, ay: float, bx: float, by: float,
                       cx: float, cy: float, dx: float, dy: float) -> bool:
    """Exact test: do the closed segments a-b and c-d share a point?"""
    d1 = orient_sign(cx, cy, dx, dy, ax, ay)
    d2 = orient_sign(cx, cy, dx, dy, bx, by)
    d3 = orient_sign(ax, ay, bx, by, cx, cy)
    d4 = orient_sign(ax, ay, bx, by, dx, dy)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return ((d1 == 0 and _on_segment(cx, cy, dx, dy, ax, ay)) or (d2 == 0 and _on_segment(cx, cy, dx, dy, bx, by))
            or (d3 == 0 and _on_segment(ax, ay, bx, by, cx, cy)) or (d4 == 0 and _on_segment(ax, ay, bx, by, dx, dy)))


@njit(**NJIT)
def path_hits(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, zone: np.ndarray, zs) -> np.ndarray:  # type: ignore[no-untyped-def]
    """For each path segment (x0, y0)-(x1, y1), whether it meets zone[i] (closed zone:
    boundary included). Polygon: an end inside, or an edge crossed; circle: the segment
    comes within the radius of the centre."""
    n = x0.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        z = zone[i]
        if zs.shape[z] == SHAPE_CIRCLE:
            out[i] = segment_distance(zs.circle[z, 0], zs.circle[z, 1], x0[i], y0[i], x1[i], y1[i]) <= zs.circle[z, 2]
            continue
        b = zs.bbox
        if (max(x0[i], x1[i]) < b[z, 0] or min(x0[i], x1[i]) > b[z, 2]
                or max(y0[i], y1[i]) < b[z, 1] or min(y0[i], y1[i]) > b[z, 3]):
            continue
        r0 = zs.zone_ring_off[z]
        r1 = zs.zone_ring_off[z + 1]
        if locate_in_rings(x0[i], y0[i], zs.vx, zs.vy, zs.ring_off, r0, r1) != LOC_EXTERIOR:
            out[i] = True
            continue
        hit = False
        for r in range(r0, r1):
            for k in range(zs.ring_off[r], zs.ring_off[r + 1] - 1):
                if segments_intersect(x0[i], y0[i], x1[i], y1[i], zs.vx[k], zs.vy[k], zs.vx[k + 1], zs.vy[k + 1]):
                    hit = True
                    break
            if hit:
                break
        out[i] = hit
    return out


INPUT_OK = 0
INPUT_NONFINITE = 1
INPUT_OUT_OF_RANGE = 2
INPUT_BAD_ACCURACY = 3
INPUT_BAD_SUBJECT = 4


@njit(**NJIT)
def check_inputs(x: np.ndarray, y: np.ndarray, acc: np.ndarray, subj: np.ndarray, n_subjects: int,
                 lonlat: bool) -> int:
    """The door check of ``geofence.evaluate`` in one pass (numpy's separate reductions
    cost ~20 us per call, most of a single-fix evaluation). Returns an INPUT_* code."""
    for i in range(x.shape[0]):
        if not (math.isfinite(x[i]) and math.isfinite(y[i])):
            return INPUT_NONFINITE
        if lonlat and (abs(y[i]) > 90.0 or abs(x[i]) > 180.0):
            return INPUT_OUT_OF_RANGE
        if not (math.isfinite(acc[i]) and acc[i] >= 0.0):
            return INPUT_BAD_ACCURACY
        if subj[i] < -1 or subj[i] >= n_subjects:
            return INPUT_BAD_SUBJECT
    return INPUT_OK
