"""The exact orientation fallback: nearly collinear points where the floating-point filter
cannot certify the sign, so ``orient_sign`` must fall back to exact arithmetic.

The grid around (0.5, 0.5) on the line through (12, 12) and (24, 24) is the classic
example of Kettner et al., "Classroom examples of robustness problems in geometric
computations" (2008): the plain floating-point determinant gets the sign wrong for many
of its points. Then the same through the public point location, against GEOS.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import shapely

from geofence import SubjectRules, ZoneSpec, compile_zones, locate
from geofence._exact import orient_sign

_EPS = 2.0**-53
_ERRBOUND = (3.0 + 16.0 * _EPS) * _EPS


def exact_sign(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    det = (Fraction(ax) - Fraction(cx)) * (Fraction(by) - Fraction(cy)) - (Fraction(ay) - Fraction(cy)) * (
        Fraction(bx) - Fraction(cx))
    return (det > 0) - (det < 0)


def float_sign(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    det = (ax - cx) * (by - cy) - (ay - cy) * (bx - cx)
    return (det > 0) - (det < 0)


def filter_uncertain(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> bool:
    """Whether Shewchuk's first error bound cannot certify the float sign."""
    left = (ax - cx) * (by - cy)
    right = (ay - cy) * (bx - cx)
    return abs(left - right) < _ERRBOUND * (abs(left) + abs(right))


def test_orientation_is_exact_where_floating_point_gets_it_wrong() -> None:
    u = 2.0**-53
    wrong = uncertain = 0
    for i in range(48):
        for j in range(48):
            p = (0.5 + i * u, 0.5 + j * u)
            args = (*p, 12.0, 12.0, 24.0, 24.0)
            want = exact_sign(*args)
            assert orient_sign(*args) == want, (i, j)
            wrong += float_sign(*args) != want
            uncertain += filter_uncertain(*args)
    assert wrong > 100  # the naive determinant is wrong here: only the exact fallback is right
    assert uncertain > 1000


def test_exactly_collinear_and_underflowing_products() -> None:
    assert orient_sign(0.0, 0.0, 1.0, 1.0, 3.0, 3.0) == 0
    assert orient_sign(1e-200, 1e-200, 2e-200, 2e-200, 3e-200, 3.0000000000000004e-200) == exact_sign(
        1e-200, 1e-200, 2e-200, 2e-200, 3e-200, 3.0000000000000004e-200)
    tiny = 5e-324
    assert orient_sign(0.0, 0.0, tiny, 0.0, 0.0, tiny) == 1  # both products underflow to zero
    assert orient_sign(0.0, 0.0, 0.0, tiny, tiny, 0.0) == -1


def test_point_location_on_a_long_edge_near_the_projection_origin_matches_geos() -> None:
    """A 10 km triangle near the projection's origin, so its projected coordinates are
    small next to its edges; points a few units in the last place either side of its
    long diagonal edge: the filter cannot decide them, location must still match GEOS."""
    ring = [[64.40, 40.95], [64.52, 41.04], [64.40, 41.04], [64.40, 40.95]]
    zs = compile_zones([ZoneSpec("tri", "exclusion", {"type": "Polygon", "coordinates": [ring]}, subject_id="s")],
                       [SubjectRules("s")])
    a = zs.arrays
    vx = a.vx[a.ring_off[0]:a.ring_off[1]]
    vy = a.vy[a.ring_off[0]:a.ring_off[1]]
    (x0, y0), (x1, y1) = (vx[0], vy[0]), (vx[1], vy[1])  # the diagonal edge
    xs, ys = [], []
    for t in np.linspace(0.05, 0.95, 40):
        x = x0 + t * (x1 - x0)
        y = y0 + t * (y1 - y0)
        for k in range(-6, 7):
            xs.append(x)
            ys.append(y + k * np.spacing(y))
    x_arr, y_arr = np.array(xs), np.array(ys)
    got = locate(zs, 0, x_arr, y_arr)
    poly = shapely.Polygon(np.column_stack([vx, vy]))
    want = np.where(shapely.contains_xy(poly, x_arr, y_arr), 1, np.where(shapely.intersects_xy(poly, x_arr, y_arr), 2, 0))
    assert (got == want).all(), np.flatnonzero(got != want)[:10]
    decided_by_fallback = sum(filter_uncertain(x0, y0, x1, y1, x, y) for x, y in zip(xs, ys, strict=True))
    assert decided_by_fallback > 50
    assert set(got.tolist()) == {0, 1}  # both sides reached
