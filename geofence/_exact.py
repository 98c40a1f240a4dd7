"""Exact orientation predicate (Shewchuk's floating-point filter, rational fallback).

``orient_sign(ax, ay, bx, by, cx, cy)`` returns the exact sign of
``(ax - cx) * (by - cy) - (ay - cy) * (bx - cx)``: +1 when c lies left of a->b
(counter-clockwise), -1 right, 0 collinear. The fast path is a floating-point
evaluation with Shewchuk's error bound; only when the bound cannot certify the
sign does it fall back to exact rational arithmetic (Python's ``Fraction``, through
numba's object mode). GEOS decides the same predicate with double-double arithmetic,
which is exact for these inputs, so both agree on every point, including points
that sit on an edge up to the last bit.

``geodesic_m`` is the same kind of fallback for circles: the evaluator decides a circle
from the frame with a stated error bound and asks the ellipsoid itself only where that
bound leaves the answer open.

Pure numba; no I/O.
"""

from __future__ import annotations

from fractions import Fraction

from numba import njit, objmode

from geofence._config import NJIT
from geofence.geodesy import geod

_EPS = 2.0**-53
_CCW_ERRBOUND_A = (3.0 + 16.0 * _EPS) * _EPS


def _exact_sign_python(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    """The obviously correct determinant sign, in rational arithmetic (every double is a
    rational number): ``fractions.Fraction`` makes no rounding at all."""
    fa, fb, fc = (Fraction(ax), Fraction(ay)), (Fraction(bx), Fraction(by)), (Fraction(cx), Fraction(cy))
    det = (fa[0] - fc[0]) * (fb[1] - fc[1]) - (fa[1] - fc[1]) * (fb[0] - fc[0])
    return (det > 0) - (det < 0)


@njit(**{**NJIT, "nogil": False})  # object mode needs the GIL
def _orient_exact(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    # Reached only when the floating-point filter cannot certify the sign (points on or
    # within ~1e-15 relative of a line): rare enough to leave compiled code for it. The
    # callers run without numba's reference counting, so this path must not allocate.
    with objmode(sign="int64"):
        sign = _exact_sign_python(ax, ay, bx, by, cx, cy)
    return sign


@njit(**NJIT)
def orient_sign(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    """Exact sign of the orientation of (a, b, c)."""
    detleft = (ax - cx) * (by - cy)
    detright = (ay - cy) * (bx - cx)
    det = detleft - detright
    if detleft > 0.0:
        if detright <= 0.0:
            return 1 if det > 0.0 else (-1 if det < 0.0 else 0)
        detsum = detleft + detright
    elif detleft < 0.0:
        if detright >= 0.0:
            return 1 if det > 0.0 else (-1 if det < 0.0 else 0)
        detsum = -detleft - detright
    else:
        # detleft is exactly zero: det == -detright exactly
        if detright == 0.0:
            # both products are zero; that is exact unless a product underflowed
            return _orient_exact(ax, ay, bx, by, cx, cy)
        return -1 if detright > 0.0 else 1
    errbound = _CCW_ERRBOUND_A * detsum
    if det >= errbound:
        return 1
    if -det >= errbound:
        return -1
    return _orient_exact(ax, ay, bx, by, cx, cy)


def _geodesic_m_python(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    _, _, d = geod().inv(lon0, lat0, lon1, lat1)
    return float(d)


@njit(**{**NJIT, "nogil": False})  # object mode needs the GIL
def geodesic_m(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """The WGS84 geodesic distance (Karney's algorithm through pyproj.Geod, 15 nm), for the
    rare circle pairs that the frame's estimate cannot decide. Allocates nothing in
    compiled code, so callers without reference counting may call it."""
    with objmode(d="float64"):
        d = _geodesic_m_python(lon0, lat0, lon1, lat1)
    return d


__all__ = ["geodesic_m", "orient_sign"]
