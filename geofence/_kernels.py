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
from geofence._exact import geodesic_m, orient_sign
from geofence.projection import fix_forward, inv_scale_xy, lcc_inverse, project_into

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
# Time-zone tables (geofence.compile) hold every change from 1800 (before it no zone of
# the tz database changes: each keeps its first offset, tested for all of them) to
# TZ_TABLE_END_S, 2500-01-01. By then every zone follows its yearly rule (tzdata lists
# explicit changes up to 2087 at most), and that rule repeats with the Gregorian calendar
# every 400 years, a whole number of weeks: a later instant reads the table 400 years
# (or a multiple) earlier, which gives both its offset and its time of week.
TZ_TABLE_END_S = 16_725_225_600  # 2500-01-01 00:00 UTC
TZ_PERIOD_S = 146_097 * 86_400  # 400 Gregorian years = 20,871 weeks


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


# Circles are decided in ground metres: the geodesic distance G from the fix to the centre
# against radius r and margin m (accuracy + buffer): INSIDE when G < r - m, OUTSIDE when
# G > r + m, else UNCERTAIN. G is estimated from the frame, with a stated error bound
# (tested against pyproj.Geod for centres in 30-50 N, 50-80 E and fixes up to
# CIRCLE_FRAME_M away, in tests/geofence/test_circles.py):
#   E1 = D / k_c (D the projected distance, k_c the scale at the centre):
#        |E1 - G| <= E1_COEF * D**2 + EST_ABS_M   (measured 1.6e-8 * D**2)
#   E2 = D * (1/k_c + 4/k_mid + 1/k_fix) / 6 (Simpson's rule for the ground length of the
#        chord's preimage; the geodesic is shorter by about |grad ln k|**2 D**3 / 24):
#        |E2 - G| <= E2_COEF * D**3 + EST_ABS_M   (measured 3.7e-17 * D**3: 4 cm at 100 km)
# Only a pair that neither bound decides (a fix within the bound of r - m or r + m) or a
# fix farther than CIRCLE_FRAME_M asks the ellipsoid: a fix far away is OUTSIDE when the
# straight chord through the Earth (never longer than the geodesic) already exceeds r + m,
# and otherwise, as every undecided pair, gets the geodesic itself (pyproj.Geod).
CIRCLE_FRAME_M = 400_000.0
E1_COEF = 5e-8
E2_COEF = 2e-16
EST_ABS_M = 1e-6
_WGS84_A = 6378137.0
_WGS84_E2 = 0.0066943799901413165


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _circle_decide(g: float, err: float, r: float, margin: float) -> int:
    """The state for every G within err of the estimate g, or -1 when they differ."""
    if g + err < r - margin:
        return INSIDE
    if g - err > r + margin:
        return OUTSIDE
    if g - err >= r - margin and g + err <= r + margin:  # (needs margin >= err > 0)
        return UNCERTAIN
    return -1


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _circle_exact_state(g: float, r: float, margin: float) -> int:
    """The state for the geodesic distance g itself (the reference's own comparisons)."""
    d = abs(g - r)
    if g < r:
        return INSIDE if d > margin else UNCERTAIN
    if g > r:
        return OUTSIDE if d > margin else UNCERTAIN
    return UNCERTAIN


