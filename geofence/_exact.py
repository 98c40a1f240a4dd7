"""Exact orientation predicate (Shewchuk-style filter plus expansion arithmetic).

``orient_sign(ax, ay, bx, by, cx, cy)`` returns the exact sign of
``(ax - cx) * (by - cy) - (ay - cy) * (bx - cx)``: +1 when c lies left of a->b
(counter-clockwise), -1 right, 0 collinear. The fast path is a floating-point
evaluation with Shewchuk's error bound; only when the bound cannot certify the
sign does it fall back to exact expansion arithmetic (TwoDiff / TwoProduct /
Grow-Expansion). GEOS decides the same predicate with double-double arithmetic,
which is exact for these inputs, so both agree on every point, including points
that sit on an edge up to the last bit.

Pure numba; no I/O.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from geofence._config import NJIT

_EPS = 2.0**-53
_CCW_ERRBOUND_A = (3.0 + 16.0 * _EPS) * _EPS
_SPLITTER = 134217729.0  # 2**27 + 1


@njit(**NJIT)
def _two_sum(a: float, b: float) -> tuple[float, float]:
    x = a + b
    bv = x - a
    av = x - bv
    return x, (a - av) + (b - bv)


@njit(**NJIT)
def _two_diff(a: float, b: float) -> tuple[float, float]:
    x = a - b
    bv = a - x
    av = x + bv
    return x, (a - av) + (bv - b)


@njit(**NJIT)
def _split(a: float) -> tuple[float, float]:
    c = _SPLITTER * a
    abig = c - a
    hi = c - abig
    return hi, a - hi


@njit(**NJIT)
def _two_product(a: float, b: float) -> tuple[float, float]:
    x = a * b
    ahi, alo = _split(a)
    bhi, blo = _split(b)
    err1 = x - ahi * bhi
    err2 = err1 - alo * bhi
    err3 = err2 - ahi * blo
    return x, alo * blo - err3


@njit(**NJIT)
def _expansion_sign(terms: np.ndarray) -> int:
    """Exact sign of sum(terms) via Grow-Expansion (components kept nonoverlapping)."""
    n = terms.shape[0]
    e = np.zeros(n)
    m = 0
    for i in range(n):
        q = terms[i]
        for j in range(m):
            q, h = _two_sum(q, e[j])
            e[j] = h
        e[m] = q
        m += 1
    for j in range(m - 1, -1, -1):
        if e[j] > 0.0:
            return 1
        if e[j] < 0.0:
            return -1
    return 0


@njit(**NJIT)
def _orient_exact(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    acx, acxt = _two_diff(ax, cx)
    acy, acyt = _two_diff(ay, cy)
    bcx, bcxt = _two_diff(bx, cx)
    bcy, bcyt = _two_diff(by, cy)
    terms = np.empty(16)
    k = 0
    # + (acx + acxt) * (bcy + bcyt)
    for p, q in ((acx, bcy), (acx, bcyt), (acxt, bcy), (acxt, bcyt)):
        hi, lo = _two_product(p, q)
        terms[k] = hi
        terms[k + 1] = lo
        k += 2
    # - (acy + acyt) * (bcx + bcxt)
    for p, q in ((acy, bcx), (acy, bcxt), (acyt, bcx), (acyt, bcxt)):
        hi, lo = _two_product(p, q)
        terms[k] = -hi
        terms[k + 1] = -lo
        k += 2
    return _expansion_sign(terms)


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


__all__ = ["orient_sign"]
