"""The local metric projection: Lambert Conformal Conic fitted to Uzbekistan.

Zones and fixes are evaluated in one planar frame, in metres:
``+proj=lcc +lat_1=38.5 +lat_2=44.5 +lat_0=41 +lon_0=64.5 +ellps=WGS84``.
It is conformal, so a small distance is stretched by the same point scale factor
``k`` in every direction; ``k`` depends on latitude only and stays within
0.9985..1.0017 between 37 and 46 N. Each zone stores ``k`` at its own reference
point and the evaluator compares projected distances with ``(accuracy + buffer) * k``,
which removes the scale error; what remains is the change of ``k`` across the zone.

Error bound (tested in tests/geofence/test_projection.py against pyproj.Geod on the
WGS84 ellipsoid, 20,000 random pairs in 37-46 N, 56-73 E, Uzbekistan with a margin): a
projected distance divided by ``k`` at its first end point differs from the geodesic
distance by at most 0.03 m up to 2 km (measured 0.024 m), 0.2 m up to 5 km (measured
0.15 m) and 20 m up to 50 km (measured 15 m). The error grows with the square of the
distance because ``k`` changes along it; the distances that decide a state (accuracy
radius plus buffer, from a fix to a zone boundary) are a few hundred metres, where it
is below 2 mm. That holds for polygons, decided in this frame (edges straight in it,
margins of (accuracy + buffer) * k at the zone's mid-latitude; the ground error of a
margin m is about |d ln k / d rho| * (half the zone's height + m) * m, with
|d ln k / d rho| <= 2.9e-8 per metre between 30 and 50 N: 2 mm for a 1 km zone and a
100 m margin, 0.15 m for a 100 km zone). It does not hold for circles, where the deciding
distance is the radius: circles are decided in ground metres against the geodesic (see
``CIRCLE_FRAME_M`` in geofence._kernels), and zones outside the served region are refused
(``geofence.zones.SUPPORTED_REGION``). Zone geometry is projected with pyproj; fixes are projected by
a numba port of the same ellipsoidal formulas (Snyder, "Map Projections", eq. 15-1..15-9),
which agrees with pyproj to better than 1 micrometre there (measured 5e-9 m), and
inside a band around the country by polynomials that vectorize (measured 7e-9 m; see
BAND). Outside it, longitude differences wrap as in PROJ and the port agrees with
pyproj worldwide to 1e-12 of the distance from the projection's centre (tested).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pyproj
from numba import njit

from geofence._config import NJIT

LAT_1 = 38.5
LAT_2 = 44.5
LAT_0 = 41.0
LON_0 = 64.5
PROJ_STRING = (
    f"+proj=lcc +lat_1={LAT_1} +lat_2={LAT_2} +lat_0={LAT_0} +lon_0={LON_0} "
    "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
)

_A = 6378137.0
_F = 1.0 / 298.257223563
_E2 = 2.0 * _F - _F * _F
_E = math.sqrt(_E2)


def _m(phi: float) -> float:
    s = math.sin(phi)
    return math.cos(phi) / math.sqrt(1.0 - _E2 * s * s)


def _t(phi: float) -> float:
    s = math.sin(phi)
    return math.tan(math.pi / 4.0 - phi / 2.0) / ((1.0 - _E * s) / (1.0 + _E * s)) ** (_E / 2.0)


_PHI1, _PHI2, _PHI0 = (math.radians(v) for v in (LAT_1, LAT_2, LAT_0))
_N = (math.log(_m(_PHI1)) - math.log(_m(_PHI2))) / (math.log(_t(_PHI1)) - math.log(_t(_PHI2)))
_FF = _m(_PHI1) / (_N * _t(_PHI1) ** _N)
_RHO0 = _A * _FF * _t(_PHI0) ** _N
_LAM0 = math.radians(LON_0)


@njit(**NJIT)
def lcc_forward(lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """Project one WGS84 lon/lat (degrees) to LCC metres."""
    # rho = a F t**n with t = tan(pi/4 - phi/2) / ((1 - e sin phi) / (1 + e sin phi))**(e/2),
    # written as one exp of logs: tan(pi/4 - phi/2) = sqrt((1 - sin phi) / (1 + sin phi)),
    # and log((1 - x) / (1 + x)) = -2 atanh(x), whose series in x = e sin phi (|x| < 0.082)
    # reaches double precision in nine terms. One log, one exp and a polynomial replace a
    # tan and two pow calls (a pow is a log and an exp): about twice as fast, and within
    # 1e-8 m of pyproj all the same (tested)
    phi = math.radians(lat_deg)
    s = math.sin(phi)
    x = _E * s
    x2 = x * x
    atanh_x = x * (1.0 + x2 * (1.0 / 3.0 + x2 * (1.0 / 5.0 + x2 * (1.0 / 7.0 + x2 * (1.0 / 9.0 + x2 * (
        1.0 / 11.0 + x2 * (1.0 / 13.0 + x2 * (1.0 / 15.0 + x2 * (1.0 / 17.0)))))))))
    log_t2 = math.log((1.0 - s) / (1.0 + s)) + 2.0 * _E * atanh_x
    rho = _A * _FF * math.exp(0.5 * _N * log_t2)
    dlam = math.radians(lon_deg) - _LAM0
    if dlam > math.pi:  # the longitude difference wraps as in PROJ (adjlon)
        dlam -= 2.0 * math.pi
    elif dlam < -math.pi:
        dlam += 2.0 * math.pi
    theta = _N * dlam
    return rho * math.sin(theta), _RHO0 - rho * math.cos(theta)


@njit(**NJIT)
def lcc_scale(lat_deg: float) -> float:
    """Point scale factor k of the projection at a latitude."""
    phi = math.radians(lat_deg)
    s = math.sin(phi)
    t = math.tan(math.pi / 4.0 - phi / 2.0) / ((1.0 - _E * s) / (1.0 + _E * s)) ** (_E / 2.0)
    m = math.cos(phi) / math.sqrt(1.0 - _E2 * s * s)
    return _A * _FF * t**_N * _N / (_A * m)


# --- the band around Uzbekistan: the same projection as polynomials that vectorize ---------
# Inside BAND (lat 30-50 N, lon 50-80 E) rho = rho_c exp(-n (psi - psi_c)) with the
# isometric latitude's offset psi - psi_c as a degree-18 polynomial in the latitude
# (interpolated at Chebyshev points, error < 1e-16) and exp, sin and cos by their Taylor
# series (arguments below 0.2: error < 1e-20). No call and no branch, so LLVM runs four
# fixes per instruction: a million fixes in 13 ms instead of 54 (one core), within 1e-8 m
# of ``lcc_forward`` and pyproj. Fixes outside the band take ``lcc_forward``.
BAND = (30.0, 50.0, 50.0, 80.0)  # lat_lo, lat_hi, lon_lo, lon_hi
_BAND_PHI_C = math.radians((BAND[0] + BAND[1]) / 2.0)
_BAND_HALF = math.radians((BAND[1] - BAND[0]) / 2.0)
_D2R = math.pi / 180.0


def _psi(phi: np.ndarray) -> np.ndarray:
    s = np.sin(phi)
    return np.asarray(np.arctanh(s) - _E * np.arctanh(_E * s))


_PSI_C = float(_psi(np.array([_BAND_PHI_C]))[0])
_RHO_C = _A * _FF * math.exp(-_N * _PSI_C)
# monomial coefficients, highest power first, in u = (phi - phi_c) / half
_CHEB_NODES = np.cos(np.pi * (np.arange(19) + 0.5) / 19)  # degree 18 through 19 Chebyshev points
_PSI_POLY = tuple(float(c) for c in np.polynomial.chebyshev.cheb2poly(np.polynomial.chebyshev.chebfit(
    _CHEB_NODES, _psi(_BAND_PHI_C + _BAND_HALF * _CHEB_NODES) - _PSI_C, 18))[::-1])
_EXP_POLY = tuple(1.0 / math.factorial(k) for k in range(16, -1, -1))
_SIN_POLY = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(8, -1, -1))  # sin(t) / t in t**2
_COS_POLY = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(8, -1, -1))  # cos(t) in t**2


@njit(**{**NJIT, "inline": "always"})
def _poly9(c: tuple[float, ...], u: float) -> float:
    """Horner's rule for 9 coefficients, highest first, written out (a loop over the tuple
    would not vectorize)."""
    r = c[0]
    r = r * u + c[1]
    r = r * u + c[2]
    r = r * u + c[3]
    r = r * u + c[4]
    r = r * u + c[5]
    r = r * u + c[6]
    r = r * u + c[7]
    return r * u + c[8]


@njit(**{**NJIT, "inline": "always"})
def _poly17(c: tuple[float, ...], u: float) -> float:
    """Horner's rule for 17 coefficients, highest first: the first 9, then eight more steps."""
    r = _poly9(c, u)
    r = r * u + c[9]
    r = r * u + c[10]
    r = r * u + c[11]
    r = r * u + c[12]
    r = r * u + c[13]
    r = r * u + c[14]
    r = r * u + c[15]
    return r * u + c[16]