@njit(**NJIT_NO_NRT)
def _ecef_chord(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Straight-line distance through the Earth between two WGS84 points: a lower bound of
    their geodesic distance."""
    p0 = math.radians(lat0)
    p1 = math.radians(lat1)
    l0 = math.radians(lon0)
    l1 = math.radians(lon1)
    s0 = math.sin(p0)
    s1 = math.sin(p1)
    n0 = _WGS84_A / math.sqrt(1.0 - _WGS84_E2 * s0 * s0)
    n1 = _WGS84_A / math.sqrt(1.0 - _WGS84_E2 * s1 * s1)
    dx = n1 * math.cos(p1) * math.cos(l1) - n0 * math.cos(p0) * math.cos(l0)
    dy = n1 * math.cos(p1) * math.sin(l1) - n0 * math.cos(p0) * math.sin(l0)
    dz = (1.0 - _WGS84_E2) * (n1 * s1 - n0 * s0)
    return math.sqrt(dx * dx + dy * dy + dz * dz)


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def simpson_ground_m(px: float, py: float, cx: float, cy: float, d: float, kc: float) -> float:
    """E2 (see above): the ground length of the chord from the centre c to p by Simpson's
    rule over 1/k; NaN where p or the midpoint lies outside the 1/k polynomial's range."""
    ik_f = inv_scale_xy(px, py)
    ik_m = inv_scale_xy(cx + 0.5 * (px - cx), cy + 0.5 * (py - cy))
    return d * (1.0 / kc + 4.0 * ik_m + ik_f) / 6.0


@njit(**NJIT_NO_NRT)
def _circle_state_slow(px: float, py: float, cx: float, cy: float, d: float, r: float, kc: float, clon: float,
                       clat: float, margin: float, precise: bool) -> tuple[int, float]:
    """``_circle_state`` past the first estimate: E2, then the far-fix chord, then the
    geodesic (see the note above ``CIRCLE_FRAME_M``)."""
    if d <= CIRCLE_FRAME_M:
        g = simpson_ground_m(px, py, cx, cy, d, kc)
        if not math.isnan(g):  # inside the polynomial's range
            state = _circle_decide(g, E2_COEF * d * d * d + EST_ABS_M, r, margin)
            if state >= 0:
                return state, (g - r) * kc
    lon, lat = lcc_inverse(px, py)
    if d > CIRCLE_FRAME_M and not precise:
        c = _ecef_chord(clon, clat, lon, lat)
        if c - EST_ABS_M > r + margin:
            return OUTSIDE, (c - r) * kc
    g = geodesic_m(clon, clat, lon, lat)
    return _circle_exact_state(g, r, margin), (g - r) * kc


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _circle_state(px: float, py: float, cx: float, cy: float, r: float, kc: float, clon: float, clat: float,
                  margin: float, precise: bool) -> tuple[int, float]:
    """State of p (frame metres) against the circle of ground radius r around (cx, cy)
    (frame; (clon, clat) WGS84, k_c the scale there) with a ground margin, and the signed
    distance G - r to its boundary times k_c (negative inside; the caller divides by the
    zone's k). ``precise`` (exact distances asked for) skips the coarse first estimate."""
    dx = px - cx
    dy = py - cy
    d = math.sqrt(dx * dx + dy * dy)
    if not precise and d <= CIRCLE_FRAME_M:
        g = d / kc
        state = _circle_decide(g, E1_COEF * d * d + EST_ABS_M, r, margin)
        if state >= 0:
            return state, (g - r) * kc
    return _circle_state_slow(px, py, cx, cy, d, r, kc, clon, clat, margin, precise)


@njit(**NJIT_NO_NRT)
def classify_exact(px: float, py: float, ground_margin: float, k: float, z: int, shape: np.ndarray,
                   circle: np.ndarray, zone_ring_off: np.ndarray, ring_off: np.ndarray, vx: np.ndarray,
                   vy: np.ndarray) -> tuple[int, float]:
    """State of p against zone z with an uncertainty margin (ground metres; k the zone's
    scale factor), and the signed distance to the boundary (negative inside, frame metres),
    computed over every segment.

    INSIDE when p is in the interior and farther than the margin from the boundary,
    OUTSIDE when in the exterior and farther than the margin, else UNCERTAIN. Polygons are
    decided in the frame (margin * k), circles in ground metres. The fast path
    (``_classify_fast``) decides the same states without the exact distance.
    """
    if shape[z] == SHAPE_CIRCLE:
        return _circle_state(px, py, circle[z, 0], circle[z, 1], circle[z, 2], circle[z, 3], circle[z, 4],
                             circle[z, 5], ground_margin, True)
    margin = ground_margin * k
    r0 = zone_ring_off[z]
    r1 = zone_ring_off[z + 1]
    loc = locate_in_rings(px, py, vx, vy, ring_off, r0, r1)
    if loc == LOC_BOUNDARY:
        return UNCERTAIN, 0.0
    d = boundary_distance_within(px, py, vx, vy, ring_off, r0, r1, margin, True)
    sd = -d if loc == LOC_INTERIOR else d
    if d <= margin:
        return UNCERTAIN, sd
    return (INSIDE if loc == LOC_INTERIOR else OUTSIDE), sd


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


# Columns of ``zone_rec``: what the evaluator reads of a zone, packed in one row so that
# a zone costs a few adjacent cache lines instead of one line in each of a dozen arrays.
# Integers are stored as floats (exact below 2**53).
REC_SHAPE = 0
REC_X0 = 1  # bounding box x0, y0, x1, y1
REC_Y0 = 2
REC_X1 = 3
REC_Y1 = 4
REC_CX = 5  # circle: centre (frame) and radius (ground metres); polygon: the interior core disc (r = 0: none)
REC_CY = 6
REC_CR = 7
REC_K = 8  # scale factor
REC_BUFFER = 9  # buffer margin (ground metres)
REC_WIN_A = 10  # weekly windows win[a:b]
REC_WIN_B = 11
REC_TZ = 12
REC_SLAB = 13  # first slab, slab count, slab height
REC_NSLAB = 14
REC_SLAB_H = 15
REC_RASTER = 16  # first cell of the distance raster, or -1
REC_CELL_W = 17
REC_CELL_H = 18
REC_RASTER_STEP = 19  # metres per unit of the raster's distances
REC_COLUMNS = 20
# a circle has no raster: its centre's WGS84 lon/lat take the raster cell's columns
REC_LON = REC_CELL_W
REC_LAT = REC_CELL_H

# Side of the per-zone distance raster (cells per axis) of inclusion polygons; distances
# are kept at the cells' corners, (RASTER_SIDE + 1)**2 of them, as int8 multiples of
# (cell side / RASTER_STEPS), so a zone's raster is 289 bytes and the rasters of
# 100,000 homes stay near the cache.
RASTER_SIDE = 16
RASTER_CORNERS = (RASTER_SIDE + 1) ** 2
RASTER_STEPS = 16
RASTER_MAX = 127


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _raster_cell(px: float, py: float, x0: float, y0: float, w: float, h: float) -> tuple[int, int]:
    """Raster cell (column, row) of p, clamped to the raster (any cell gives valid
    bounds; the one holding p gives the tightest)."""
    ix = int(math.floor((px - x0) / w))
    iy = int(math.floor((py - y0) / h))
    return min(max(ix, 0), RASTER_SIDE - 1), min(max(iy, 0), RASTER_SIDE - 1)


@njit(**NJIT_PARALLEL)
def build_rasters(zone_rec: np.ndarray, raster_zones: np.ndarray, zone_ring_off: np.ndarray, ring_off: np.ndarray,
                  vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Distance to the boundary at each corner of a RASTER_SIDE x RASTER_SIDE raster over
    each listed zone's box, as int8 v: the distance d lies in [|v|, |v| + 1) raster
    steps (|v| = RASTER_MAX: at least that), the corner is interior for v < 0 and
    exterior for v > 0 (v = 0: too near the boundary to say). Distance is 1-Lipschitz,
    so each corner of the cell holding p bounds p's distance by its own plus or minus
    its offset from p; the evaluator intersects the four bounds and reads no vertex
    when they already decide the state."""
    side = RASTER_SIDE + 1
    out = np.empty(raster_zones.shape[0] * RASTER_CORNERS, dtype=np.int8)
    for q in prange(raster_zones.shape[0]):
        z = raster_zones[q]
        x0 = zone_rec[z, REC_X0]
        y0 = zone_rec[z, REC_Y0]
        w = zone_rec[z, REC_CELL_W]
        h = zone_rec[z, REC_CELL_H]
        step = zone_rec[z, REC_RASTER_STEP]
        r0 = zone_ring_off[z]
        r1 = zone_ring_off[z + 1]
        for iy in range(side):
            for ix in range(side):
                cx = x0 + ix * w
                cy = y0 + iy * h
                d = boundary_distance_within(cx, cy, vx, vy, ring_off, r0, r1, 0.0, True)
                loc = locate_in_rings(cx, cy, vx, vy, ring_off, r0, r1)
                k = min(RASTER_MAX, int(math.floor(d / step)))
                out[q * RASTER_CORNERS + iy * side + ix] = -k if loc == LOC_INTERIOR else (
                    k if loc == LOC_EXTERIOR else 0)
    return out


# The raster decides only with this much to spare (relative, absolute metres): far above
# the rounding of the float64 distances and offsets behind it (~1e-9 m)
_RASTER_REL = 2.0**-20
_RASTER_ABS = 1e-6


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _raster_state(px: float, py: float, margin: float, z: int, rec: np.ndarray, raster: np.ndarray) -> int:
    """INSIDE / OUTSIDE / UNCERTAIN when the zone's raster decides p's state, else -1."""
    base = int(rec[z, REC_RASTER])
    if base < 0:
        return -1
    x0 = rec[z, REC_X0]
    y0 = rec[z, REC_Y0]
    w = rec[z, REC_CELL_W]
    h = rec[z, REC_CELL_H]
    step = rec[z, REC_RASTER_STEP]
    jx, jy = _raster_cell(px, py, x0, y0, w, h)
    lo = -np.inf  # the best lower bound of p's distance, and the corner that gave it
    lo_v = 0
    hi = np.inf
    for dy in range(2):
        for dx in range(2):
            v = int(raster[base + (jy + dy) * (RASTER_SIDE + 1) + jx + dx])
            k = abs(v)
            ox = px - (x0 + (jx + dx) * w)
            oy = py - (y0 + (jy + dy) * h)
            offset = math.sqrt(ox * ox + oy * oy)
            d_lo = k * step
            below = d_lo - offset - d_lo * _RASTER_REL - _RASTER_ABS
            if below > lo:
                lo = below
                lo_v = v
            if k < RASTER_MAX:
                d_hi = (k + 1) * step
                hi = min(hi, d_hi + offset + d_hi * _RASTER_REL + _RASTER_ABS)
    if lo > margin + _BBOX_SLACK and lo_v != 0:
        # the disc around that corner through p misses the boundary: p is on the corner's
        # side and farther than the margin from the boundary
        return INSIDE if lo_v < 0 else OUTSIDE
    if hi < margin - _BBOX_SLACK:
        return UNCERTAIN  # a boundary point lies within the margin of p
    return -1


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _classify_fast(px: float, py: float, acc: float, z: int, rec: np.ndarray, raster: np.ndarray, vx: np.ndarray,
                   vy: np.ndarray, slab_off: np.ndarray, slab_seg: np.ndarray) -> tuple[int, float]:
    """``classify_exact`` without the exact distance, from the packed zone row: circle, box
    rejection, core disc, distance raster, then the slab scan. Returns (state, distance):
    the signed distance for circles (it comes for free), NaN for polygons."""
    if rec[z, REC_SHAPE] == SHAPE_CIRCLE:
        return _circle_state(px, py, rec[z, REC_CX], rec[z, REC_CY], rec[z, REC_CR], rec[z, REC_K], rec[z, REC_LON],
                             rec[z, REC_LAT], acc + rec[z, REC_BUFFER], False)
    margin = (acc + rec[z, REC_BUFFER]) * rec[z, REC_K]
    g = margin + _BBOX_SLACK
    x0 = rec[z, REC_X0]
    y0 = rec[z, REC_Y0]
    x1 = rec[z, REC_X1]
    y1 = rec[z, REC_Y1]
    if px < x0 - g or px > x1 + g or py < y0 - g or py > y1 + g:
        return OUTSIDE, np.nan
    if margin > 0.25 * (x1 - x0 + y1 - y0):
        # a margin as large as the zone (a poor fix): the box bounds the distance to the
        # boundary from both sides. Every boundary point lies in the box, so it is at most
        # the distance to the farthest corner, and (outside the box) at least the
        # distance to the box
        fx = max(px - x0, x1 - px)
        fy = max(py - y0, y1 - py)
        if math.sqrt(fx * fx + fy * fy) + _BBOX_SLACK < margin:
            return UNCERTAIN, np.nan
        ex = max(x0 - px, px - x1, 0.0)
        ey = max(y0 - py, py - y1, 0.0)
        if math.sqrt(ex * ex + ey * ey) > g:
            return OUTSIDE, np.nan
    dx = px - rec[z, REC_CX]
    dy = py - rec[z, REC_CY]
    if math.sqrt(dx * dx + dy * dy) + g < rec[z, REC_CR]:
        return INSIDE, np.nan
    state = _raster_state(px, py, margin, z, rec, raster)
    if state >= 0:
        return state, np.nan
    loc = _locate_beyond(px, py, margin, int(rec[z, REC_SLAB]), int(rec[z, REC_NSLAB]), rec[z, REC_Y0],
                         rec[z, REC_SLAB_H], vx, vy, slab_off, slab_seg)
    if loc == LOC_BOUNDARY:
        return UNCERTAIN, np.nan
    return (INSIDE if loc == LOC_INTERIOR else OUTSIDE), np.nan


@njit(**NJIT_NO_NRT)
def _locate_beyond(px: float, py: float, limit: float, base: int, ns: int, y0: float, h: float, vx: np.ndarray,
                   vy: np.ndarray, slab_off: np.ndarray, slab_seg: np.ndarray) -> int:
    """LOC_BOUNDARY (meaning "within ``limit`` of the boundary", boundary included) as
    soon as a segment is that close, else the exact location (every segment is then
    farther than ``limit``): the decisions of ``locate_in_rings`` followed by
    ``boundary_distance_within``, in one pass and only over the zone's slabs (``ns``
    of height ``h`` from ``y0``, entries from ``base``) within ``limit`` of py.
    Crossings are counted in the slab holding py alone, which lists every segment a
    horizontal ray from p can cross or that can contain p, so a segment listed in
    several slabs counts once."""
    g = limit + _BBOX_SLACK
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


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _windows_active(z: int, t: int, rec: np.ndarray, win: np.ndarray, tz_off: np.ndarray, tz_at: np.ndarray,
                    tz_val: np.ndarray) -> bool:
    """Whether t falls in one of zone z's weekly windows in the zone's local time (no windows = always)."""
    a = int(rec[z, REC_WIN_A])
    b = int(rec[z, REC_WIN_B])
    if a == b:
        return True
    tz = int(rec[z, REC_TZ])
    if t >= TZ_TABLE_END_S:  # the rule's 400-year period (see TZ_TABLE_END_S)
        t -= ((t - TZ_TABLE_END_S) // TZ_PERIOD_S + 1) * TZ_PERIOD_S
    lo = tz_off[tz]  # tz_at[lo] is the table's -inf sentinel: find the last change <= t
    hi = tz_off[tz + 1]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if tz_at[mid] <= t:
            lo = mid
        else:
            hi = mid
    sow = (t + tz_val[lo] + _MONDAY_OFFSET_S) % _SECONDS_PER_WEEK
    for w in range(a, b):  # noqa: SIM110 - numba compiles loops, not generator any()
        if win[w, 0] <= sow < win[w, 1]:
            return True
    return False


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _excepted(z: int, t: int, e0: int, e1: int, exc: np.ndarray) -> bool:
    """Whether an authorised exception of the subject (exc[e0:e1]) covers zone z at t."""
    for e in range(e0, e1):  # noqa: SIM110 - numba compiles loops, not generator any()
        if exc[e, 0] <= t < exc[e, 1] and (exc[e, 2] < 0 or exc[e, 2] == z):
            return True
    return False


# Numba passes a namedtuple captured by a prange body badly (measured 3x slower than
# the same loop over its arrays), so the kernels unpack the zone set into these flat
# argument lists once, outside their loops, and the helpers take arrays.


# The global-zone index (built by geofence.compile._build_grid): levels of uniform grids,
# each stored sparsely, as a hash table over its non-empty cells, so memory grows with
# the zones and not with the area between them. Level 0 (cells of grid_cell_m) lists
# each zone in every cell its box grown by grid_margin_m touches: a fix whose accuracy
# is within that margin reads the one cell it lies in. Levels 1.. (cells of 1, 2, 4 ...
# 1,024 km) list each zone in the cells its box touches; a fix reads the cells its
# accuracy square (times the largest reach factor) meets, at most 3 x 3 of them at the
# first level whose cells are that large, and reports a zone only in the first of those
# cells that lists it. A zone too large for a level's cells (more than GRID_MAX_SPAN per
# axis) is kept in that level's list of big zones, which every fix of the level reads.
# Only a fix whose accuracy exceeds every level (about 1,000 km) reads every global zone.
G_X0 = 0  # columns of ``grid``, one row per level
G_Y0 = 1
G_CELL = 2
G_NX = 3
G_NY = 4
G_HOFF = 5  # the level's hash table: hash_keys[hoff : hoff + mask + 1]
G_HMASK = 6
G_BIG_LO = 7  # the level's big zones: cell_rec[big_lo : big_hi]
G_BIG_HI = 8
G_REACH = 9  # the largest accuracy (ground metres) the level serves
G_KQ = 10  # frame metres per metre of accuracy of the level's query square
G_COLUMNS = 11
GRID_MAX_SPAN = 16


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _cell_key(ix: int, iy: int) -> int:
    return ix * 4_294_967_296 + iy


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _cell_hash(key: int, mask: int) -> int:
    # keys are below 2**52 (cell indices below 2**26 per axis, checked at build): the
    # product stays in int64
    return ((key % 1_000_000_007) * 2_654_435_761 + (key >> 32)) & mask


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _cell_lookup(grid: np.ndarray, level: int, ix: int, iy: int, hash_keys: np.ndarray, hash_vals: np.ndarray,
                 cell_off: np.ndarray) -> tuple[int, int]:
    """Entries (lo, hi) of cell_rec in cell (ix, iy) of the level; (0, 0) when empty."""
    if ix < 0 or iy < 0 or ix >= int(grid[level, G_NX]) or iy >= int(grid[level, G_NY]):
        return 0, 0
    key = _cell_key(ix, iy)
    base = int(grid[level, G_HOFF])
    mask = int(grid[level, G_HMASK])
    h = _cell_hash(key, mask)
    while True:
        k = hash_keys[base + h]
        if k == key:
            c = hash_vals[base + h]
            return cell_off[c], cell_off[c + 1]
        if k < 0:
            return 0, 0
        h = (h + 1) & mask


# Columns of ``cell_rec`` and ``global_rec``: one row per grid entry (or global zone), so
# that a candidate costs one cache line: the zone's box grown by its buffer, its scale
# factor, category (-1: every subject), zone index, and on levels 1.. the first cell of
# the zone's range (ix * 2**26 + iy; -1 in level 0, in big-zone rows and in global_rec).
CAND_X0 = 0
CAND_Y0 = 1
CAND_X1 = 2
CAND_Y1 = 3
CAND_K = 4
CAND_CAT = 5
CAND_ZONE = 6
CAND_FIRST = 7
CAND_COLUMNS = 8
_FIRST_SHIFT = 67_108_864  # 2**26


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _candidate(rec: np.ndarray, q: int, sc: int, px: float, py: float, acc: float) -> int:
    """The zone of candidate row q, or -1 when it does not apply to this fix: another
    category, or the fix lies farther than its accuracy (times the row's factor) from
    the grown box."""
    cat = int(rec[q, CAND_CAT])
    if cat >= 0 and cat != sc:
        return -1
    g = acc * rec[q, CAND_K] + _BBOX_SLACK
    if px < rec[q, CAND_X0] - g or px > rec[q, CAND_X1] + g or py < rec[q, CAND_Y0] - g or py > rec[q, CAND_Y1] + g:
        return -1
    return int(rec[q, CAND_ZONE])


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _global_candidates(write: bool, pz: np.ndarray, o: int, sc: int, px: float, py: float, acc: float,
                       grid: np.ndarray, hash_keys: np.ndarray, hash_vals: np.ndarray, cell_off: np.ndarray,
                       cell_rec: np.ndarray, global_rec: np.ndarray) -> int:
    """The global zones a fix may touch (category ``sc``): their number, and with ``write``
    their indices into pz[o:], in the index's order (see the note above G_X0)."""
    c = 0
    level = -1
    for v in range(grid.shape[0]):
        if acc <= grid[v, G_REACH]:
            level = v
            break
    if level < 0:
        for q in range(global_rec.shape[0]):
            z = _candidate(global_rec, q, sc, px, py, acc)
            if z >= 0:
                if write:
                    pz[o + c] = z
                c += 1
        return c
    x0 = grid[level, G_X0]
    y0 = grid[level, G_Y0]
    cell = grid[level, G_CELL]
    if level == 0:
        qx0 = int(math.floor((px - x0) / cell))
        qy0 = int(math.floor((py - y0) / cell))
        qx1 = qx0
        qy1 = qy0
    else:
        r = acc * grid[level, G_KQ] + 1.0
        qx0 = max(0, int(math.floor((px - r - x0) / cell)))
        qy0 = max(0, int(math.floor((py - r - y0) / cell)))
        qx1 = min(int(grid[level, G_NX]) - 1, int(math.floor((px + r - x0) / cell)))
        qy1 = min(int(grid[level, G_NY]) - 1, int(math.floor((py + r - y0) / cell)))
    for iy in range(qy0, qy1 + 1):
        for ix in range(qx0, qx1 + 1):
            lo, hi = _cell_lookup(grid, level, ix, iy, hash_keys, hash_vals, cell_off)
            for q in range(lo, hi):
                if level > 0:
                    first = int(cell_rec[q, CAND_FIRST])
                    if ix != max(first // _FIRST_SHIFT, qx0) or iy != max(first % _FIRST_SHIFT, qy0):
                        continue  # reported in the first visited cell that lists it
                z = _candidate(cell_rec, q, sc, px, py, acc)
                if z >= 0:
                    if write:
                        pz[o + c] = z
                    c += 1
    for q in range(int(grid[level, G_BIG_LO]), int(grid[level, G_BIG_HI])):
        z = _candidate(cell_rec, q, sc, px, py, acc)
        if z >= 0:
            if write:
                pz[o + c] = z
            c += 1
    return c


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _count_fix(s: int, px: float, py: float, acc: float, subj_zone_off: np.ndarray, subj_cat: np.ndarray,
               n_global_all: int, grid: np.ndarray, hash_keys: np.ndarray, hash_vals: np.ndarray,
               cell_off: np.ndarray, cell_rec: np.ndarray, global_rec: np.ndarray, dummy: np.ndarray) -> int:
    """How many pairs fix (s, p, acc) has: its subject's zones and the global candidates."""
    if s < 0:
        return 0
    c = subj_zone_off[s + 1] - subj_zone_off[s]
    sc = subj_cat[s]
    if sc < 0 and n_global_all == 0:
        return c  # no category, and every global zone belongs to one
    return c + _global_candidates(False, dummy, 0, sc, px, py, acc, grid, hash_keys, hash_vals, cell_off, cell_rec,
                                  global_rec)


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _pair_state(z: int, px: float, py: float, acc: float, t: int, active: bool, e0: int, e1: int, exact: bool,
                exc: np.ndarray, rec: np.ndarray, raster: np.ndarray, win: np.ndarray, tz_off: np.ndarray,
                tz_at: np.ndarray, tz_val: np.ndarray, vx: np.ndarray, vy: np.ndarray, slab_off: np.ndarray,
                slab_seg: np.ndarray, shape: np.ndarray, circle: np.ndarray, zone_ring_off: np.ndarray,
                ring_off: np.ndarray) -> tuple[int, float]:
    """(state, distance) of one (fix, zone) pair; ``active``: the subject's term covers t,
    exc[e0:e1]: the subject's authorised exceptions."""
    if not active or (e0 < e1 and _excepted(z, t, e0, e1, exc)) or not _windows_active(
            z, t, rec, win, tz_off, tz_at, tz_val):
        return INACTIVE, np.nan
    if exact:
        return classify_exact(px, py, acc + rec[z, REC_BUFFER], rec[z, REC_K], z, shape, circle, zone_ring_off, ring_off,
                              vx, vy)
    return _classify_fast(px, py, acc, z, rec, raster, vx, vy, slab_off, slab_seg)


@njit(**NJIT_NO_NRT)
def _fill_slots(zs, exact: bool, j0: int, j1: int, fix_f: np.ndarray, fix_i: np.ndarray, off: np.ndarray,  # type: ignore[no-untyped-def]
                pz: np.ndarray, pst: np.ndarray, pd: np.ndarray) -> None:
    """Evaluate fix slots j0..j1-1 (``fix_f``: x, y, accuracy, time; ``fix_i``: input
    index, subject), writing each slot's pairs (zone, state, and with ``exact`` the
    signed distance) from off[j]. Called per chunk of slots: the zone set is unpacked
    once per call, and the per-fix work below is inlined."""
    subj_zone_off = zs.subj_zone_off
    subj_zone_ids = zs.subj_zone_ids
    subj_cat = zs.subj_cat
    subj_term = zs.subj_term
    exc_off = zs.exc_off
    exc = zs.exc
    grid = zs.grid
    hash_keys = zs.hash_keys
    hash_vals = zs.hash_vals
    cell_off = zs.cell_off
    cell_rec = zs.cell_rec
    global_rec = zs.global_rec
    rec = zs.zone_rec
    raster = zs.raster
    win = zs.win
    tz_off = zs.tz_off
    tz_at = zs.tz_at
    tz_val = zs.tz_val
    vx = zs.vx
    vy = zs.vy
    slab_off = zs.slab_off
    slab_seg = zs.slab_seg
    shape = zs.shape
    circle = zs.circle
    zone_ring_off = zs.zone_ring_off
    ring_off = zs.ring_off
    for j in range(j0, j1):
        s = fix_i[j, 1]
        o = off[j]
        if s < 0:
            continue
        px = fix_f[j, 0]
        py = fix_f[j, 1]
        acc = fix_f[j, 2]
        t = np.int64(fix_f[j, 3])
        active = subj_term[s, 0] <= t < subj_term[s, 1]
        e0 = exc_off[s]
        e1 = exc_off[s + 1]
        for q in range(subj_zone_off[s], subj_zone_off[s + 1]):
            z = subj_zone_ids[q]
            pz[o] = z
            state, dist = _pair_state(z, px, py, acc, t, active, e0, e1, exact, exc, rec, raster, win, tz_off, tz_at,
                                      tz_val, vx, vy, slab_off, slab_seg, shape, circle, zone_ring_off, ring_off)
            pst[o] = state
            if exact:
                pd[o] = dist
            o += 1
        if o == off[j + 1]:
            continue  # pass 1 counted no global candidate for this fix: nothing to scan
        o_end = o + _global_candidates(True, pz, o, subj_cat[s], px, py, acc, grid, hash_keys, hash_vals, cell_off,
                                       cell_rec, global_rec)
        for q in range(o, o_end):
            state, dist = _pair_state(pz[q], px, py, acc, t, active, e0, e1, exact, exc, rec, raster, win, tz_off, tz_at,
                                      tz_val, vx, vy, slab_off, slab_seg, shape, circle, zone_ring_off, ring_off)
            pst[q] = state
            if exact:
                pd[q] = dist


# slots per task of the batch passes: small enough to balance two threads, large enough
# that a call per chunk costs nothing
_CHUNK = 2048


@njit(**NJIT_NO_NRT)
def _project_into(x: np.ndarray, y: np.ndarray, lonlat: bool, xs: np.ndarray, ys: np.ndarray, i0: int, i1: int) -> None:
    if lonlat:
        project_into(x, y, xs, ys, i0, i1)
        return
    for i in range(i0, i1):
        xs[i] = x[i]
        ys[i] = y[i]


@njit(**NJIT_PARALLEL)
def group_fixes(x, y, acc, subj, t, lonlat, zs, key_count, rank, xs, ys, fix_f, fix_i, fix_count, off):  # type: ignore[no-untyped-def]
    """Pass 1 of a batch: group the fixes by subject for ``fill_groups``.

    An O(N) counting sort gives each fix its slot in subject order (``rank``, with
    ``key_count`` its scratch of n_subjects + 2). The fixes are projected into the
    evaluation frame (``lonlat``; into xs, ys, a loop of its own: sharing one with the
    scattered writes below measured twice as slow). Then one pass reads them in input
    order, counts each fix's pairs (its subject's zones and the global candidates near
    it) into ``fix_count`` and writes the fix into its slot: ``fix_f`` (x, y, accuracy,
    time, exact as a float below 2**53) and ``fix_i`` (int32: input index, subject,
    pair count). ``off`` gets the slots' pair offsets; returns the number of pairs. All
    arrays are the caller's (reused scratch): fresh arrays would cost more in page
    faults than this pass costs in work.
    """
    n = x.shape[0]
    subj_zone_off = zs.subj_zone_off
    subj_cat = zs.subj_cat
    n_global_all = zs.n_global_all
    grid = zs.grid
    hash_keys = zs.hash_keys
    hash_vals = zs.hash_vals
    cell_off = zs.cell_off
    cell_rec = zs.cell_rec
    global_rec = zs.global_rec
    dummy = np.empty(0, dtype=np.int32)
    key_count[:] = 0
    for i in range(n):
        key_count[subj[i] + 2] += 1
    for k in range(1, key_count.shape[0]):
        key_count[k] += key_count[k - 1]
    for i in range(n):
        k = subj[i] + 1
        rank[i] = key_count[k]
        key_count[k] += 1
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        _project_into(x, y, lonlat, xs, ys, c * _CHUNK, min(n, (c + 1) * _CHUNK))
    for i in prange(n):
        px = xs[i]
        py = ys[i]
        s = subj[i]
        c = _count_fix(s, px, py, acc[i], subj_zone_off, subj_cat, n_global_all, grid, hash_keys, hash_vals, cell_off,
                       cell_rec, global_rec, dummy)
        fix_count[i] = c
        j = rank[i]
        fix_f[j, 0] = px
        fix_f[j, 1] = py
        fix_f[j, 2] = acc[i]
        fix_f[j, 3] = t[i]
        fix_i[j, 0] = i
        fix_i[j, 1] = s
        fix_i[j, 2] = c
    off[0] = 0
    for j in range(n):
        off[j + 1] = off[j] + fix_i[j, 2]
    return off[n]


@njit(**NJIT_PARALLEL)
def fill_groups(zs, exact, fix_f, fix_i, off, fix_start, pz, pst, pd):  # type: ignore[no-untyped-def]
    """Pass 2 of a batch: evaluate the fixes in subject order (each subject's zones are
    read once for all its fixes, the pairs are written sequentially) and scatter back
    only each fix's start. Output contract as ``evaluate_serial``'s."""
    n = fix_f.shape[0]
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        _fill_slots(zs, exact, c * _CHUNK, min(n, (c + 1) * _CHUNK), fix_f, fix_i, off, pz, pst, pd)
    # the scattered writes in a loop of their own: a store that misses the cache holds up
    # every later store, which interleaved with the evaluation cost 20% of this pass
    for j in prange(n):
        fix_start[fix_i[j, 0]] = off[j]


@njit(**NJIT)
def evaluate_serial(x, y, acc, subj, t, exact, lonlat, n_subjects, zs):  # type: ignore[no-untyped-def]
    """Check the inputs (``check_inputs``), then evaluate every fix against its subject's
    zones and the global zones near it, on one thread and in input order: the path for
    a handful of fixes, where a second kernel call, sorting and starting threads would
    cost more than the work (``group_fixes`` and ``fill_groups`` are the batch path).
    With ``lonlat`` the coordinates are WGS84 lon/lat (x, y) and are projected on the way
    in, else they are already in the evaluation frame.

    Returns (code, fix_start, fix_count, pair_zone, pair_state, pair_dist): ``code`` is
    the door check's INPUT_* (nothing evaluated unless INPUT_OK); the pairs of input fix
    i are fix_start[i] .. fix_start[i] + fix_count[i] - 1; pair_dist (signed distance,
    projected metres) only with ``exact``, else empty. Every subject zone appears for its
    fixes; a global zone appears only where it is a candidate (category matches and the
    fix lies within margin of its box); a global zone not listed for a fix is OUTSIDE.
    """
    n = x.shape[0]
    code = check_inputs(x, y, acc, subj, n_subjects, lonlat)
    if code != INPUT_OK:
        n = 0
    fix_f = np.empty((n, 4))
    fix_i = np.empty((n, 2), dtype=np.int32)
    fix_count = np.empty(n, dtype=np.int32)
    off = np.empty(n + 1, dtype=np.int64)
    off[0] = 0
    pz_dummy = np.empty(0, dtype=np.int32)
    for i in range(n):
        if lonlat:
            px, py = fix_forward(x[i], y[i])
        else:
            px = x[i]
            py = y[i]
        c = _count_fix(subj[i], px, py, acc[i], zs.subj_zone_off, zs.subj_cat, zs.n_global_all, zs.grid, zs.hash_keys,
                       zs.hash_vals, zs.cell_off, zs.cell_rec, zs.global_rec, pz_dummy)
        fix_count[i] = c
        off[i + 1] = off[i] + c
        fix_f[i, 0] = px
        fix_f[i, 1] = py
        fix_f[i, 2] = acc[i]
        fix_f[i, 3] = t[i]
        fix_i[i, 0] = i
        fix_i[i, 1] = subj[i]
    total = off[n]
    pz = np.empty(total, dtype=np.int32)
    pst = np.empty(total, dtype=np.int8)
    pd = np.empty(total if exact else 0, dtype=np.float64)
    _fill_slots(zs, exact, 0, n, fix_f, fix_i, off, pz, pst, pd)
    return code, off[:n], fix_count, pz, pst, pd  # input order: fix i starts at off[i]


@njit(**NJIT)
def locate_points(x: np.ndarray, y: np.ndarray, z: int, zs) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Plain point-in-zone location (exterior 0 / interior 1 / boundary 2) of each point."""
    out = np.empty(x.shape[0], dtype=np.int8)
    for i in range(x.shape[0]):
        if zs.shape[z] == SHAPE_CIRCLE:
            dx = x[i] - zs.circle[z, 0]
            dy = y[i] - zs.circle[z, 1]
            dc = math.sqrt(dx * dx + dy * dy)
            r = zs.circle[z, 2] * zs.circle[z, 3]  # the frame's circle of radius r * k_c
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


@njit(**NJIT_NO_NRT)
def _path_meets_circle(ax: float, ay: float, bx: float, by: float, cx: float, cy: float, r: float, kc: float,
                       clon: float, clat: float) -> bool:
    """Whether the frame segment a-b comes within ground radius r of the circle's centre
    (geodesic distance). With both ends within CIRCLE_FRAME_M of the centre: the frame's
    nearest distance D* decides when D*/k_c is beyond E1's bound of r (G >= D/k_c - E1(D)
    grows with D there, so no point of the segment is nearer); otherwise the minimum of E2
    along the segment (golden-section search: the distance to a point along a line is
    unimodal) decides beyond E2's bound, and the geodesic at that minimum decides the
    rest. Longer segments: the frame's circle of radius r * k_c."""
    ds = segment_distance(cx, cy, ax, ay, bx, by)
    da = math.hypot(ax - cx, ay - cy)
    db = math.hypot(bx - cx, by - cy)
    dmax = max(da, db)
    if dmax > CIRCLE_FRAME_M:
        return ds <= r * kc
    e1 = E1_COEF * ds * ds + EST_ABS_M
    if ds / kc - e1 > r:
        return False
    if ds / kc + e1 <= r:
        return True
    e2 = E2_COEF * dmax * dmax * dmax + EST_ABS_M
    lo = 0.0
    hi = 1.0
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    t1 = hi - inv_phi * (hi - lo)
    t2 = lo + inv_phi * (hi - lo)
    g1 = _ground_at(ax, ay, bx, by, t1, cx, cy, kc)
    g2 = _ground_at(ax, ay, bx, by, t2, cx, cy, kc)
    for _ in range(80):
        if g1 <= g2:
            hi = t2
            t2 = t1
            g2 = g1
            t1 = hi - inv_phi * (hi - lo)
            g1 = _ground_at(ax, ay, bx, by, t1, cx, cy, kc)
        else:
            lo = t1
            t1 = t2
            g1 = g2
            t2 = lo + inv_phi * (hi - lo)
            g2 = _ground_at(ax, ay, bx, by, t2, cx, cy, kc)
    t = t1 if g1 <= g2 else t2
    g = min(g1, g2, _ground_at(ax, ay, bx, by, 0.0, cx, cy, kc), _ground_at(ax, ay, bx, by, 1.0, cx, cy, kc))
    if g + e2 <= r:
        return True
    if g - e2 > r:
        return False
    lon, lat = lcc_inverse(ax + t * (bx - ax), ay + t * (by - ay))
    return geodesic_m(clon, clat, lon, lat) <= r


@njit(**NJIT_NO_NRT)
def _ground_at(ax: float, ay: float, bx: float, by: float, t: float, cx: float, cy: float, kc: float) -> float:
    """E2 from the centre to the point a + t (b - a); +inf where E2 has no value."""
    px = ax + t * (bx - ax)
    py = ay + t * (by - ay)
    g = simpson_ground_m(px, py, cx, cy, math.hypot(px - cx, py - cy), kc)
    return np.inf if math.isnan(g) else g


@njit(**NJIT)
def path_hits(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, zone: np.ndarray, zs) -> np.ndarray:  # type: ignore[no-untyped-def]
    """For each path segment (x0, y0)-(x1, y1), whether it meets zone[i] (closed zone:
    boundary included). Polygon: an end inside, or an edge crossed; circle: the segment
    comes within the radius (ground metres) of the centre."""
    n = x0.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        z = zone[i]
        if zs.shape[z] == SHAPE_CIRCLE:
            c = zs.circle
            out[i] = _path_meets_circle(x0[i], y0[i], x1[i], y1[i], c[z, 0], c[z, 1], c[z, 2], c[z, 3], c[z, 4],
                                        c[z, 5])
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


@njit(**{**NJIT_NO_NRT, "inline": "always"})
def _input_code(x: np.ndarray, y: np.ndarray, acc: np.ndarray, subj: np.ndarray, n_subjects: int, lonlat: bool,
                i: int) -> int:
    if not (math.isfinite(x[i]) and math.isfinite(y[i])):
        return INPUT_NONFINITE
    if lonlat and (abs(y[i]) > 90.0 or abs(x[i]) > 180.0):
        return INPUT_OUT_OF_RANGE
    if not (math.isfinite(acc[i]) and acc[i] >= 0.0):
        return INPUT_BAD_ACCURACY
    if subj[i] < -1 or subj[i] >= n_subjects:
        return INPUT_BAD_SUBJECT
    return INPUT_OK


@njit(**NJIT)
def check_inputs(x: np.ndarray, y: np.ndarray, acc: np.ndarray, subj: np.ndarray, n_subjects: int,
                 lonlat: bool) -> int:
    """The door check of ``geofence.evaluate`` in one pass (numpy's separate reductions
    cost ~20 us per call, most of a single-fix evaluation). Returns the INPUT_* code of
    the first bad fix, or INPUT_OK."""
    for i in range(x.shape[0]):
        code = _input_code(x, y, acc, subj, n_subjects, lonlat, i)
        if code != INPUT_OK:
            return code
    return INPUT_OK


@njit(**NJIT_PARALLEL)
def check_inputs_parallel(x: np.ndarray, y: np.ndarray, acc: np.ndarray, subj: np.ndarray, n_subjects: int,
                          lonlat: bool) -> int:
    """``check_inputs`` for a batch: both cores count the bad fixes; only a batch with one
    is scanned again in order, to name the first."""
    bad = 0
    for i in prange(x.shape[0]):
        bad += _input_code(x, y, acc, subj, n_subjects, lonlat, i) != INPUT_OK
    return INPUT_OK if bad == 0 else check_inputs(x, y, acc, subj, n_subjects, lonlat)


@njit(**NJIT)
def path_candidate_pairs(subj, x0, y0, x1, y1, zone_kind, glob, zs):  # type: ignore[no-untyped-def]
    """(segment, zone) pairs for ``path_hits``: per segment (subject ``subj[i]``), the
    subject's exclusion zones, then the global exclusion zones ``glob`` whose category
    is none or the subject's and whose box meets the segment's box (in list order).
    Two passes (count, fill), so the output is allocated once."""
    n = subj.shape[0]
    b = zs.bbox
    counts = np.zeros(n + 1, dtype=np.int64)
    for phase in range(2):
        if phase == 1:
            for i in range(n):
                counts[i + 1] += counts[i]
            seg_out = np.empty(counts[n], dtype=np.int64)
            zone_out = np.empty(counts[n], dtype=np.int32)
        for i in range(n):
            s = subj[i]
            o = counts[i]
            c = 0
            sc = -1
            if s >= 0:
                sc = zs.subj_cat[s]
                for q in range(zs.subj_zone_off[s], zs.subj_zone_off[s + 1]):
                    z = zs.subj_zone_ids[q]
                    if zone_kind[z] == 1:
                        if phase == 1:
                            seg_out[o + c] = i
                            zone_out[o + c] = z
                        c += 1
            lo_x = min(x0[i], x1[i])
            hi_x = max(x0[i], x1[i])
            lo_y = min(y0[i], y1[i])
            hi_y = max(y0[i], y1[i])
            for q in range(glob.shape[0]):
                z = glob[q]
                cat = zs.zone_cat[z]
                if cat >= 0 and (s < 0 or cat != sc):
                    continue
                if b[z, 0] <= hi_x and b[z, 2] >= lo_x and b[z, 1] <= hi_y and b[z, 3] >= lo_y:
                    if phase == 1:
                        seg_out[o + c] = i
                        zone_out[o + c] = z
                    c += 1
            if phase == 0:
                counts[i + 1] = c
    return seg_out, zone_out


@njit(**NJIT)
def build_cell_hash(keys: np.ndarray, first_cell: int, mask: int) -> tuple[np.ndarray, np.ndarray]:
    """The open-addressing table (linear probing, key -1: empty) of one grid level: cell
    key -> cell number (first_cell + position in ``keys``)."""
    hk = np.full(mask + 1, -1, dtype=np.int64)
    hv = np.zeros(mask + 1, dtype=np.int64)
    for c in range(keys.shape[0]):
        h = _cell_hash(keys[c], mask)
        while hk[h] >= 0:
            h = (h + 1) & mask
        hk[h] = keys[c]
        hv[h] = first_cell + c
    return hk, hv