@njit(**{**NJIT, "inline": "always"})
def _poly19(c: tuple[float, ...], u: float) -> float:
    """Horner's rule for 19 coefficients, highest first: the first 17, then two more steps."""
    r = _poly17(c, u)
    r = r * u + c[17]
    return r * u + c[18]


@njit(**{**NJIT, "inline": "always"})
def in_band(lon_deg: float, lat_deg: float) -> bool:
    return BAND[0] <= lat_deg <= BAND[1] and BAND[2] <= lon_deg <= BAND[3]


@njit(**{**NJIT, "inline": "always"})
def _band_forward(lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """The band's polynomial projection; coordinates are clamped into the band, so that a
    fix outside it gives finite numbers (which the caller then replaces)."""
    la = min(max(lat_deg, BAND[0]), BAND[1])
    lo = min(max(lon_deg, BAND[2]), BAND[3])
    rho = _RHO_C * _poly17(_EXP_POLY, -_N * _poly19(_PSI_POLY, (la * _D2R - _BAND_PHI_C) / _BAND_HALF))
    theta = _N * (lo * _D2R - _LAM0)
    t2 = theta * theta
    return rho * (theta * _poly9(_SIN_POLY, t2)), _RHO0 - rho * _poly9(_COS_POLY, t2)


@njit(**{**NJIT, "inline": "always"})
def fix_forward(lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """How fixes are projected, one at a time: the band's polynomials inside it, else
    ``lcc_forward``. ``project_into`` gives the same numbers for arrays, faster."""
    if in_band(lon_deg, lat_deg):
        return _band_forward(lon_deg, lat_deg)
    return lcc_forward(lon_deg, lat_deg)


# --- ground distances from the frame: 1/k as a polynomial in rho, and the inverse -----------
# k depends on the latitude only, so on rho = |(x, y) - apex| only. Between 24 and 56 N
# (rho from RHO_K_RANGE[0] to [1]) 1/k is a degree-16 polynomial in u = (rho - mid) / half,
# fitted at Chebyshev points: error below 1e-14 (of 1/k ~ 1; tested against lcc_scale).
K_LAT_RANGE = (24.0, 56.0)


def _rho_of(phi: np.ndarray) -> np.ndarray:
    s = np.sin(phi)
    return np.asarray(_A * _FF * (np.tan(np.pi / 4 - phi / 2) / ((1 - _E * s) / (1 + _E * s)) ** (_E / 2)) ** _N)


def _inv_k_of(phi: np.ndarray) -> np.ndarray:
    s = np.sin(phi)
    return np.asarray(_A * (np.cos(phi) / np.sqrt(1 - _E2 * s * s)) / (_N * _rho_of(phi)))


RHO_K_RANGE = (float(_rho_of(np.radians(np.array([K_LAT_RANGE[1]])))[0]),
               float(_rho_of(np.radians(np.array([K_LAT_RANGE[0]])))[0]))
_RHO_K_MID = (RHO_K_RANGE[0] + RHO_K_RANGE[1]) / 2.0
_RHO_K_HALF = (RHO_K_RANGE[1] - RHO_K_RANGE[0]) / 2.0


def _fit_inv_k() -> tuple[float, ...]:
    phi = np.radians(np.linspace(K_LAT_RANGE[0], K_LAT_RANGE[1], 4001))
    u = (_rho_of(phi) - _RHO_K_MID) / _RHO_K_HALF
    cheb = np.polynomial.chebyshev.chebfit(u, _inv_k_of(phi), 16)
    return tuple(float(c) for c in np.polynomial.chebyshev.cheb2poly(cheb)[::-1])


_INV_K_POLY = _fit_inv_k()


@njit(**{**NJIT, "inline": "always"})
def inv_scale_xy(x: float, y: float) -> float:
    """1/k at a point of the frame, by the polynomial in rho; NaN outside K_LAT_RANGE."""
    dy = _RHO0 - y
    u = (math.sqrt(x * x + dy * dy) - _RHO_K_MID) / _RHO_K_HALF
    if not -1.0 <= u <= 1.0:
        return np.nan
    return _poly17(_INV_K_POLY, u)


@njit(**NJIT)
def lcc_inverse(x: float, y: float) -> tuple[float, float]:
    """WGS84 (lon, lat) in degrees of a point of the frame (Snyder eq. 15-9, 7-9 iterated
    to convergence): within 1e-8 m of pyproj's inverse (tested)."""
    dy = _RHO0 - y
    rho = math.sqrt(x * x + dy * dy)
    lam = math.atan2(x, dy) / _N + _LAM0
    if lam > math.pi:
        lam -= 2.0 * math.pi
    elif lam < -math.pi:
        lam += 2.0 * math.pi
    if rho == 0.0:
        return math.degrees(lam), 90.0
    t = (rho / (_A * _FF)) ** (1.0 / _N)
    phi = math.pi / 2.0 - 2.0 * math.atan(t)
    for _ in range(30):
        s = math.sin(phi)
        nxt = math.pi / 2.0 - 2.0 * math.atan(t * ((1.0 - _E * s) / (1.0 + _E * s)) ** (_E / 2.0))
        if abs(nxt - phi) <= 1e-15:
            phi = nxt
            break
        phi = nxt
    return math.degrees(lam), math.degrees(phi)


_OUTSIDE_BLOCK = 256  # fixes per block of project_into's outside-the-band check


@njit(**{**NJIT, "_nrt": False})
def project_into(lon: np.ndarray, lat: np.ndarray, x: np.ndarray, y: np.ndarray, i0: int, i1: int) -> None:
    """``fix_forward`` of fixes i0..i1-1 into x, y: the band's polynomials for all of them in
    one loop that vectorizes, then ``lcc_forward`` for those outside the band.

    The second step first counts, per block, the fixes outside the band, and only a
    block that has some runs the loop with ``lcc_forward``: LLVM vectorizes that loop by
    predication, computing ``lcc_forward`` (log, exp, sin, cos) for every fix and
    storing the outside ones, which cost 23 ms per million fixes on one core when not
    one fix was outside (measured; the count costs 1 ms)."""
    for i in range(i0, i1):
        x[i], y[i] = _band_forward(lon[i], lat[i])
    for b0 in range(i0, i1, _OUTSIDE_BLOCK):
        b1 = min(b0 + _OUTSIDE_BLOCK, i1)
        outside = 0
        for i in range(b0, b1):
            outside += not in_band(lon[i], lat[i])
        if outside == 0:
            continue
        for i in range(b0, b1):
            if not in_band(lon[i], lat[i]):
                x[i], y[i] = lcc_forward(lon[i], lat[i])


def project(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project lon/lat arrays (degrees) to metres in the evaluation frame, as fixes are."""
    lon_a = np.ascontiguousarray(lon, dtype=np.float64)
    lat_a = np.ascontiguousarray(lat, dtype=np.float64)
    x = np.empty_like(lon_a)
    y = np.empty_like(lat_a)
    project_into(lon_a, lat_a, x, y, 0, lon_a.shape[0])
    return x, y


@lru_cache(maxsize=1)
def transformer() -> pyproj.Transformer:
    """pyproj transformer WGS84 lon/lat -> evaluation frame (used for zone geometry)."""
    return pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_proj4(PROJ_STRING), always_xy=True)


def project_with_pyproj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = transformer().transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def scale_factor(lat_deg: float) -> float:
    return float(lcc_scale(float(lat_deg)))


__all__ = [
    "BAND",
    "K_LAT_RANGE",
    "PROJ_STRING",
    "RHO_K_RANGE",
    "fix_forward",
    "inv_scale_xy",
    "lcc_forward",
    "lcc_inverse",
    "lcc_scale",
    "project",
    "project_into",
    "project_with_pyproj",
    "scale_factor",
    "transformer",
]
